package main

import (
	"context"
	"time"
)

// The sweeper's slot entries: a timer whose schedule repeats within a
// week is read from its slots (see PlanDue), and each sweep finds its
// occurrences in the sweep's minutes.

// processSlot handles a slot entry: its timer's occurrences in this
// sweep's minutes that fall in its slot. Of the ones already past (a sweep
// after an outage), only the timer's first is handled, sent or recorded as
// missed, as a link's would be; the others are skipped. A slot whose timer
// has no occurrence left is deleted, once.
func (r *sweepRun) processSlot(ctx context.Context, e DueEntry, sched Schedule, w *chunkWork) {
	own := time.Unix(e.WrittenAt, 0).Add(shortNotice) // the occurrences up to it were its writer's
	x, ok := sched.Next(maxTime(time.Unix(r.slotFirst*60, 0).Add(-time.Nanosecond), own))
	if _, left := sched.Next(r.now.Add(-time.Nanosecond)); !left {
		if err := r.s.Timers.DeleteSlot(ctx, e); err != nil {
			w.errs = append(w.errs, err)
		}
		if !ok || !x.Before(r.now) {
			return
		}
	}
	if ok && x.Before(r.now) {
		r.slotPast(ctx, e, sched, x, w)
		x, ok = sched.Next(r.now.Add(-time.Nanosecond))
	}
	end := time.Unix((r.last+1)*60, 0)
	for ; ok && x.Before(end); x, ok = sched.Next(x) {
		if r.inSlot(e, x) && x.After(own) {
			w.res.Due++
			w.sends = append(w.sends, fireSend{e: e, at: x, final: finalAt(e, sched, x)})
		}
	}
}

// slotPast handles x, a slot timer's first occurrence of this sweep
// already past: sent, or recorded as missed when later than its catch-up
// window.
func (r *sweepRun) slotPast(ctx context.Context, e DueEntry, sched Schedule, x time.Time, w *chunkWork) {
	if !r.inSlot(e, x) {
		return
	}
	w.res.Due++
	late := r.now.Sub(e.planned(x)) // a spread occurrence is late only after its planned instant
	if late <= time.Duration(e.CatchUp)*time.Second {
		w.sends = append(w.sends, fireSend{e: e, at: x, final: finalAt(e, sched, x)})
		return
	}
	m := e
	m.At = x.Unix()
	r.s.Log.WarnContext(ctx, "occurrence missed", "timerId", e.TimerID, "scheduledAt", x.UTC().Format(time.RFC3339),
		"latenessMs", late.Milliseconds(), "catchUpSeconds", e.CatchUp)
	if err := r.s.Timers.Missed(ctx, m, r.now, nil, finalAt(e, sched, x)); err != nil {
		w.res.Failed++
		w.errs = append(w.errs, err)
	} else {
		w.res.Missed++
	}
}

// inSlot reports whether x is in slot entry e's slot and this sweep's
// minutes: a slot is read for every sweep's minutes, and only its own
// are its occurrences to send.
func (r *sweepRun) inSlot(e DueEntry, x time.Time) bool {
	m := x.Unix() / 60
	return m%int64(e.Period) == int64(e.Slot) && m >= r.slotFirst && m <= r.last
}

// finalAt reports whether x is the last occurrence of e's timer and the
// timer is to be deleted after it: its message says so.
func finalAt(e DueEntry, sched Schedule, x time.Time) bool {
	_, more := sched.Next(x)
	return e.DeleteAfter && !more
}
