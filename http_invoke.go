package main

import (
	"bytes"
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
	"strings"
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
	// checked again at firing. Default "/callclock/".
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

	cache secretCache
}

// NewInvoker returns an Invoker with the defaults above.
func NewInvoker(secrets parameterGetter, callback messageSender, callbackQueueURL string) *Invoker {
	return &Invoker{Secrets: secrets, Callback: callback, CallbackQueueURL: callbackQueueURL,
		Client: newHTTPClient(false), Timeout: 20 * time.Second, Concurrency: 10, MaxEarly: 3 * time.Second,
		Log: slog.Default(), Now: time.Now, SecretPrefix: "/callclock/", SecretTTL: 30 * time.Second}
}

// Invoke delivers each message of an SQS batch and reports the ones that
// failed, so that SQS retries those and only those.
func (inv *Invoker) Invoke(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	var (
		mu    sync.Mutex
		resp  = events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		wg    sync.WaitGroup
		slots = make(chan struct{}, max(1, inv.Concurrency))
		tally = &batchTally{callbacks: inv.newCallbackBatcher(ctx)}
	)
	ctx = context.WithValue(ctx, tallyKey{}, tally)
	defer tally.emit(inv.Metrics)
	for _, rec := range ev.Records {
		wg.Add(1)
		slots <- struct{}{}
		go func(rec events.SQSMessage) {
			defer func() { <-slots; wg.Done() }()
			if err := inv.handle(ctx, rec); err != nil {
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				mu.Unlock()
			}
		}(rec)
	}
	wg.Wait()
	return resp
}

func (inv *Invoker) now() time.Time {
	if inv.Now == nil {
		return time.Now()
	}
	return inv.Now()
}

// permanentError is a delivery failure no retry can mend, such as a
// request that cannot be built.
type permanentError struct{ error }

