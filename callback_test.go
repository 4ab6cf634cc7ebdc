package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

// cbQueue is a batchSender with SQS's limits on SendMessageBatch (1-10
// entries, unique ids, at most 256 KiB in all) that fails the entries
// whose body fail names, or the whole call with callErr.
type cbQueue struct {
	mu      sync.Mutex
	calls   [][]string // the bodies of each call
	fail    func(body string) bool
	callErr error
}

// SendMessageBatch checks the call against SQS's limits and answers each
// entry.
func (q *cbQueue) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if broken := sqsBatchRules(in); len(broken) > 0 {
		return nil, broken[0].Err
	}
	var bodies []string
	for _, e := range in.Entries {
		bodies = append(bodies, aws.ToString(e.MessageBody))
	}
	if aws.ToString(in.QueueUrl) != testQueueURL {
		return nil, fmt.Errorf("queue %q", aws.ToString(in.QueueUrl))
	}
	q.calls = append(q.calls, bodies)
	if q.callErr != nil {
		return nil, q.callErr
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if q.fail != nil && q.fail(aws.ToString(e.MessageBody)) {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: false})
			continue
		}
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
	}
	return out, nil
}

// callSizes is how many messages each call carried, sorted.
func (q *cbQueue) callSizes() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return sortedSizes(q.calls, func(c []string) int { return len(c) })
}

// cbRecords are n callback occurrences due at igAt, of timers cb-00...,
// each with a body of size bytes (at least its own number).
func cbRecords(t *testing.T, n, size int) ([]events.SQSMessage, []Timer) {
	var recs []events.SQSMessage
	var timers []Timer
	for i := range n {
		id := fmt.Sprintf("cb-%02d", i)
		data := fmt.Sprintf(`{"i":%d,"pad":"%s"}`, i, strings.Repeat("x", max(0, size-20)))
		m := FireMessage{TimerID: id, Version: 1, ScheduledAt: igAt, CallbackData: json.RawMessage(data)}
		recs = append(recs, igRecord(t, "m-"+id, 1, m))
		timers = append(timers, igTimer(id, 1))
	}
	return recs, timers
}

// TestInvokeBatchesCallbackMessages: the callback messages of one batch
// go out in SendMessageBatch calls of at most 10 and 256 KiB, and each
// occurrence gets its own outcome: an entry SQS failed fails (and is
// retried) alone, a failed call fails every message it carried, and each
// message is recorded delivered only when SQS took it.
func TestInvokeBatchesCallbackMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		n, size     int
		concurrency int
		fail        func(body string) bool
		callErr     error
		wantSizes   []int
		wantFailed  []string
	}{
		{name: "ten in one call", n: 10, size: 40, wantSizes: []int{10}, wantFailed: []string{}},
		{name: "twelve at once: ten and two", n: 12, size: 40, concurrency: 12, wantSizes: []int{2, 10}, wantFailed: []string{}},
		{name: "five of 60 KB: four fit in 256 KiB", n: 5, size: 60 << 10, wantSizes: []int{1, 4}, wantFailed: []string{}},
		{name: "one entry failed", n: 6, size: 40, fail: func(b string) bool { return strings.HasPrefix(b, `{"i":3,`) },
			wantSizes: []int{6}, wantFailed: []string{"m-cb-03"}},
		{name: "the call failed", n: 3, size: 40, callErr: errors.New("ServiceUnavailable"),
			wantSizes: []int{3}, wantFailed: []string{"m-cb-00", "m-cb-01", "m-cb-02"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			recs, timers := cbRecords(t, tt.n, tt.size)
			e := newIGEnv(t, noSecrets(t), timers...)
			q := &cbQueue{fail: tt.fail, callErr: tt.callErr}
			e.inv.CallbackBatch = q
			e.inv.CallbackWindow = 50 * time.Millisecond // all ten are ready well within it
			if tt.concurrency > 0 {
				e.inv.Concurrency = tt.concurrency
			}

			if diff := cmp.Diff(tt.wantFailed, e.invoke(recs...)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSizes, q.callSizes()); diff != "" {
				t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
			}
			if sent := e.send.All(); len(sent) != 0 {
				t.Errorf("%d SendMessage calls besides the batches", len(sent))
			}
			var delivered []string
			for _, f := range e.store.Fires() {
				if f.Fire.Outcome == OutcomeDelivered {
					delivered = append(delivered, "m-"+f.TimerID)
				}
			}
			slices.Sort(delivered)
			var want []string
			for _, r := range recs {
				if !slices.Contains(tt.wantFailed, r.MessageId) {
					want = append(want, r.MessageId)
				}
			}
			if diff := cmp.Diff(want, delivered); diff != "" {
				t.Errorf("recorded delivered (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInvokeCallbackWithoutBatch: with no CallbackBatch, each callback
// message is one SendMessage, as before.
func TestInvokeCallbackWithoutBatch(t *testing.T) {
	t.Parallel()
	recs, timers := cbRecords(t, 3, 40)
	e := newIGEnv(t, noSecrets(t), timers...)
	if diff := cmp.Diff([]string{}, e.invoke(recs...)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if n := len(e.send.All()); n != 3 {
		t.Errorf("%d SendMessage calls, want 3", n)
	}
}
