package main

// fakeFireQueue, the one fake of the fire queue the invoker's tests
// (limits, overlap, spread) share, with SQS's limits and failures.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// fireQueueBatch is the most messages one receive (one batch) hands out.
const fireQueueBatch = 10

// fireQueueMaxVisibility is SQS's longest visibility timeout: 12 hours.
const fireQueueMaxVisibility = 43200

// fireMsg is one message of a fakeFireQueue.
type fireMsg struct {
	id, body  string
	visibleAt time.Time
	receives  int
	handle    string
	deleted   bool
}

// fakeFireQueue is an SQS standard queue as the invoker sees it: a receive
// hands out at most 10 visible messages, earliest sent first, each with a
// new receipt handle and its ApproximateReceiveCount up, invisible for the
// queue's visibility timeout (Visibility, 900 s if 0); one not deleted
// comes back then. ChangeMessageVisibility takes 0 to 43200 s, counted
// from the call on now, and only the latest receipt handle of a message
// not deleted (ReceiptHandleIsInvalid otherwise, as SQS answers). settle
// deletes what a batch response does not name as failed, as Lambda's
// event source mapping does. Every ChangeMessageVisibility call is kept
// (changes), and each refused one noted (problems).
type fakeFireQueue struct {
	mu         sync.Mutex
	now        func() time.Time
	Visibility time.Duration
	// Late delays the return of the first LateN messages whose
	// visibility is changed, as a busy event source picks messages up late.
	Late  time.Duration
	LateN int

	msgs     []*fireMsg
	changed  int // ChangeMessageVisibility calls that took effect
	receives int // messages handed out, over all receives
	changes  []igVisibilityCall
	problems []string
}

// newFakeFireQueue returns an empty fire queue on clock now.
func newFakeFireQueue(now func() time.Time) *fakeFireQueue {
	return &fakeFireQueue{now: now}
}

// send enqueues body as message id, visible at at.
func (q *fakeFireQueue) send(id, body string, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, &fireMsg{id: id, body: body, visibleAt: at})
}

// receive hands out at most n (at most 10; 10 if n <= 0) visible messages.
func (q *fakeFireQueue) receive(n int) []events.SQSMessage {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n <= 0 || n > fireQueueBatch {
		n = fireQueueBatch
	}
	vis := q.Visibility
	if vis == 0 {
		vis = 900 * time.Second
	}
	now := q.now()
	var recs []events.SQSMessage
	for _, m := range q.msgs {
		if len(recs) == n {
			break
		}
		if m.deleted || m.visibleAt.After(now) {
			continue
		}
		m.receives++
		q.receives++
		m.handle = fmt.Sprintf("rh-%s-%d", m.id, m.receives)
		m.visibleAt = now.Add(vis)
		recs = append(recs, events.SQSMessage{MessageId: m.id, Body: m.body, ReceiptHandle: m.handle, EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)}})
	}
	return recs
}

// ChangeMessageVisibility sets the visibility of the message whose latest
// receive in.ReceiptHandle is, as SQS does.
func (q *fakeFireQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	rh := aws.ToString(in.ReceiptHandle)
	q.changes = append(q.changes, igVisibilityCall{QueueURL: aws.ToString(in.QueueUrl), ReceiptHandle: rh, Timeout: in.VisibilityTimeout})
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > fireQueueMaxVisibility {
		q.problems = append(q.problems, fmt.Sprintf("VisibilityTimeout %d", in.VisibilityTimeout))
		return nil, fmt.Errorf("InvalidParameterValue: VisibilityTimeout %d is not from 0 to %d", in.VisibilityTimeout, fireQueueMaxVisibility)
	}
	for _, m := range q.msgs {
		if m.handle == rh && !m.deleted {
			m.visibleAt = q.now().Add(time.Duration(in.VisibilityTimeout) * time.Second)
			if q.changed++; q.changed <= q.LateN {
				m.visibleAt = m.visibleAt.Add(q.Late)
			}
			return &sqs.ChangeMessageVisibilityOutput{}, nil
		}
	}
	q.problems = append(q.problems, "ChangeMessageVisibility with a stale receipt handle")
	return nil, errors.New("ReceiptHandleIsInvalid: the receipt handle is not the latest of a message on the queue")
}

// settle deletes the messages of recs that resp does not name as failed,
// by the receipt handle of their latest receive.
func (q *fakeFireQueue) settle(recs []events.SQSMessage, resp events.SQSEventResponse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range recs {
		for _, m := range q.msgs {
			if m.id == r.MessageId && m.handle == r.ReceiptHandle && !failed[m.id] {
				m.deleted = true
			}
		}
	}
}

// left is the number of messages not deleted.
func (q *fakeFireQueue) left() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, m := range q.msgs {
		if !m.deleted {
			n++
		}
	}
	return n
}

// nextVisible is the earliest instant a message not deleted is visible,
// false if none is left.
func (q *fakeFireQueue) nextVisible() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var next time.Time
	found := false
	for _, m := range q.msgs {
		if !m.deleted && (!found || m.visibleAt.Before(next)) {
			next, found = m.visibleAt, true
		}
	}
	return next, found
}

// Changes is every ChangeMessageVisibility call.
func (q *fakeFireQueue) Changes() []igVisibilityCall {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.changes)
}

// Problems is each refused ChangeMessageVisibility call.
func (q *fakeFireQueue) Problems() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.problems)
}

// Receives is the messages handed out, over all receives.
func (q *fakeFireQueue) Receives() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.receives
}

// drain runs invokers, each polling q and invoking batch after batch, until
// q is empty or the test's patience (20 s) runs out.
func (q *fakeFireQueue) drain(t *testing.T, invokers ...*Invoker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, inv := range invokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && q.left() > 0 {
				recs := q.receive(fireQueueBatch)
				if len(recs) == 0 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				q.settle(recs, inv.Invoke(ctx, events.SQSEvent{Records: recs}))
			}
		}()
	}
	wg.Wait()
	if n := q.left(); n > 0 {
		t.Fatalf("%d messages still on the queue after 20 s", n)
	}
}

// run moves the fake clock to the moment the next message becomes
// visible and hands the visible ones to inv as one batch, as Lambda's
// event source does, until the queue is empty or steps batches were
// handed out; it returns how many messages are left.
func (q *fakeFireQueue) run(t *testing.T, clock *swClock, inv *Invoker, steps int) int {
	t.Helper()
	for range steps {
		next, ok := q.nextVisible()
		if !ok {
			return 0
		}
		clock.Set(maxTime(next, clock.Now()))
		recs := q.receive(fireQueueBatch)
		q.settle(recs, inv.Invoke(t.Context(), events.SQSEvent{Records: recs}))
	}
	return q.left()
}
