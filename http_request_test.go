package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInvokerHTTPPlaceholders: every context placeholder reaches the
// target resolved, in the URL (escaped for its path or its query), a
// header and the body, beside a secret; the group comes from the timer
// read after the claim, the attempt from the receive count, the delivery
// instant from the clock at the attempt, not the scheduled instant.
func TestInvokerHTTPPlaceholders(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, answer(http.StatusOK))
	e := newIGEnv(t, (&paramStore{}).fake(t, map[string]string{"/callclock/tok": "tok-v"}), Timer{ID: "ph.1", Version: 1, Group: "qa-1"})
	msg := httpFire("ph.1", "PUT", tg.URL+"/t/callclock(timer-id)/callclock(scheduled-time)?k=callclock(idempotency-key)&g=callclock(group)")
	msg.HTTP.Headers = map[string]string{
		"X-Context": "callclock(attempt-number) callclock(delivery-time) callclock(scheduled-time) callclock(group) callclock(timer-id)",
		"X-Key":     "callclock(idempotency-key)", "Authorization": "aws-secret(/callclock/tok)",
	}
	msg.HTTP.Body = `{"k":"callclock(idempotency-key)","a":callclock(attempt-number)}`
	if got := e.invoke(igRecord(t, "m-1", 4, msg)); len(got) != 0 {
		t.Fatalf("failures %v", got)
	}
	r := tg.Received()
	if len(r) != 1 {
		t.Fatalf("target received %d requests, want 1", len(r))
	}
	type seen struct{ Path, Query, Body, Context, Key, Auth string }
	want := seen{
		Path:    "/t/ph.1/2025-03-01T09:00:00Z",
		Query:   "k=ph.1%2F2025-03-01T09%3A00%3A00Z&g=qa-1",
		Body:    `{"k":"ph.1/2025-03-01T09:00:00Z","a":4}`,
		Context: "4 2025-03-01T09:00:05.000Z 2025-03-01T09:00:00Z qa-1 ph.1",
		Key:     "ph.1/2025-03-01T09:00:00Z",
		Auth:    "tok-v",
	}
	got := seen{r[0].Path, r[0].Query, r[0].Body, r[0].Header.Get("X-Context"), r[0].Header.Get("X-Key"), r[0].Header.Get("Authorization")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

// TestInvokerCallbackPlaceholders: the callback message's string values
// are resolved, its attributes kept; an aws-secret(...) in callback data
// is not resolved (it never was: the message is not a request) and no
// SSM call is made.
func TestInvokerCallbackPlaceholders(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), Timer{ID: "cb.1", Version: 1, Group: "g"})
	msg := FireMessage{TimerID: "cb.1", Version: 1, ScheduledAt: igAt,
		CallbackData: json.RawMessage(`{"at":"callclock(scheduled-time)","try":"callclock(attempt-number)","s":"aws-secret(/callclock/x)","g":"callclock(group)"}`)}
	if got := e.invoke(igRecord(t, "m-1", 2, msg)); len(got) != 0 {
		t.Fatalf("failures %v", got)
	}
	want := []sqsSent{{QueueURL: testQueueURL,
		Body: `{"at":"2025-03-01T09:00:00Z","try":"2","s":"aws-secret(/callclock/x)","g":"g"}`,
		Attributes: map[string]string{
			"IdempotencyKey": "String:cb.1/2025-03-01T09:00:00Z",
			"TimerId":        "String:cb.1",
			"ScheduledAt":    "String:2025-03-01T09:00:00Z",
		}}}
	if diff := cmp.Diff(want, e.send.To(testQueueURL)); diff != "" {
		t.Errorf("callback messages (-want +got):\n%s", diff)
	}
}

// TestInvokerPlaceholderFailureRedacted: a call that fails names the URL
// as written, placeholders and all, and the transport's error, which
// quotes the host dialled (a secret here), is redacted: no secret value,
// signing key included, reaches the history, the log or the dead letter.
func TestInvokerPlaceholderFailureRedacted(t *testing.T) {
	t.Parallel()
	host := strings.TrimSuffix(strings.TrimPrefix(igClosedURL(t), "http://"), "/hook")
	values := map[string]string{"/callclock/host": host, "/callclock/sign": "k3y-s1gn-w8"}
	e := newIGEnv(t, (&paramStore{}).fake(t, values), Timer{ID: "rd.1", Version: 1})
	msg := httpFire("rd.1", "POST", "http://aws-secret(/callclock/host)/hook/callclock(attempt-number)")
	msg.HTTP.Signing = &Signing{Secret: "aws-secret(/callclock/sign)"}
	msg.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 60}
	e.invoke(igRecord(t, "m-1", 1, msg))
	fires := e.store.Fires()
	if len(fires) != 1 || fires[0].Fire.Outcome != OutcomeFailed || !strings.Contains(fires[0].Fire.Error, "http://aws-secret(/callclock/host)/hook/callclock(attempt-number)") {
		t.Fatalf("fires %+v, want one failed naming the URL as written", fires)
	}
	dead := e.send.To(igDLQURL)
	if len(dead) != 1 {
		t.Fatalf("dead letters %d, want 1", len(dead))
	}
	for _, v := range values {
		for where, text := range map[string]string{"history": fires[0].Fire.Error, "log": e.log.String(), "dead letter": dead[0].Body + dead[0].Attributes["Reason"]} {
			if strings.Contains(text, v) {
				t.Errorf("the %s holds the secret %q: %s", where, v, text)
			}
		}
	}
}
