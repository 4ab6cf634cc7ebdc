package main

// Tests of the overlap policies (overlap.go) on fakes with the real
// services' semantics: ovStore, the invoker's igStore with the run lease
// as Store keeps it (held to it by TestIntegrationRunLeaseContract), and
// ovQueue, a fire queue with SQS's receive counts, receipt handles and
// visibility bounds, drained by several invokers at once as Lambda's
// event source mapping would.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
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
	// waiters counts the occurrences waiting at once, at most ever.
	maxWaiters int
	pauses     []string // Pause calls: "id: reason"
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
	s.maxWaiters = max(s.maxWaiters, 1)
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

// ---------------------------------------------------------------- tests

// ovTimer is timer t-1 at version 1 with overlap policy, calling url.
func ovTimer(policy, url string) Timer {
	return Timer{ID: "t-1", Version: 1, Overlap: policy, HTTP: &HTTPTarget{Method: "POST", URL: url}}
}

// ovMessage is the sweeper's message of t-1's occurrence at at: it names
// the occurrence only, and the invoker fills it in from the timer.
func ovMessage(at time.Time) FireMessage { return newFireMessage("t-1", 1, at) }

// ovCall is one call a target saw, from its start to its end.
type ovCall struct{ start, end time.Time }

// slowTarget answers 200 after d, recording each call's span.
type slowTarget struct {
	*target
	mu    sync.Mutex
	calls []ovCall
}

func newSlowTarget(t *testing.T, d time.Duration) *slowTarget {
	st := &slowTarget{}
	st.target = newTarget(t, func(http.ResponseWriter, *http.Request) int {
		start := time.Now()
		time.Sleep(d)
		st.mu.Lock()
		st.calls = append(st.calls, ovCall{start, time.Now()})
		st.mu.Unlock()
		return http.StatusOK
	})
	return st
}

// Calls returns the calls' spans by start.
func (st *slowTarget) Calls() []ovCall {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := slices.Clone(st.calls)
	sort.Slice(c, func(i, j int) bool { return c[i].start.Before(c[j].start) })
	return c
}

// ovOutcomes counts the final outcome of each occurrence of fires, and
// fails the test for an occurrence with more than one.
func ovOutcomes(t *testing.T, fires []igFire) map[string]int {
	t.Helper()
	per := map[time.Time]string{}
	n := map[string]int{}
	for _, f := range fires {
		if prev, ok := per[f.Fire.ScheduledAt]; ok {
			t.Errorf("occurrence %s has two outcomes: %s, then %s", f.Fire.ScheduledAt.Format(time.RFC3339), prev, f.Fire.Outcome)
		}
		per[f.Fire.ScheduledAt] = f.Fire.Outcome
		n[f.Fire.Outcome]++
	}
	return n
}

// TestOverlapConcurrentInvokers: twelve occurrences of a timer whose call
// takes 400 ms, all on the queue at once and taken by three invokers at
// once, never overlap a call; skip calls once and skips the rest,
// queue-one calls the one waiter after the first call ended and skips the
// other ten; every occurrence has one outcome.
func TestOverlapConcurrentInvokers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy                   string
		wantDelivered, wantWaits int
	}{{OverlapSkip, 1, 0}, {OverlapQueueOne, 2, 1}} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			tg := newSlowTarget(t, 400*time.Millisecond)
			store := newOVStore(ovTimer(tc.policy, tg.URL+"/hook"))
			q := &ovQueue{now: time.Now}
			var invokers []*Invoker
			for range 3 {
				inv := testInvoker(noSecrets(t), &sqsSender{}, nil)
				inv.Timers, inv.Visibility, inv.FireQueueURL, inv.DeadLetterQueueURL = store, q, igFireQueueURL, igDLQURL
				invokers = append(invokers, inv)
			}
			for i := range 12 {
				q.send(fmt.Sprintf("m-%02d", i), string(mustJSON(t, ovMessage(igAt.Add(time.Duration(i)*time.Second)))))
			}

			q.drain(t, invokers...)

			calls := tg.Calls()
			for i := 1; i < len(calls); i++ {
				if calls[i].start.Before(calls[i-1].end) {
					t.Errorf("call %d started at %s, before call %d ended at %s", i, calls[i].start, i-1, calls[i-1].end)
				}
			}
			got := ovOutcomes(t, store.Fires())
			want := map[string]int{OutcomeDelivered: tc.wantDelivered, OutcomeSkipped: 12 - tc.wantDelivered}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if len(calls) != tc.wantDelivered {
				t.Errorf("%d calls, want %d", len(calls), tc.wantDelivered)
			}
			for _, f := range store.Fires() {
				if f.Fire.Attempt != 1 {
					t.Errorf("%s: attempt %d, want 1 (a receive spent waiting is no attempt)", f.Fire.ScheduledAt.Format(time.RFC3339), f.Fire.Attempt)
				}
				if f.Fire.Outcome == OutcomeSkipped && !strings.HasPrefix(f.Fire.Error, "skipped: the call of the occurrence of 2025-03-01T09:00:") {
					t.Errorf("skipped with %q, want it to name the running call", f.Fire.Error)
				}
			}
			if n := len(store.waits); n != tc.wantWaits {
				t.Errorf("%d occurrences waited, want %d", n, tc.wantWaits)
			}
			if l := store.Lease("t-1"); l != (RunLease{}) {
				t.Errorf("lease left %+v, want none", l)
			}
		})
	}
}

