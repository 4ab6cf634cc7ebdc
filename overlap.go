package main

// Overlap policies (issue 14, item 2): what an occurrence of an HTTP timer
// does while the timer's previous call still runs. A timer with a policy
// other than allow holds a run lease, one item per timer (pk its id, sk
// "run"), while each of its calls runs: skip records an occurrence that
// finds it held as skipped; queue-one makes it the lease's one waiter,
// which waits in the fire queue (ChangeMessageVisibility), not in a
// running Lambda, and is handed the lease and woken when the call ends.
// The lease ends by itself at the call's deadline, so a call that crashed
// blocks its timer for at most the target's timeout and the invoker's
// margin. Timers with the default policy never touch the item.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Overlap policies, the values of a timer's overlap.
const (
	// OverlapAllow calls the target whatever still runs: the default,
	// stored as "".
	OverlapAllow = "allow"
	// OverlapSkip skips an occurrence whose timer's previous call still
	// runs: recorded as skipped and settled, with no retry and no dead
	// letter.
	OverlapSkip = "skip"
	// OverlapQueueOne holds such an occurrence until the running call
	// ends; while one waits, later ones are skipped.
	OverlapQueueOne = "queue-one"
)

// OutcomeSkipped is an occurrence not called because its timer's previous
// call still ran (overlap skip, or queue-one with one waiting already):
// it appears in the history only, and settles the occurrence.
const OutcomeSkipped = "skipped"

// handoffMargin is how long after a waiter's message is due back the
// lease handed to it still holds: time for SQS to hand the message out
// and for the invoker to claim it. A waiter that never comes (its timer
// paused, deleted) blocks the next call no longer than that.
const handoffMargin = 30 * time.Second

// wakeDelay is how soon a woken waiter's message is visible again.
const wakeDelay = time.Second

// maxVisibility is SQS's longest visibility timeout, 12 hours.
const maxVisibility = 12 * time.Hour

// errWaiting leaves a queue-one occurrence in the fire queue until the
// call it waits for ends.
var errWaiting = errors.New("waiting for the timer's previous call to end")

// checkControls checks a definition's overlap policy and
// pauseAfterFailures, and returns them as stored: "" for allow, 0 for
// never pausing.
func checkControls(in putRequest) (string, int, error) {
	overlap := in.Overlap
	switch overlap {
	case "", OverlapAllow:
		overlap = ""
	case OverlapSkip, OverlapQueueOne:
		if in.HTTP == nil {
			return "", 0, Errorf(EINVALID, "overlap %s needs an http target: a callback timer's delivery is one SQS send, which never overlaps the next", overlap)
		}
	default:
		return "", 0, Errorf(EINVALID, "overlap must be allow, skip or queue-one")
	}
	pause, err := pauseAfterOf(in.PauseAfterFailures)
	return overlap, pause, err
}

// RunLease is a timer's run lease as its item holds it: the occurrence
// whose call runs and until when (Unix milliseconds), and the occurrence
// waiting for it, if any, with when its message is due back and its
// receipt handle, by which the holder wakes it.
type RunLease struct {
	Holder        string `dynamodbav:"holder"`
	Until         int64  `dynamodbav:"leaseUntil"`
	Waiter        string `dynamodbav:"waiter"`
	WaiterUntil   int64  `dynamodbav:"waiterUntil"`
	WaiterReceipt string `dynamodbav:"waiterReceipt"`
}

// held reports whether a call holds l at now.
func (l RunLease) held(now time.Time) bool { return l.Holder != "" && l.Until >= now.UnixMilli() }

// waiting reports whether an occurrence other than the holder waits for
// l at now.
func (l RunLease) waiting(now time.Time) bool {
	return l.Waiter != "" && l.Waiter != l.Holder && l.WaiterUntil >= now.UnixMilli()
}

// runLeaseStore is what the overlap policies need from the timer table.
// Occurrences are named by their sort keys (runName).
type runLeaseStore interface {
	// AcquireRun takes timer id's lease for occ until until, if it is free,
	// expired or occ's already; otherwise it returns the lease as it is.
	AcquireRun(ctx context.Context, id, occ string, now, until time.Time) (RunLease, bool, error)
	// WaitRun makes occ the lease's waiter, due back until until, if a
	// call holds the lease and no other occurrence waits; otherwise it
	// returns the lease as it is.
	WaitRun(ctx context.Context, id, occ, receipt string, now, until time.Time) (RunLease, bool, error)
	// EndRun ends occ's hold of the lease: it hands it to the waiter, if
	// one waits, and returns the waiter's receipt handle, or else deletes
	// it. A lease occ no longer holds is left alone.
	EndRun(ctx context.Context, id, occ string, now time.Time) (string, error)
	// ReleaseToWait ends the lease of c's claim on o, as ReleaseClaim,
	// and counts a receive spent waiting on o's item.
	ReleaseToWait(ctx context.Context, o Occurrence, c Claimant) error
	// Waits is the number of receives o spent waiting.
	Waits(ctx context.Context, o Occurrence) (int, error)
}