// handle delivers one message. It returns nil when SQS should delete the
// message (delivered, a duplicate, stale, or dead-lettered) and an error
// when SQS should deliver it again.
func (inv *Invoker) handle(ctx context.Context, rec events.SQSMessage) error {
	var msg FireMessage
	if err := json.Unmarshal([]byte(rec.Body), &msg); err != nil || msg.TimerID == "" {
		// A poison message: never retried, kept on the dead-letter queue.
		inv.Log.ErrorContext(ctx, "malformed fire message", "messageId", rec.MessageId)
		return inv.deadLetter(ctx, rec, nil, "malformed fire message", receiveCount(rec))
	}
	// SQS delays are whole seconds, rounded down, so a message may arrive
	// early: at most 0.3 s when the sweeper sent it within its send window
	// (sendWindowFrom in sweep.go), up to a second when it was sent at once
	// (by the API, for an occurrence under 2 s away, or by a sweep beyond
	// Sweeper.AlignUpTo occurrences). Wait for its instant, but
	// not past the point where a call is cut short (CallReserve before the
	// deadline), or the hold itself could run into the deadline and leave
	// no trace of the attempt.
	if early := msg.ScheduledAt.Sub(inv.now()); early > 0 && early <= inv.MaxEarly {
		if deadline, ok := ctx.Deadline(); ok {
			reserve := inv.CallReserve
			if reserve <= 0 {
				reserve = 2 * inv.recordReserve() // callResolved's default
			}
			early = min(early, time.Until(deadline.Add(-reserve)))
		}
		if early > 0 {
			if err := sleepCtx(ctx, early); err != nil {
				return err
			}
		}
	}
	attrs := []any{"timerId", msg.TimerID, "scheduledAt", msg.ScheduledAt.UTC().Format(time.RFC3339),
		"messageId", rec.MessageId, "attempt", receiveCount(rec)}
	claimant := Claimant{MessageID: rec.MessageId, Token: newID(), Replay: msg.Replay}
	if inv.Timers != nil {
		occ := msg.occurrence()
		claim, err := inv.Timers.Claim(ctx, occ, claimant, inv.now(), inv.leaseUntil(ctx))
		if err != nil {
			inv.Log.ErrorContext(ctx, "claim failed", append(attrs, "error", err.Error())...)
			return err
		}
		switch claim {
		case ClaimInProgress:
			// SQS handed this message out again while an earlier receive
			// still delivers it. Failing this copy leaves it to the queue's
			// visibility timeout, by when the earlier one has settled it.
			inv.Log.InfoContext(ctx, "delivery in progress elsewhere; left for later", attrs...)
			return errInProgress
		case ClaimDuplicate:
			inv.Log.InfoContext(ctx, "duplicate suppressed", attrs...)
			tallyOf(ctx).add(func(b *batchTally) { b.duplicates++ })
			if _, err := inv.persist(ctx, func(ctx context.Context) error { return inv.Timers.Duplicate(ctx, occ, inv.now()) }); err != nil {
				inv.Log.WarnContext(ctx, "duplicate not counted in the history", append(attrs, "error", err.Error())...)
			}
			return nil
		}
		t, err := inv.Timers.Get(ctx, msg.TimerID)
		stale := ""
		switch {
		case ErrorCode(err) == ENOTFOUND:
			stale = "timer deleted"
		case err != nil:
			inv.Log.ErrorContext(ctx, "timer read failed", append(attrs, "error", err.Error())...)
			inv.release(ctx, &msg, claimant)
			return err
		case t.Version != msg.Version:
			stale = "timer replaced"
		case t.PausedAt != nil && !msg.Manual && !msg.Replay: // by hand, it is delivered anyway
			stale = "timer paused"
		}
		if stale != "" {
			inv.Log.InfoContext(ctx, "stale occurrence dropped", append(attrs, "reason", stale)...)
			tallyOf(ctx).add(func(b *batchTally) { b.stale++ })
			if msg.NextLinkAt != 0 {
				// Its chain of links ends here: a replaced timer has its own,
				// a resumed one gets one again.
				if _, err := inv.persist(ctx, func(ctx context.Context) error {
					return inv.Timers.DeleteLink(ctx, msg.TimerID, msg.NextLinkAt, msg.NextLinkParts, msg.Version)
				}); err != nil {
					inv.Log.WarnContext(ctx, "stale timer's next link not deleted; it is dropped again when it comes", append(attrs, "error", err.Error())...)
				}
			}
			return nil
		}
		msg.fillFrom(t)
	}
	retry := retryPolicy(msg.Retry)
	attempt := receiveCount(rec)
	if attempt > retry.MaxAttempts+1 {
		// Its tries ran out before, but dead-lettering failed: do not call
		// the target again, only try the dead-letter queue.
		reason := fmt.Sprintf("retries exhausted after %d attempts", retry.MaxAttempts+1)
		if err := inv.giveUp(ctx, rec, &msg, reason, attempt, append(attrs, "error", reason)); err != nil {
			inv.release(ctx, &msg, claimant)
			return err
		}
		inv.finish(ctx, &msg, LastFire{ScheduledAt: msg.ScheduledAt.UTC(), AttemptedAt: inv.now().UTC(), Attempt: attempt,
			Replay: msg.Replay, Manual: msg.Manual, Outcome: OutcomeFailed, Error: reason}, true)
		return nil
	}
	start := inv.now()
	status, err := inv.deliver(ctx, &msg)
	fire := LastFire{ScheduledAt: msg.ScheduledAt.UTC(), AttemptedAt: start.UTC(), Attempt: attempt, Replay: msg.Replay,
		Status: status, LatencyMs: inv.now().Sub(start).Milliseconds(), Manual: msg.Manual}
	late := start.Sub(msg.ScheduledAt).Milliseconds()
	attrs = append(attrs, "latenessMs", late, "durationMs", fire.LatencyMs)
	if status != 0 {
		attrs = append(attrs, "status", status)
	}
	if err == nil {
		fire.Outcome = OutcomeDelivered
		inv.Log.InfoContext(ctx, "delivered", attrs...)
		tallyOf(ctx).add(func(b *batchTally) { b.delivered++; b.lateness = append(b.lateness, float64(late)) })
		inv.finish(ctx, &msg, fire, false)
		return nil
	}
	fire.Error = err.Error()
	attrs = append(attrs, "error", fire.Error)
	var perm permanentError
	if errors.As(err, &perm) || fire.Attempt > retry.MaxAttempts ||
		inv.now().Sub(msg.ScheduledAt) > time.Duration(retry.MaxAgeSeconds)*time.Second {
		fire.Outcome = OutcomeFailed
		if err := inv.giveUp(ctx, rec, &msg, fire.Error, attempt, attrs); err != nil {
			inv.release(ctx, &msg, claimant)
			return err
		}
		inv.finish(ctx, &msg, fire, true)
		return nil
	}
	fire.Outcome = OutcomeRetrying
	delay := retryDelay(fire.Attempt)
	inv.Log.WarnContext(ctx, "delivery failed; will retry", append(attrs, "retryInSeconds", int(delay/time.Second))...)
	tallyOf(ctx).add(func(b *batchTally) { b.failed++; b.retried++ })
	inv.finish(ctx, &msg, fire, false)
	if inv.Visibility != nil && inv.FireQueueURL != "" {
		_, vErr := inv.Visibility.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: &inv.FireQueueURL, ReceiptHandle: &rec.ReceiptHandle, VisibilityTimeout: int32(delay / time.Second),
		})
		if vErr != nil {
			inv.Log.WarnContext(ctx, "retry delay not set; the queue's visibility timeout applies", "messageId", rec.MessageId, "error", vErr.Error())
		}
	}
	return err
}