// mustJSON is v as JSON.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := marshalJSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ovEnv is an igEnv on an ovStore holding timer tm.
func ovEnv(t *testing.T, tm Timer) (*igEnv, *ovStore) {
	e := newIGEnv(t, noSecrets(t), tm)
	s := wrapOV(e.store)
	e.inv.Timers = s
	return e, s
}

// TestOverlapCrashedHolderExpires: a call whose invoker died holds the
// lease until the call's deadline (the target's timeout and the invoker's
// margin), not for ever: an occurrence before it is skipped, one after it
// is delivered.
func TestOverlapCrashedHolderExpires(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, answer(http.StatusOK))
	e, s := ovEnv(t, ovTimer(OverlapSkip, tg.URL+"/hook"))
	crashed := Occurrence{TimerID: "t-1", At: igAt.Add(-time.Minute)}
	start := e.clock.Now()
	until := e.inv.runUntil(context.Background(), &delivery{msg: FireMessage{HTTP: &HTTPTarget{}}}, start)
	if want := start.Add(e.inv.Timeout + InvokeMarginSeconds*time.Second); !until.Equal(want) {
		t.Fatalf("runUntil %s, want %s", until, want)
	}
	s.AcquireRun(context.Background(), "t-1", runName(crashed), start, until) // and its invoker dies

	e.clock.Add(e.inv.Timeout + InvokeMarginSeconds*time.Second - time.Millisecond)
	if got := e.invoke(igRecord(t, "m-1", 1, ovMessage(igAt))); len(got) != 0 {
		t.Fatalf("failures %v, want none", got)
	}
	e.clock.Add(2 * time.Millisecond)
	if got := e.invoke(igRecord(t, "m-2", 1, ovMessage(igAt.Add(time.Second)))); len(got) != 0 {
		t.Fatalf("failures %v, want none", got)
	}

	var got []string
	for _, f := range s.Fires() {
		got = append(got, f.Fire.Outcome+": "+f.Fire.Error)
	}
	want := []string{"skipped: skipped: the call of the occurrence of 2025-03-01T08:59:00Z was still running", "delivered: "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := len(tg.Received()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// TestOverlapRunUntil: the lease ends at the call's deadline, and never
// after the function's.
func TestOverlapRunUntil(t *testing.T) {
	t.Parallel()
	inv := testInvoker(noSecrets(t), &sqsSender{}, nil)
	now := time.Now()
	long := &delivery{msg: FireMessage{HTTP: &HTTPTarget{TimeoutSeconds: 120}}}
	if got, want := inv.runUntil(context.Background(), long, now), now.Add(150*time.Second); !got.Equal(want) {
		t.Errorf("120 s target, no deadline: %s, want %s", got, want)
	}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(40*time.Second))
	defer cancel()
	if got, want := inv.runUntil(ctx, long, now), now.Add(41*time.Second); !got.Equal(want) {
		t.Errorf("120 s target, 40 s left: %s, want %s (the deadline and a second)", got, want)
	}
}

// ovBlocking is a target whose first call waits for release, answering
// 200, and the rest answer at once.
func ovBlocking(t *testing.T) (*target, func(), <-chan struct{}) {
	release, started := make(chan struct{}), make(chan struct{})
	var n atomic.Int32
	tg := newTarget(t, func(http.ResponseWriter, *http.Request) int {
		if n.Add(1) == 1 {
			close(started)
			<-release
		}
		return http.StatusOK
	})
	// Before the server's Close (cleanups run last first), so that a test
	// that stops early does not leave the call blocking it.
	var once sync.Once
	closeRelease := func() { once.Do(func() { close(release) }) }
	t.Cleanup(closeRelease)
	return tg, closeRelease, started
}

// ovQueueOneScene: while the first occurrence (m-a) calls, the second
// (m-b) waits and the third (m-c) is skipped; then the call ends, which
// hands the lease to m-b and wakes it. The timer has no retries, so m-b's
// coming back must not count as an attempt.
func ovQueueOneScene(t *testing.T) (*igEnv, *ovStore, *target, FireMessage) {
	t.Helper()
	tg, release, started := ovBlocking(t)
	tm := ovTimer(OverlapQueueOne, tg.URL+"/hook")
	tm.Retry = RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}
	e, s := ovEnv(t, tm)
	done := make(chan []string)
	go func() { done <- e.invoke(igRecord(t, "m-a", 1, ovMessage(igAt))) }()
	<-started
	b := ovMessage(igAt.Add(time.Second))
	if got := e.invoke(igRecord(t, "m-b", 1, b)); !cmp.Equal(got, []string{"m-b"}) {
		t.Fatalf("m-b: failures %v, want [m-b] (left on the queue to wait)", got)
	}
	if got := e.invoke(igRecord(t, "m-c", 1, ovMessage(igAt.Add(2*time.Second)))); len(got) != 0 {
		t.Fatalf("m-c: failures %v, want none (skipped)", got)
	}
	release()
	if got := <-done; len(got) != 0 {
		t.Fatalf("m-a: failures %v, want none", got)
	}
	// m-b waits until m-a's lease would end (5 s timeout + 30 s margin), rounded up, then is woken, a second later.
	want := []igVisibilityCall{{igFireQueueURL, "rh-m-b-1", 37}, {igFireQueueURL, "rh-m-b-1", 1}}
	if diff := cmp.Diff(want, e.vis.Calls()); diff != "" {
		t.Fatalf("ChangeMessageVisibility calls (-want +got):\n%s", diff)
	}
	return e, s, tg, b
}

