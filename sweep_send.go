package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// This file is the sweeper's sending: the send window, and the SQS
// batches a chunk's fire messages go out in (see sweep.go).

// The send window. Occurrence instants are whole seconds and an SQS delay
// is whole seconds too (delaySeconds rounds it down), so a message sent
// at k+f (k a wall-clock second, 0 <= f < 1) becomes visible 1-f before
// its instant, and the invoker holds it until then: paid Lambda time. Sent
// at once, a message may be visible up to a second early; sent within
// [k+sendWindowFrom, k+sendWindowTo) it is visible between 50 ms and
// 300 ms early (sendWindowHold), and the invoker's hold is at most that.
const (
	// sendWindowFrom is where in a second the window opens: 0.70 s, so
	// that a message is visible at most 0.30 s before its instant.
	sendWindowFrom = 700 * time.Millisecond
	// sendWindowTo is where it closes: 0.95 s, so that a message is
	// visible at least 50 ms before its instant: room for the request's
	// way to SQS, which counts the delay from when it takes the message.
	sendWindowTo = 950 * time.Millisecond
	// sendWindowHold is the longest a message sent within the window is
	// visible before its instant: how long the invoker holds it at most.
	sendWindowHold = time.Second - sendWindowFrom
	// alignMinLead is how far off a batch's earliest occurrence must be for
	// the batch to wait for the window: the wait is up to 0.75 s, and an
	// occurrence sooner than this is sent at once (precision first).
	alignMinLead = 2 * time.Second
	// defaultAlignUpTo is Sweeper.AlignUpTo's default.
	defaultAlignUpTo = 100000
)

// send sends one batch of at most 10 entries, retrying with backoff what
// SQS failed for its own reasons (throttling, a passing fault). Each try
// first waits for the send window when it should (see alignWait). An
// entry's id is its index in sends. It returns the indices SQS accepted
// and how many entries it gave up on.
func (r *sweepRun) send(ctx context.Context, entries []types.SendMessageBatchRequestEntry, sends []fireSend) (sent []int, failed int, err error) {
	for attempt := 0; len(entries) > 0 && attempt < max(1, r.s.MaxAttempts); attempt++ {
		if attempt > 0 && sleepCtx(ctx, backoff(attempt-1)) != nil {
			break
		}
		if werr := r.waitWindow(ctx, entries, sends); werr != nil {
			err = fmt.Errorf("send fire messages: waiting for the send window: %w", werr)
			break
		}
		// SQS counts a delay from when it takes the message, so each try
		// counts it from now, not from when the sweep began.
		stampDelays(entries, sends, r.s.Now())
		out, callErr := r.s.Queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &r.s.QueueURL, Entries: entries})
		if callErr != nil {
			err = fmt.Errorf("send fire messages: %w", callErr)
			continue
		}
		var (
			ok      []int
			refused int
			rerr    error
		)
		ok, refused, entries, rerr = r.answered(ctx, entries, out)
		sent = append(sent, ok...)
		failed += refused
		if rerr != nil {
			err = rerr
		}
		if len(entries) > 0 {
			err = fmt.Errorf("SQS failed %d fire messages", len(entries))
		}
	}
	if len(entries) == 0 && failed == 0 {
		err = nil // retries succeeded
	}
	return sent, failed + len(entries), err
}

// stampDelays sets each entry's delay so that it becomes visible at its
// occurrence's planned instant (sends[id].deliverAt), counted from now.
func stampDelays(entries []types.SendMessageBatchRequestEntry, sends []fireSend, now time.Time) {
	for j := range entries {
		i, _ := strconv.Atoi(aws.ToString(entries[j].Id))
		entries[j].DelaySeconds = delaySeconds(sends[i].deliverAt(), now)
	}
}

// answered sorts entries by SQS's answer out: the indices it accepted, how
// many it refused as our fault (retrying will not help; err says why),
// and the entries to try again (failed for SQS's reasons, or not
// answered). An id that is not ours, or reported twice, is ignored.
func (r *sweepRun) answered(ctx context.Context, entries []types.SendMessageBatchRequestEntry, out *sqs.SendMessageBatchOutput) (sent []int, refused int, again []types.SendMessageBatchRequestEntry, err error) {
	left := make(map[string]types.SendMessageBatchRequestEntry, len(entries))
	for _, e := range entries {
		left[aws.ToString(e.Id)] = e
	}
	for _, ok := range out.Successful {
		id := aws.ToString(ok.Id)
		if _, known := left[id]; !known {
			continue // not ours, or reported twice
		}
		i, _ := strconv.Atoi(id)
		sent = append(sent, i)
		delete(left, id)
	}
	for _, f := range out.Failed {
		if _, known := left[aws.ToString(f.Id)]; known && f.SenderFault {
			// Our message is wrong: retrying will not help.
			delete(left, aws.ToString(f.Id))
			refused++
			err = fmt.Errorf("SQS refused a fire message: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			r.s.Log.ErrorContext(ctx, "fire message refused", "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
		}
	}
	again = entries[:0:0]
	for _, e := range left { // failed for SQS's reasons, or not answered: again
		again = append(again, e)
	}
	return sent, refused, again, err
}

// waitWindow waits, through Sleep, for the next send window when a batch
// should wait for it: while the sweep has found at most AlignUpTo
// occurrences, and when the batch's earliest occurrence is at least
// alignMinLead after now. The caller computes its delays from the clock
// after the wait.
func (r *sweepRun) waitWindow(ctx context.Context, entries []types.SendMessageBatchRequestEntry, sends []fireSend) error {
	if r.s.AlignUpTo < 0 {
		return nil
	}
	r.mu.Lock()
	found := r.res.Due
	r.mu.Unlock()
	if found > r.s.AlignUpTo {
		return nil
	}
	now := r.s.Now()
	for j := range entries {
		i, _ := strconv.Atoi(aws.ToString(entries[j].Id))
		if sends[i].deliverAt().Sub(now) < alignMinLead {
			return nil
		}
	}
	d := alignWait(now)
	if d <= 0 {
		return nil
	}
	sleep := r.s.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return sleep(ctx, d)
}

// alignWait is how long from now until the send window is open: 0 within
// it, else until sendWindowFrom of this second or of the next one (at most
// 0.75 s).
func alignWait(now time.Time) time.Duration {
	f := time.Duration(now.Nanosecond()) // where in its second now is
	switch {
	case f < sendWindowFrom:
		return sendWindowFrom - f
	case f < sendWindowTo:
		return 0
	default:
		return time.Second - f + sendWindowFrom
	}
}

// delaySeconds is how long SQS should hold a message so that it becomes
// visible at its scheduled second, rounded down: the invoker waits out the
// rest, so a message is never late for rounding. Sent within the send
// window (sendWindowFrom), the rest is 50-300 ms; sent at once, up to a
// second. Never negative, at most SQS's limit.
func delaySeconds(at, now time.Time) int32 {
	d := at.Sub(now)
	if d <= 0 {
		return 0
	}
	return int32(min(d, maxDelay) / time.Second)
}
