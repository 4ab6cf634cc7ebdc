package main

// The overlap tests' fakes, with the real services' semantics: ovStore,
// the invoker's igStore with the run lease and the self-pause's calls as
// Store has them (held to it by TestIntegrationRunLeaseContract), and
// ovQueue, a fire queue with SQS's receive counts, receipt handles,
// visibility bounds and batches of 10, drained by several invokers at once
// as Lambda's event source mapping would.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// ---------------------------------------------------------------- fakes

// ovStore is igStore with the run lease (runLeaseStore) and the
// self-pause's calls (selfPauseStore), as Store has them: a skipped
// outcome settles its occurrence, a lease is taken, waited for, handed on
// and ended under Store's conditions. It records every lease call.
type ovStore struct {
	*igStore
	lmu    sync.Mutex
	leases map[string]RunLease // by timer id
	waits  map[string]int      // by igKey
	calls  []string            // lease and self-pause calls, "Name id"
	pauses []string            // Pause calls: "id: reason"
	// beforeWait, when set, runs at each WaitRun before its condition is
	// checked, outside the lock: another invoker's move in between.
	beforeWait func()
}

// newOVStore returns an ovStore holding timers.
func newOVStore(timers ...Timer) *ovStore {
	return wrapOV(newIGStore(timers...))
}

// wrapOV makes an ovStore of s.
func wrapOV(s *igStore) *ovStore {
	return &ovStore{igStore: s, leases: map[string]RunLease{}, waits: map[string]int{}}
}

// call records a call.
func (s *ovStore) call(name, id string) { s.calls = append(s.calls, name+" "+id) }

// Calls returns the lease and self-pause calls.
func (s *ovStore) Calls() []string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return slices.Clone(s.calls)
}

// Lease returns timer id's run lease.
func (s *ovStore) Lease(id string) RunLease {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.leases[id]
}

// Record is igStore's, and settles a skipped occurrence as Store does.
func (s *ovStore) Record(ctx context.Context, o Occurrence, f LastFire, deadLettered bool, now time.Time) error {
	if f.Outcome != OutcomeSkipped {
		return s.igStore.Record(ctx, o, f, deadLettered, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := igKey(o)
	c := s.claims[key]
	if c.Settled {
		return nil
	}
	c.Settled, c.Leased = true, false
	s.claims[key] = c
	s.fires = append(s.fires, igFire{TimerID: o.TimerID, Fire: f})
	return nil
}

// AcquireRun takes the lease under Store.AcquireRun's condition.
func (s *ovStore) AcquireRun(_ context.Context, id, occ string, now, until time.Time) (RunLease, bool, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("AcquireRun", id)
	l := s.leases[id]
	if l.Holder != "" && l.Until >= now.UnixMilli() && l.Holder != occ {
		return l, false, nil
	}
	l.Holder, l.Until = occ, until.UnixMilli()
	s.leases[id] = l
	return RunLease{}, true, nil
}

// WaitRun makes occ the waiter under Store.WaitRun's condition.
func (s *ovStore) WaitRun(_ context.Context, id, occ, receipt string, now, until time.Time) (RunLease, bool, error) {
	if s.beforeWait != nil {
		s.beforeWait()
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("WaitRun", id)
	l, ok := s.leases[id]
	free := l.Waiter == "" || l.WaiterUntil < now.UnixMilli() || l.Waiter == occ || l.Waiter == l.Holder
	if !ok || l.Holder == "" || l.Until < now.UnixMilli() || l.Holder == occ || !free {
		return l, false, nil
	}
	l.Waiter, l.WaiterUntil, l.WaiterReceipt = occ, until.UnixMilli(), receipt
	s.leases[id] = l
	return RunLease{}, true, nil
}

// EndRun deletes or hands on the lease as Store.EndRun does.
func (s *ovStore) EndRun(_ context.Context, id, occ string, now time.Time) (string, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("EndRun", id)
	l := s.leases[id]
	if l.Holder != occ {
		return "", nil
	}
	if !l.waiting(now) || l.Waiter == occ {
		delete(s.leases, id)
		return "", nil
	}
	receipt := l.WaiterReceipt
	s.leases[id] = RunLease{Holder: l.Waiter, Until: l.WaiterUntil}
	return receipt, nil
}

// ReleaseToWait releases the claim and counts a wait.
func (s *ovStore) ReleaseToWait(ctx context.Context, o Occurrence, c Claimant) error {
	s.lmu.Lock()
	s.call("ReleaseToWait", o.TimerID)
	s.waits[igKey(o)]++
	s.lmu.Unlock()
	return s.igStore.ReleaseClaim(ctx, o, c)
}

// Waits returns the waits counted on o.
func (s *ovStore) Waits(_ context.Context, o Occurrence) (int, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("Waits", o.TimerID)
	return s.waits[igKey(o)], nil
}

// occurrences calls each with timer id's occurrences' latest outcomes,
// newest first (a fire by hand before a scheduled one at its instant, as
// their sort keys order them), as Store.occurrences does.
func (s *ovStore) occurrences(_ context.Context, id string, _ int32, each func(LastFire) bool) error {
	s.lmu.Lock()
	s.call("occurrences", id)
	s.lmu.Unlock()
	latest := map[string]LastFire{}
	for _, f := range s.Fires() {
		if f.TimerID == id {
			latest[igKey(Occurrence{TimerID: id, At: f.Fire.ScheduledAt, Manual: f.Fire.Manual})] = f.Fire
		}
	}
	var all []LastFire
	for _, f := range latest {
		all = append(all, f)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].ScheduledAt.Equal(all[j].ScheduledAt) {
			return all[i].ScheduledAt.After(all[j].ScheduledAt)
		}
		return all[i].Manual
	})
	for _, f := range all {
		if !each(f) {
			return nil
		}
	}
	return nil
}

// Pause pauses timer id as Store.Pause does: the first pause's instant is
// kept, the reason replaced.
func (s *ovStore) Pause(_ context.Context, id, reason string, now time.Time) (*Timer, error) {
	s.lmu.Lock()
	s.call("Pause", id)
	s.pauses = append(s.pauses, id+": "+reason)
	s.lmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.timers[id]
	if !ok {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	if t.PausedAt == nil {
		at := now.UTC()
		t.PausedAt = &at
	}
	t.PauseReason = reason
	s.timers[id] = t
	return &t, nil
}

// setTimer replaces timer t, as a PUT, pause or resume would.
func (s *ovStore) setTimer(t Timer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timers[t.ID] = t
}

// deleteTimer deletes timer id, as a DELETE would.
func (s *ovStore) deleteTimer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.timers, id)
}