// TestOverlapQueueOne: the waiter runs after the running call, as attempt
// 1 of its own; the third is skipped.
func TestOverlapQueueOne(t *testing.T) {
	t.Parallel()
	e, s, tg, b := ovQueueOneScene(t)

	if got := e.invoke(igRecord(t, "m-b", 2, b)); len(got) != 0 {
		t.Fatalf("m-b back: failures %v, want none", got)
	}

	var got []string
	for _, f := range s.Fires() {
		got = append(got, fmt.Sprintf("%s %s attempt %d %s", f.Fire.ScheduledAt.Format("15:04:05"), f.Fire.Outcome, f.Fire.Attempt, f.Fire.Error))
	}
	want := []string{
		"09:00:02 skipped attempt 1 skipped: the call of the occurrence of 2025-03-01T09:00:00Z was still running",
		"09:00:00 delivered attempt 1 ",
		"09:00:01 delivered attempt 1 ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := len(tg.Received()); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
	if l := s.Lease("t-1"); l != (RunLease{}) {
		t.Errorf("lease left %+v, want none", l)
	}
}

// TestOverlapWaiterFenced: a waiting occurrence whose timer is paused or
// deleted while it waits is dropped when it comes back, uncalled, and the
// lease it was handed does not block the timer's next call.
func TestOverlapWaiterFenced(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"paused", "deleted"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			e, s, tg, b := ovQueueOneScene(t)
			tm, _ := s.Get(context.Background(), "t-1")
			if change == "paused" {
				at := e.clock.Now()
				tm.PausedAt = &at
				s.setTimer(*tm)
			} else {
				s.deleteTimer("t-1")
			}

			if got := e.invoke(igRecord(t, "m-b", 2, b)); len(got) != 0 {
				t.Fatalf("m-b back: failures %v, want none (dropped)", got)
			}
			if n := len(tg.Received()); n != 1 {
				t.Errorf("%d calls, want 1: the waiter must not call a %s timer", n, change)
			}
			if lines := e.log.WithMsg(t, "stale occurrence dropped"); len(lines) != 1 || lines[0]["reason"] != "timer "+change {
				t.Errorf("stale lines %v, want one, reason timer %s", lines, change)
			}
			if change == "deleted" {
				return
			}
			if l := s.Lease("t-1"); l != (RunLease{}) {
				t.Errorf("lease left %+v by the dropped waiter, want none", l)
			}
			tm.PausedAt = nil // resumed
			s.setTimer(*tm)
			if got := e.invoke(igRecord(t, "m-d", 1, ovMessage(igAt.Add(3*time.Second)))); len(got) != 0 {
				t.Fatalf("m-d: failures %v, want none", got)
			}
			if n := len(tg.Received()); n != 2 {
				t.Errorf("%d calls, want 2: the resumed timer's next occurrence is called at once", n)
			}
		})
	}
}

