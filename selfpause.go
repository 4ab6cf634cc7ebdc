package main

// Failures that stop themselves (issue 14, item 6): a timer with
// pauseAfterFailures N pauses itself once N of its occurrences in a row
// have failed for good (dead-lettered). The count is not stored: at each
// final failure the invoker reads the timer's newest occurrences, one
// Query of its own partition, and counts the failed ones back to the
// first delivered one or to the timer's dueFrom (its last resume or PUT),
// so that a success resets the count and a resume clears it with no write
// at all. A timer's successful firings cost nothing more; a timer
// without the option never pays for it.

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxPauseAfterFailures bounds pauseAfterFailures.
const MaxPauseAfterFailures = 100

// maxPauseError bounds the delivery error quoted in a self-pause's reason.
const maxPauseError = 300

// pauseAfterOf is the pauseAfterFailures a definition asks for, 0 when it
// gives none.
func pauseAfterOf(n *int) (int, error) {
	if n == nil {
		return 0, nil
	}
	if *n < 1 || *n > MaxPauseAfterFailures {
		return 0, Errorf(EINVALID, "pauseAfterFailures must be from 1 to %d; leave it out to never pause", MaxPauseAfterFailures)
	}
	return *n, nil
}

// selfPauseStore is what the self-pause needs from the timer table: the
// timer's occurrences, newest first (Store.occurrences), the timer, and
// the API's own pause, so that pause fencing and groups hold as for any
// pause.
type selfPauseStore interface {
	occurrences(ctx context.Context, id string, limit int32, each func(LastFire) bool) error
	Get(ctx context.Context, id string) (*Timer, error)
	Pause(ctx context.Context, id, reason string, now time.Time) (*Timer, error)
}

var _ selfPauseStore = (*Store)(nil)

// selfPause pauses msg's timer when fire, the final outcome of one of its
// scheduled occurrences, is its pauseAfterFailures-th failure in a row.
// It returns what the notification says of it ("" when it did not
// pause). Fires by hand neither count nor reset the count. Nothing here
// may fail the delivery: an error is logged, and the next failure counts
// again.
func (inv *Invoker) selfPause(ctx context.Context, msg *FireMessage, fire LastFire) string {
	limit := msg.PauseAfterFailures
	st, ok := inv.Timers.(selfPauseStore)
	if limit <= 0 || !ok || fire.Outcome != OutcomeFailed || msg.Manual {
		return ""
	}
	attrs := []any{"timerId", msg.TimerID, "scheduledAt", msg.ScheduledAt.UTC().Format(time.RFC3339)}
	n, err := failedInARow(ctx, st, msg, limit)
	if err != nil {
		inv.Log.WarnContext(ctx, "failures in a row not counted; the next failure counts them again", append(attrs, "error", err.Error())...)
		return ""
	}
	if n < limit {
		return ""
	}
	t, err := st.Get(ctx, msg.TimerID)
	if err != nil || t.Version != msg.Version || t.PausedAt != nil || !t.DueFrom.Equal(msg.DueFrom) {
		return "" // gone, replaced, paused or resumed meanwhile: its count is not this one
	}
	note := fmt.Sprintf(selfPauseFormat, n)
	reason := note + ": " + truncateText(fire.Error, maxPauseError)
	if _, err := inv.persist(ctx, func(ctx context.Context) error {
		_, err := st.Pause(ctx, msg.TimerID, reason, inv.now())
		return err
	}); err != nil {
		inv.Log.ErrorContext(ctx, "timer not paused after failures in a row", append(attrs, "failures", n, "error", err.Error())...)
		return ""
	}
	inv.Log.WarnContext(ctx, "timer paused itself", append(attrs, "failures", n, "reason", reason)...)
	return note
}

// failedInARow counts msg's timer's newest scheduled occurrences that
// failed for good, back to the first delivered one, to one both due and
// attempted before the timer's dueFrom (its last resume or PUT), or to
// limit. msg's own occurrence counts as failed
// whatever its item says (its record may have failed). Occurrences still
// retrying, missed or skipped neither count nor end the run.
func failedInARow(ctx context.Context, st selfPauseStore, msg *FireMessage, limit int) (int, error) {
	n, self := 0, false
	err := st.occurrences(ctx, msg.TimerID, int32(min(limit+10, 100)), func(f LastFire) bool {
		switch {
		case f.Manual:
			return true
		case f.ScheduledAt.Equal(msg.ScheduledAt):
			self = true
			n++
		case f.ScheduledAt.Before(msg.DueFrom) && f.AttemptedAt.Before(msg.DueFrom), f.Outcome == OutcomeDelivered:
			// Both before: a rate's first occurrence is its PUT's own second,
			// a fraction before dueFrom, and is attempted after it.
			return false
		case f.Outcome == OutcomeFailed:
			n++
		}
		return n < limit
	})
	if !self && n < limit {
		n++
	}
	return n, err
}

// truncateText is s cut to at most n runes, marked with "…" when cut.
func truncateText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// selfPauseFormat begins the pause reason of a timer that paused itself,
// before ": " and the last error; the reason is all a timer's document
// says about who paused it, so isSelfPauseReason reads it back.
const selfPauseFormat = "paused after %d consecutive failed occurrences"

// isSelfPauseReason reports whether a pause reason is one a timer gave
// itself (selfPauseFormat), rather than one given by hand.
func isSelfPauseReason(reason string) bool {
	var n int
	_, err := fmt.Sscanf(reason, selfPauseFormat, &n)
	return err == nil && n > 0
}
