package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Spread: a timer may name a window (spreadSeconds, 1-900) within which
// each of its occurrences is delivered, at a fixed offset derived from its
// id, so that many timers due at one instant reach their targets spread
// over the window, and each keeps its offset from one occurrence to the
// next.
//
// The occurrence keeps its nominal instant (scheduledAt): it is still its
// identity, its claim's key and its idempotency key, and the due path
// (links, slots, catch-up windows' bookkeeping, nextFireAt) still finds
// it there. Only its delivery moves, to the planned instant, scheduledAt
// plus the offset: the sender (the sweeper, or the API for short notice)
// delays its fire message to the planned instant rather than the nominal
// one, and the message carries that instant (plannedAt) for the invoker,
// which holds it until then and measures lateness against it.
//
// SQS delays a message by at most 900 s. The sweeper sends an occurrence
// 1-3 minutes before its nominal instant, so a planned instant may lie
// beyond SQS's reach (an offset above about 12 minutes). Such a message is
// sent with the delay capped at 900 s and marked redelay: its first
// receive comes early, and the invoker returns it to the queue, with
// ChangeMessageVisibility, until its planned instant, without claiming it
// or calling its target. That receive is not an attempt: the invoker
// counts the message's attempts from its second receive.

// MaxSpreadSeconds is the widest spread window: SQS's longest delay, 15
// minutes, which keeps every occurrence within one re-delay of its
// planned instant.
const MaxSpreadSeconds = 900

// spreadOffset is where in a window of window seconds timer id's
// occurrences are delivered: the first 8 bytes of the SHA-256 of
// "spread:" followed by the id, read as a big-endian unsigned integer,
// modulo window, in whole seconds. It depends on nothing but the id and the
// window, so a timer keeps it from one occurrence to the next, and anyone
// can compute it (README, "Spread"). A cryptographic hash, not the FNV-1a
// that spreads ids over partitions: FNV-1a leaves ids that differ only in
// their last characters (poll-1, poll-2 ...) in clusters modulo 60, which
// is what a group of timers named in series would hit. A window of 0 or
// less is none.
func spreadOffset(id string, window int) time.Duration {
	if window <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte("spread:" + id))
	return time.Duration(binary.BigEndian.Uint64(sum[:8])%uint64(window)) * time.Second
}

// spreadOf is the spread window a definition asks for: 0 (none) when it
// gives none, else 1 to MaxSpreadSeconds.
func spreadOf(s *int) (int, error) {
	if s == nil {
		return 0, nil
	}
	if *s < 1 || *s > MaxSpreadSeconds {
		return 0, Errorf(EINVALID, "spreadSeconds must be from 1 to %d", MaxSpreadSeconds)
	}
	return *s, nil
}

// plannedAt is when t's occurrence at at is delivered: at plus its spread
// offset.
func (t *Timer) plannedAt(at time.Time) time.Time {
	return at.Add(spreadOffset(t.ID, t.SpreadSeconds))
}

// ptrTime is a pointer to a copy of t.
func ptrTime(t time.Time) *time.Time { return &t }

// planned is when entry e's occurrence at at is delivered: at plus its
// timer's spread offset.
func (e DueEntry) planned(at time.Time) time.Time {
	return at.Add(spreadOffset(e.TimerID, e.Spread))
}

// plannedAt is when m's occurrence is to be delivered: PlannedAt for a
// spread one, else its instant.
func (m *FireMessage) plannedAt() time.Time {
	if m.PlannedAt.IsZero() {
		return m.ScheduledAt
	}
	return m.PlannedAt
}

// spreadMessage gives m, an occurrence of a timer with a spread window of
// window seconds, its planned instant, and marks it redelay when that is
// beyond SQS's longest delay from now (the message is built before it is
// sent, so a message sent capped is always marked). Without a window it
// leaves m as it is: a default timer's message carries nothing more.
func spreadMessage(m *FireMessage, window int, now time.Time) {
	if window <= 0 {
		return
	}
	m.PlannedAt = m.ScheduledAt.Add(spreadOffset(m.TimerID, window))
	m.Redelay = m.PlannedAt.Sub(now) > maxDelay
}

// redelays reports whether this receive of msg is the early one of a
// message sent with its delay capped (see spreadMessage): the first
// receive. A replay (a redriven dead letter, whose receive count starts
// again) is delivered at once.
func redelays(msg *FireMessage, rec events.SQSMessage) bool {
	return msg.Redelay && !msg.Replay && receiveCount(rec) == 1
}

// spreadAttempt is the attempt a receive of msg stands for: its receive
// count, less the early receive of a message sent capped, which was
// returned to the queue without an attempt.
func spreadAttempt(msg *FireMessage, rec events.SQSMessage) int {
	n := receiveCount(rec)
	if msg.Redelay && !msg.Replay && n > 1 {
		n--
	}
	return n
}

// errHeldEarly returns to the queue a message that came before its planned
// instant (see holdEarly).
var errHeldEarly = errors.New("held until its planned instant")

// holdEarly returns d's message to the queue until its planned instant
// when this receive is the early one of a message sent capped
// (redelays), and reports whether it did: the message is then neither
// claimed nor delivered, and handle returns err, so that SQS hands it out
// again once its new visibility ends. Should the visibility not be set,
// the queue's visibility timeout applies: later than planned, never early.
func (run *batchRun) holdEarly(ctx context.Context, d *delivery) (held bool, err error) {
	if !redelays(&d.msg, d.rec) {
		return false, nil
	}
	inv := run.inv
	early := max(0, d.msg.plannedAt().Sub(inv.now()))
	attrs := append(d.attrs, "plannedAt", d.msg.plannedAt().UTC().Format(time.RFC3339), "holdSeconds", int(early/time.Second))
	if inv.Visibility == nil || inv.FireQueueURL == "" {
		inv.Log.WarnContext(ctx, "spread occurrence came early; the queue's visibility timeout applies", attrs...)
		return true, errHeldEarly
	}
	// Rounded down, as a send's delay: the second receive comes at most
	// a second early, and wait holds it until its instant.
	_, err = inv.Visibility.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &inv.FireQueueURL, ReceiptHandle: &d.rec.ReceiptHandle, VisibilityTimeout: int32(early / time.Second),
	})
	if err != nil {
		inv.Log.WarnContext(ctx, "spread occurrence came early and was not held; the queue's visibility timeout applies",
			append(attrs, "error", err.Error())...)
		return true, fmt.Errorf("%w: %w", errHeldEarly, err)
	}
	inv.Log.InfoContext(ctx, "held until its planned instant", attrs...)
	return true, errHeldEarly
}

// spreadLine is how the command line shows timer id's spread window of
// window seconds: the window and the offset its occurrences are
// delivered at.
func spreadLine(id string, window int) string {
	return fmt.Sprintf("within %d s, each occurrence delivered %d s after its instant", window, int(spreadOffset(id, window)/time.Second))
}