// giveUp sends an occurrence whose tries ran out to the dead-letter queue
// with the reason, and logs it. An error means the dead-letter queue could
// not take it: SQS then tries the message again, and its redrive policy is
// the last resort.
func (inv *Invoker) giveUp(ctx context.Context, rec events.SQSMessage, msg *FireMessage, reason string, attempt int, attrs []any) error {
	if err := inv.deadLetter(ctx, rec, msg, reason, attempt); err != nil {
		inv.Log.ErrorContext(ctx, "delivery failed; not dead-lettered", append(attrs, "deadLetterError", err.Error())...)
		return err
	}
	inv.Log.ErrorContext(ctx, "delivery failed; dead-lettered", attrs...)
	tallyOf(ctx).add(func(b *batchTally) { b.failed++; b.deadLettered++ })
	return nil
}

// release ends the lease of this message's claim when its attempt ends
// with nothing recorded (the timer could not be read, the dead-letter
// queue refused it), so that its redelivery may claim it at once. Should
// it fail, the lease ends by itself with the function's deadline.
func (inv *Invoker) release(ctx context.Context, msg *FireMessage, c Claimant) {
	if inv.Timers == nil {
		return
	}
	if err := inv.Timers.ReleaseClaim(ctx, msg.occurrence(), c); err != nil {
		inv.Log.WarnContext(ctx, "claim not released; it frees itself at the function's deadline",
			"timerId", msg.TimerID, "scheduledAt", msg.ScheduledAt.UTC().Format(time.RFC3339Nano), "error", err.Error())
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

// finish records an outcome on the occurrence's item (settling it when it
// was delivered; marking it when it was dead-lettered, so that a replay of
// the dead letter may claim it again) and notifies the timer's webhook;
// neither may fail the delivery, which has happened (or not) already.
func (inv *Invoker) finish(ctx context.Context, msg *FireMessage, fire LastFire, deadLettered bool) {
	if inv.Timers != nil {
		tries, err := inv.persist(ctx, func(ctx context.Context) error {
			return inv.Timers.Record(ctx, msg.occurrence(), fire, deadLettered, inv.now())
		})
		if err != nil {
			// The repair line: everything Record would have written, so
			// that the history can be put right by hand. Until it is, a
			// redelivery of a delivered occurrence would deliver it again.
			inv.Log.ErrorContext(ctx, "outcome not recorded", "timerId", msg.TimerID,
				"scheduledAt", fire.ScheduledAt.Format(time.RFC3339Nano), "attemptedAt", fire.AttemptedAt.Format(time.RFC3339Nano),
				"attempt", fire.Attempt, "outcome", fire.Outcome, "status", fire.Status, "latencyMs", fire.LatencyMs,
				"manual", fire.Manual, "deadLettered", deadLettered, "deliveryError", fire.Error, "recordTries", tries, "error", err.Error())
		}
	}
	if fire.Outcome != OutcomeRetrying && msg.Notify.Wants(fire.Outcome == OutcomeDelivered) {
		inv.notify(ctx, msg, fire)
	}
	if fire.Outcome != OutcomeRetrying && msg.Final && !msg.Manual && inv.Timers != nil {
		if _, err := inv.persist(ctx, func(ctx context.Context) error {
			return inv.Timers.DeleteCompleted(ctx, msg.TimerID, msg.Version)
		}); err != nil {
			inv.Log.WarnContext(ctx, "completed timer not deleted", "timerId", msg.TimerID, "error", err.Error())
		}
	}
}

// errNearDeadline cuts short a call that would outlive the function.
var errNearDeadline = errors.New("cut short: the function is about to time out")

// recordReserve is RecordReserve or its default.
func (inv *Invoker) recordReserve() time.Duration {
	if inv.RecordReserve <= 0 {
		return time.Second
	}
	return inv.RecordReserve
}

// persistTriesWithoutDeadline bounds persist's tries when ctx has no
// deadline (tests, tools); under Lambda the deadline bounds them.
const persistTriesWithoutDeadline = 8

// persist runs write, a record of what happened, until it succeeds, with
// the store's backoff between tries, for as long as the function's
// deadline leaves RecordReserve to spare: an outage of the table must not
// lose the outcome of a delivery that happened. It returns the number of
// tries and the last error.
func (inv *Invoker) persist(ctx context.Context, write func(context.Context) error) (int, error) {
	reserve := inv.recordReserve()
	for try := 1; ; try++ {
		err := write(ctx)
		if err == nil {
			return try, nil
		}
		wait := backoff(try - 1)
		deadline, ok := ctx.Deadline()
		switch {
		case ctx.Err() != nil,
			ok && time.Until(deadline)-wait < reserve,
			!ok && try >= persistTriesWithoutDeadline:
			return try, err
		}
		if sleepCtx(ctx, wait) != nil {
			return try, err
		}
	}
}

// notify posts a Slack-compatible {"text": ..., "channel": ...} message about fire.
func (inv *Invoker) notify(ctx context.Context, msg *FireMessage, fire LastFire) {
	text := fmt.Sprintf("callclock: timer %s, scheduled %s: delivered on attempt %d (status %d, %d ms)",
		msg.TimerID, fire.ScheduledAt.Format(time.RFC3339), fire.Attempt, fire.Status, fire.LatencyMs)
	if fire.Outcome != OutcomeDelivered {
		text = fmt.Sprintf("callclock: timer %s, scheduled %s: failed after %d attempts and was dead-lettered: %s",
			msg.TimerID, fire.ScheduledAt.Format(time.RFC3339), fire.Attempt, fire.Error)
	}
	if d := msg.Deployment; d != nil && d.Product != "" {
		// As the Deployer's own notification says which release put the timer there.
		text += fmt.Sprintf("; %s", strings.TrimSpace(d.Product+" "+d.Version))
		if d.ID != "" {
			text += ", deployed by " + d.ID
		}
	}
	slack := map[string]string{"text": text}
	if msg.Notify.Channel != "" {
		slack["channel"] = msg.Notify.Channel
	}
	body, _ := marshalJSON(slack)
	// At most 10 seconds, and ending RecordReserve before the function's
	// deadline like every record of an outcome, so that a webhook that
	// hangs cannot keep the batch from being returned.
	timeout := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline) - inv.recordReserve()
		if left <= 0 {
			inv.Log.WarnContext(ctx, "notification skipped: the function is about to time out", "timerId", msg.TimerID,
				"webhook", msg.Notify.Webhook, "outcome", fire.Outcome)
			return
		}
		timeout = min(timeout, left)
	}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	secrets, err := inv.resolve(callCtx, msg.Notify.Webhook)
	if err == nil {
		var req *http.Request
		req, err = http.NewRequestWithContext(callCtx, http.MethodPost, substitute(msg.Notify.Webhook, secrets), bytes.NewReader(body))
		if err != nil {
			// url.Parse quotes the part it rejects, which may be a secret's.
			err = errors.New("the webhook is not a valid URL once its secrets are resolved")
		} else {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "callclock/"+Version)
			var resp *http.Response
			if resp, err = inv.Client.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode > 299 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
		}
	}
	if err != nil {
		inv.Log.WarnContext(ctx, "notification failed", "timerId", msg.TimerID, "webhook", msg.Notify.Webhook,
			"error", redact(causeOf(err).Error(), secrets))
	}
}

