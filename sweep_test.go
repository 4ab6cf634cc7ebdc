package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The sweeper's tests run it over swStore and swQueue (sweep_fake_test.go):
// in-memory fakes of the dueStore and of SQS with the real ones' semantics
// and limits. They follow the deployed look-ahead and shortNotice: with
// swNow (10:44:30) and a 3-minute look-ahead a first sweep reads the
// buckets of 10:44 to 10:46 (swLast), and hands on what falls within
// 3m30s of now (swHorizon, 10:48).

var (
	swM44 = swMinute(swAt(10, 44, 0))
	swM45 = swMinute(swAt(10, 45, 0))
	// swLast is the last minute a sweep at swNow reads.
	swLast = swLastRead(swNow)
	// swFirstMinutes is how many minutes a first sweep at swNow reads.
	swFirstMinutes = int(swLast - swM44 + 1)
	// swHorizon is how far a sweep at swNow sends occurrences itself.
	swHorizon = swNow.Add(shortNotice)
)

// swLastRead is the last minute a sweep at now reads: the last wholly
// within its look-ahead.
func swLastRead(now time.Time) int64 {
	return now.Add(min(defaultLookahead, shortNotice)).Unix()/60 - 1
}

// swMinuteTime is the first instant of minute m.
func swMinuteTime(m int64) time.Time { return time.Unix(m*60, 0).UTC() }

// swMinutes returns the whole minutes in (from, to], plus offset: what a
// minutely schedule at that second of the minute has there.
func swMinutes(from, to time.Time, offset time.Duration) []time.Time {
	var out []time.Time
	for at := from.Add(-offset).Truncate(time.Minute).Add(time.Minute); !at.Add(offset).After(to); at = at.Add(time.Minute) {
		out = append(out, at.Add(offset))
	}
	return out
}

// swAfter is the first whole minute, plus offset, after t.
func swAfter(t time.Time, offset time.Duration) time.Time {
	return t.Add(-offset).Truncate(time.Minute).Add(time.Minute + offset)
}

// ---------------------------------------------------------------- 1. paging, chunks, batches