// ovMsg is one message of an ovQueue.
type ovMsg struct {
	id, body, receipt string
	receives          int
	visibleAt         time.Time
	deleted           bool
}

// ovQueue is a fire queue as SQS keeps one: a receive hands out visible
// messages (up to 10) with a new receipt handle each and an incremented
// receive count, invisible for the queue's visibility timeout (900 s);
// ChangeMessageVisibility takes only the latest receipt handle of a
// message in flight, and 0 to 43200 seconds.
type ovQueue struct {
	mu   sync.Mutex
	msgs []*ovMsg
	now  func() time.Time
}

// send enqueues body as message id, visible at once.
func (q *ovQueue) send(id, body string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, &ovMsg{id: id, body: body, visibleAt: q.now()})
}

// receive hands out up to 10 visible messages.
func (q *ovQueue) receive() []events.SQSMessage {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []events.SQSMessage
	now := q.now()
	for _, m := range q.msgs {
		if len(out) == 10 {
			break
		}
		if m.deleted || m.visibleAt.After(now) {
			continue
		}
		m.receives++
		m.receipt = fmt.Sprintf("rh-%s-%d", m.id, m.receives)
		m.visibleAt = now.Add(900 * time.Second)
		out = append(out, events.SQSMessage{MessageId: m.id, Body: m.body, ReceiptHandle: m.receipt,
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives)}})
	}
	return out
}

// ChangeMessageVisibility sets a message's visibility as SQS does.
func (q *ovQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
		return nil, fmt.Errorf("InvalidParameterValue: visibility timeout %d out of 0-43200", in.VisibilityTimeout)
	}
	for _, m := range q.msgs {
		if m.receipt == aws.ToString(in.ReceiptHandle) && !m.deleted {
			m.visibleAt = q.now().Add(time.Duration(in.VisibilityTimeout) * time.Second)
			return &sqs.ChangeMessageVisibilityOutput{}, nil
		}
	}
	return nil, errors.New("MessageNotInflight")
}

// settle deletes the messages of recs that resp does not name as failed,
// as Lambda's event source mapping does.
func (q *ovQueue) settle(recs []events.SQSMessage, resp events.SQSEventResponse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, r := range recs {
		for _, m := range q.msgs {
			if m.id == r.MessageId && m.receipt == r.ReceiptHandle && !failed[r.MessageId] {
				m.deleted = true
			}
		}
	}
}

// pending is the number of messages not deleted.
func (q *ovQueue) pending() int {
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

// drain runs invokers, each polling q and invoking batch after batch, until
// q is empty or the test's patience (20 s) runs out.
func (q *ovQueue) drain(t *testing.T, invokers ...*Invoker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, inv := range invokers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && q.pending() > 0 {
				recs := q.receive()
				if len(recs) == 0 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				q.settle(recs, inv.Invoke(ctx, events.SQSEvent{Records: recs}))
			}
		}()
	}
	wg.Wait()
	if n := q.pending(); n > 0 {
		t.Fatalf("%d messages still on the queue after 20 s", n)
	}
}
