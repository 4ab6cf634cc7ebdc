package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The sweep's lease and its recovery: overlapping sweeps, an event
// delivered twice, a sweep that dies half way, a lease that cannot be
// had (see sweep_test.go for the fakes they run on).

// ---------------------------------------------------------------- overlapping sweeps

// swSweepKey is the context key that tells the overlapping sweeps apart.
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

// ---------------------------------------------------------------- an event delivered twice

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

// ---------------------------------------------------------------- a sweep that dies half way

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

// ---------------------------------------------------------------- failures around the schedule and the lease

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
