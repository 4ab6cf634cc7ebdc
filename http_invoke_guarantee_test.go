package main

// Tests of the invoker's guarantees: one delivery per occurrence (claims),
// bounded retries ending on the dead-letter queue, and one log line per
// outcome. The fakes are in http_invoke_fakes_test.go.

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// ---------------------------------------------------------------- claims

func TestClaimFirstDeliveryDeliversOnceAndSettles(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	start := e.clock.Now()
	tg := newTarget(t, func(http.ResponseWriter, *http.Request) int {
		e.clock.Add(250 * time.Millisecond) // the call's latency, on the injected clock
		return http.StatusAccepted
	})
	rec := igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook"))

	if diff := cmp.Diff([]string{}, e.invoke(rec)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
	occ := igOccurrence("t-1", igAt)
	if diff := cmp.Diff([]string{occ + " by m-1"}, e.store.Claimed()); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{occ}, e.store.Settled()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	want := []igFire{{TimerID: "t-1", Fire: LastFire{ScheduledAt: igAt, AttemptedAt: start, Attempt: 1,
		Outcome: OutcomeDelivered, Status: http.StatusAccepted, LatencyMs: 250}}}
	if diff := cmp.Diff(want, e.store.Fires()); diff != "" {
		t.Errorf("lastFire recorded (-want +got):\n%s", diff)
	}
	if sent := e.send.All(); len(sent) != 0 {
		t.Errorf("SendMessage calls %+v, want none", sent)
	}
	if calls := e.vis.Calls(); len(calls) != 0 {
		t.Errorf("ChangeMessageVisibility calls %+v, want none", calls)
	}
}

func TestClaimSecondMessageForOccurrenceSuppressed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first func(t *testing.T, e *igEnv, url string)
	}{
		{"after the first message delivered", func(t *testing.T, e *igEnv, url string) {
			if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "POST", url)))); diff != "" {
				t.Fatalf("first message failures (-want +got):\n%s", diff)
			}
		}},
		{"while the first message is in flight", func(t *testing.T, e *igEnv, _ string) {
			e.store.setClaim(igOccurrence("t-1", igAt), igClaim{MessageID: "m-1"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(http.StatusOK))
			tt.first(t, e, tg.URL+"/hook")
			requests, fires, settled := len(tg.Received()), len(e.store.Fires()), len(e.store.Settled())

			got := e.invoke(igRecord(t, "m-2", 1, httpFire("t-1", "POST", tg.URL+"/hook")))

			if diff := cmp.Diff([]string{}, got); diff != "" {
				t.Errorf("failures (-want +got): the duplicate must be acked\n%s", diff)
			}
			if n := len(tg.Received()) - requests; n != 0 {
				t.Errorf("duplicate made %d requests, want 0", n)
			}
			if n := len(e.store.Fires()) - fires; n != 0 {
				t.Errorf("duplicate recorded %d outcomes, want 0", n)
			}
			if n := len(e.store.Settled()) - settled; n != 0 {
				t.Errorf("duplicate settled %d times, want 0", n)
			}
			if !slices.Contains(e.store.Claimed(), igOccurrence("t-1", igAt)+" by m-2") {
				t.Errorf("m-2 never tried to claim: claims %v", e.store.Claimed())
			}
		})
	}
}

