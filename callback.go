package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// callbackBatcher sends the callback messages of one Invoke in
// SendMessageBatch calls of up to 10. The messages of a batch are mostly
// due at the same second and leave their early hold together, so a
// message that waits window for company usually finds it, and SQS bills
// the batch as one request (each 64 KB of payload one) where ten
// SendMessage calls are ten. Each message still gets its own answer:
// an entry SQS failed fails its occurrence only, which is retried as
// before.
type callbackBatcher struct {
	ctx    context.Context // the Invoke's: its deadline bounds every batch
	sender batchSender
	url    string
	window time.Duration

	mu      sync.Mutex
	pending []callbackWait
	bytes   int
	seq     int
	timer   *time.Timer
}

// callbackWait is one message waiting for its batch, and where its answer
// goes.
type callbackWait struct {
	entry sqstypes.SendMessageBatchRequestEntry
	done  chan error
}

const (
	// defaultCallbackWindow is how long a callback message waits for others
	// of its Invoke before its batch goes out.
	defaultCallbackWindow = 5 * time.Millisecond
	// maxBatchBytes is SQS's limit on a SendMessageBatch's payload, bodies
	// and attributes of all its messages together.
	maxBatchBytes = 256 * 1024
)

// newCallbackBatcher returns the batcher of one Invoke, or nil when inv
// sends callback messages one by one (no CallbackBatch).
func (inv *Invoker) newCallbackBatcher(ctx context.Context) *callbackBatcher {
	if inv.CallbackBatch == nil {
		return nil
	}
	w := inv.CallbackWindow
	if w <= 0 {
		w = defaultCallbackWindow
	}
	return &callbackBatcher{ctx: context.WithoutCancel(ctx), sender: inv.CallbackBatch, url: inv.CallbackQueueURL, window: w}
}

// sendCallback sends msg's callback data, its placeholders resolved for
// dc, to the callback queue, in the batch's next SendMessageBatch when it
// has a batcher.
func (run *batchRun) sendCallback(ctx context.Context, msg *FireMessage, dc *deliveryContext) error {
	inv := run.inv
	dc.DeliveredAt = inv.now()
	body := string(expandCallbackData(msg.CallbackData, dc))
	attrs := map[string]sqstypes.MessageAttributeValue{
		"IdempotencyKey": stringAttr(msg.IdempotencyKey()),
		"TimerId":        stringAttr(msg.TimerID),
		"ScheduledAt":    stringAttr(msg.ScheduledAt.UTC().Format(time.RFC3339)),
	}
	if run.callbacks != nil {
		return run.callbacks.send(ctx, body, attrs)
	}
	_, err := inv.Callback.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          &inv.CallbackQueueURL,
		MessageBody:       aws.String(body),
		MessageAttributes: attrs,
	})
	if err != nil {
		return fmt.Errorf("send callback message: %w", err)
	}
	return nil
}

// send sends one message in the next batch and returns its own outcome.
// A message that waits longer than ctx allows gets ctx's error, though its
// batch may still send it: as with a SendMessage whose answer was lost,
// the retry may send it again (the callback message carries its
// idempotency key).
func (b *callbackBatcher) send(ctx context.Context, body string, attrs map[string]sqstypes.MessageAttributeValue) error {
	size := len(body)
	for k, v := range attrs {
		size += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
	}
	w := callbackWait{done: make(chan error, 1)}
	b.mu.Lock()
	if len(b.pending) > 0 && b.bytes+size > maxBatchBytes {
		b.flushLocked()
	}
	w.entry = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(b.seq)), MessageBody: aws.String(body), MessageAttributes: attrs}
	b.seq++
	b.pending = append(b.pending, w)
	b.bytes += size
	switch {
	case len(b.pending) == sqsBatch:
		b.flushLocked()
	case len(b.pending) == 1:
		b.timer = time.AfterFunc(b.window, b.flush)
	}
	b.mu.Unlock()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush sends what is pending (the window ran out).
func (b *callbackBatcher) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

// flushLocked sends what is pending as one batch; b.mu is held.
func (b *callbackBatcher) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.pending) == 0 {
		return
	}
	batch := b.pending
	b.pending, b.bytes = nil, 0
	go b.sendBatch(batch)
}

// sendBatch makes one SendMessageBatch call and answers each message.
func (b *callbackBatcher) sendBatch(batch []callbackWait) {
	entries := make([]sqstypes.SendMessageBatchRequestEntry, len(batch))
	for i, w := range batch {
		entries[i] = w.entry
	}
	out, err := b.sender.SendMessageBatch(b.ctx, &sqs.SendMessageBatchInput{QueueUrl: &b.url, Entries: entries})
	if err != nil {
		for _, w := range batch {
			w.done <- fmt.Errorf("send callback message: %w", err)
		}
		return
	}
	answers := map[string]error{}
	for _, ok := range out.Successful {
		answers[aws.ToString(ok.Id)] = nil
	}
	for _, f := range out.Failed {
		answers[aws.ToString(f.Id)] = fmt.Errorf("send callback message: SQS failed it: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
	}
	for _, w := range batch {
		err, answered := answers[aws.ToString(w.entry.Id)]
		if !answered {
			err = fmt.Errorf("send callback message: SQS did not answer for it")
		}
		w.done <- err
	}
}
