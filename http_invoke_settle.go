package main

// The invoker's records of an outcome: the occurrence's item, the
// dead-letter queue, the timer's webhook, deleteAfterCompletion. None of
// them may fail a delivery that happened, so each is retried within the
// function's deadline or logged.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// giveUp sends an occurrence whose tries ran out to the dead-letter queue
// with the reason, and logs it with attrs. An error means the dead-letter
// queue could not take it: SQS then tries the message again, and its
// redrive policy is the last resort.
func (run *batchRun) giveUp(ctx context.Context, d *delivery, reason string, attrs []any) error {
	inv := run.inv
	if err := inv.deadLetter(ctx, d.rec, &d.msg, reason, d.attempt); err != nil {
		inv.Log.ErrorContext(ctx, "delivery failed; not dead-lettered", append(attrs, "deadLetterError", err.Error())...)
		return err
	}
	inv.Log.ErrorContext(ctx, "delivery failed; dead-lettered", attrs...)
	run.tally(func(c *batchCounts) { c.failed++; c.deadLettered++ })
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
	paused := "" // what selfPause (selfpause.go) did; a pause is notified even without onFailure
	if inv.Timers != nil {
		paused = inv.selfPause(ctx, msg, fire)
	}
	if fire.Outcome != OutcomeRetrying && (msg.Notify.Wants(fire.Outcome == OutcomeDelivered) || paused != "" && msg.Notify != nil && msg.Notify.Webhook != "") {
		inv.notify(ctx, msg, fire, paused)
	}
	if fire.Outcome != OutcomeRetrying && msg.Final && !msg.Manual && inv.Timers != nil {
		if _, err := inv.persist(ctx, func(ctx context.Context) error {
			return inv.Timers.DeleteCompleted(ctx, msg.TimerID, msg.Version)
		}); err != nil {
			inv.Log.WarnContext(ctx, "completed timer not deleted", "timerId", msg.TimerID, "error", err.Error())
		}
	}
}

// recordReserve is RecordReserve or its default.
func (inv *Invoker) recordReserve() time.Duration {
	if inv.RecordReserve <= 0 {
		return time.Second
	}
	return inv.RecordReserve
}

// callReserve is CallReserve or its default: twice RecordReserve.
func (inv *Invoker) callReserve() time.Duration {
	if inv.CallReserve <= 0 {
		return 2 * inv.recordReserve()
	}
	return inv.CallReserve
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

// notify posts a Slack-compatible {"text": ..., "channel": ...} message
// about fire, and paused, what the timer's self-pause did, if anything.
func (inv *Invoker) notify(ctx context.Context, msg *FireMessage, fire LastFire, paused string) {
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
	secrets, err := inv.postWebhook(callCtx, msg.Notify.Webhook, notification(msg, fire, paused))
	if err != nil {
		inv.Log.WarnContext(ctx, "notification failed", "timerId", msg.TimerID, "webhook", msg.Notify.Webhook,
			"error", redact(causeOf(err).Error(), secrets))
	}
}

// notification is the body of the webhook's message about fire; paused,
// when not empty, says the timer paused itself.
func notification(msg *FireMessage, fire LastFire, paused string) []byte {
	text := fmt.Sprintf("callclock: timer %s, scheduled %s: delivered on attempt %d (status %d, %d ms)",
		msg.TimerID, fire.ScheduledAt.Format(time.RFC3339), fire.Attempt, fire.Status, fire.LatencyMs)
	if fire.Outcome != OutcomeDelivered {
		text = fmt.Sprintf("callclock: timer %s, scheduled %s: failed after %d attempts and was dead-lettered: %s",
			msg.TimerID, fire.ScheduledAt.Format(time.RFC3339), fire.Attempt, fire.Error)
	}
	if paused != "" {
		text += "; the timer " + paused + " and fires again once resumed"
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
	return body
}

// postWebhook posts body to webhook, its secrets resolved now, and
// returns them (for redact) with the post's error, if any.
func (inv *Invoker) postWebhook(ctx context.Context, webhook string, body []byte) (map[string]string, error) {
	secrets, err := inv.resolve(ctx, webhook)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, substitute(webhook, secrets), bytes.NewReader(body))
	if err != nil {
		// url.Parse quotes the part it rejects, which may be a secret's.
		return secrets, errors.New("the webhook is not a valid URL once its secrets are resolved")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "callclock/"+Version)
	resp, err := inv.Client.Do(req)
	if err != nil {
		return secrets, err
	}
	resp.Body.Close()
	if resp.StatusCode > 299 {
		return secrets, fmt.Errorf("status %d", resp.StatusCode)
	}
	return secrets, nil
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