// deadLetter sends the message to the dead-letter queue with why it
// failed. msg is nil for a message that could not be read.
func (inv *Invoker) deadLetter(ctx context.Context, rec events.SQSMessage, msg *FireMessage, reason string, attempts int) error {
	if inv.DeadLetterQueueURL == "" {
		return errors.New("no dead-letter queue configured: " + reason)
	}
	attrs := map[string]sqstypes.MessageAttributeValue{
		"Reason":            stringAttr(reason),
		"Attempts":          {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(attempts))},
		"OriginalMessageId": stringAttr(rec.MessageId),
	}
	body := rec.Body
	if msg != nil {
		attrs["TimerId"] = stringAttr(msg.TimerID)
		attrs["ScheduledAt"] = stringAttr(msg.ScheduledAt.UTC().Format(time.RFC3339))
		// Redriven to the fire queue (as the SQS console does), the dead
		// letter is a replay: it may claim its occurrence again, once.
		replay := *msg
		replay.Replay = true
		if b, err := marshalJSON(replay); err == nil {
			body = string(b)
		}
	}
	_, err := inv.Callback.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: &inv.DeadLetterQueueURL, MessageBody: aws.String(body), MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("dead-letter %s: %w", rec.MessageId, err)
	}
	return nil
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

// deliver makes one delivery and returns the HTTP status, if any. Errors
// never contain a resolved secret: they name the placeholder's URL.
func (inv *Invoker) deliver(ctx context.Context, msg *FireMessage) (int, error) {
	if msg.HTTP == nil {
		attrs := map[string]sqstypes.MessageAttributeValue{
			"IdempotencyKey": stringAttr(msg.IdempotencyKey()),
			"TimerId":        stringAttr(msg.TimerID),
			"ScheduledAt":    stringAttr(msg.ScheduledAt.UTC().Format(time.RFC3339)),
		}
		if b := tallyOf(ctx).callbacks; b != nil {
			return 0, b.send(ctx, string(msg.CallbackData), attrs)
		}
		_, err := inv.Callback.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl:          &inv.CallbackQueueURL,
			MessageBody:       aws.String(string(msg.CallbackData)),
			MessageAttributes: attrs,
		})
		if err != nil {
			return 0, fmt.Errorf("send callback message: %w", err)
		}
		return 0, nil
	}
	return inv.call(ctx, msg)
}