var _ runLeaseStore = (*Store)(nil)

// runName names occurrence o in a run lease: its item's sort key.
func runName(o Occurrence) string { return o.sortKey() }

// describeRun is occ, a runName, for people: the instant, and whether it
// was fired by hand.
func describeRun(occ string) string {
	s, manual := strings.CutSuffix(strings.TrimPrefix(occ, skOccurrence), "#manual")
	if at, err := time.Parse(occurrenceLayout, s); err == nil {
		s = at.UTC().Format(time.RFC3339Nano)
	}
	if manual {
		return "the fire by hand at " + s
	}
	return "the occurrence of " + s
}

// runValues are the expression values of a lease call.
func runValues(occ string, now time.Time, more map[string]types.AttributeValue) map[string]types.AttributeValue {
	v := map[string]types.AttributeValue{
		":me":  &types.AttributeValueMemberS{Value: occ},
		":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
	}
	for k, x := range more {
		v[k] = x
	}
	return v
}

// millis is t as a number attribute of Unix milliseconds.
func millis(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

// runOutcome turns a conditional lease write's error into its result: a
// failed condition is the lease as it was, not an error.
func runOutcome(err error, what string) (RunLease, bool, error) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		var l RunLease
		_ = attributevalue.UnmarshalMap(ccf.Item, &l)
		return l, false, nil
	}
	if err != nil {
		return RunLease{}, false, fmt.Errorf("%s: %w", what, err)
	}
	return RunLease{}, true, nil
}

// AcquireRun implements runLeaseStore with one conditional UpdateItem.
// The item expires by TTL a day after the lease.
func (s *Store) AcquireRun(ctx context.Context, id, occ string, now, until time.Time) (RunLease, bool, error) {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: itemKey(id, skRun),
		UpdateExpression:    aws.String("SET holder = :me, leaseUntil = :until, expiresAt = :exp"),
		ConditionExpression: aws.String("attribute_not_exists(holder) OR leaseUntil < :now OR holder = :me"),
		ExpressionAttributeValues: runValues(occ, now, map[string]types.AttributeValue{
			":until": millis(until),
			":exp":   &types.AttributeValueMemberN{Value: strconv.FormatInt(until.Add(24*time.Hour).Unix(), 10)},
		}),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return runOutcome(err, "acquire the run lease of "+id)
}

// WaitRun implements runLeaseStore with one conditional UpdateItem. A
// waiter that is the holder (it was handed the lease, or took it once it
// expired) or whose message is overdue counts as none.
func (s *Store) WaitRun(ctx context.Context, id, occ, receipt string, now, until time.Time) (RunLease, bool, error) {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: itemKey(id, skRun),
		UpdateExpression: aws.String("SET waiter = :me, waiterUntil = :until, waiterReceipt = :rh"),
		ConditionExpression: aws.String("attribute_exists(holder) AND leaseUntil >= :now AND NOT holder = :me AND " +
			"(attribute_not_exists(waiter) OR waiterUntil < :now OR waiter = :me OR waiter = holder)"),
		ExpressionAttributeValues: runValues(occ, now, map[string]types.AttributeValue{
			":until": millis(until), ":rh": &types.AttributeValueMemberS{Value: receipt},
		}),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return runOutcome(err, "wait for the run lease of "+id)
}

// EndRun implements runLeaseStore: a conditional DeleteItem when no one
// waits (the common case, one write), else the hand-off, an UpdateItem
// that makes the waiter the holder until its message is due back.
func (s *Store) EndRun(ctx context.Context, id, occ string, now time.Time) (string, error) {
	for range 3 {
		_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: &s.Table, Key: itemKey(id, skRun),
			ConditionExpression:                 aws.String("holder = :me AND (attribute_not_exists(waiter) OR waiterUntil < :now OR waiter = :me OR waiter = holder)"),
			ExpressionAttributeValues:           runValues(occ, now, nil),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		old, _, err := runOutcome(err, "end the run lease of "+id)
		if err != nil || old.Holder != occ {
			return "", err // ended, or no longer occ's: it expired and was taken
		}
		_, err = s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.Table, Key: itemKey(id, skRun),
			UpdateExpression:    aws.String("SET holder = waiter, leaseUntil = waiterUntil REMOVE waiter, waiterUntil, waiterReceipt"),
			ConditionExpression: aws.String("holder = :me AND waiter = :w AND waiterUntil >= :now"),
			ExpressionAttributeValues: runValues(occ, now, map[string]types.AttributeValue{
				":w": &types.AttributeValueMemberS{Value: old.Waiter},
			}),
		})
		if _, ok, err := runOutcome(err, "hand on the run lease of "+id); ok || err != nil {
			return old.WaiterReceipt, err
		}
		// The waiter changed or expired meanwhile: look again.
	}
	return "", fmt.Errorf("end the run lease of %s: it kept changing", id)
}