// TestSweepPagesChunksAndBatches sweeps one bucket partition read in small
// pages and checks the whole pipeline: every entry's occurrence is sent
// once with its minimal message and its delay, in SQS batches of 10 of
// which only each chunk's last may be partial, after its timer's next link
// is written in one PutLinks call per chunk of 50; the other partitions
// are read too (empty), and the sweep releases through the minute after
// the last it read.
func TestSweepPagesChunksAndBatches(t *testing.T) {
	t.Parallel()
	var pages17 []int
	for range 17 {
		pages17 = append(pages17, 7)
	}
	tests := []struct {
		name        string
		n, pageSize int
		wantPages   []int // pages of the one partition with entries
		wantBatches []int // entries of each SendMessageBatch call, sorted
		wantLinks   []int // links of each PutLinks call, sorted
	}{
		{"25 entries in pages of 7", 25, 7, []int{7, 7, 7, 4}, []int{5, 10, 10}, []int{25}},
		{"21 entries in pages of 7, then an empty page", 21, 7, []int{7, 7, 7, 0}, []int{1, 10, 10}, []int{21}},
		{"1 entry", 1, 7, []int{1}, []int{1}, []int{1}},
		{"123 entries in pages of 7: chunks of 50, 50 and 23", 123, 7, append(pages17, 4),
			[]int{3, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, []int{23, 50, 50}},
		{"100 entries in one page: two full chunks", 100, 1000, []int{100},
			[]int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, []int{50, 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newSwStore(tt.pageSize)
			var (
				wantSent  []swSent
				wantLinks []DueEntry
			)
			const part = 5
			for i, id := range swIDsInPart("t", part, tt.n) {
				// Every hour at a second of 10:45, so that delays differ.
				at := swAt(10, 45, i%60)
				tm := swTimerOf(id, "rate(1 hour)", "")
				tm.Anchor, tm.Version = at, int64(i%4+1)
				e := store.addTimer(tm, at, at.Add(-time.Hour))
				next := e
				next.At, next.WrittenAt = at.Add(time.Hour).Unix(), swNow.Unix()
				wantLinks = append(wantLinks, next)
				wantSent = append(wantSent, swSent{Msg: swMsg(e, at, at.Add(time.Hour), false), Delay: int32(30 + i%60)})
			}
			q := &swQueue{}
			res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			q.check(t)
			if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: tt.n, Enqueued: tt.n}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			wantPages := map[BucketRange][]int{}
			for _, br := range swRanges(swM44, swLast) {
				wantPages[br] = []int{0}
			}
			wantPages[BucketRange{Hour: swM45 / 60, Part: part, From: 44, To: int(swLast % 60)}] = tt.wantPages
			if diff := cmp.Diff(wantPages, store.pages); diff != "" {
				t.Errorf("bucket pages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBatches, q.callSizes()); diff != "" {
				t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantSent, q.acceptedSorted(), swIgnoreSentAt); diff != "" {
				t.Errorf("messages enqueued (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLinks, store.linkCallSizes()); diff != "" {
				t.Errorf("PutLinks sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantLinks, store.linksWritten()); diff != "" {
				t.Errorf("links written (-want +got):\n%s", diff)
			}
			for _, l := range wantLinks {
				prev := l.occurrence().Add(-time.Hour)
				if got := store.linkInstants()[l.TimerID]; !cmp.Equal([]time.Time{prev, l.occurrence()}, got) {
					t.Errorf("%s has links at %v, want the one read and the next", l.TimerID, got)
				}
			}
			if diff := cmp.Diff([]swRelease{{"ev-1", swLast + 1, true, true}}, store.releaseLog()); diff != "" {
				t.Errorf("releases (-want +got):\n%s", diff)
			}
			if st := store.state(); st.Through != swLast+1 || st.LastEventID != "ev-1" || st.Owner != "" {
				t.Errorf("sweep state after the sweep: %+v", st)
			}
		})
	}
}

// ---------------------------------------------------------------- 2. buckets and partitions

// TestSweepBucketsAndPartitions sweeps entries spread over every partition
// of the two minutes a first sweep reads, each partition read in several
// pages, next to entries of the minutes before and after, an entry stored
// under the wrong minute and one that is its writer's to send: exactly the
// entries of the minutes read that are the sweeper's are sent, each
// partition of each minute is read once, and nothing else is.
func TestSweepBucketsAndPartitions(t *testing.T) {
	t.Parallel()
	store := newSwStore(2)
	var want []swOcc
	for part := range dueParts {
		n := part%3 + 2
		for i, id := range swIDsInPart(fmt.Sprintf("p%02d-", part), part, n+4) {
			tm := swHourly(id, 0)
			switch {
			case i < n: // due: 10:44:00 to 10:45:59
				at := swAt(10, 44+i%2, (i*17+part)%60)
				tm.ScheduleExpr, tm.Anchor = "rate(1 hour)", at
				store.addTimer(tm, at, at.Add(-time.Hour))
				want = append(want, swOcc{id, at})
			case i == n: // the minute after the last read: not read
				next := swMinuteTime(swLast + 1)
				tm.MinuteOfHour = next.Minute()
				store.addTimer(tm, next, next.Add(-time.Hour))
			case i == n+1: // the minute before: a first sweep starts at the current minute
				tm.MinuteOfHour = 43
				store.addTimer(tm, swAt(10, 43, 0), swAt(9, 43, 0))
			case i == n+2: // 10:50's entry stored under 10:45: a stray, skipped
				tm.MinuteOfHour = 50
				store.mu.Lock()
				store.putRaw(swM45, swLinked(tm, swAt(10, 50, 0)))
				store.mu.Unlock()
			default: // written shortNotice before its occurrence: its writer sent it
				tm.MinuteOfHour = 45
				store.addTimer(tm, swAt(10, 45, 0), swAt(10, 45, 0).Add(-shortNotice))
			}
		}
	}
	swSortOccs(want)
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	q.check(t)
	if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: len(want), Enqueued: len(want)}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(swRanges(swM44, swLast), store.bucketCallsSorted()); diff != "" {
		t.Errorf("buckets read (-want +got):\n%s", diff)
	}
	if got := store.pages[swRangeOf(swM44, swLast, swM45, swIDsInPart("p04-", 4, 1)[0])]; len(got) < 2 {
		t.Errorf("partition 4 read in pages %v, want several", got)
	}
	if diff := cmp.Diff(want, q.acceptedOccs()); diff != "" {
		t.Errorf("occurrences enqueued (-want +got):\n%s", diff)
	}
	var linked []swOcc
	for _, l := range store.linksWritten() {
		linked = append(linked, swOcc{l.TimerID, l.occurrence().Add(-time.Hour)})
	}
	if diff := cmp.Diff(want, linked); diff != "" {
		t.Errorf("timers linked on, by the occurrence sent (-want +got):\n%s", diff)
	}
	if st := store.state(); st.Through != swLast+1 {
		t.Errorf("through = %d, want %d", st.Through, swLast+1)
	}
}

// TestSweepFirstSweep: a first sweep (through 0) reads from the current
// minute, not from the beginning of time; the next one reads from where
// it stopped.
func TestSweepFirstSweep(t *testing.T) {
	t.Parallel()
	store := newSwStore(10)
	store.addTimer(swHourly("old", 30), swAt(10, 30, 0), swAt(9, 30, 0))
	store.addTimer(swHourly("now", 44), swAt(10, 44, 0), swAt(9, 44, 0))
	next := swMinuteTime(swLast + 1)
	store.addTimer(swHourly("next", next.Minute()), next, next.Add(-time.Hour))
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("first sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 1, Enqueued: 1}, res); diff != "" {
		t.Errorf("first sweep (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(swRanges(swM44, swLast), store.bucketCallsSorted()); diff != "" {
		t.Errorf("buckets of the first sweep (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]swLeaseCall{{"ev-1", true, 0}}, store.leaseCalls); diff != "" {
		t.Errorf("lease (-want +got):\n%s", diff)
	}
	store.bucketCalls = nil
	res, err = newSwSweeper(store, q, swNow.Add(time.Minute)).Sweep(t.Context(), "ev-2")
	if err != nil {
		t.Fatalf("second sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: 1, Due: 1, Enqueued: 1}, res); diff != "" {
		t.Errorf("second sweep (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(swRanges(swLast+1, swLast+1), store.bucketCallsSorted()); diff != "" {
		t.Errorf("buckets of the second sweep (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"next", "now"}, q.acceptedIDs()); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
}

// TestSweepMaxBacklog: after a long outage a sweep reads no further back
// than MaxBacklog (by default as long as a link is kept, linkTTL, so that
// no timer is stranded by an outage: an older link is gone anyway): an
// entry older than that is not read, one within it is, and is sent late.
func TestSweepMaxBacklog(t *testing.T) {
	t.Parallel()
	if d := NewSweeper(nil, nil, "").MaxBacklog; d < linkTTL {
		t.Errorf("default MaxBacklog %v: a sweep after a longer outage would leave the links before it unread, their timers stopped", d)
	}
	store := newSwStore(10)
	store.setThrough(swMinute(swNow.Add(-3 * time.Hour)))
	ancient := swHourly("ancient", 44)
	ancient.CatchUpSeconds = MaxCatchUpSeconds
	store.addTimer(ancient, swAt(8, 44, 0), swAt(7, 44, 0))
	recent := swHourly("recent", 25)
	store.addTimer(recent, swAt(10, 25, 0), swAt(9, 25, 0))
	q := &swQueue{}
	sw := newSwSweeper(store, q, swNow)
	sw.MaxBacklog = 30 * time.Minute
	var logs syncBuffer
	sw.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	res, err := sw.Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	// Someone has to know: the links of the gap's start may be gone.
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"sweep gap longer than links are kept; linked timers may need a PUT"`) {
		t.Errorf("no error logged for a gap beyond MaxBacklog:\n%s", logs.String())
	}
	from := swMinute(swNow.Add(-30 * time.Minute)) // 10:14
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - from + 1), Due: 1, Enqueued: 1}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(swRanges(from, swLast), store.bucketCallsSorted()); diff != "" {
		t.Errorf("buckets read (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]swSent{{Msg: swMsg(swLinked(recent, swAt(10, 25, 0)), swAt(10, 25, 0), swAt(11, 25, 0), false), Delay: 0}},
		q.acceptedSorted(), swIgnoreSentAt); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	if st := store.state(); st.Through != swLast+1 {
		t.Errorf("through = %d, want %d", st.Through, swLast+1)
	}
}

// ---------------------------------------------------------------- 3. overlapping sweeps

type swSweepKey struct{}

// TestSweepOverlappingSweeps runs two sweeps at once on one store: the
// second finds the sweep leased and does nothing; every occurrence is
// enqueued once in total.
func TestSweepOverlappingSweeps(t *testing.T) {
	t.Parallel()
	mkEntries := func(store *swStore, n int) []swOcc {
		var occs []swOcc
		for i := range n {
			id := fmt.Sprintf("t%03d", i)
			at := swAt(10, 44+i%2, 0)
			store.addTimer(swHourly(id, at.Minute()), at, at.Add(-time.Hour))
			occs = append(occs, swOcc{id, at})
		}
		swSortOccs(occs)
		return occs
	}

	t.Run("the second sweep is skipped while the first holds the lease", func(t *testing.T) {
		t.Parallel()
		store := newSwStore(5)
		want := mkEntries(store, 60)
		gate := make(chan struct{})
		var openGate sync.Once
		t.Cleanup(func() { openGate.Do(func() { close(gate) }) })
		firstSend := make(chan struct{})
		var firstOnce sync.Once
		// The first sweep's sends wait until the second sweep is over.
		q := &swQueue{before: func(ctx context.Context, call int, _ []FireMessage) error {
			if ctx.Value(swSweepKey{}) != 1 {
				return nil
			}
			firstOnce.Do(func() { close(firstSend) })
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		var (
			mu       sync.Mutex
			bySecond int // Bucket calls made by the second sweep
		)
		store.onBucket = func(ctx context.Context, _ BucketRange) {
			if ctx.Value(swSweepKey{}) == 2 {
				mu.Lock()
				bySecond++
				mu.Unlock()
			}
		}
		var (
			res1 SweepResult
			err1 error
			done = make(chan struct{})
		)
		go func() {
			defer close(done)
			res1, err1 = newSwSweeper(store, q, swNow).Sweep(context.WithValue(t.Context(), swSweepKey{}, 1), "ev-1")
		}()
		select {
		case <-firstSend:
		case <-time.After(30 * time.Second): // a guard against hanging, not a timing assertion
			t.Fatal("the first sweep never sent")
		}
		res2, err2 := newSwSweeper(store, q, swNow.Add(10*time.Second)).Sweep(context.WithValue(t.Context(), swSweepKey{}, 2), "ev-2")
		if err2 != nil {
			t.Errorf("second sweep: %v", err2)
		}
		if diff := cmp.Diff(SweepResult{Skipped: 1}, res2); diff != "" {
			t.Errorf("second sweep's result (-want +got):\n%s", diff)
		}
		if n := q.acceptedCount(); n != 0 {
			t.Errorf("%d messages accepted while the first sweep was held, want 0", n)
		}
		openGate.Do(func() { close(gate) })
		<-done
		if err1 != nil {
			t.Errorf("first sweep: %v", err1)
		}
		if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 60, Enqueued: 60}, res1); diff != "" {
			t.Errorf("first sweep's result (-want +got):\n%s", diff)
		}
		q.check(t)
		if diff := cmp.Diff(want, q.acceptedOccs()); diff != "" {
			t.Errorf("occurrences enqueued in total (-want +got):\n%s", diff)
		}
		if bySecond != 0 {
			t.Errorf("the second sweep read %d buckets, want none", bySecond)
		}
		if diff := cmp.Diff([]swLeaseCall{{"ev-1", true, 0}, {"ev-2", false, 0}}, store.leaseCalls); diff != "" {
			t.Errorf("leases (-want +got):\n%s", diff)
		}
		// The skipped sweep releases nothing: the lease is not its own.
		if diff := cmp.Diff([]swRelease{{"ev-1", swLast + 1, true, true}}, store.releaseLog()); diff != "" {
			t.Errorf("releases (-want +got):\n%s", diff)
		}
	})

	t.Run("racing sweeps", func(t *testing.T) {
		t.Parallel()
		for round := range 25 {
			store := newSwStore(4)
			want := mkEntries(store, 120)
			q := &swQueue{}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				res   [2]SweepResult
				errs  [2]error
			)
			for k := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sw := newSwSweeper(store, q, swNow.Add(time.Duration(k)*time.Second))
					sw.Workers = 2
					<-start
					res[k], errs[k] = sw.Sweep(t.Context(), fmt.Sprintf("ev-%d-%d", round, k))
				}()
			}
			close(start)
			wg.Wait()
			for k := range 2 {
				if errs[k] != nil {
					t.Fatalf("round %d sweep %d: %v", round, k, errs[k])
				}
				if res[k].Failed != 0 || res[k].Missed != 0 {
					t.Fatalf("round %d sweep %d: %+v", round, k, res[k])
				}
			}
			if got := res[0].Enqueued + res[1].Enqueued; got != len(want) {
				t.Errorf("round %d: enqueued %d+%d, want %d in total", round, res[0].Enqueued, res[1].Enqueued, len(want))
			}
			// Either one was skipped, or the later found nothing left to read.
			if res[0].Skipped+res[1].Skipped != 1 && res[0].Minutes+res[1].Minutes != swFirstMinutes {
				t.Errorf("round %d: %+v: both read minutes", round, res)
			}
			if diff := cmp.Diff(want, q.acceptedOccs()); diff != "" {
				t.Fatalf("round %d: occurrences enqueued (-want +got):\n%s", round, diff)
			}
			if st := store.state(); st.Through < swLast+1 || st.Owner != "" {
				t.Fatalf("round %d: sweep state %+v", round, st)
			}
		}
	})
}

// ---------------------------------------------------------------- 4. an event delivered twice

// TestSweepSameEventTwice delivers one scheduled event twice: the repeat
// reads and sends nothing, even though a minute more has come within the
// look-ahead; the next event sweeps it.
func TestSweepSameEventTwice(t *testing.T) {
	t.Parallel()
	store := newSwStore(4)
	for i := range 6 {
		store.addTimer(swHourly(fmt.Sprintf("a%d", i), 45), swAt(10, 45, 0), swAt(9, 45, 0))
	}
	next := swMinuteTime(swLast + 1) // within the look-ahead a minute later
	store.addTimer(swHourly("late0", next.Minute()), next, next.Add(-time.Hour))
	store.addTimer(swHourly("late1", next.Minute()), next, next.Add(-time.Hour))
	q := &swQueue{}

	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 6, Enqueued: 6}, res); diff != "" {
		t.Errorf("first delivery (-want +got):\n%s", diff)
	}
	calls, buckets := q.callCount(), len(store.bucketCalls)

	later := swNow.Add(time.Minute)
	res, err = newSwSweeper(store, q, later).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Errorf("repeated delivery: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Skipped: 1}, res); diff != "" {
		t.Errorf("repeated delivery (-want +got):\n%s", diff)
	}
	if q.callCount() != calls || len(store.bucketCalls) != buckets {
		t.Errorf("the repeated delivery read or sent: %d SQS calls, %d Bucket calls after %d, %d",
			q.callCount(), len(store.bucketCalls), calls, buckets)
	}

	res, err = newSwSweeper(store, q, later).Sweep(t.Context(), "ev-2")
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: 1, Due: 2, Enqueued: 2}, res); diff != "" {
		t.Errorf("next event (-want +got):\n%s", diff)
	}
	want := []string{"a0", "a1", "a2", "a3", "a4", "a5", "late0", "late1"}
	if diff := cmp.Diff(want, q.acceptedIDs()); diff != "" {
		t.Errorf("timers enqueued (-want +got):\n%s", diff)
	}
	if st := store.state(); st.LastEventID != "ev-2" || st.Through != swLast+2 {
		t.Errorf("sweep state %+v, want ev-2 through %d", st, swLast+2)
	}
}

// TestSweepLeaseOfDeadSweep: a sweep that died holding the lease keeps it
// until it expires; the sweep after that reads from where the last
// completed one stopped. A sweep that outlives its lease is fenced: its
// release changes nothing once another sweep took the lease over.
func TestSweepLeaseOfDeadSweep(t *testing.T) {
	t.Parallel()
	t.Run("an expired lease is taken over", func(t *testing.T) {
		t.Parallel()
		store := newSwStore(10)
		store.setThrough(swM44)
		store.addTimer(swHourly("s0", 45), swAt(10, 45, 0), swAt(9, 45, 0))
		s1At := swMinuteTime(swLastRead(swNow.Add(61 * time.Second))) // read only after the lease expired
		store.addTimer(swHourly("s1", s1At.Minute()), s1At, s1At.Add(-time.Hour))
		// The dead sweep leased it 30 s ago for 90 s.
		if _, ok, _ := store.LeaseSweep(t.Context(), "dead", "ev-0", swNow.Add(-30*time.Second), 90*time.Second); !ok {
			t.Fatal("setup: lease refused")
		}
		q := &swQueue{}
		res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if diff := cmp.Diff(SweepResult{Skipped: 1}, res); diff != "" {
			t.Errorf("sweep while the lease is held (-want +got):\n%s", diff)
		}
		// 61 s later the dead sweep's lease has expired.
		res, err = newSwSweeper(store, q, swNow.Add(61*time.Second)).Sweep(t.Context(), "ev-1")
		if err != nil {
			t.Fatalf("Sweep: %v", err)
		}
		if diff := cmp.Diff(SweepResult{Minutes: int(swLastRead(swNow.Add(61*time.Second)) - swM44 + 1), Due: 2, Enqueued: 2}, res); diff != "" {
			t.Errorf("sweep after the lease expired (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]swOcc{{"s0", swAt(10, 45, 0)}, {"s1", s1At}}, q.acceptedOccs()); diff != "" {
			t.Errorf("enqueued (-want +got):\n%s", diff)
		}
	})

	t.Run("a sweep that outlived its lease is fenced", func(t *testing.T) {
		t.Parallel()
		store := newSwStore(10)
		store.addTimer(swHourly("a", 45), swAt(10, 45, 0), swAt(9, 45, 0))
		bAt := swMinuteTime(swLast + 1) // beyond the first sweep, read by the second
		store.addTimer(swHourly("b", bAt.Minute()), bAt, bAt.Add(-time.Hour))
		clock := newSwClock(swNow)
		q := &swQueue{now: clock.Now}
		var (
			once   sync.Once
			res2   SweepResult
			err2   error
			second = newSwSweeper(store, q, swNow)
		)
		second.Now = clock.Now
		// The first sweep stalls for 100 s before its first send, beyond
		// its 90 s lease; meanwhile the next sweep runs.
		q.before = func(ctx context.Context, _ int, _ []FireMessage) error {
			if ctx.Value(swSweepKey{}) == 1 {
				once.Do(func() {
					clock.Advance(100 * time.Second)
					res2, err2 = second.Sweep(t.Context(), "ev-2")
				})
			}
			return nil
		}
		first := newSwSweeper(store, q, swNow)
		first.Now = clock.Now
		res1, err1 := first.Sweep(context.WithValue(t.Context(), swSweepKey{}, 1), "ev-1")
		if err1 != nil || err2 != nil {
			t.Fatalf("sweeps: %v, %v", err1, err2)
		}
		if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 1, Enqueued: 1}, res1); diff != "" {
			t.Errorf("first sweep (-want +got):\n%s", diff)
		}
		// The second had no through to start from: it read from its minute.
		secondAt := swNow.Add(100 * time.Second)
		secondLast := swLastRead(secondAt)
		if diff := cmp.Diff(SweepResult{Minutes: int(secondLast - swMinute(secondAt) + 1), Due: 1, Enqueued: 1}, res2); diff != "" {
			t.Errorf("second sweep (-want +got):\n%s", diff)
		}
		wantRel := []swRelease{{"ev-2", secondLast + 1, true, true}, {"ev-1", swLast + 1, true, false}}
		if diff := cmp.Diff(wantRel, store.releaseLog()); diff != "" {
			t.Errorf("releases (-want +got):\n%s", diff)
		}
		if st := store.state(); st.Through != secondLast+1 || st.LastEventID != "ev-2" {
			t.Errorf("sweep state %+v: the fenced release changed it", st)
		}
		if diff := cmp.Diff([]swOcc{{"a", swAt(10, 45, 0)}, {"b", bAt}}, q.acceptedOccs()); diff != "" {
			t.Errorf("enqueued (-want +got):\n%s", diff)
		}
	})
}

// ---------------------------------------------------------------- 5. a sweep that dies half way

// TestSweepDiesHalfWay: a sweep that fails part of a minute (SQS failing
// the batches of some entries, or a bucket's page failing to read) sends
// what it can, releases through that minute, not completed, and the next
// sweep (the same event retried, or the next one) reads that minute again
// and sends everything in it. Nothing is lost. The only duplicates are
// the occurrences of that minute the failed sweep had sent already: the
// next sweep cannot know them, and the invoker's claim drops the copies.
// A minute before the failed one is not read again.
func TestSweepDiesHalfWay(t *testing.T) {
	t.Parallel()
	errSQS := errors.New("sqs unavailable")
	errDB := errors.New("dynamodb unavailable")
	for _, kind := range []string{"send", "read"} {
		for _, retry := range []string{"ev-1", "ev-2"} {
			t.Run(kind+" fails, then "+retry, func(t *testing.T) {
				t.Parallel()
				store := newSwStore(30)
				const part = 3
				// 30 entries at 10:44, 120 at 10:45, all in one partition, so
				// one query, in minute then id order: chunks of 50 are 10:44's
				// 30 and 10:45's ids 0-19, then 20-69, then 70-119.
				ids44 := swIDsInPart("a", part, 30)
				ids45 := swIDsInPart("b", part, 120)
				var all []swOcc
				for _, id := range ids44 {
					store.addTimer(swHourly(id, 44), swAt(10, 44, 0), swAt(9, 44, 0))
					all = append(all, swOcc{id, swAt(10, 44, 0)})
				}
				for _, id := range ids45 {
					store.addTimer(swHourly(id, 45), swAt(10, 45, 0), swAt(9, 45, 0))
					all = append(all, swOcc{id, swAt(10, 45, 0)})
				}
				var (
					mu      sync.Mutex
					healthy bool
					firstOK []string // of 10:45, what the failed sweep sends
				)
				q := &swQueue{}
				switch kind {
				case "send":
					// Every batch holding one of 10:45's ids from 40 on fails,
					// on every try: 40 of 120 are sent.
					failing := map[string]bool{}
					for _, id := range ids45[40:] {
						failing[id] = true
					}
					firstOK = ids45[:40]
					q.before = func(_ context.Context, _ int, msgs []FireMessage) error {
						mu.Lock()
						defer mu.Unlock()
						if !healthy && failing[msgs[0].TimerID] {
							return errSQS
						}
						return nil
					}
				case "read":
					// The third page of the partition fails: 10:44's 30 and
					// 10:45's first 30 are read and sent.
					firstOK = ids45[:30]
					store.bucketErr = func(br BucketRange, n int) error {
						if !healthy && br.Part == part && n == 2 {
							return errDB
						}
						return nil
					}
				}
				sw := newSwSweeper(store, q, swNow)
				sw.MaxAttempts = 2
				res, err := sw.Sweep(t.Context(), "ev-1")
				wantErr := map[string]error{"send": errSQS, "read": errDB}[kind]
				if !errors.Is(err, wantErr) {
					t.Errorf("Sweep error = %v, want one wrapping %v", err, wantErr)
				}
				q.check(t)
				wantRes := SweepResult{Minutes: swFirstMinutes, Due: 150, Enqueued: 70, Failed: 80}
				if kind == "read" {
					wantRes = SweepResult{Minutes: swFirstMinutes, Due: 60, Enqueued: 60}
				}
				if diff := cmp.Diff(wantRes, res); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				var want1 []swOcc
				for _, id := range ids44 {
					want1 = append(want1, swOcc{id, swAt(10, 44, 0)})
				}
				for _, id := range firstOK {
					want1 = append(want1, swOcc{id, swAt(10, 45, 0)})
				}
				swSortOccs(want1)
				if diff := cmp.Diff(want1, q.acceptedOccs()); diff != "" {
					t.Errorf("occurrences enqueued by the failed sweep (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]swRelease{{"ev-1", swM45, false, true}}, store.releaseLog()); diff != "" {
					t.Errorf("release (-want +got):\n%s", diff)
				}
				if st := store.state(); st.Through != swM45 || st.LastEventID != "" || st.Owner != "" {
					t.Errorf("sweep state after the failed sweep: %+v", st)
				}

				mu.Lock()
				healthy = true
				mu.Unlock()
				store.mu.Lock()
				store.bucketCalls = nil
				store.mu.Unlock()
				res, err = newSwSweeper(store, q, swNow.Add(20*time.Second)).Sweep(t.Context(), retry)
				if err != nil {
					t.Fatalf("second sweep: %v", err)
				}
				retryLast := swLastRead(swNow.Add(20 * time.Second))
				if diff := cmp.Diff(SweepResult{Minutes: int(retryLast - swM45 + 1), Due: 120, Enqueued: 120}, res); diff != "" {
					t.Errorf("second sweep's result (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(swRanges(swM45, retryLast), store.bucketCallsSorted()); diff != "" {
					t.Errorf("buckets read by the second sweep (-want +got):\n%s", diff)
				}
				// Every occurrence once, but those of 10:45 the failed sweep sent.
				wantAll := slices.Clone(all)
				for _, id := range firstOK {
					wantAll = append(wantAll, swOcc{id, swAt(10, 45, 0)})
				}
				swSortOccs(wantAll)
				if diff := cmp.Diff(wantAll, q.acceptedOccs()); diff != "" {
					t.Errorf("occurrences enqueued over both sweeps (-want +got):\n%s", diff)
				}
				// A link written twice is one item: each timer has one next link.
				for _, o := range all {
					if got := store.linkInstants()[o.TimerID]; !cmp.Equal([]time.Time{o.ScheduledAt, o.ScheduledAt.Add(time.Hour)}, got) {
						t.Errorf("%s has links %v, want %v and the next", o.TimerID, got, o.ScheduledAt)
						break
					}
				}
				if st := store.state(); st.Through != retryLast+1 || st.LastEventID != retry {
					t.Errorf("sweep state after the second sweep: %+v", st)
				}
			})
		}
	}
}

// TestSweepLinksBeforeSending: a timer's next link is written before any
// message of its chunk is sent, so that a sweep dying after a send never
// leaves a timer without a link; when PutLinks fails, nothing of that
// chunk is sent, its minute is left to the next sweep, and the other
// chunks go on.
func TestSweepLinksBeforeSending(t *testing.T) {
	t.Parallel()
	errDB := errors.New("throttled")
	store := newSwStore(1000)
	store.trace = &swTrace{}
	const part = 9
	ids := swIDsInPart("c", part, 120) // chunks: 0-49, 50-99, 100-119
	for _, id := range ids {
		store.addTimer(swHourly(id, 45), swAt(10, 45, 0), swAt(9, 45, 0))
	}
	var healthy bool
	store.putLinksErr = func(links []DueEntry) error {
		if !healthy && slices.ContainsFunc(links, func(e DueEntry) bool { return e.TimerID == ids[77] }) {
			return errDB
		}
		return nil
	}
	q := &swQueue{trace: store.trace}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if !errors.Is(err, errDB) {
		t.Errorf("Sweep error = %v, want one wrapping %v", err, errDB)
	}
	if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 120, Enqueued: 70, Failed: 50}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	want := slices.Concat(ids[:50], ids[100:])
	slices.Sort(want)
	if diff := cmp.Diff(want, q.acceptedIDs()); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	// Every message after its timer's link.
	linked := map[string]bool{}
	for _, op := range store.trace.list() {
		kind, id, _ := strings.Cut(op, " ")
		switch {
		case kind == "link":
			linked[id] = true
		case !linked[id]:
			t.Errorf("%s was sent before its next link was written", id)
		}
	}
	for _, id := range ids[50:100] {
		if got := store.linkInstants()[id]; len(got) != 1 {
			t.Errorf("%s has links %v after its chunk's PutLinks failed, want only the one read", id, got)
		}
	}
	if st := store.state(); st.Through != swM45 {
		t.Errorf("through = %d, want 10:45's %d", st.Through, swM45)
	}
	healthy = true
	res, err = newSwSweeper(store, q, swNow.Add(10*time.Second)).Sweep(t.Context(), "ev-1")
	if err != nil || res.Enqueued != 120 {
		t.Errorf("the next sweep: %+v, %v; want 10:45 sent again", res, err)
	}
	got := map[string]int{}
	for _, id := range q.acceptedIDs() {
		got[id]++
	}
	for _, id := range ids {
		if n, want := got[id], map[bool]int{true: 1, false: 2}[slices.Contains(ids[50:100], id)]; n != want {
			t.Errorf("%s sent %d times over both sweeps, want %d", id, n, want)
		}
	}
}

// ---------------------------------------------------------------- 6. SQS entry failures

// TestSweepRetriesSQSFailures: entries SQS fails for its own reasons (or
// does not answer) are sent again until MaxAttempts; entries it refuses as
// the sender's fault are given up at once. What is given up is Failed and
// holds the next sweep back to its minute.
func TestSweepRetriesSQSFailures(t *testing.T) {
	t.Parallel()
	errCall := errors.New("connection reset")
	ids := swIDsInPart("t", 0, 12) // one chunk: batches ids[0:10] and ids[10:12]
	in := func(id string, idx ...int) bool {
		return slices.ContainsFunc(idx, func(i int) bool { return ids[i] == id })
	}
	tests := []struct {
		name string
		fate func(m FireMessage, attempt int) swFate
		// failCall fails a whole call, given its entries and how often
		// each was received before.
		failCall func(msgs []FireMessage, attempts map[string]int) bool
		// wantCalls are the entries of each call, sorted.
		wantCalls []int
		// wantAttempts are the receipts per entry index, where not 1.
		wantAttempts map[int]int
		wantFailed   []int
		wantErr      error
	}{
		{
			name: "transient failures are retried",
			fate: func(m FireMessage, attempt int) swFate {
				if attempt == 0 && in(m.TimerID, 1, 5, 10) {
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 2, 2, 10},
			wantAttempts: map[int]int{1: 2, 5: 2, 10: 2},
		},
		{
			name: "an unanswered entry is retried",
			fate: func(m FireMessage, attempt int) swFate {
				if attempt == 0 && in(m.TimerID, 4) {
					return swNoAnswer
				}
				return swAccept
			},
			wantCalls:    []int{1, 2, 10},
			wantAttempts: map[int]int{4: 2},
		},
		{
			name: "a failed call is retried",
			failCall: func(msgs []FireMessage, attempts map[string]int) bool {
				return msgs[0].TimerID == ids[0] && attempts[ids[0]] == 0
			},
			wantCalls:    []int{2, 10, 10},
			wantAttempts: map[int]int{0: 2, 1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2},
		},
		{
			name: "sender faults are not retried",
			fate: func(m FireMessage, attempt int) swFate {
				if in(m.TimerID, 3, 11) {
					return swSenderFault
				}
				return swAccept
			},
			wantCalls:  []int{2, 10},
			wantFailed: []int{3, 11},
		},
		{
			name: "transient failures and a sender fault in one batch",
			fate: func(m FireMessage, attempt int) swFate {
				switch {
				case in(m.TimerID, 2):
					return swSenderFault
				case attempt < 2 && in(m.TimerID, 6):
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 1, 2, 10},
			wantAttempts: map[int]int{6: 3},
			wantFailed:   []int{2},
		},
		{
			name: "a transient failure on every attempt gives up after MaxAttempts",
			fate: func(m FireMessage, attempt int) swFate {
				if in(m.TimerID, 7) {
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 1, 2, 10},
			wantAttempts: map[int]int{7: 3},
			wantFailed:   []int{7},
		},
		{
			name: "a call failing on every attempt gives up after MaxAttempts",
			failCall: func(msgs []FireMessage, _ map[string]int) bool {
				return msgs[0].TimerID == ids[10] || msgs[0].TimerID == ids[11]
			},
			wantCalls:    []int{2, 2, 2, 10},
			wantAttempts: map[int]int{10: 3, 11: 3},
			wantFailed:   []int{10, 11},
			wantErr:      errCall,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newSwStore(100)
			for _, id := range ids {
				store.addTimer(swHourly(id, 45), swAt(10, 45, 0), swAt(9, 45, 0))
			}
			q := &swQueue{fate: tt.fate}
			var (
				mu   sync.Mutex
				seen = map[string]int{} // receipts per timer before this call
			)
			q.before = func(_ context.Context, _ int, msgs []FireMessage) error {
				mu.Lock()
				defer mu.Unlock()
				fail := tt.failCall != nil && tt.failCall(msgs, seen)
				for _, m := range msgs {
					seen[m.TimerID]++
				}
				if fail {
					return errCall
				}
				return nil
			}
			res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
			q.check(t)
			if diff := cmp.Diff(tt.wantCalls, q.callSizes()); diff != "" {
				t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
			}
			wantAttempts := map[swOcc]int{}
			var wantIDs []string
			for i, id := range ids {
				n := 1
				if a, ok := tt.wantAttempts[i]; ok {
					n = a
				}
				wantAttempts[swOcc{id, swAt(10, 45, 0)}] = n
				if !slices.Contains(tt.wantFailed, i) {
					wantIDs = append(wantIDs, id)
				}
			}
			if diff := cmp.Diff(wantAttempts, q.attempts); diff != "" {
				t.Errorf("sends per occurrence (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantIDs, q.acceptedIDs()); diff != "" {
				t.Errorf("timers enqueued (-want +got):\n%s", diff)
			}
			nf := len(tt.wantFailed)
			if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 12, Enqueued: 12 - nf, Failed: nf}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			switch {
			case nf == 0 && err != nil:
				t.Errorf("Sweep: %v, want no error once the retries succeeded", err)
			case nf > 0 && err == nil:
				t.Error("Sweep succeeded, want an error for the failed entries")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Sweep error = %v, want one wrapping %v", err, tt.wantErr)
			}
			through := swLast + 1
			if nf > 0 {
				through = swM45
			}
			if diff := cmp.Diff([]swRelease{{"ev-1", through, nf == 0, true}}, store.releaseLog()); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
			// Every timer was linked on before its batch went out, failed or not.
			if got := len(store.linksWritten()); got != 12 {
				t.Errorf("%d links written, want 12", got)
			}
		})
	}
}

// ---------------------------------------------------------------- 7. a gap and the catch-up window

// swRun drives sweeps at the given instants on one store and queue, with
// the clock at each instant, and fails t on any error or skipped sweep.
func swRun(t *testing.T, store *swStore, q *swQueue, clock *swClock, at ...time.Time) []SweepResult {
	t.Helper()
	sw := newSwSweeper(store, q, time.Time{})
	sw.Now = clock.Now
	var out []SweepResult
	for k, now := range at {
		clock.Set(now)
		res, err := sw.Sweep(t.Context(), fmt.Sprintf("ev-%s", now.Format("150405")))
		if err != nil || res.Failed+res.Skipped > 0 {
			t.Fatalf("sweep %d at %v: %+v, %v", k, now.Format(time.TimeOnly), res, err)
		}
		out = append(out, res)
	}
	return out
}

// swEvery returns the instants from first to last, step apart.
func swEvery(first, last time.Time, step time.Duration) []time.Time {
	var out []time.Time
	for at := first; !at.After(last); at = at.Add(step) {
		out = append(out, at)
	}
	return out
}

// swOccurrences returns t's occurrences after from up to until, inclusive.
func swOccurrences(tb testing.TB, t *Timer, from, until time.Time) []time.Time {
	tb.Helper()
	sched, err := t.Schedule(loadZone)
	if err != nil {
		tb.Fatal(err)
	}
	var out []time.Time
	for at := from; ; {
		next, ok := sched.Next(at)
		if !ok || next.After(until) {
			return out
		}
		out = append(out, next.UTC())
		at = next
	}
}

// swOnTime reports a message that does not become visible within the
// second before its instant (SentAt + DelaySeconds).
func swOnTime(s swSent) error {
	at := s.Msg.ScheduledAt
	if visible := s.SentAt.Add(time.Duration(s.Delay) * time.Second); visible.After(at) || !visible.After(at.Add(-time.Second)) {
		return fmt.Errorf("%s@%s sent at %s with DelaySeconds %d: visible at %s", s.Msg.TimerID, at.Format(time.TimeOnly),
			s.SentAt.Format(time.TimeOnly), s.Delay, visible.Format(time.TimeOnly))
	}
	return nil
}

// TestSweepAfterGap: sweeps run every minute, stop for ten minutes, then
// resume. Within its catch-up window each timer fires once late, for the
// first occurrence the gap held back, at once (DelaySeconds 0), and then
// on time: not once for every occurrence it missed. Beyond its window
// the occurrence is recorded missed (Store.Missed, with the right next
// link) and not sent; the timer goes on on time.
func TestSweepAfterGap(t *testing.T) {
	t.Parallel()
	created := swAt(10, 20, 0)
	lastBefore, resume := swAt(10, 33, 30), swAt(10, 44, 30)
	end := swAt(10, 55, 30)
	window := func(tm *Timer, s int) *Timer { tm.CatchUpSeconds = s; return tm }
	deleteAfter := func(tm *Timer) *Timer { tm.DeleteAfterCompletion = true; return tm }
	rate5 := swTimerOf("rate-5m", "rate(5 minutes)", "")
	rate5.Anchor = swAt(10, 2, 0)
	// Rates that do not divide a week are linked (PlanDue), the others
	// slotted: the gap is run through both.
	rate11 := swTimerOf("rate-11m", "rate(11 minutes)", "")
	rate11.Anchor = swAt(10, 3, 0)
	rate13 := window(swTimerOf("rate-13m-window-60", "rate(13 minutes)", ""), 60)
	rate13.Anchor = swAt(10, 0, 0)
	tests := []struct {
		timer  *Timer
		missed bool
	}{
		{rate11, false},
		{rate13, true},
		// Every minute of 10:xx on the 22nd of each month: not weekly, linked.
		{swTimerOf("monthly-minutely", "cron(* 10 22 * ? *)", ""), false},
		{swTimerOf("minutely", "cron(* * * * ? *)", ""), false},
		{rate5, false},
		{swHourly("hourly-40", 40), false},
		{swTimerOf("five-kolkata", "cron(0/5 * * * ? *)", "Asia/Kolkata"), false},
		{deleteAfter(swTimerOf("once-kept", "at(2026-11-22T10:39:00)", "")), false},
		{window(swTimerOf("minutely-window-60", "cron(* * * * ? *)", ""), 60), true},
		{window(swHourly("hourly-40-window-60", 40), 60), true},
		{window(deleteAfter(swTimerOf("once-missed", "at(2026-11-22T10:38:00)", "")), 60), true},
	}
	store := newSwStore(3)
	clock := newSwClock(created)
	q := &swQueue{now: clock.Now}
	api := map[string][]time.Time{}
	slotted := map[string]bool{}
	for _, tt := range tests {
		direct, slots := store.createHow(t, tt.timer, created)
		api[tt.timer.ID], slotted[tt.timer.ID] = direct, len(slots) > 0
	}
	for id, want := range map[string]bool{"minutely": true, "rate-5m": true, "hourly-40-window-60": true, "rate-11m": false, "rate-13m-window-60": false, "monthly-minutely": false} {
		if slotted[id] != want {
			t.Errorf("%s slotted %v, want %v: the test means to run both paths", id, slotted[id], want)
		}
	}
	swRun(t, store, q, clock, swEvery(created.Add(30*time.Second), lastBefore, time.Minute)...)
	before := q.acceptedCount()
	swRun(t, store, q, clock, swEvery(resume, end, time.Minute)...)
	q.check(t)

	sent := map[string][]swSent{}
	for _, s := range q.acceptedSorted() {
		sent[s.Msg.TimerID] = append(sent[s.Msg.TimerID], s)
	}
	atResume := map[swOcc]bool{}
	for _, s := range q.acceptedSince(before) {
		if s.SentAt.Equal(resume) {
			atResume[swOcc{s.Msg.TimerID, s.Msg.ScheduledAt}] = true
		}
	}
	var wantMissed []swMissedCall
	for _, tt := range tests {
		id := tt.timer.ID
		occ := swOccurrences(t, tt.timer, created.Add(-time.Nanosecond), end.Add(time.Minute))
		var pre, post []time.Time
		var late *swSent
		for _, at := range api[id] {
			pre = append(pre, at.UTC())
		}
		for _, s := range sent[id] {
			switch {
			case s.SentAt.Before(resume):
				pre = append(pre, s.Msg.ScheduledAt)
			case s.Msg.ScheduledAt.Before(resume):
				if late != nil {
					t.Errorf("%s: fired late for %v and %v: want once", id, late.Msg.ScheduledAt.Format(time.TimeOnly), s.Msg.ScheduledAt.Format(time.TimeOnly))
				}
				late = &s
			default:
				post = append(post, s.Msg.ScheduledAt)
				if err := swOnTime(s); err != nil {
					t.Errorf("after the gap: %v", err)
				}
			}
		}
		slices.SortFunc(pre, time.Time.Compare)
		// Before the gap: every occurrence from the first, none skipped, up
		// to at least the last sweep's.
		if n := len(pre); n > len(occ) || !slices.Equal(pre, occ[:n]) || (n < len(occ) && !occ[n].After(lastBefore)) {
			t.Errorf("%s: sent before the gap %v, want a prefix of %v covering %v", id, pre, occ, lastBefore.Format(time.TimeOnly))
			continue
		}
		held := occ[len(pre)] // the first occurrence the gap held back
		if !held.Before(resume) {
			t.Errorf("%s: no occurrence fell in the gap (first held back %v); the test needs one", id, held)
			continue
		}
		wantLate := !tt.missed
		switch {
		case wantLate && late == nil:
			t.Errorf("%s: %v never fired after the gap", id, held.Format(time.TimeOnly))
		case wantLate && (!late.Msg.ScheduledAt.Equal(held) || late.Delay != 0 || !late.SentAt.Equal(resume)):
			t.Errorf("%s: fired late %v sent at %v with delay %d; want %v at once on resuming", id,
				late.Msg.ScheduledAt.Format(time.TimeOnly), late.SentAt.Format(time.TimeOnly), late.Delay, held.Format(time.TimeOnly))
		case !wantLate && late != nil:
			t.Errorf("%s: %v fired %v late, beyond its %d s window", id, late.Msg.ScheduledAt.Format(time.TimeOnly),
				resume.Sub(late.Msg.ScheduledAt), tt.timer.CatchUpSeconds)
		}
		// After the gap: every occurrence from the resumed sweep's on, once.
		var wantPost []time.Time
		for _, at := range occ {
			if at.After(resume) && !at.After(end.Add(time.Minute)) {
				wantPost = append(wantPost, at)
			}
		}
		var gotPost []time.Time
		for _, at := range post {
			if !at.After(end.Add(time.Minute)) {
				gotPost = append(gotPost, at)
			}
		}
		if diff := cmp.Diff(wantPost, gotPost, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: occurrences after the gap (-want +got):\n%s", id, diff)
		}
		if tt.missed {
			mc := swMissedCall{ID: id, At: held, SweptAt: resume, Applied: true}
			left := swOccurrences(t, tt.timer, held, end.Add(24*time.Hour))
			if next := swOccurrences(t, tt.timer, resume.Add(shortNotice), end.Add(24*time.Hour)); len(next) > 0 && !slotted[id] {
				mc.Next = next[0] // a slotted timer needs no link
			}
			mc.Last = len(left) == 0
			mc.Deleted = mc.Last && tt.timer.DeleteAfterCompletion
			wantMissed = append(wantMissed, mc)
		}
		if late != nil && tt.timer.DeleteAfterCompletion && !late.Msg.Final {
			t.Errorf("%s: its last occurrence was not marked final", id)
		}
	}
	slices.SortFunc(wantMissed, func(a, b swMissedCall) int { return strings.Compare(a.ID, b.ID) })
	if diff := cmp.Diff(wantMissed, store.missedLog()); diff != "" {
		t.Errorf("Missed calls (-want +got):\n%s", diff)
	}
	// The missed timers: counted, or deleted; linked on from after now.
	if tm, ok := store.timer("hourly-40-window-60"); !ok || tm.MissedCount != 1 || tm.LastMissedAt != swAt(10, 40, 0).Unix() {
		t.Errorf("hourly-40-window-60 stored %+v, %v; want one missed at 10:40", tm, ok)
	}
	if got := store.linkInstants()["rate-13m-window-60"]; len(got) == 0 || got[len(got)-1].Before(end) {
		t.Errorf("rate-13m-window-60 links %v, want one after the last sweep", got)
	}
	if _, ok := store.timer("once-missed"); ok {
		t.Error("once-missed was kept after its only occurrence was missed")
	}
	if got := len(atResume); got == 0 {
		t.Error("the resumed sweep sent nothing")
	}
}

// TestSweepCatchUp: an occurrence later than its entry's catch-up window
// is not sent but recorded missed, with the timer's first link beyond
// the sweep's short notice; the occurrences in between are sent on time.
// One within the window (the bound included) is sent at once, and the
// timer goes on from now: its other missed occurrences are not sent.
func TestSweepCatchUp(t *testing.T) {
	t.Parallel()
	minutely := func(id string, catchUp int) *Timer {
		tm := swTimerOf(id, "cron(* * * * ? *)", "")
		tm.CatchUpSeconds = catchUp
		return tm
	}
	hourly := func(id string, catchUp int, minute int) *Timer {
		tm := swHourly(id, minute)
		tm.CatchUpSeconds = catchUp
		return tm
	}
	once := swTimerOf("once-missed", "at(2026-11-22T08:00:00)", "")
	once.DeleteAfterCompletion = true
	yesterday := time.Date(2026, 11, 21, 12, 30, 0, 0, time.UTC)
	onTime := swMinutes(swNow, swHorizon, 0) // a minutely timer's within short notice: 10:45 to 10:48
	nextMinutely := swAfter(swHorizon, 0)
	tests := []struct {
		timer    *Timer
		at       time.Time
		sent     bool        // the late occurrence is sent
		direct   []time.Time // sent with it, on time
		wantNext time.Time   // the link written (zero: none)
	}{
		{hourly("hourly-2h-late", 3600, 44), swAt(8, 44, 0), false, nil, swAt(11, 44, 0)},
		{minutely("minutely-150s-late-window-60", 60), swAt(10, 42, 0), false, onTime, nextMinutely},
		{hourly("hourly-59m-late", 3600, 45), swAt(9, 45, 0), true, []time.Time{swAt(10, 45, 0)}, swAt(11, 45, 0)},
		{minutely("minutely-90s-late-window-90", 90), swAt(10, 43, 0), true, onTime, nextMinutely},
		{minutely("minutely-90s-late-window-89", 89), swAt(10, 43, 0), false, onTime, nextMinutely},
		{hourly("old-timer-29m-late", 0, 15), swAt(10, 15, 0), true, nil, swAt(11, 15, 0)}, // 0: the default window
		{hourly("old-timer-64m-late", 0, 40), swAt(9, 40, 0), false, nil, swAt(11, 40, 0)},
		{hourly("day-window-22h-late", 86400, 30), yesterday, true, nil, swAt(11, 30, 0)},
		{once, swAt(8, 0, 0), false, nil, time.Time{}},
	}
	store := newSwStore(100)
	store.setThrough(swMinute(yesterday))
	var (
		wantSent   []swSent
		wantMissed []swMissedCall
		missed     int
	)
	for _, tt := range tests {
		e := store.addTimer(tt.timer, tt.at, tt.at.Add(-time.Hour))
		if tt.sent {
			wantSent = append(wantSent, swSent{Msg: swMsg(e, tt.at, tt.wantNext, false), Delay: 0})
		} else {
			missed++
			wantMissed = append(wantMissed, swMissedCall{ID: e.TimerID, At: tt.at, SweptAt: swNow, Next: tt.wantNext,
				Last: tt.timer == once, Applied: true, Deleted: tt.timer == once})
		}
		for _, at := range tt.direct {
			wantSent = append(wantSent, swSent{Msg: swMsg(e, at, tt.wantNext, false), Delay: int32(at.Sub(swNow) / time.Second)})
		}
	}
	swSortSent(wantSent)
	slices.SortFunc(wantMissed, func(a, b swMissedCall) int { return strings.Compare(a.ID, b.ID) })
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	q.check(t)
	n := len(tests)
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - swMinute(yesterday) + 1), Due: n, Enqueued: len(wantSent), Missed: missed}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSent, q.acceptedSorted(), swIgnoreSentAt); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantMissed, store.missedLog()); diff != "" {
		t.Errorf("Missed calls (-want +got):\n%s", diff)
	}
	for _, tt := range tests {
		got := store.linkInstants()[tt.timer.ID]
		want := []time.Time{tt.at}
		if !tt.wantNext.IsZero() {
			want = append(want, tt.wantNext)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: links (-want +got):\n%s", tt.timer.ID, diff)
		}
		tm, ok := store.timer(tt.timer.ID)
		switch {
		case tt.timer == once:
			if ok {
				t.Errorf("%s: kept, want deleted after its missed last occurrence", once.ID)
			}
		case tt.sent && (tm.MissedCount != 0 || tm.LastMissedAt != 0):
			t.Errorf("%s: counted missed: %+v", tt.timer.ID, tm)
		case !tt.sent && (tm.MissedCount != 1 || tm.LastMissedAt != tt.at.Unix()):
			t.Errorf("%s: stored %+v, want one missed at %v", tt.timer.ID, tm, tt.at)
		}
	}
}

// TestSweepMissedOutcomes: Missed writes nothing for a timer that was
// replaced, paused or deleted since its entry was written (its own links
// carry on), and the sweep goes on; a Missed that fails is Failed and
// holds the next sweep back to its minute.
func TestSweepMissedOutcomes(t *testing.T) {
	t.Parallel()
	errDB := errors.New("dynamodb unavailable")
	store := newSwStore(100)
	store.setThrough(swMinute(swAt(10, 40, 0)))
	for _, id := range []string{"ok", "replaced", "paused", "deleted", "failing"} {
		tm := swHourly(id, 40)
		tm.CatchUpSeconds = 60
		store.addTimer(tm, swAt(10, 40, 0), swAt(9, 40, 0))
	}
	store.setTimer("replaced", &swTimer{Version: 4})
	store.setTimer("paused", &swTimer{Version: 3, Paused: true})
	store.setTimer("deleted", nil)
	store.missedErr = func(e DueEntry) error {
		if e.TimerID == "failing" {
			return errDB
		}
		return nil
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if !errors.Is(err, errDB) {
		t.Errorf("Sweep error = %v, want one wrapping %v", err, errDB)
	}
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - swMinute(swAt(10, 40, 0)) + 1), Due: 5, Missed: 4, Failed: 1}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	var want []swMissedCall
	for _, id := range []string{"deleted", "ok", "paused", "replaced"} {
		want = append(want, swMissedCall{ID: id, At: swAt(10, 40, 0), SweptAt: swNow, Next: swAt(11, 40, 0), Applied: id == "ok"})
	}
	if diff := cmp.Diff(want, store.missedLog()); diff != "" {
		t.Errorf("Missed calls (-want +got):\n%s", diff)
	}
	for id, wantLinks := range map[string]int{"ok": 2, "replaced": 1, "paused": 1, "deleted": 1, "failing": 1} {
		if got := store.linkInstants()[id]; len(got) != wantLinks {
			t.Errorf("%s: links %v, want %d", id, got, wantLinks)
		}
	}
	if tm, _ := store.timer("replaced"); tm.MissedCount != 0 {
		t.Errorf("the replaced timer was counted missed: %+v", tm)
	}
	if n := q.callCount(); n != 0 {
		t.Errorf("%d SQS calls for missed occurrences, want none", n)
	}
	if diff := cmp.Diff([]swRelease{{"ev-1", swMinute(swAt(10, 40, 0)), false, true}}, store.releaseLog()); diff != "" {
		t.Errorf("release (-want +got):\n%s", diff)
	}
}

// ---------------------------------------------------------------- 8. short notice and handOn

// TestSweepShortNotice: an entry whose occurrence is within shortNotice of
// when it was written is its writer's, who sent it at once: the sweeper
// skips it (not due, not sent, not linked on). Beyond, it is the
// sweeper's.
func TestSweepShortNotice(t *testing.T) {
	t.Parallel()
	at := swAt(10, 45, 0)
	tests := []struct {
		name    string
		notice  time.Duration // at - WrittenAt
		sweeper bool
	}{
		{"written at its instant", 0, false},
		{"a second before", time.Second, false},
		{"a minute before", time.Minute, false},
		{"shortNotice before: the bound is the writer's", shortNotice, false},
		{"a second more", shortNotice + time.Second, true},
		{"an hour before", time.Hour, true},
		{"written after its instant", -time.Minute, false},
	}
	store := newSwStore(10)
	var want []string
	for i, tt := range tests {
		id := fmt.Sprintf("t%d", i)
		e := store.addTimer(swHourly(id, 45), at, at.Add(-tt.notice))
		if got := e.sweepersOwn(); got != tt.sweeper {
			t.Errorf("%s: sweepersOwn() = %v, want %v", tt.name, got, tt.sweeper)
		}
		if tt.sweeper {
			want = append(want, id)
		}
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: len(want), Enqueued: len(want)}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, q.acceptedIDs()); diff != "" {
		t.Errorf("sent by the sweeper (-want +got):\n%s", diff)
	}
	var linked []string
	for _, l := range store.linksWritten() {
		linked = append(linked, l.TimerID)
	}
	if diff := cmp.Diff(want, linked); diff != "" {
		t.Errorf("linked on by the sweeper (-want +got):\n%s", diff)
	}
}

// TestHandOn: the occurrences within shortNotice of now are the writer's
// to send (the horizon included), and the first beyond is linked, as a
// copy of the entry with its instant and now as written; none when the
// schedule ends first.
func TestHandOn(t *testing.T) {
	t.Parallel()
	berlin := time.Date(2026, 10, 25, 0, 44, 30, 0, time.UTC) // clocks go back at 01:00 UTC
	withEnd := func(tm *Timer, end time.Time) *Timer { tm.EndAt = &end; return tm }
	withStart := func(tm *Timer, start time.Time) *Timer { tm.StartAt = &start; return tm }
	withAnchor := func(tm *Timer, a time.Time) *Timer { tm.Anchor = a; return tm }
	tests := []struct {
		name       string
		timer      *Timer
		from, now  time.Time
		wantDirect []time.Time
		wantLink   time.Time // zero: nil
	}{
		{"hourly: the next hour is linked", swHourly("h", 45), swAt(10, 45, 0), swNow, nil, swAt(11, 45, 0)},
		{"minutely: the rest within short notice", swTimerOf("m", "cron(* * * * ? *)", ""), swAt(10, 45, 0), swNow,
			swMinutes(swAt(10, 45, 0), swHorizon, 0), swAfter(swHorizon, 0)},
		{"a PUT: its instant included", swTimerOf("m", "cron(* * * * ? *)", ""), swAt(10, 44, 0).Add(-1), swAt(10, 44, 0),
			swMinutes(swAt(10, 44, 0).Add(-1), swAt(10, 44, 0).Add(shortNotice), 0), swAfter(swAt(10, 44, 0).Add(shortNotice), 0)},
		{"a rate to the second", withAnchor(swTimerOf("r", "rate(1 minute)", ""), swAt(10, 0, 20)), swAt(10, 44, 20), swNow,
			swMinutes(swAt(10, 44, 20), swHorizon, 20*time.Second), swAfter(swHorizon, 20*time.Second)},
		{"at the horizon: direct", swTimerOf("a", "at("+swHorizon.Format("2006-01-02T15:04:05")+")", ""), swNow, swNow, []time.Time{swHorizon}, time.Time{}},
		{"a second beyond: linked", swTimerOf("a", "at("+swHorizon.Add(time.Second).Format("2006-01-02T15:04:05")+")", ""), swNow, swNow, nil, swHorizon.Add(time.Second)},
		{"an at() past", swTimerOf("a", "at(2026-11-22T10:40:00)", ""), swNow, swNow, nil, time.Time{}},
		{"endAt within short notice", withEnd(swTimerOf("e", "cron(* * * * ? *)", ""), swAt(10, 46, 30)), swAt(10, 45, 0), swNow,
			[]time.Time{swAt(10, 46, 0)}, time.Time{}},
		{"startAt later", withStart(swTimerOf("s", "rate(5 minutes)", ""), swAt(11, 0, 0)), swNow, swNow, nil, swAt(11, 0, 0)},
		{"late: from now, not from the occurrence", swTimerOf("m", "cron(* * * * ? *)", ""), swNow, swNow,
			swMinutes(swNow, swHorizon, 0), swAfter(swHorizon, 0)},
		// Europe/Berlin's 02:00-02:59 happens twice on 2026-10-25; a cron
		// fires at the first: after 02:45 CEST (00:45 UTC) comes 03:00 CET.
		{"across a change of offset", swTimerOf("b", "cron(0/15 * * * ? *)", "Europe/Berlin"), berlin.Add(30 * time.Second), berlin,
			nil, time.Date(2026, 10, 25, 2, 0, 0, 0, time.UTC)},
		{"on a 30-minute zone", swTimerOf("k", "cron(0/15 * * * ? *)", "Asia/Kolkata"), swAt(10, 44, 0), swNow,
			[]time.Time{swAt(10, 45, 0)}, swAt(11, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sched, err := tt.timer.Schedule(loadZone)
			if err != nil {
				t.Fatal(err)
			}
			e := dueEntryOf(tt.timer, tt.from, tt.now.Add(-time.Hour))
			direct, link := handOn(e, sched, tt.from, tt.now)
			if diff := cmp.Diff(tt.wantDirect, direct, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("direct (-want +got):\n%s", diff)
			}
			var want *DueEntry
			if !tt.wantLink.IsZero() {
				l := e
				l.At, l.WrittenAt = tt.wantLink.Unix(), tt.now.Unix()
				want = &l
			}
			if diff := cmp.Diff(want, link); diff != "" {
				t.Errorf("link (-want +got):\n%s", diff)
			}
			if link != nil && !link.sweepersOwn() {
				t.Errorf("the link at %v is not the sweeper's: it would never be sent", link.occurrence())
			}
		})
	}
}

// ---------------------------------------------------------------- 9. one-off and ending timers

// TestSweepCompletedTimers: a timer with no occurrence after the ones
// sent gets no link; when it asked for deleteAfterCompletion its last
// message is marked final, for the invoker to delete it once delivered.
func TestSweepCompletedTimers(t *testing.T) {
	t.Parallel()
	deleteAfter := func(tm *Timer) *Timer { tm.DeleteAfterCompletion = true; return tm }
	withEnd := func(tm *Timer, end time.Time) *Timer { tm.EndAt = &end; return tm }
	tests := []struct {
		timer *Timer
		at    time.Time
		want  []swSent // messages, Msg.TimerID and Version filled in below
	}{
		{deleteAfter(swTimerOf("at-delete", "at(2026-11-22T10:45:00)", "")), swAt(10, 45, 0),
			[]swSent{{Msg: FireMessage{ScheduledAt: swAt(10, 45, 0), Final: true}, Delay: 30}}},
		{swTimerOf("at-keep", "at(2026-11-22T10:45:40)", ""), swAt(10, 45, 40),
			[]swSent{{Msg: FireMessage{ScheduledAt: swAt(10, 45, 40)}, Delay: 70}}},
		{deleteAfter(swTimerOf("at-berlin", "at(2026-11-22T11:45:20)", "Europe/Berlin")), swAt(10, 45, 20),
			[]swSent{{Msg: FireMessage{ScheduledAt: swAt(10, 45, 20), Final: true}, Delay: 50}}},
		{deleteAfter(swTimerOf("at-overdue", "at(2026-11-22T10:40:00)", "")), swAt(10, 40, 0),
			[]swSent{{Msg: FireMessage{ScheduledAt: swAt(10, 40, 0), Final: true}, Delay: 0}}},
		{deleteAfter(withEnd(swTimerOf("cron-ending", "cron(45 * * * ? *)", ""), swAt(11, 0, 0))), swAt(10, 45, 0),
			[]swSent{{Msg: FireMessage{ScheduledAt: swAt(10, 45, 0), Final: true}, Delay: 30}}},
		{deleteAfter(withEnd(swTimerOf("minutely-ending", "cron(* * * * ? *)", ""), swAt(10, 46, 30))), swAt(10, 45, 0),
			[]swSent{{Msg: FireMessage{ScheduledAt: swAt(10, 45, 0)}, Delay: 30}, {Msg: FireMessage{ScheduledAt: swAt(10, 46, 0), Final: true}, Delay: 90}}},
	}
	store := newSwStore(2)
	store.setThrough(swMinute(swAt(10, 40, 0)))
	var want []swSent
	for _, tt := range tests {
		store.addTimer(tt.timer, tt.at, tt.at.Add(-time.Hour))
		for _, s := range tt.want {
			s.Msg.TimerID, s.Msg.Version = tt.timer.ID, tt.timer.Version
			want = append(want, s)
		}
	}
	swSortSent(want)
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - swMinute(swAt(10, 40, 0)) + 1), Due: len(tests), Enqueued: len(want)}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, q.acceptedSorted(), swIgnoreSentAt); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if n := len(store.linkCalls); n != 0 {
		t.Errorf("%d PutLinks calls for timers with nothing left, want none", n)
	}
	// Nothing is due any more, however much later a sweep runs.
	if res, err := newSwSweeper(store, q, swNow.Add(time.Hour)).Sweep(t.Context(), "ev-2"); err != nil || res.Due != 0 {
		t.Errorf("a later sweep: %+v, %v; want nothing due", res, err)
	}
}

// ---------------------------------------------------------------- 10. delaySeconds

func TestDelaySeconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 43, 29, 800e6, time.UTC)
	tests := []struct {
		name string
		d    time.Duration // at - now
		want int32
	}{
		{"90.2 s rounds down", 90*time.Second + 200*time.Millisecond, 90},
		{"whole seconds stay", 90 * time.Second, 90},
		{"999 ms rounds down to 0", 999 * time.Millisecond, 0},
		{"1 ns rounds down to 0", 1, 0},
		{"1 s", time.Second, 1},
		{"at now", 0, 0},
		{"1 ns in the past", -1, 0},
		{"3 h in the past", -3 * time.Hour, 0},
		{"2.5 minutes", 150 * time.Second, 150},
		{"just under 15 minutes", 15*time.Minute - 1, 899},
		{"exactly 15 minutes", 15 * time.Minute, 900},
		{"just over 15 minutes", 15*time.Minute + 1, 900},
		{"an hour", time.Hour, 900},
		{"a century", 100 * 365 * 24 * time.Hour, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := delaySeconds(now.Add(tt.d), now); got != tt.want {
				t.Errorf("delaySeconds(now%+v, now) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

// TestSweepDelayCountsFromTheSend: a message must become visible at its
// instant however long the sweep has been running when it is sent. SQS
// counts DelaySeconds from when it receives the message, so the sweeper
// computes every delay when it sends, not from the sweep's start.
func TestSweepDelayCountsFromTheSend(t *testing.T) {
	t.Parallel()
	// Three chunks of 50, one worker: each chunk is sent after its links
	// are written, and each PutLinks takes 7 s of sweep time, so the later
	// chunks are sent 14 and 21 s into the sweep.
	store := newSwStore(1000)
	at := swAt(10, 45, 50)
	for _, id := range swIDsInPart("t", 0, 3*chunkSize) {
		tm := swTimerOf(id, "rate(1 hour)", "")
		tm.Anchor = at
		store.addTimer(tm, at, at.Add(-time.Hour))
	}
	clock := newSwClock(swNow)
	store.beforePutLinks = func([]DueEntry) { clock.Advance(7 * time.Second) }
	q := &swQueue{now: clock.Now}
	sw := newSwSweeper(store, q, swNow)
	sw.Now = clock.Now
	sw.Workers = 1
	if _, err := sw.Sweep(t.Context(), "ev-1"); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	sent := q.acceptedSorted()
	if len(sent) != 3*chunkSize {
		t.Fatalf("%d sent, want %d", len(sent), 3*chunkSize)
	}
	last := sent[0].SentAt
	for _, s := range sent {
		last = maxTime(last, s.SentAt)
		if err := swOnTime(s); err != nil {
			t.Error(err)
			break
		}
	}
	if last.Sub(swNow) < 21*time.Second {
		t.Fatalf("the last call was sent %v into the sweep; the test needs it 21 s in", last.Sub(swNow))
	}
}

// TestSweepFullBatchesAroundMissedTimers: only the last SQS batch of a
// bucket partition may be partial, also when some of its entries are
// skipped as missed: the old sweeper put missed timers into chunks of
// their own, and so must this one (see the report on issue 11).
func TestSweepFullBatchesAroundMissedTimers(t *testing.T) {
	t.Parallel()
	// In id order: 45 sent, 5 missed, 45 sent, 5 missed, all at 10:40
	// (270 s late): the sent ones have the default window, the missed 60 s.
	store := newSwStore(100)
	store.setThrough(swMinute(swAt(10, 40, 0)))
	for g := range 4 {
		n := map[bool]int{false: 45, true: 5}[g%2 == 1]
		for _, id := range swIDsInPart(fmt.Sprintf("g%d-", g), 0, n) { // all in one partition
			tm := swHourly(id, 40)
			if g%2 == 1 {
				tm.CatchUpSeconds = 60
			}
			store.addTimer(tm, swAt(10, 40, 0), swAt(9, 40, 0))
		}
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - swMinute(swAt(10, 40, 0)) + 1), Due: 100, Enqueued: 90, Missed: 10}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// 90 messages: nine full batches.
	if diff := cmp.Diff([]int{10, 10, 10, 10, 10, 10, 10, 10, 10}, q.callSizes()); diff != "" {
		t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
	}
}

// ---------------------------------------------------------------- 11. failures around the schedule and the lease

// TestSweepUnusableSchedule: an entry whose schedule cannot be used (a
// zone tzdata no longer knows, an expression that no longer parses) is
// counted failed and logged, without panicking; the others are sent,
// and the minute is left for the next sweep.
func TestSweepUnusableSchedule(t *testing.T) {
	t.Parallel()
	store := newSwStore(10)
	store.addTimer(swHourly("good", 45), swAt(10, 45, 0), swAt(9, 45, 0))
	badZone := swLinked(swTimerOf("bad-zone", "cron(45 * * * ? *)", ""), swAt(10, 45, 0))
	badZone.Zone = "Mars/Olympus_Mons"
	badExpr := swLinked(swTimerOf("bad-expr", "cron(45 * * * ? *)", ""), swAt(10, 45, 0))
	badExpr.Expr = "cron(sometimes)"
	store.link(badZone, badExpr)
	var logs bytes.Buffer
	q := &swQueue{}
	sw := newSwSweeper(store, q, swNow)
	sw.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	res, err := sw.Sweep(t.Context(), "ev-1")
	if err == nil {
		t.Error("Sweep succeeded, want an error for the unusable schedules")
	}
	if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 3, Enqueued: 1, Failed: 2}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"good"}, q.acceptedIDs()); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]swRelease{{"ev-1", swM45, false, true}}, store.releaseLog()); diff != "" {
		t.Errorf("release (-want +got):\n%s", diff)
	}
	var unusable []string
	for _, rec := range swLogRecords(t, &logs) {
		if rec["msg"] == "timer schedule unusable" && rec["level"] == "ERROR" {
			unusable = append(unusable, rec["timerId"].(string))
		}
	}
	slices.Sort(unusable)
	if diff := cmp.Diff([]string{"bad-expr", "bad-zone"}, unusable); diff != "" {
		t.Errorf("logged unusable (-want +got):\n%s", diff)
	}
}

// TestSweepLeaseFails: a failing lease fails the sweep, which reads and
// sends nothing and releases nothing.
func TestSweepLeaseFails(t *testing.T) {
	t.Parallel()
	errDB := errors.New("dynamodb unavailable")
	store := newSwStore(10)
	store.addTimer(swHourly("a", 45), swAt(10, 45, 0), swAt(9, 45, 0))
	store.leaseErr = func() error { return errDB }
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if !errors.Is(err, errDB) {
		t.Errorf("Sweep error = %v, want one wrapping %v", err, errDB)
	}
	if diff := cmp.Diff(SweepResult{Skipped: 1}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if len(store.bucketCalls) != 0 || q.callCount() != 0 || len(store.releases) != 0 {
		t.Errorf("a sweep without its lease read %d buckets, made %d SQS calls, %d releases", len(store.bucketCalls), q.callCount(), len(store.releases))
	}
}

// ---------------------------------------------------------------- 12. metrics and the summary log line

// swLogRecords decodes JSON log lines.
func swLogRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// TestSweepMetricsAndLog checks the one summary log line and the one
// metrics record of a sweep that sent, missed and failed, of a clean
// sweep, and of a skipped one.
func TestSweepMetricsAndLog(t *testing.T) {
	t.Parallel()
	store := newSwStore(10)
	store.setThrough(swMinute(swAt(10, 40, 0)))
	store.addTimer(swHourly("a", 45), swAt(10, 45, 0), swAt(9, 45, 0))
	store.addTimer(swHourly("b", 45), swAt(10, 45, 0), swAt(9, 45, 0))
	// The missed timer is in another partition than the failing one: a
	// failure reads its partition again from the failing chunk's minute.
	missed := swHourly(swIDsInPart("m", (partOf("bad")+1)%dueParts, 1)[0], 40)
	missed.CatchUpSeconds = 60
	store.addTimer(missed, swAt(10, 40, 0), swAt(9, 40, 0))
	bad := swLinked(swHourly("bad", 45), swAt(10, 45, 0))
	bad.Zone = "Mars/Olympus_Mons"
	store.link(bad)

	var logs, metrics bytes.Buffer
	sweep := func(now time.Time, event string) {
		t.Helper()
		sw := newSwSweeper(store, &swQueue{}, now)
		sw.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		sw.Metrics = NewMetrics(&metrics)
		sw.Metrics.Now = func() time.Time { return now }
		sw.Sweep(t.Context(), event) //nolint:errcheck // the records say how it went
	}
	ignoreTime := cmpopts.IgnoreMapEntries(func(k string, _ any) bool { return k == "time" || k == "_aws" })

	sweep(swNow, "ev-1")
	recs := swLogRecords(t, &logs)
	var summary []map[string]any
	var warned []map[string]any
	for _, r := range recs {
		switch r["msg"] {
		case "sweep":
			summary = append(summary, r)
		case "occurrence missed":
			warned = append(warned, r)
		}
	}
	wantSummary := []map[string]any{{"level": "INFO", "msg": "sweep", "eventId": "ev-1", "minutes": float64(swLast - swMinute(swAt(10, 40, 0)) + 1),
		"due": 4.0, "enqueued": 2.0, "missed": 1.0, "failed": 1.0, "from": "2026-11-22T10:40:00Z",
		"until": swMinuteTime(swLast + 1).Format(time.RFC3339), "durationMs": 0.0}}
	if diff := cmp.Diff(wantSummary, summary, ignoreTime); diff != "" {
		t.Errorf("summary log line (-want +got):\n%s", diff)
	}
	wantWarn := []map[string]any{{"level": "WARN", "msg": "occurrence missed", "timerId": missed.ID, "scheduledAt": "2026-11-22T10:40:00Z",
		"latenessMs": 270000.0, "catchUpSeconds": 60.0}}
	if diff := cmp.Diff(wantWarn, warned, ignoreTime); diff != "" {
		t.Errorf("missed log line (-want +got):\n%s", diff)
	}
	got := swLogRecords(t, &metrics)
	want := []map[string]any{{"Part": "sweeper", "SweepCompleted": 0.0, "Due": 4.0, "Enqueued": 2.0, "Missed": 1.0,
		"SweepFailures": 1.0, "SweepsSkipped": 0.0, "SweepDuration": 0.0}}
	if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
		t.Errorf("metrics of a failed sweep (-want +got):\n%s", diff)
	}
	if aws, _ := got[0]["_aws"].(map[string]any); aws == nil || aws["Timestamp"] != float64(swNow.UnixMilli()) {
		t.Errorf("metrics record without its EMF definitions: %v", got[0])
	}

	// The next sweep, once the bad entry is gone, is clean.
	store.unlink(swM45, "bad")
	logs.Reset()
	metrics.Reset()
	sweep(swNow.Add(time.Minute), "ev-2")
	want = []map[string]any{{"Part": "sweeper", "SweepCompleted": 1.0, "Due": 2.0, "Enqueued": 2.0, "Missed": 0.0,
		"SweepFailures": 0.0, "SweepsSkipped": 0.0, "SweepDuration": 0.0}}
	if diff := cmp.Diff(want, swLogRecords(t, &metrics), ignoreTime); diff != "" {
		t.Errorf("metrics of a clean sweep (-want +got):\n%s", diff)
	}

	// The same event again is skipped.
	logs.Reset()
	metrics.Reset()
	sweep(swNow.Add(time.Minute), "ev-2")
	if diff := cmp.Diff([]map[string]any{{"level": "INFO", "msg": "sweep", "eventId": "ev-2", "skipped": 1.0}}, swLogRecords(t, &logs), ignoreTime); diff != "" {
		t.Errorf("log of a skipped sweep (-want +got):\n%s", diff)
	}
	want = []map[string]any{{"Part": "sweeper", "SweepCompleted": 1.0, "SweepsSkipped": 1.0}}
	if diff := cmp.Diff(want, swLogRecords(t, &metrics), ignoreTime); diff != "" {
		t.Errorf("metrics of a skipped sweep (-want +got):\n%s", diff)
	}
}

// ---------------------------------------------------------------- 13. an hour of sweeps

// TestSweepSuccessiveSweeps runs a sweep about every minute (45-60 s apart)
// for an hour of a fake clock across a change of offset, over timers put
// through the API's hand-on (Store.PutTimer's handOn at the PUT) before
// and during the hour, with short notice or not: every occurrence from
// each timer's PUT to a minute past the last sweep is enqueued exactly
// once, by the API or by the sweeper, none is missing, each becomes
// visible within the second before its instant, a deleteAfterCompletion
// timer's last is final, and every NextLinkAt names a link written.
func TestSweepSuccessiveSweeps(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 10, 25, 0, 20, 0, 0, time.UTC) // Europe/Berlin goes back an hour at 01:00 UTC
	utc := func(h, m, s int) time.Time { return time.Date(2026, 10, 25, h, m, s, 0, time.UTC) }
	deleteAfter := func(tm *Timer) *Timer { tm.DeleteAfterCompletion = true; return tm }
	everyMinute := swTimerOf("every-minute", "rate(1 minute)", "")
	everyMinute.Anchor = start
	rate5 := swTimerOf("rate-5m", "rate(5 minutes)", "")
	rate5.Anchor = utc(0, 2, 17)
	bounded := deleteAfter(swTimerOf("bounded", "rate(1 minute)", ""))
	bStart, bEnd := utc(0, 40, 0), utc(0, 50, 0)
	bounded.StartAt, bounded.EndAt = &bStart, &bEnd
	type put struct {
		at    time.Time
		timer *Timer
	}
	puts := []put{
		{start, everyMinute},
		{start, rate5},
		{start, swTimerOf("hourly", "cron(0 * * * ? *)", "")},
		{start, swTimerOf("berlin-quarter", "cron(0/15 * * * ? *)", "Europe/Berlin")},
		{start, swTimerOf("berlin-daily", "cron(30 2 * * ? *)", "Europe/Berlin")},
		{start, deleteAfter(swTimerOf("at-once", "at(2026-10-25T00:50:00)", ""))},
		{start, bounded},
	}
	// Timers put during the hour, between sweeps, with every notice.
	for k, notice := range []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 59 * time.Second, 100 * time.Second,
		149 * time.Second, shortNotice, shortNotice + time.Second, 170 * time.Second, 4 * time.Minute, 10 * time.Minute} {
		at := start.Add(17*time.Minute + time.Duration(k)*61*time.Second + 7*time.Second)
		x := at.Add(notice)
		tm := deleteAfter(swTimerOf(fmt.Sprintf("short-%03ds", int(notice/time.Second)), "at("+x.Format("2006-01-02T15:04:05")+")", ""))
		puts = append(puts, put{at, tm})
	}
	late := swTimerOf("minutely-put-late", "rate(1 minute)", "")
	late.Anchor = start.Add(23*time.Minute + 10*time.Second)
	puts = append(puts, put{late.Anchor, late})
	// Rates that do not divide a week are linked, not slotted (PlanDue).
	rate11 := swTimerOf("rate-11m", "rate(11 minutes)", "")
	rate11.Anchor = utc(0, 1, 13)
	rate11late := swTimerOf("rate-11m-put-late", "rate(11 minutes)", "")
	rate11late.Anchor = start.Add(31*time.Minute + 41*time.Second)
	puts = append(puts, put{start, rate11}, put{rate11late.Anchor, rate11late})
	slices.SortStableFunc(puts, func(a, b put) int { return a.at.Compare(b.at) })

	var sweeps []time.Time
	gaps := []time.Duration{60, 45, 52, 60, 58, 50, 60}
	for at, k := start.Add(30*time.Second), 0; at.Before(start.Add(time.Hour)); at, k = at.Add(gaps[k%len(gaps)]*time.Second), k+1 {
		sweeps = append(sweeps, at)
	}
	lastSweep := sweeps[len(sweeps)-1]

	store := newSwStore(3)
	clock := newSwClock(start)
	q := &swQueue{now: clock.Now}
	sw := newSwSweeper(store, q, time.Time{})
	sw.Now = clock.Now
	var apiSent []swSent
	slotted, linked := map[string]bool{}, map[string]bool{} // how each timer was handed on at its PUT
	created := map[string]time.Time{}
	timers := map[string]*Timer{}
	for pi, si := 0, 0; pi < len(puts) || si < len(sweeps); {
		if pi < len(puts) && (si == len(sweeps) || !puts[pi].at.After(sweeps[si])) {
			p := puts[pi]
			pi++
			clock.Set(p.at)
			created[p.timer.ID], timers[p.timer.ID] = p.at, p.timer
			sched, _ := p.timer.Schedule(loadZone)
			direct, slots := store.createHow(t, p.timer, p.at)
			if len(slots) > 0 {
				slotted[p.timer.ID] = true
			} else if store.linkInstants()[p.timer.ID] != nil {
				linked[p.timer.ID] = true
			}
			for i, d := range direct { // as API.sendNow
				_, more := sched.Next(d)
				m := FireMessage{TimerID: p.timer.ID, Version: p.timer.Version, ScheduledAt: d.UTC(),
					Final: p.timer.DeleteAfterCompletion && i == len(direct)-1 && !more}
				apiSent = append(apiSent, swSent{Msg: m, Delay: delaySeconds(d, p.at), SentAt: p.at})
			}
			continue
		}
		now := sweeps[si]
		si++
		clock.Set(now)
		res, err := sw.Sweep(t.Context(), "ev-"+now.Format("150405"))
		if err != nil || res.Failed+res.Skipped+res.Missed > 0 {
			t.Fatalf("sweep at %v: %+v, %v", now.Format(time.TimeOnly), res, err)
		}
	}
	q.check(t)

	all := slices.Concat(apiSent, q.acceptedSorted())
	count := map[swOcc]int{}
	byTimer := map[string][]swSent{}
	for _, s := range all {
		o := swOcc{s.Msg.TimerID, s.Msg.ScheduledAt.UTC()}
		count[o]++
		byTimer[o.TimerID] = append(byTimer[o.TimerID], s)
		if err := swOnTime(s); err != nil {
			t.Errorf("late or early: %v", err)
		}
		if o.ScheduledAt.After(lastSweep.Add(shortNotice)) {
			t.Errorf("%v enqueued beyond the last sweep's short notice", o)
		}
		if s.Msg.NextLinkAt != 0 && !slices.Contains(store.linkInstants()[o.TimerID], time.Unix(s.Msg.NextLinkAt, 0).UTC()) {
			t.Errorf("%v names next link %v, never written", o, time.Unix(s.Msg.NextLinkAt, 0).UTC())
		}
	}
	horizon := lastSweep.Add(time.Minute)
	for id, tm := range timers {
		occ := swOccurrences(t, tm, created[id].Add(-time.Nanosecond), horizon)
		if len(occ) == 0 {
			t.Errorf("%s: no occurrence within the hour; the test needs one", id)
		}
		for _, at := range occ {
			if n := count[swOcc{id, at}]; n != 1 {
				t.Errorf("%s@%s enqueued %d times, want once", id, at.Format(time.TimeOnly), n)
			}
		}
		for _, s := range byTimer[id] {
			if at := s.Msg.ScheduledAt.UTC(); !at.After(horizon) && !slices.Contains(occ, at) {
				t.Errorf("%s@%s enqueued: not an occurrence of its schedule since its PUT", id, at.Format(time.TimeOnly))
			}
		}
		if tm.DeleteAfterCompletion {
			var finals []time.Time
			for _, s := range byTimer[id] {
				if s.Msg.Final {
					finals = append(finals, s.Msg.ScheduledAt.UTC())
				}
			}
			if want := occ[len(occ)-1:]; !cmp.Equal(want, finals) {
				t.Errorf("%s: final on %v, want on its last occurrence %v", id, finals, want)
			}
		}
	}
	// Across the change of offset: the quarter-hourly Berlin cron fires at
	// the first 02:30 and 02:45 (00:30, 00:45 UTC), skips the repeated
	// 02:00-02:59 and is linked to 03:00 CET (02:00 UTC).
	var berlin []time.Time
	for _, s := range byTimer["berlin-quarter"] {
		berlin = append(berlin, s.Msg.ScheduledAt.UTC())
	}
	slices.SortFunc(berlin, time.Time.Compare)
	if diff := cmp.Diff([]time.Time{utc(0, 30, 0), utc(0, 45, 0)}, berlin); diff != "" {
		t.Errorf("berlin-quarter (-want +got):\n%s", diff)
	}
	if got := store.linkInstants()["berlin-quarter"]; !slotted["berlin-quarter"] && !slices.Contains(got, utc(2, 0, 0)) {
		t.Errorf("berlin-quarter links %v, want one at 02:00 UTC", got)
	}
	// Both ways of handing a timer on were exercised.
	for _, id := range []string{"every-minute", "rate-5m", "hourly", "berlin-quarter"} {
		if !slotted[id] {
			t.Errorf("%s was not slotted: the test means it to run the slot path", id)
		}
	}
	for _, id := range []string{"rate-11m", "rate-11m-put-late", "at-once", "short-600s"} {
		if !linked[id] {
			t.Errorf("%s was not linked: the test means it to run the link path", id)
		}
	}
	// The short-notice timers: the API sent those within shortNotice, the
	// sweeper the others.
	for id, tm := range timers {
		if !strings.HasPrefix(id, "short-") {
			continue
		}
		byAPI := slices.ContainsFunc(apiSent, func(s swSent) bool { return s.Msg.TimerID == id })
		x, _ := tm.Schedule(loadZone)
		at, _ := x.Next(created[id].Add(-time.Nanosecond))
		if want := at.Sub(created[id]) <= shortNotice; byAPI != want {
			t.Errorf("%s: sent by the API %v, want %v", id, byAPI, want)
		}
	}
}

// TestSweepFailureRereadsFromItsMinute: a failure holds the next sweep
// back to the minute of what failed, not to the first minute of the
// chunk or query it was in: the next sweep neither sends the earlier
// minutes' occurrences again nor records their missed ones twice.
func TestSweepFailureRereadsFromItsMinute(t *testing.T) {
	t.Parallel()
	// One partition, one query, one chunk: a missed occurrence at 10:40,
	// ten on time at 10:44, ten at 10:45 of which one is unusable.
	const part = 7
	store := newSwStore(100)
	store.setThrough(swMinute(swAt(10, 40, 0)))
	missed := swHourly(swIDsInPart("a", part, 1)[0], 40)
	missed.CatchUpSeconds = 60
	store.addTimer(missed, swAt(10, 40, 0), swAt(9, 40, 0))
	for _, id := range swIDsInPart("b", part, 10) {
		store.addTimer(swHourly(id, 44), swAt(10, 44, 0), swAt(9, 44, 0))
	}
	ids45 := swIDsInPart("c", part, 10)
	for i, id := range ids45 {
		e := swLinked(swHourly(id, 45), swAt(10, 45, 0))
		if i == 3 {
			e.Zone = "Mars/Olympus_Mons"
		}
		store.link(e)
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err == nil {
		t.Error("Sweep succeeded, want an error for the unusable schedule")
	}
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - swMinute(swAt(10, 40, 0)) + 1), Due: 21, Enqueued: 19, Missed: 1, Failed: 1}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if st := store.state(); st.Through != swM45 {
		t.Errorf("through = %v, want 10:45, the failed occurrence's minute", swMinuteTime(st.Through).Format(time.TimeOnly))
	}
	res, err = newSwSweeper(store, q, swNow.Add(time.Minute)).Sweep(t.Context(), "ev-2")
	if err == nil {
		t.Error("the next sweep succeeded, want the unusable schedule to fail again")
	}
	if res.Missed != 0 {
		t.Errorf("the next sweep recorded %d missed again", res.Missed)
	}
	if tm, _ := store.timer(missed.ID); tm.MissedCount != 1 {
		t.Errorf("the missed occurrence was counted %d times", tm.MissedCount)
	}
	count := map[string]int{}
	for _, id := range q.acceptedIDs() {
		count[id]++
	}
	for _, id := range swIDsInPart("b", part, 10) {
		if count[id] != 1 {
			t.Errorf("%s (10:44) sent %d times, want once", id, count[id])
		}
	}
}

// ---------------------------------------------------------------- 14. the Store's side of the sweep

// swDynamo is a dynamoAPI whose BatchWriteItem answers with batch.
type swDynamo struct {
	dynamoAPI
	batch func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error)
}

func (d swDynamo) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	return d.batch(in)
}

// TestSweepStorePutLinks: Store.PutLinks writes links in batches of 25
// under their link keys, each batch once, and returns exactly the links
// DynamoDB left unprocessed (throttled), for the sweeper to write again.
func TestSweepStorePutLinks(t *testing.T) {
	t.Parallel()
	var links []DueEntry
	for i := range 60 {
		l := swLinked(swHourly(fmt.Sprintf("t%02d", i), 45), swAt(11, 45, 0))
		if i%2 == 1 {
			l.Parts = 64 // written into a raised hour
		}
		links = append(links, l)
	}
	key := func(item map[string]dbtypes.AttributeValue) string {
		return item[attrPK].(*dbtypes.AttributeValueMemberS).Value + " " + item[attrSK].(*dbtypes.AttributeValueMemberS).Value
	}
	var (
		mu      sync.Mutex // the batches go out at once
		sizes   []int
		written = map[string]int{}
	)
	db := swDynamo{batch: func(in *dynamodb.BatchWriteItemInput) (*dynamodb.BatchWriteItemOutput, error) {
		mu.Lock()
		defer mu.Unlock()
		reqs := in.RequestItems["timers"]
		sizes = append(sizes, len(reqs))
		out := &dynamodb.BatchWriteItemOutput{}
		for i, r := range reqs {
			if i%4 == 0 { // throttled
				out.UnprocessedItems = map[string][]dbtypes.WriteRequest{"timers": append(out.UnprocessedItems["timers"], r)}
				continue
			}
			written[key(r.PutRequest.Item)]++
			if got := r.PutRequest.Item["expiresAt"]; got == nil {
				t.Errorf("link %s without expiresAt", key(r.PutRequest.Item))
			}
		}
		return out, nil
	}}
	left, err := NewStore(db, "timers").PutLinks(t.Context(), links)
	if err != nil {
		t.Fatalf("PutLinks: %v", err)
	}
	want, wantLeft := map[string]int{}, []DueEntry(nil)
	for i, l := range links {
		if i%25%4 == 0 {
			wantLeft = append(wantLeft, l)
			continue
		}
		want[key(linkKey(l.At/60, l.TimerID, l.Parts))] = 1
	}
	if diff := cmp.Diff(want, written); diff != "" {
		t.Errorf("links written (-want +got):\n%s", diff)
	}
	swSortEntries(left)
	if diff := cmp.Diff(wantLeft, left); diff != "" {
		t.Errorf("links returned unprocessed (-want +got):\n%s", diff)
	}
	slices.Sort(sizes)
	if diff := cmp.Diff([]int{10, 25, 25}, sizes); diff != "" {
		t.Errorf("BatchWriteItem sizes (-want +got):\n%s", diff)
	}
	if k := linkKey(links[1].At/60, links[1].TimerID, 64)[attrPK].(*dbtypes.AttributeValueMemberS).Value; !strings.HasSuffix(k, fmt.Sprintf("#%d", partIn(links[1].TimerID, 64))) {
		t.Errorf("a link of a 64-partition hour is under %s", k)
	}
}

// TestSweepMissedWithOccurrencesLeft: a deleteAfterCompletion timer whose
// late occurrence is missed but which still has occurrences within short
// notice of now, and none after: those are sent, the last marked final,
// and the timer is kept for the invoker to delete after it (deleted now,
// the invoker would drop them as stale).
func TestSweepMissedWithOccurrencesLeft(t *testing.T) {
	t.Parallel()
	store := newSwStore(10)
	store.setThrough(swMinute(swAt(10, 40, 0)))
	end := swAt(10, 46, 30)
	tm := swTimerOf("ending", "cron(* * * * ? *)", "")
	tm.EndAt, tm.DeleteAfterCompletion, tm.CatchUpSeconds = &end, true, 60
	e := store.addTimer(tm, swAt(10, 42, 0), swAt(9, 42, 0))
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - swMinute(swAt(10, 40, 0)) + 1), Due: 1, Enqueued: 2, Missed: 1}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	want := []swSent{
		{Msg: swMsg(e, swAt(10, 45, 0), time.Time{}, false), Delay: 30},
		{Msg: swMsg(e, swAt(10, 46, 0), time.Time{}, true), Delay: 90},
	}
	if diff := cmp.Diff(want, q.acceptedSorted(), swIgnoreSentAt); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if got, ok := store.timer("ending"); !ok || got.MissedCount != 1 {
		t.Errorf("timer after the sweep: %+v, kept %v; want kept with its missed occurrence counted", got, ok)
	}
}

// TestSweepSlotsAndPeriods: a timer Store.Put slots (an hourly one) is
// sent from its slot entry every hour without a link, and only beyond its
// writer's short notice; when the periods in use cannot be read, the
// sweep fails and holds the next one back to its first minute, so that no
// slot occurrence is lost (the links it sent meanwhile are sent again:
// the only duplicates).
func TestSweepSlotsAndPeriods(t *testing.T) {
	t.Parallel()
	errDB := errors.New("dynamodb unavailable")
	store := newSwStore(10)
	put := swAt(10, 43, 0) // 10:45 is within its short notice: the API's
	if direct, slots := store.createHow(t, swHourly("slotted", 45), put); len(slots) == 0 || !slices.Equal(direct, []time.Time{swAt(10, 45, 0)}) {
		t.Fatalf("setup: the hourly timer got slots %v and direct %v; want slots and 10:45 sent by the API", slots, direct)
	}
	if _, slots := store.createHow(t, swHourly("slotted-46", 46), swAt(9, 0, 0)); len(slots) == 0 {
		t.Fatal("setup: no slots")
	}
	store.addTimer(swTimerOf("linked", "at(2026-11-22T10:45:30)", ""), swAt(10, 45, 30), swAt(9, 0, 0))
	fail := true
	store.periodsErr = func() error {
		if fail {
			return errDB
		}
		return nil
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if !errors.Is(err, errDB) {
		t.Errorf("Sweep error = %v, want one wrapping %v", err, errDB)
	}
	first := store.leaseCalls[0].Through // the API's PUT started the sweep's state
	if diff := cmp.Diff([]swRelease{{"ev-1", first, false, true}}, store.releaseLog()); diff != "" {
		t.Errorf("release (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"linked"}, q.acceptedIDs()); diff != "" {
		t.Errorf("sent without the periods (-want +got):\n%s", diff)
	}
	if res.Enqueued != 1 {
		t.Errorf("result %+v", res)
	}
	fail = false
	if _, err := newSwSweeper(store, q, swNow.Add(30*time.Second)).Sweep(t.Context(), "ev-1"); err != nil {
		t.Fatalf("the next sweep: %v", err)
	}
	want := []swOcc{{"linked", swAt(10, 45, 30)}, {"linked", swAt(10, 45, 30)}, {"slotted-46", swAt(10, 46, 0)}}
	if diff := cmp.Diff(want, q.acceptedOccs()); diff != "" {
		t.Errorf("sent over both sweeps (-want +got):\n%s", diff)
	}
	if got := store.linkInstants()["slotted-46"]; len(got) != 0 {
		t.Errorf("the slotted timer was linked: %v", got)
	}
}