func TestClaimRedeliveryAfterFailureDelivers(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, igStatuses(http.StatusInternalServerError, http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")

	if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("first attempt failures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 2, m))); diff != "" {
		t.Errorf("redelivery failures (-want +got):\n%s", diff)
	}

	if n := len(tg.Received()); n != 2 {
		t.Errorf("target received %d requests, want 2", n)
	}
	type outcome struct {
		Attempt int
		Outcome string
		Status  int
	}
	var got []outcome
	for _, f := range e.store.Fires() {
		got = append(got, outcome{f.Fire.Attempt, f.Fire.Outcome, f.Fire.Status})
	}
	want := []outcome{{1, OutcomeRetrying, 500}, {2, OutcomeDelivered, 200}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes recorded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{igOccurrence("t-1", igAt)}, e.store.Settled()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
}

func TestClaimRedeliveryAfterSuccessSuppressed(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")

	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Fatalf("first delivery failures (-want +got):\n%s", diff)
	}
	// Its deletion lost, SQS hands the same message out again.
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 2, m))); diff != "" {
		t.Errorf("redelivery failures (-want +got): a settled redelivery must be acked\n%s", diff)
	}

	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
	if n := len(e.store.Fires()); n != 1 {
		t.Errorf("%d outcomes recorded, want 1 (the first delivery's)", n)
	}
	if n := len(e.store.Claimed()); n != 2 {
		t.Errorf("%d claim attempts, want 2", n)
	}
}

func TestClaimStaleOrUnreadableOccurrence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		timers     []Timer
		claimErr   error
		getErr     error
		wantFailed []string
		// wantUnlinked: the stale chain's next link is deleted, in the
		// partitions the message names.
		wantUnlinked []string
	}{
		{name: "timer deleted", wantFailed: []string{}, wantUnlinked: []string{"t-1@1800003600 p64 v1"}},
		{name: "timer replaced", timers: []Timer{igTimer("t-1", 2)}, wantFailed: []string{}, wantUnlinked: []string{"t-1@1800003600 p64 v1"}},
		{name: "claim error", timers: []Timer{igTimer("t-1", 1)},
			claimErr: errors.New("ProvisionedThroughputExceededException"), wantFailed: []string{"m-1"}},
		{name: "get error", timers: []Timer{igTimer("t-1", 1)},
			getErr: errors.New("get timer t-1: InternalServerError"), wantFailed: []string{"m-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), tt.timers...)
			e.store.claimErr, e.store.getErr = tt.claimErr, tt.getErr
			tg := newTarget(t, answer(http.StatusOK))

			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.NextLinkAt, m.NextLinkParts = 1800003600, 64
			got := e.invoke(igRecord(t, "m-1", 1, m))

			if diff := cmp.Diff(tt.wantFailed, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			e.store.mu.Lock()
			unlinked := slices.Clone(e.store.linksDeleted)
			e.store.mu.Unlock()
			if diff := cmp.Diff(tt.wantUnlinked, unlinked); diff != "" {
				t.Errorf("links deleted (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			if fires := e.store.Fires(); len(fires) != 0 {
				t.Errorf("outcomes recorded %+v, want none", fires)
			}
			if s := e.store.Settled(); len(s) != 0 {
				t.Errorf("settled %v, want none", s)
			}
			if sent := e.send.All(); len(sent) != 0 {
				t.Errorf("SendMessage calls %+v, want none", sent)
			}
		})
	}
}

// A message whose timer could not be read keeps its claim: its
// redelivery delivers.
func TestClaimRedeliveryAfterReadErrorDelivers(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	e.store.setGetErr(errors.New("get timer t-1: InternalServerError"))
	tg := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")

	if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("first attempt failures (-want +got):\n%s", diff)
	}
	e.store.setGetErr(nil)
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 2, m))); diff != "" {
		t.Errorf("redelivery failures (-want +got):\n%s", diff)
	}
	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
}

func TestClaimConcurrentDuplicatesDeliverOnce(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 8} {
		t.Run(fmt.Sprintf("%d messages", n), func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.Concurrency = n
			// Hold every claim until all n messages are claiming, so that
			// they race for the occurrence. The timeout only guards
			// against a hang should the invoker not run them at once.
			var arrived atomic.Int64
			all := make(chan struct{})
			e.store.beforeClaim = func() {
				if arrived.Add(1) == int64(n) {
					close(all)
				}
				select {
				case <-all:
				case <-time.After(5 * time.Second):
				}
			}
			tg := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			var recs []events.SQSMessage
			for i := range n {
				recs = append(recs, igRecord(t, fmt.Sprintf("m-%d", i), 1, m))
			}

			if diff := cmp.Diff([]string{}, e.invoke(recs...)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if got := len(tg.Received()); got != 1 {
				t.Errorf("target received %d requests, want exactly 1", got)
			}
			if got := len(e.store.Claimed()); got != n {
				t.Errorf("%d claim attempts, want %d", got, n)
			}
			if got := len(e.store.Fires()); got != 1 {
				t.Errorf("%d outcomes recorded, want 1", got)
			}
			if got := len(e.log.WithMsg(t, "duplicate suppressed")); got != n-1 {
				t.Errorf("%d duplicates suppressed, want %d", got, n-1)
			}
		})
	}
}