// ReleaseToWait implements runLeaseStore with one UpdateItem, the
// ReleaseClaim that a waiting occurrence makes anyway.
func (s *Store) ReleaseToWait(ctx context.Context, o Occurrence, c Claimant) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.Table, Key: o.key(),
		UpdateExpression:    aws.String("REMOVE leaseUntil ADD waits :one"),
		ConditionExpression: aws.String("claimToken = :token"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":token": &types.AttributeValueMemberS{Value: c.Token}, ":one": &types.AttributeValueMemberN{Value: "1"},
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release the claim of %s to wait: %w", o, err)
	}
	return nil
}

// Waits implements runLeaseStore with one consistent GetItem.
func (s *Store) Waits(ctx context.Context, o Occurrence) (int, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.Table, Key: o.key(), ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("waits"),
	})
	if err != nil {
		return 0, fmt.Errorf("read the waits of %s: %w", o, err)
	}
	var w struct {
		Waits int `dynamodbav:"waits"`
	}
	_ = attributevalue.UnmarshalMap(out.Item, &w)
	return w.Waits, nil
}

// enterRun applies d's overlap policy before its call, once admit has
// filled d in from its timer. It reports held when d now holds its
// timer's run lease (leaveRun ends it after the outcome), and done when
// the message ends here, with the error handle returns: skipped (nil),
// waiting (errWaiting), or a failed lease call. Timers with the default
// policy, and callback timers, pass with no call made.
func (run *batchRun) enterRun(ctx context.Context, d *delivery) (held, done bool, err error) {
	inv := run.inv
	leases, ok := inv.Timers.(runLeaseStore)
	if !ok || d.msg.HTTP == nil || d.msg.Overlap == "" || d.msg.Overlap == OverlapAllow {
		return false, false, nil
	}
	occ := d.msg.occurrence()
	if d.msg.Overlap == OverlapQueueOne && d.attempt > 1 {
		// A receive spent waiting is no attempt: it must not use up the
		// retry policy's attempts.
		waits, err := leases.Waits(ctx, occ)
		if err != nil {
			return false, true, run.runFailed(ctx, d, err)
		}
		d.attempt = max(1, d.attempt-waits)
	}
	for range 3 {
		now := inv.now()
		lease, got, err := leases.AcquireRun(ctx, occ.TimerID, runName(occ), now, inv.runUntil(ctx, d, now))
		switch {
		case err != nil:
			return false, true, run.runFailed(ctx, d, err)
		case got:
			return true, false, nil
		case d.msg.Overlap == OverlapSkip:
			return false, true, run.skipRun(ctx, d, lease)
		}
		again, err := run.waitRun(ctx, leases, d, lease)
		if !again {
			return false, true, err
		}
	}
	return false, true, run.skipRun(ctx, d, RunLease{})
}

// runFailed ends d's attempt on a lease call's error: its claim is
// released, and SQS delivers it again.
func (run *batchRun) runFailed(ctx context.Context, d *delivery, err error) error {
	run.inv.Log.ErrorContext(ctx, "run lease failed", append(d.attrs, "error", err.Error())...)
	run.inv.release(ctx, &d.msg, d.claimant)
	return err
}

// runUntil is when the run lease d takes at now ends by itself: the call's
// deadline (the target's timeout and the invoker's margin around the
// call), and never after the function's own.
func (inv *Invoker) runUntil(ctx context.Context, d *delivery, now time.Time) time.Time {
	timeout := inv.Timeout
	if d.msg.HTTP.TimeoutSeconds > 0 {
		timeout = time.Duration(d.msg.HTTP.TimeoutSeconds) * time.Second
	}
	until := now.Add(timeout + InvokeMarginSeconds*time.Second)
	if deadline, ok := ctx.Deadline(); ok && deadline.Add(time.Second).Before(until) {
		until = deadline.Add(time.Second)
	}
	return until
}