// TestOverlapDefaultCostsNothing: a timer with the default policy, and a
// callback timer, make no lease call at all.
func TestOverlapDefaultCostsNothing(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, answer(http.StatusOK))
	e, s := ovEnv(t, ovTimer("", tg.URL+"/hook"))
	for i := range 3 {
		if got := e.invoke(igRecord(t, fmt.Sprintf("m-%d", i), 1, ovMessage(igAt.Add(time.Duration(i)*time.Second)))); len(got) != 0 {
			t.Fatalf("failures %v", got)
		}
	}
	if calls := s.Calls(); len(calls) != 0 {
		t.Errorf("lease calls %v, want none", calls)
	}
	if n := len(tg.Received()); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

// TestOverlapValidation: the policy is checked at PUT, and refused for a
// callback timer.
func TestOverlapValidation(t *testing.T) {
	t.Parallel()
	opt := timerOptions{Now: igAt, SecretPrefix: DefaultSecretPrefix}
	http := &HTTPTarget{URL: "https://example.com/x"}
	for _, tc := range []struct {
		name string
		in   putRequest
		want string // the error, or the policy stored
	}{
		{"allow", putRequest{HTTP: http, Overlap: "allow"}, ""},
		{"skip", putRequest{HTTP: http, Overlap: "skip"}, "skip"},
		{"queue-one", putRequest{HTTP: http, Overlap: "queue-one"}, "queue-one"},
		{"unknown", putRequest{HTTP: http, Overlap: "Skip"}, "error: overlap must be allow, skip or queue-one"},
		{"callback", putRequest{TimerCallbackData: []byte(`{}`), Overlap: "skip"},
			"error: overlap skip needs an http target: a callback timer's delivery is one SQS send, which never overlaps the next"},
		{"callback allow", putRequest{TimerCallbackData: []byte(`{}`), Overlap: "allow"}, ""},
	} {
		h := *http
		if tc.in.HTTP != nil {
			tc.in.HTTP = &h
		}
		tm, err := newTimer("t-1", tc.in, opt)
		got := ""
		if err != nil {
			got = "error: " + ErrorMessage(err)
			if ErrorCode(err) != EINVALID {
				t.Errorf("%s: code %v, want invalid", tc.name, ErrorCode(err))
			}
		} else {
			got = tm.Overlap
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestOverlapLeaseFreedBeforeWaiting: a queue-one occurrence that finds
// the lease held, but free again by the time it would wait (the call
// ended in between), takes it and calls rather than waiting or skipping.
func TestOverlapLeaseFreedBeforeWaiting(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, answer(http.StatusOK))
	e, s := ovEnv(t, ovTimer(OverlapQueueOne, tg.URL+"/hook"))
	other := runName(Occurrence{TimerID: "t-1", At: igAt.Add(-time.Minute)})
	s.AcquireRun(context.Background(), "t-1", other, e.clock.Now(), e.clock.Now().Add(time.Minute))
	s.beforeWait = func() {
		s.beforeWait = nil
		s.EndRun(context.Background(), "t-1", other, e.clock.Now())
	}

	if got := e.invoke(igRecord(t, "m-1", 1, ovMessage(igAt))); len(got) != 0 {
		t.Fatalf("failures %v, want none", got)
	}
	if fires := s.Fires(); len(fires) != 1 || fires[0].Fire.Outcome != OutcomeDelivered {
		t.Errorf("outcomes %+v, want one, delivered", fires)
	}
	// Its delay, set before it would wait, then the queue's visibility again.
	want := []igVisibilityCall{{igFireQueueURL, "rh-m-1-1", 62}, {igFireQueueURL, "rh-m-1-1", 900}}
	if diff := cmp.Diff(want, e.vis.Calls()); diff != "" {
		t.Errorf("ChangeMessageVisibility calls (-want +got):\n%s", diff)
	}
}

// TestPrintTimerFieldsControls: `timers get` shows the overlap policy and
// pauseAfterFailures when set, and no line for them otherwise.
func TestPrintTimerFieldsControls(t *testing.T) {
	t.Parallel()
	var set, unset strings.Builder
	printTimerFields(&set, map[string]any{"id": "t-1", "overlap": "queue-one", "pauseAfterFailures": float64(3)})
	printTimerFields(&unset, map[string]any{"id": "t-1"})
	for _, line := range []string{"Overlap:", "queue-one", "Pause after failures:", "3"} {
		if !strings.Contains(set.String(), line) {
			t.Errorf("with both set, no %q in:\n%s", line, set.String())
		}
	}
	if strings.Contains(unset.String(), "Overlap") || strings.Contains(unset.String(), "Pause after") {
		t.Errorf("with neither set:\n%s", unset.String())
	}
}
