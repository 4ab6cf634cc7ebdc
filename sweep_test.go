package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The sweeper's tests run it over swStore and swQueue (sweep_fake_test.go):
// in-memory fakes of the dueStore and of SQS with the real ones' semantics
// and limits. They follow the deployed look-ahead and shortNotice: with
// swNow (10:44:30) and a 3-minute look-ahead a first sweep reads the
// buckets of 10:44 to 10:46 (swLast), and hands on what falls within
// 3m30s of now (swHorizon, 10:48).

// ---------------------------------------------------------------- paging, chunks, batches

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

// ---------------------------------------------------------------- buckets and partitions

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

// ---------------------------------------------------------------- short notice and handOn

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

// ---------------------------------------------------------------- one-off and ending timers

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

// ---------------------------------------------------------------- metrics and the summary log line

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

// ---------------------------------------------------------------- slots and their periods

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
