package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Version names this build in the User-Agent of every delivery.
const Version = "0.1.0"

// parameterGetter is the one SSM call the invoker makes.
type parameterGetter interface {
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, opts ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

// messageSender sends to the callback and dead-letter queues.
type messageSender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// visibilityChanger delays the retry of a failed message.
type visibilityChanger interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// claimStore is what the invoker needs from the timer table: an
// occurrence's item takes its claim, then its outcome (Record), which
// settles it when delivered; nothing is written on the timer itself.
type claimStore interface {
	Claim(ctx context.Context, o Occurrence, c Claimant, now, leaseUntil time.Time) (ClaimResult, error)
	Get(ctx context.Context, id string) (*Timer, error)
	Record(ctx context.Context, o Occurrence, f LastFire, deadLettered bool, now time.Time) error
	Duplicate(ctx context.Context, o Occurrence, now time.Time) error
	ReleaseClaim(ctx context.Context, o Occurrence, c Claimant) error
	DeleteLink(ctx context.Context, id string, at int64, parts int, version int64) error
	DeleteCompleted(ctx context.Context, id string, version int64) error
}

// Invoker delivers fire messages: an HTTP call for timers with a target,
// otherwise the timer's callback data as a message on the callback queue.
// It claims each occurrence before delivering it, so that a duplicate
// message (two sweeps, a redelivery) does not deliver it twice, and a
// deleted, replaced or paused timer delivers nothing.
type Invoker struct {
	Secrets          parameterGetter
	Callback         messageSender
	CallbackQueueURL string
	// CallbackBatch, when set, sends the callback messages of one batch
	// together, in SendMessageBatch calls of up to 10 (see
	// callbackBatcher); nil sends each with Callback's SendMessage.
	CallbackBatch batchSender
	// CallbackWindow is how long a callback message waits for others of
	// its batch. Default 5 ms.
	CallbackWindow time.Duration
	// Timers is where occurrences are claimed and outcomes recorded. Nil
	// skips both, for unit tests of delivery alone.
	Timers claimStore
	// Visibility and FireQueueURL delay a failed message's retry; nil
	// leaves it to the queue's visibility timeout.
	Visibility   visibilityChanger
	FireQueueURL string
	// DeadLetterQueueURL receives occurrences whose retries ran out, with
	// the reason. Empty leaves them to the queue's redrive policy.
	DeadLetterQueueURL string
	// Client makes the HTTP calls and notifications. Default:
	// newHTTPClient(false), which refuses every address not globally
	// routable (IPv4 embedded in IPv6 included), does not follow
	// redirects, never resends a request, and gives up connecting after
	// 20 seconds.
	Client *http.Client
	// Timeout bounds one HTTP call when its target names none. Default
	// 20 seconds; the function's own deadline bounds it too.
	Timeout time.Duration
	// Concurrency bounds the messages of a batch delivered at once. Default 10.
	Concurrency int
	// MaxEarly is how early a message may arrive and still be held until
	// its instant: the sweeper's rounding plus polling jitter. A message
	// earlier than that is delivered at once. Default 3 seconds.
	MaxEarly time.Duration
	// Log receives one line per delivery. Default slog.Default().
	Log *slog.Logger
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Metrics receives one record per batch. Nil: none.
	Metrics *Metrics
	// SecretPrefix is the SSM path every aws-secret(...) must lie under,
	// checked again at firing. Default DefaultSecretPrefix.
	SecretPrefix string
	// SecretTTL is how long a resolved secret is reused before SSM is
	// asked again. Default 30 seconds; 0 asks at every firing.
	SecretTTL time.Duration
	// RecordReserve is how long before the function's deadline the
	// invoker stops retrying the record of an outcome, leaving time to log
	// the repair line and return the batch. Zero means 1 second.
	RecordReserve time.Duration
	// CallReserve is how long before the function's deadline a call still
	// running is cut short and recorded as a failed attempt. Zero means
	// twice RecordReserve: time to record it, and as much again to set its
	// retry delay and return the batch.
	CallReserve time.Duration
	// Limits holds the destinations' limits (limits.go); nil: none.
	Limits destinationStore

	cache      secretCache
	limitViews limitCache
}

// NewInvoker returns an Invoker with the defaults above.
func NewInvoker(secrets parameterGetter, callback messageSender, callbackQueueURL string) *Invoker {
	return &Invoker{Secrets: secrets, Callback: callback, CallbackQueueURL: callbackQueueURL,
		Client: newHTTPClient(false), Timeout: 20 * time.Second, Concurrency: 10, MaxEarly: 3 * time.Second,
		Log: slog.Default(), Now: time.Now, SecretPrefix: DefaultSecretPrefix, SecretTTL: 30 * time.Second}
}

// Invoke delivers each message of an SQS batch and reports the ones that
// failed, so that SQS retries those and only those.
func (inv *Invoker) Invoke(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	var (
		mu    sync.Mutex
		resp  = events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		wg    sync.WaitGroup
		slots = make(chan struct{}, max(1, inv.Concurrency))
		run   = &batchRun{inv: inv, callbacks: inv.newCallbackBatcher(ctx)}
	)
	defer run.emit(inv.Metrics)
	for _, rec := range ev.Records {
		wg.Add(1)
		slots <- struct{}{}
		go func(rec events.SQSMessage) {
			defer func() { <-slots; wg.Done() }()
			if err := run.handle(ctx, rec); err != nil {
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				mu.Unlock()
			}
		}(rec)
	}
	wg.Wait()
	return resp
}

// now is Now, or the wall clock when an Invoker built by hand has none.
func (inv *Invoker) now() time.Time {
	if inv.Now == nil {
		return time.Now()
	}
	return inv.Now()
}

// batchRun is one Invoke: what its messages share. It is passed to each
// message's steps rather than carried in their context, so that what a
// step depends on is in its signature.
type batchRun struct {
	inv *Invoker
	// callbacks batches the callback messages of this Invoke; nil sends
	// each on its own.
	callbacks *callbackBatcher

	mu     sync.Mutex
	counts batchCounts
	limits limitTally
}

// batchCounts are a batch's outcomes, for its metrics record.
type batchCounts struct {
	delivered, failed, retried, deadLettered, duplicates, stale int
	lateness                                                    []float64
}

// tally updates the batch's counts; its messages are handled concurrently.
func (run *batchRun) tally(f func(*batchCounts)) {
	run.mu.Lock()
	defer run.mu.Unlock()
	f(&run.counts)
}

// emit writes the batch's metrics record to m.
func (run *batchRun) emit(m *Metrics) {
	run.mu.Lock()
	defer run.mu.Unlock()
	c := run.counts
	m.Emit("Part", "invoker", count("Delivered", c.delivered), count("DeliveryFailures", c.failed),
		count("Retried", c.retried), count("DeadLettered", c.deadLettered), count("DuplicatesSuppressed", c.duplicates),
		count("StaleDropped", c.stale), Metric{Name: "Lateness", Unit: "Milliseconds", Values: c.lateness})
	run.limits.emit(m)
}

// delivery is one message on its way through handle's steps.
type delivery struct {
	rec      events.SQSMessage
	msg      FireMessage
	claimant Claimant
	attempt  int
	// retry is the message's policy, defaults filled in, once admit has
	// filled the message in from its timer.
	retry RetryPolicy
	// attrs are the attributes of every log line about the message; the
	// steps add what they learn.
	attrs []any
	// lateMs is how late the attempt began, for the Lateness metric.
	lateMs int64
	// limit is what the delivery holds of its destination's limit (nil:
	// none), retryAfter the pause its target asked for (limits.go).
	limit      *limitHold
	retryAfter time.Duration
}

// permanentError is a delivery failure no retry can mend, such as a
// request that cannot be built.
type permanentError struct{ error }

// handle delivers one message. It returns nil when SQS should delete the
// message (delivered, a duplicate, stale, or dead-lettered) and an error
// when SQS should deliver it again.
func (run *batchRun) handle(ctx context.Context, rec events.SQSMessage) error {
	d, err := run.decode(ctx, rec)
	if d == nil {
		return err
	}
	if held, err := run.holdEarly(ctx, d); held {
		return err
	}
	if err := run.inv.wait(ctx, d.msg.plannedAt()); err != nil {
		return err
	}
	if done, err := run.admit(ctx, d); done {
		return err
	}
	held, done, err := run.enterRun(ctx, d) // the overlap policy (overlap.go)
	if done {
		return err
	}
	if held {
		defer run.leaveRun(ctx, d)
	}
	d.retry = d.msg.Retry.withDefaults()
	if done, err := run.limit(ctx, d); done {
		return err
	}
	if d.attempt > d.retry.MaxAttempts+1 {
		return run.exhausted(ctx, d)
	}
	fire, err := run.deliver(ctx, d)
	return run.settle(ctx, d, fire, err)
}

// decode reads rec's fire message. A message that cannot be read is
// poison, never retried: decode dead-letters it and returns a nil
// delivery, with the error handle returns for it.
func (run *batchRun) decode(ctx context.Context, rec events.SQSMessage) (*delivery, error) {
	var msg FireMessage
	if err := json.Unmarshal([]byte(rec.Body), &msg); err != nil || msg.TimerID == "" {
		run.inv.Log.ErrorContext(ctx, "malformed fire message", "messageId", rec.MessageId)
		return nil, run.inv.deadLetter(ctx, rec, nil, "malformed fire message", receiveCount(rec))
	}
	attempt := spreadAttempt(&msg, rec) // the receive count, unless an early receive was held (spread.go)
	return &delivery{rec: rec, msg: msg, attempt: attempt,
		claimant: Claimant{MessageID: rec.MessageId, Token: newID(), Replay: msg.Replay},
		attrs: []any{"timerId", msg.TimerID, "scheduledAt", msg.ScheduledAt.UTC().Format(time.RFC3339),
			"messageId", rec.MessageId, "attempt", attempt}}, nil
}

// wait holds a message that came early until its instant at. SQS delays
// are whole seconds, rounded down, so a message may arrive early: at most
// 0.3 s when the sweeper sent it within its send window (sendWindowFrom in
// sweep.go), up to a second when it was sent at once (by the API, for an
// occurrence under 2 s away, or by a sweep beyond Sweeper.AlignUpTo
// occurrences). A message earlier than MaxEarly is not held. The hold
// ends where a call is cut short (CallReserve before the deadline), or it
// could run into the deadline and leave no trace of the attempt.
func (inv *Invoker) wait(ctx context.Context, at time.Time) error {
	early := at.Sub(inv.now())
	if early <= 0 || early > inv.MaxEarly {
		return nil
	}
	if deadline, ok := ctx.Deadline(); ok {
		early = min(early, time.Until(deadline.Add(-inv.callReserve())))
	}
	if early <= 0 {
		return nil
	}
	return sleepCtx(ctx, early)
}

// admit claims d's occurrence and reads its timer, whose current version
// fills in d's message. It reports done when the message ends there (in
// progress elsewhere, a duplicate, stale, or a failed read), with the
// error handle returns. Without Timers every message is admitted as it is.
func (run *batchRun) admit(ctx context.Context, d *delivery) (done bool, err error) {
	inv := run.inv
	if inv.Timers == nil {
		return false, nil
	}
	if done, err := run.claim(ctx, d); done {
		return true, err
	}
	t, err := inv.Timers.Get(ctx, d.msg.TimerID)
	if reason := staleReason(&d.msg, t, err); reason != "" {
		run.dropStale(ctx, d, reason)
		run.endStaleRun(ctx, d, t)
		return true, nil
	}
	if err != nil {
		inv.Log.ErrorContext(ctx, "timer read failed", append(d.attrs, "error", err.Error())...)
		inv.release(ctx, &d.msg, d.claimant)
		return true, err
	}
	d.msg.fillFrom(t)
	return false, nil
}

// claim takes d's occurrence for this receive of its message. It reports
// done when another has it: a duplicate is dropped (and counted in the
// occurrence's history), a copy in progress elsewhere is left for later.
func (run *batchRun) claim(ctx context.Context, d *delivery) (done bool, err error) {
	inv := run.inv
	occ := d.msg.occurrence()
	claim, err := inv.Timers.Claim(ctx, occ, d.claimant, inv.now(), inv.leaseUntil(ctx))
	if err != nil {
		inv.Log.ErrorContext(ctx, "claim failed", append(d.attrs, "error", err.Error())...)
		return true, err
	}
	switch claim {
	case ClaimInProgress:
		// SQS handed this message out again while an earlier receive
		// still delivers it. Failing this copy leaves it to the queue's
		// visibility timeout, by when the earlier one has settled it.
		inv.Log.InfoContext(ctx, "delivery in progress elsewhere; left for later", d.attrs...)
		return true, errInProgress
	case ClaimDuplicate:
		inv.Log.InfoContext(ctx, "duplicate suppressed", d.attrs...)
		run.tally(func(c *batchCounts) { c.duplicates++ })
		if _, err := inv.persist(ctx, func(ctx context.Context) error { return inv.Timers.Duplicate(ctx, occ, inv.now()) }); err != nil {
			inv.Log.WarnContext(ctx, "duplicate not counted in the history", append(d.attrs, "error", err.Error())...)
		}
		return true, nil
	}
	return false, nil
}

// staleReason is why msg's occurrence is no longer due, given the read of
// its timer (t, err), or "" when it is (or the read failed).
func staleReason(msg *FireMessage, t *Timer, err error) string {
	switch {
	case ErrorCode(err) == ENOTFOUND:
		return "timer deleted"
	case err != nil:
		return ""
	case t.Version != msg.Version:
		return "timer replaced"
	case t.PausedAt != nil && !msg.Manual && !msg.Replay: // by hand, it is delivered anyway
		return "timer paused"
	}
	return ""
}

// dropStale drops d's stale occurrence, and ends its timer's chain of
// links there: a replaced timer has its own, a resumed one gets one again.
func (run *batchRun) dropStale(ctx context.Context, d *delivery, reason string) {
	inv, msg := run.inv, &d.msg
	inv.Log.InfoContext(ctx, "stale occurrence dropped", append(d.attrs, "reason", reason)...)
	run.tally(func(c *batchCounts) { c.stale++ })
	if msg.NextLinkAt == 0 {
		return
	}
	if _, err := inv.persist(ctx, func(ctx context.Context) error {
		return inv.Timers.DeleteLink(ctx, msg.TimerID, msg.NextLinkAt, msg.NextLinkParts, msg.Version)
	}); err != nil {
		inv.Log.WarnContext(ctx, "stale timer's next link not deleted; it is dropped again when it comes", append(d.attrs, "error", err.Error())...)
	}
}

// exhausted ends a message whose tries ran out before, but whose
// dead-lettering failed: the target is not called again, only the
// dead-letter queue is tried.
func (run *batchRun) exhausted(ctx context.Context, d *delivery) error {
	inv, msg := run.inv, &d.msg
	reason := fmt.Sprintf("retries exhausted after %d attempts", d.retry.MaxAttempts+1)
	if err := run.giveUp(ctx, d, reason, append(d.attrs, "error", reason)); err != nil {
		inv.release(ctx, msg, d.claimant)
		return err
	}
	inv.finish(ctx, msg, LastFire{ScheduledAt: msg.ScheduledAt.UTC(), AttemptedAt: inv.now().UTC(), Attempt: d.attempt,
		Replay: msg.Replay, Manual: msg.Manual, Outcome: OutcomeFailed, Error: reason}, true)
	return nil
}

// deliver makes d's attempt and returns its outcome so far (all but
// Outcome and Error) with the delivery's error.
func (run *batchRun) deliver(ctx context.Context, d *delivery) (LastFire, error) {
	inv, msg := run.inv, &d.msg
	start := inv.now()
	status, err := run.send(ctx, msg, newDeliveryContext(msg, d.attempt))
	fire := LastFire{ScheduledAt: msg.ScheduledAt.UTC(), AttemptedAt: start.UTC(), Attempt: d.attempt, Replay: msg.Replay,
		Status: status, LatencyMs: inv.now().Sub(start).Milliseconds(), Manual: msg.Manual}
	d.lateMs = start.Sub(msg.plannedAt()).Milliseconds() // a spread occurrence is late after its planned instant
	if !msg.PlannedAt.IsZero() {
		fire.PlannedAt = ptrTime(msg.PlannedAt.UTC())
	}
	d.attrs = append(d.attrs, "latenessMs", d.lateMs, "durationMs", fire.LatencyMs)
	if status != 0 {
		d.attrs = append(d.attrs, "status", status)
	}
	return fire, err
}

// settle records the outcome of d's attempt, whose error was err: it
// delivered, it failed for good (dead-lettered), or it is to be retried.
// It returns the error handle returns.
func (run *batchRun) settle(ctx context.Context, d *delivery, fire LastFire, err error) error {
	inv := run.inv
	fire.LimitedMs = run.settleLimit(ctx, d, fire, err)
	if err == nil {
		fire.Outcome = OutcomeDelivered
		inv.Log.InfoContext(ctx, "delivered", d.attrs...)
		run.tally(func(c *batchCounts) { c.delivered++; c.lateness = append(c.lateness, float64(d.lateMs)) })
		inv.finish(ctx, &d.msg, fire, false)
		return nil
	}
	fire.Error = err.Error()
	d.attrs = append(d.attrs, "error", fire.Error)
	if !d.retryable(err, inv.now) {
		fire.Outcome = OutcomeFailed
		if err := run.giveUp(ctx, d, fire.Error, d.attrs); err != nil {
			inv.release(ctx, &d.msg, d.claimant)
			return err
		}
		inv.finish(ctx, &d.msg, fire, true)
		return nil
	}
	return run.retryLater(ctx, d, fire, err)
}

// retryable reports whether d's attempt, failed with err, may be tried
// again: the error is not permanent, and the policy has attempts and age
// to spare. now is asked last, and only if needed.
func (d *delivery) retryable(err error, now func() time.Time) bool {
	var perm permanentError
	return !errors.As(err, &perm) && d.attempt <= d.retry.MaxAttempts &&
		now().Sub(d.msg.plannedAt()) <= time.Duration(d.retry.MaxAgeSeconds)*time.Second
}

// retryLater records d's failed attempt as retrying and delays the
// message's next receive; it returns err, so that SQS delivers it again.
func (run *batchRun) retryLater(ctx context.Context, d *delivery, fire LastFire, err error) error {
	inv := run.inv
	fire.Outcome = OutcomeRetrying
	delay := d.retryDelayOf(fire.Attempt)
	inv.Log.WarnContext(ctx, "delivery failed; will retry", append(d.attrs, "retryInSeconds", int(delay/time.Second))...)
	run.tally(func(c *batchCounts) { c.failed++; c.retried++ })
	inv.finish(ctx, &d.msg, fire, false)
	inv.delayRetry(ctx, d.rec, delay)
	return err
}

// delayRetry sets the visibility of rec to delay, when the invoker has
// the fire queue's; otherwise, or should it fail, the queue's visibility
// timeout applies.
func (inv *Invoker) delayRetry(ctx context.Context, rec events.SQSMessage, delay time.Duration) {
	if inv.Visibility == nil || inv.FireQueueURL == "" {
		return
	}
	_, err := inv.Visibility.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &inv.FireQueueURL, ReceiptHandle: &rec.ReceiptHandle, VisibilityTimeout: int32(delay / time.Second),
	})
	if err != nil {
		inv.Log.WarnContext(ctx, "retry delay not set; the queue's visibility timeout applies", "messageId", rec.MessageId, "error", err.Error())
	}
}

