package main

// Tests of the overlap policies (overlap.go) on the fakes of
// overlap_fakes_test.go.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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
			q := newFakeFireQueue(time.Now)
			var invokers []*Invoker
			for range 3 {
				inv := testInvoker(noSecrets(t), &sqsSender{}, nil)
				inv.Timers, inv.Visibility, inv.FireQueueURL, inv.DeadLetterQueueURL = store, q, igFireQueueURL, igDLQURL
				invokers = append(invokers, inv)
			}
			for i := range 12 {
				q.send(fmt.Sprintf("m-%02d", i), string(mustJSON(t, ovMessage(igAt.Add(time.Duration(i)*time.Second)))), time.Now())
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