// ---------------------------------------------------------------- retries

func TestRetryPolicyOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		retry   *RetryPolicy
		attempt int
		age     time.Duration // now - scheduledAt
		retried bool          // false: dead-lettered
	}{
		{"attempt 1 of 1+2", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 1, 5 * time.Second, true},
		{"attempt 2 of 1+2", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 2, 5 * time.Second, true},
		{"attempt 3 beyond MaxAttempts", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 3, 5 * time.Second, false},
		{"age within MaxAgeSeconds", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 1, 3599 * time.Second, true},
		{"age exhausted on the first failure", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 1, 3601 * time.Second, false},
		{"MaxAttempts 0", &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}, 1, 5 * time.Second, false},
		{"MaxAgeSeconds 0 is the default", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 0}, 1, 7200 * time.Second, true},
		{"nil retry: attempt 1", nil, 1, 5 * time.Second, true},
		{"nil retry: attempt 185", nil, 185, 5 * time.Second, true},
		{"nil retry: attempt 186", nil, 186, 5 * time.Second, false},
		{"nil retry: age 86399 s", nil, 1, 86399 * time.Second, true},
		{"nil retry: age 86401 s", nil, 1, 86401 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.clock.Set(igAt.Add(tt.age))
			tg := newTarget(t, answer(http.StatusInternalServerError))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.Retry = tt.retry
			rec := igRecord(t, "m-1", tt.attempt, m)
			reason := "POST " + tg.URL + "/hook: status 500"

			got := e.invoke(rec)

			if n := len(tg.Received()); n != 1 {
				t.Errorf("target received %d requests, want 1", n)
			}
			wantFire := LastFire{ScheduledAt: igAt, AttemptedAt: igAt.Add(tt.age), Attempt: tt.attempt,
				Outcome: OutcomeFailed, Status: 500, Error: reason}
			wantFailed, wantDLQ := []string{}, []sqsSent{igDeadLetter(rec, reason, tt.attempt)}
			if tt.retried {
				wantFire.Outcome = OutcomeRetrying
				wantFailed, wantDLQ = []string{"m-1"}, nil
			}
			if diff := cmp.Diff(wantFailed, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]igFire{{"t-1", wantFire}}, e.store.Fires()); diff != "" {
				t.Errorf("lastFire recorded (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantDLQ, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			calls := e.vis.Calls()
			if !tt.retried {
				if len(calls) != 0 {
					t.Errorf("ChangeMessageVisibility calls %+v, want none", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("ChangeMessageVisibility calls %+v, want 1", calls)
			}
			if calls[0].QueueURL != igFireQueueURL || calls[0].ReceiptHandle != rec.ReceiptHandle {
				t.Errorf("ChangeMessageVisibility(%s, %s), want (%s, %s)", calls[0].QueueURL, calls[0].ReceiptHandle, igFireQueueURL, rec.ReceiptHandle)
			}
			lo, hi := igRetryBounds(tt.attempt)
			if d := time.Duration(calls[0].Timeout) * time.Second; d < lo || d > hi {
				t.Errorf("VisibilityTimeout %v, want %v to %v for attempt %d", d, lo, hi, tt.attempt)
			}
		})
	}
}

func TestRetrySuccessCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		codes     []int
		delivered bool
	}{
		{404, []int{404}, true},
		{200, []int{201, 202}, false},
		{202, []int{201, 202}, true},
		{204, nil, true},
		{500, nil, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d in %v", tt.status, tt.codes), func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(tt.status))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.HTTP.SuccessCodes = tt.codes

			got := e.invoke(igRecord(t, "m-1", 1, m))

			wantFailed, wantOutcome := []string{"m-1"}, OutcomeRetrying
			if tt.delivered {
				wantFailed, wantOutcome = []string{}, OutcomeDelivered
			}
			if diff := cmp.Diff(wantFailed, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			fires := e.store.Fires()
			if len(fires) != 1 || fires[0].Fire.Outcome != wantOutcome || fires[0].Fire.Status != tt.status {
				t.Errorf("outcomes recorded %+v, want one %s with status %d", fires, wantOutcome, tt.status)
			}
		})
	}
}

func TestRetryPermanentRequestErrorDeadLettered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path string
	}{
		// Both smuggled past HTTPTarget.Validate, as a crafted message can.
		{"method with a space", "GET X", "/hook"},
		{"control character in URL", "POST", "/a\x7fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", tt.method, tg.URL+tt.path)
			m.Retry = nil // 185 retries allowed: none must be used
			rec := igRecord(t, "m-1", 1, m)

			if diff := cmp.Diff([]string{}, e.invoke(rec)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			reason := fmt.Sprintf("invalid: cannot build request for %s %s", tt.method, tg.URL+tt.path)
			if diff := cmp.Diff([]sqsSent{igDeadLetter(rec, reason, 1)}, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			if fires := e.store.Fires(); len(fires) != 1 || fires[0].Fire.Outcome != OutcomeFailed {
				t.Errorf("outcomes recorded %+v, want one failed", fires)
			}
			if calls := e.vis.Calls(); len(calls) != 0 {
				t.Errorf("ChangeMessageVisibility calls %+v, want none", calls)
			}
		})
	}
}

func TestRetryPoisonMessage(t *testing.T) {
	t.Parallel()
	const (
		notJSON   = `{"timerId":"t-1","http":{"method":"POST","url":"%s"}`
		noTimerID = `{"version":1,"scheduledAt":"2025-03-01T09:00:00Z","http":{"method":"POST","url":"%s"}}`
	)
	tests := []struct {
		name       string
		body       string
		dlq        string
		sendErr    error
		wantFailed []string
		wantSent   bool
	}{
		{"not JSON", notJSON, igDLQURL, nil, []string{}, true},
		{"no timerId", noTimerID, igDLQURL, nil, []string{}, true},
		{"no dead-letter queue", notJSON, "", nil, []string{"m-1"}, false},
		{"dead-letter send fails", noTimerID, igDLQURL, errors.New("AWS.SimpleQueueService.NonExistentQueue"), []string{"m-1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.DeadLetterQueueURL = tt.dlq
			e.send.errs = map[string]error{igDLQURL: tt.sendErr}
			tg := newTarget(t, answer(http.StatusOK))
			rec := events.SQSMessage{MessageId: "m-1", ReceiptHandle: "rh-m-1-4", Body: fmt.Sprintf(tt.body, tg.URL+"/hook"),
				Attributes: map[string]string{"ApproximateReceiveCount": "4"}}

			if diff := cmp.Diff(tt.wantFailed, e.invoke(rec)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			var want []sqsSent
			if tt.wantSent {
				want = []sqsSent{{QueueURL: igDLQURL, Body: rec.Body, Attributes: map[string]string{
					"Reason":            "String:malformed fire message",
					"Attempts":          "Number:4",
					"OriginalMessageId": "String:m-1",
				}}}
			}
			if diff := cmp.Diff(want, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			if c := e.store.Claimed(); len(c) != 0 {
				t.Errorf("claims %v, want none", c)
			}
		})
	}
}

func TestRetryDeadLetterSendErrorIsBatchFailure(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	e.send.errs = map[string]error{igDLQURL: errors.New("AWS.SimpleQueueService.NonExistentQueue")}
	tg := newTarget(t, answer(http.StatusInternalServerError))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}

	if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("failures (-want +got): a message not dead-lettered must stay on the queue\n%s", diff)
	}
	if n := len(e.send.To(igDLQURL)); n != 1 {
		t.Errorf("%d dead-letter sends, want 1", n)
	}
	if n := len(e.log.WithMsg(t, "delivery failed; not dead-lettered")); n != 1 {
		t.Errorf("%d \"not dead-lettered\" log lines, want 1:\n%s", n, e.log.String())
	}
}