// errInProgress fails a copy of a message whose earlier receive is still
// delivering it.
var errInProgress = errors.New("delivery in progress elsewhere")

// leaseUntil is when the claim this function takes must be free again:
// its own deadline (a function that timed out delivers nothing more), or
// Lambda's longest timeout when ctx has none.
func (inv *Invoker) leaseUntil(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d.Add(time.Second)
	}
	return inv.now().Add(15 * time.Minute)
}

// receiveCount is how often SQS has handed out this message: the attempt.
func receiveCount(rec events.SQSMessage) int {
	n, err := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// causeOf drops the URL that *url.Error repeats: it may hold a secret.
func causeOf(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// send makes one delivery: the HTTP call of msg's target, or else its
// callback message, with dc's placeholders resolved. It returns the HTTP
// status, if any. Errors never contain a resolved secret: they name the
// placeholder's URL.
func (run *batchRun) send(ctx context.Context, msg *FireMessage, dc deliveryContext) (int, error) {
	if msg.HTTP == nil {
		return 0, run.sendCallback(ctx, msg, &dc)
	}
	return run.inv.call(ctx, msg, &dc)
}

// stringAttr is an SQS message attribute of type String.
func stringAttr(v string) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// call makes the HTTP request of msg's target, with secrets resolved now
// (the signing secrets with the others, in the same GetParameters) and
// dc's placeholders. Every error it returns has passed through redact,
// whatever built it.
func (inv *Invoker) call(ctx context.Context, msg *FireMessage, dc *deliveryContext) (int, error) {
	target := msg.HTTP
	fields := append([]string{target.URL, target.Body}, target.Signing.fields()...)
	for _, v := range target.Headers {
		fields = append(fields, v)
	}
	secrets, err := inv.resolve(ctx, fields...)
	if err != nil {
		return 0, err
	}
	status, err := inv.callResolved(ctx, msg, secrets, dc)
	if err != nil {
		err = keepRetryAfter(redactError(err, secrets), err)
	}
	return status, err
}

// errNearDeadline cuts short a call that would outlive the function.
var errNearDeadline = errors.New("cut short: the function is about to time out")

// callResolved is call with msg's secrets resolved.
func (inv *Invoker) callResolved(ctx context.Context, msg *FireMessage, secrets map[string]string, dc *deliveryContext) (int, error) {
	target := msg.HTTP
	timeout := inv.Timeout
	if target.TimeoutSeconds > 0 {
		timeout = time.Duration(target.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if deadline, ok := ctx.Deadline(); ok {
		// A call still running when the function is killed leaves no
		// trace: SQS hands the message out again as if it were new. Cut
		// it short in time to record it as a failed attempt (CallReserve).
		var cut context.CancelFunc
		ctx, cut = context.WithDeadlineCause(ctx, deadline.Add(-inv.callReserve()), errNearDeadline)
		defer cut()
	}
	dc.DeliveredAt = inv.now()
	req, err := newRequest(ctx, msg, secrets, dc)
	if err != nil {
		return 0, err
	}
	resp, err := inv.Client.Do(req)
	if err != nil && errors.Is(context.Cause(ctx), errNearDeadline) {
		return 0, fmt.Errorf("%s %s: %w", target.Method, target.URL, errNearDeadline)
	}
	if err != nil {
		return 0, fmt.Errorf("%s %s: %s", target.Method, target.URL, redact(causeOf(err).Error(), secrets))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // a target may wait for its answer to be read
	if !succeeded(resp.StatusCode, target.SuccessCodes) {
		return resp.StatusCode, withRetryAfter(fmt.Errorf("%s %s: status %d", target.Method, target.URL, resp.StatusCode), resp, inv.now())
	}
	return resp.StatusCode, nil
}

// succeeded reports whether status counts as delivered: one of codes, or
// any 2xx when there are none.
func succeeded(status int, codes []int) bool {
	if len(codes) == 0 {
		return status >= 200 && status <= 299
	}
	return slices.Contains(codes, status)
}