func stringAttr(v string) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// call makes the HTTP request of msg's target, with secrets resolved now.
// Every error it returns has passed through redact, whatever built it.
func (inv *Invoker) call(ctx context.Context, msg *FireMessage) (int, error) {
	target := msg.HTTP
	fields := []string{target.URL, target.Body}
	for _, v := range target.Headers {
		fields = append(fields, v)
	}
	secrets, err := inv.resolve(ctx, fields...)
	if err != nil {
		return 0, err
	}
	status, err := inv.callResolved(ctx, msg, secrets)
	if err != nil {
		err = redactError(err, secrets)
	}
	return status, err
}

// callResolved is call with msg's secrets resolved.
func (inv *Invoker) callResolved(ctx context.Context, msg *FireMessage, secrets map[string]string) (int, error) {
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
		reserve := inv.CallReserve
		if reserve <= 0 {
			reserve = 2 * inv.recordReserve()
		}
		var cut context.CancelFunc
		ctx, cut = context.WithDeadlineCause(ctx, deadline.Add(-reserve), errNearDeadline)
		defer cut()
	}
	var body io.Reader
	if target.Body != "" {
		body = strings.NewReader(substitute(target.Body, secrets))
	}
	req, err := http.NewRequestWithContext(ctx, target.Method, substitute(target.URL, secrets), body)
	if err != nil {
		// Not err: url.Parse quotes the part it rejects, which may be a secret's.
		return 0, permanentError{Errorf(EINVALID, "cannot build request for %s %s", target.Method, target.URL)}
	}
	for k, v := range target.Headers {
		value := substitute(v, secrets)
		if !validHeaderValue(value) {
			return 0, permanentError{Errorf(EINVALID, "cannot build request for %s %s: header %s is not a valid header value once its secrets are resolved",
				target.Method, target.URL, k)}
		}
		req.Header.Set(k, value)
	}
	req.Header.Set("User-Agent", "callclock/"+Version)
	req.Header.Set("Idempotency-Key", msg.IdempotencyKey())
	req.Header.Set("X-Callclock-Timer-Id", msg.TimerID)
	req.Header.Set("X-Callclock-Scheduled-At", msg.ScheduledAt.UTC().Format(time.RFC3339))
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
		return resp.StatusCode, fmt.Errorf("%s %s: status %d", target.Method, target.URL, resp.StatusCode)
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

// batchTally counts a batch's outcomes for its metrics record, and
// carries its callback batcher (nil: none).
type batchTally struct {
	mu                                                          sync.Mutex
	delivered, failed, retried, deadLettered, duplicates, stale int
	lateness                                                    []float64
	callbacks                                                   *callbackBatcher
}

type tallyKey struct{}

// tallyOf returns the batch's tally, or a throwaway one outside Invoke.
func tallyOf(ctx context.Context) *batchTally {
	if t, ok := ctx.Value(tallyKey{}).(*batchTally); ok {
		return t
	}
	return &batchTally{}
}

func (b *batchTally) add(f func(*batchTally)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *batchTally) emit(m *Metrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m.Emit("Part", "invoker", count("Delivered", b.delivered), count("DeliveryFailures", b.failed),
		count("Retried", b.retried), count("DeadLettered", b.deadLettered), count("DuplicatesSuppressed", b.duplicates),
		count("StaleDropped", b.stale), Metric{Name: "Lateness", Unit: "Milliseconds", Values: b.lateness})
}