// waitRun makes d, a queue-one occurrence that found lease held, its
// waiter: its claim is released, and its message comes back when the
// lease ends by itself, or earlier when its holder wakes it. It reports
// again when the lease came free meanwhile; otherwise the message ends
// here, with the error handle returns. One waiting already skips d.
//
// The message's delay is set before d becomes the waiter, so that it can
// never undo the holder's wake, which may come as soon as d waits.
func (run *batchRun) waitRun(ctx context.Context, leases runLeaseStore, d *delivery, lease RunLease) (again bool, err error) {
	inv, occ := run.inv, d.msg.occurrence()
	now := inv.now()
	if lease.waiting(now) {
		return false, run.skipRun(ctx, d, lease) // one waits already
	}
	// Back just after the lease would end by itself (visibility is whole
	// seconds), within SQS's bounds.
	vis := min(maxVisibility, max(time.Second, time.UnixMilli(lease.Until).Sub(now).Truncate(time.Second)+2*time.Second))
	inv.delayRetry(ctx, d.rec, vis)
	old, ok, err := leases.WaitRun(ctx, occ.TimerID, runName(occ), d.rec.ReceiptHandle, now, now.Add(vis+handoffMargin))
	switch {
	case err != nil:
		return false, run.runFailed(ctx, d, err)
	case !ok && !old.held(now):
		// The call ended meanwhile: take the lease, the message hidden
		// again for as long as the queue's own visibility timeout.
		inv.delayRetry(ctx, d.rec, time.Duration(VisibilityFactor*(MaxTimeoutSeconds+InvokeMarginSeconds))*time.Second)
		return true, nil
	case !ok:
		return false, run.skipRun(ctx, d, old)
	}
	if err := leases.ReleaseToWait(ctx, occ, d.claimant); err != nil {
		inv.Log.WarnContext(ctx, "claim not released to wait; it frees itself at the function's deadline", append(d.attrs, "error", err.Error())...)
	}
	inv.Log.InfoContext(ctx, "waiting for the previous call to end", append(d.attrs, "running", describeRun(lease.Holder),
		"backInSeconds", int(vis/time.Second))...)
	return false, errWaiting
}

// skipRun records d's occurrence as skipped, which settles it: lease is
// the call that still runs. A Final occurrence's timer is deleted, as
// after any final outcome.
func (run *batchRun) skipRun(ctx context.Context, d *delivery, lease RunLease) error {
	inv, msg := run.inv, &d.msg
	reason := "skipped: the previous call was still running"
	if lease.Holder != "" {
		reason = "skipped: the call of " + describeRun(lease.Holder) + " was still running"
	}
	now := inv.now()
	fire := LastFire{ScheduledAt: msg.ScheduledAt.UTC(), AttemptedAt: now.UTC(), Attempt: d.attempt, Outcome: OutcomeSkipped,
		Manual: msg.Manual, Replay: msg.Replay, Error: reason}
	if _, err := inv.persist(ctx, func(ctx context.Context) error {
		return inv.Timers.Record(ctx, msg.occurrence(), fire, false, now)
	}); err != nil {
		inv.Log.ErrorContext(ctx, "skipped occurrence not recorded", append(d.attrs, "error", err.Error())...)
		inv.release(ctx, msg, d.claimant)
		return err
	}
	inv.Log.InfoContext(ctx, "occurrence skipped; the previous call is still running", append(d.attrs, "reason", reason)...)
	if msg.Final && !msg.Manual {
		if _, err := inv.persist(ctx, func(ctx context.Context) error {
			return inv.Timers.DeleteCompleted(ctx, msg.TimerID, msg.Version)
		}); err != nil {
			inv.Log.WarnContext(ctx, "completed timer not deleted", "timerId", msg.TimerID, "error", err.Error())
		}
	}
	return nil
}

// leaveRun ends d's hold of its timer's run lease after its outcome, and
// wakes the occurrence handed the lease, if one waited. Should either
// fail, the lease ends by itself at its deadline, and the waiter's message
// comes back when its own delay ends.
func (run *batchRun) leaveRun(ctx context.Context, d *delivery) {
	inv := run.inv
	leases, ok := inv.Timers.(runLeaseStore)
	if !ok {
		return
	}
	occ := d.msg.occurrence()
	receipt, err := leases.EndRun(ctx, occ.TimerID, runName(occ), inv.now())
	if err != nil {
		inv.Log.WarnContext(ctx, "run lease not ended; it ends by itself at the call's deadline", append(d.attrs, "error", err.Error())...)
		return
	}
	if receipt == "" || inv.Visibility == nil || inv.FireQueueURL == "" {
		return
	}
	// A second, not at once: the waiter's invocation may still be
	// releasing its claim, which its next receive takes.
	if _, err := inv.Visibility.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &inv.FireQueueURL, ReceiptHandle: &receipt, VisibilityTimeout: int32(wakeDelay / time.Second),
	}); err != nil {
		inv.Log.WarnContext(ctx, "waiting occurrence not woken; it comes back when its delay ends", append(d.attrs, "error", err.Error())...)
	}
}

// endStaleRun ends the lease a stale occurrence of a timer with a policy
// may have been handed as its waiter (t is the timer as read, nil when
// deleted), so that the timer's next call does not wait for it.
func (run *batchRun) endStaleRun(ctx context.Context, d *delivery, t *Timer) {
	if t == nil || t.Overlap == "" || t.HTTP == nil {
		return
	}
	run.leaveRun(ctx, d)
}