// ---------------------------------------------------------------- logs

func TestInvokeLogsOneLinePerOutcome(t *testing.T) {
	t.Parallel()
	outcomeMsgs := []string{"delivered", "duplicate suppressed", "stale occurrence dropped",
		"delivery failed; will retry", "delivery failed; dead-lettered", "delivery failed; not dead-lettered"}
	tests := []struct {
		name      string
		status    int
		retry     *RetryPolicy
		timers    []Timer
		claimedBy string // another message's claim on the occurrence
		wantMsg   string
	}{
		{name: "delivered", status: 200, timers: []Timer{igTimer("t-1", 1)}, wantMsg: "delivered"},
		{name: "duplicate", status: 200, timers: []Timer{igTimer("t-1", 1)}, claimedBy: "m-0", wantMsg: "duplicate suppressed"},
		{name: "timer deleted", status: 200, wantMsg: "stale occurrence dropped"},
		{name: "timer replaced", status: 200, timers: []Timer{igTimer("t-1", 2)}, wantMsg: "stale occurrence dropped"},
		{name: "retry", status: 500, timers: []Timer{igTimer("t-1", 1)}, wantMsg: "delivery failed; will retry"},
		{name: "dead-lettered", status: 500, retry: &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600},
			timers: []Timer{igTimer("t-1", 1)}, wantMsg: "delivery failed; dead-lettered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), tt.timers...)
			if tt.claimedBy != "" {
				e.store.setClaim(igOccurrence("t-1", igAt), igClaim{MessageID: tt.claimedBy})
			}
			tg := newTarget(t, answer(tt.status))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.ScheduledAt = igAt.In(time.FixedZone("CET", 3600)) // logged in UTC all the same
			m.Retry = tt.retry

			e.invoke(igRecord(t, "m-1", 1, m))

			var got []map[string]any
			for _, l := range e.log.Lines(t) {
				if slices.Contains(outcomeMsgs, fmt.Sprint(l["msg"])) {
					got = append(got, l)
				}
			}
			if len(got) != 1 {
				t.Fatalf("outcome lines %v, want exactly one %q", got, tt.wantMsg)
			}
			want := map[string]any{"msg": tt.wantMsg, "timerId": "t-1", "scheduledAt": igScheduledAt, "messageId": "m-1"}
			gotKeys := map[string]any{}
			for k := range want {
				gotKeys[k] = got[0][k]
			}
			if diff := cmp.Diff(want, gotKeys); diff != "" {
				t.Errorf("outcome line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRetryExhaustedBeforeNotCalledAgain: a message whose tries ran out on
// an earlier receive, but whose dead-lettering failed then, is not sent to
// the target again: it only goes to the dead-letter queue.
func TestRetryExhaustedBeforeNotCalledAgain(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, answer(http.StatusInternalServerError))
	e := newIGEnv(t, nil, igTimer("t-1", 1))
	e.inv.Client = newHTTPClient(true)
	m := httpFire("t-1", "GET", tg.URL+"/x")
	m.Retry = &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 86400}
	if failed := e.invoke(igRecord(t, "m-1", 4, m)); len(failed) != 0 {
		t.Fatalf("failures %v, want the message acked once dead-lettered", failed)
	}
	if n := len(tg.Received()); n != 0 {
		t.Errorf("target called %d times, want 0", n)
	}
	dl := e.send.To(igDLQURL)
	if len(dl) != 1 || !strings.Contains(dl[0].Attributes["Reason"], "retries exhausted after 3 attempts") {
		t.Errorf("dead letters %+v, want one with the reason", dl)
	}
}
