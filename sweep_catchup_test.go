package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Sweeps over time: a gap and the catch-up window, missed occurrences,
// an hour of sweeps.

// ---------------------------------------------------------------- a gap and the catch-up window

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

// ---------------------------------------------------------------- an hour of sweeps

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
