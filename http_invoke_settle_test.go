package main

// Tests of what follows an outcome (http_invoke_settle.go): which outcomes
// notify, the message, the webhook's secrets, a failing webhook that must
// not change the outcome; deleteAfterCompletion; a dead letter's replay.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// ---------------------------------------------------------------- notifications

// igPosts returns the text of each notification hook received, checking
// that each is a POST of exactly {"text": ...}.
func igPosts(t *testing.T, hook *target) []string {
	t.Helper()
	var texts []string
	for _, r := range hook.Received() {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("notification %s with Content-Type %q, want POST application/json", r.Method, r.Header.Get("Content-Type"))
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Errorf("notification body %q: %v", r.Body, err)
			continue
		}
		if _, ok := body["text"]; !ok || len(body) != 1 {
			t.Errorf("notification body %q, want exactly {\"text\": ...}", r.Body)
		}
		texts = append(texts, body["text"])
	}
	return texts
}

func TestNotifyOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		retry     *RetryPolicy
		onSuccess *bool
		onFailure *bool
		// wantText lists what the one notification must say; nil: none is sent.
		wantText []string
	}{
		{name: "final failure", status: 500, retry: &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600},
			wantText: []string{"t-1", "dead-lettered", "POST %s: status 500"}},
		{name: "final failure with onFailure false", status: 500, retry: &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600},
			onFailure: ptrTo(false)},
		{name: "retrying never", status: 500, retry: &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600},
			onSuccess: ptrTo(true), onFailure: ptrTo(true)},
		{name: "success with onSuccess true", status: 200, onSuccess: ptrTo(true),
			wantText: []string{"t-1", "delivered"}},
		{name: "success by default", status: 200},
		{name: "success with onSuccess false", status: 200, onSuccess: ptrTo(false), onFailure: ptrTo(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(tt.status))
			hook := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.Retry = tt.retry
			m.Notify = &Notify{Webhook: hook.URL + "/notify", OnSuccess: tt.onSuccess, OnFailure: tt.onFailure}

			e.invoke(igRecord(t, "m-1", 1, m))

			texts := igPosts(t, hook)
			if tt.wantText == nil {
				if len(texts) != 0 {
					t.Errorf("notifications %q, want none", texts)
				}
				return
			}
			if len(texts) != 1 {
				t.Fatalf("notifications %q, want exactly 1", texts)
			}
			for _, w := range tt.wantText {
				if w = strings.ReplaceAll(w, "%s", tg.URL+"/hook"); !strings.Contains(texts[0], w) {
					t.Errorf("notification %q does not say %q", texts[0], w)
				}
			}
		})
	}
}

// TestInvokeFinalOccurrenceDeletes: the last occurrence of a
// deleteAfterCompletion timer (Final) deletes the timer once it has its
// final outcome, delivered or dead-lettered, and not while it is retried;
// a manual fire never deletes.
func TestInvokeFinalOccurrenceDeletes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		status     int
		maxRetries int
		manual     bool
		deleted    bool
	}{
		{name: "delivered", status: 200, maxRetries: 3, deleted: true},
		{name: "dead-lettered", status: 500, maxRetries: 0, deleted: true},
		{name: "retrying", status: 500, maxRetries: 3},
		{name: "manual", status: 200, maxRetries: 3, manual: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(tt.status))
			m := httpFire("t-1", "GET", tg.URL+"/once")
			m.Final, m.Manual = true, tt.manual
			m.Retry = &RetryPolicy{MaxAttempts: tt.maxRetries, MaxAgeSeconds: 3600}
			e.invoke(igRecord(t, "m-1", 1, m))
			e.store.mu.Lock()
			deletes := e.store.deletes
			_, exists := e.store.timers["t-1"]
			e.store.mu.Unlock()
			if tt.deleted != (len(deletes) == 1) || tt.deleted == exists {
				t.Errorf("DeleteCompleted calls %v, timer kept %v; want deleted %v", deletes, exists, tt.deleted)
			}
		})
	}
}

// TestDeadLetterReplay: a dead-lettered occurrence, redriven from the
// dead-letter queue to the fire queue under a new message id, is delivered
// once, as a replay with the occurrence's own key; a second redrive of it
// is a duplicate. A copy that is not a replay never takes the claim over.
func TestDeadLetterReplay(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, igStatuses(500, 200))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Fatalf("failures (-want +got):\n%s", diff)
	}
	sent := e.send.All()
	if len(sent) != 1 || sent[0].QueueURL != igDLQURL {
		t.Fatalf("dead letters %+v, want one", sent)
	}
	// Another copy of the original (a second sweep's, say): still a duplicate.
	e.invoke(igRecord(t, "m-2", 1, m))
	if n := len(tg.Received()); n != 1 {
		t.Fatalf("a copy that is not a replay reached the target: %d calls", n)
	}
	// The redrive: the dead letter's body, under a message id of its own.
	redrive := events.SQSMessage{MessageId: "m-3", ReceiptHandle: "rh-m-3-1", Body: sent[0].Body,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
	if diff := cmp.Diff([]string{}, e.invoke(redrive)); diff != "" {
		t.Fatalf("replay failures (-want +got):\n%s", diff)
	}
	got := tg.Received()
	if len(got) != 2 || got[1].Header.Get("Idempotency-Key") != m.IdempotencyKey() {
		t.Fatalf("target received %d calls (key %q), want the replay with key %s", len(got), got[len(got)-1].Header.Get("Idempotency-Key"), m.IdempotencyKey())
	}
	fires := e.store.Fires()
	if last := fires[len(fires)-1].Fire; last.Outcome != OutcomeDelivered || !last.Replay {
		t.Errorf("the replay's outcome %+v, want delivered and marked replay", last)
	}
	// The same dead letter redriven again: delivered already, dropped.
	again := redrive
	again.MessageId, again.ReceiptHandle = "m-4", "rh-m-4-1"
	e.invoke(again)
	if n := len(tg.Received()); n != 2 {
		t.Errorf("a second replay reached the target: %d calls, want 2", n)
	}
}

// TestNotifySlackChannel checks the Deployer's Slack notification: the
// channel goes in the message's "channel", and the text says which
// deployment put the timer there.
func TestNotifySlackChannel(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	hook := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "GET", tg.URL+"/collect")
	m.Notify = &Notify{Webhook: hook.URL + "/notify", Channel: "qa-facilities", OnSuccess: ptrTo(true)}
	m.Deployment = &DeploymentInfo{Product: "facilities", Version: "1.4.2", ID: "0-facilities-017"}

	e.invoke(igRecord(t, "m-1", 1, m))

	got := hook.Received()
	if len(got) != 1 {
		t.Fatalf("webhook received %d posts, want 1", len(got))
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(got[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	if body["channel"] != "qa-facilities" || len(body) != 2 {
		t.Errorf("message %q, want text and channel qa-facilities", got[0].Body)
	}
	if !strings.Contains(body["text"], "; facilities 1.4.2, deployed by 0-facilities-017") || !strings.Contains(body["text"], "delivered") {
		t.Errorf("text %q does not name the deployment", body["text"])
	}
}

func TestNotifySecretWebhook(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-hook-token"
	for _, status := range []int{http.StatusOK, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			hook := newTarget(t, answer(status))
			secretURL := hook.URL + "/services/T000/B000/" + token
			ssmStore := &paramStore{}
			e := newIGEnv(t, ssmStore.fake(t, map[string]string{"/callclock/hook": secretURL}), igTimer("t-1", 1))
			tg := newTarget(t, answer(http.StatusInternalServerError))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}
			m.Notify = &Notify{Webhook: "aws-secret(/callclock/hook)"}

			if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}

			got := hook.Received()
			if len(got) != 1 || got[0].Path != "/services/T000/B000/"+token {
				t.Fatalf("webhook received %+v, want one POST to the resolved URL", got)
			}
			if diff := cmp.Diff([][]string{{"/callclock/hook"}}, ssmStore.Calls()); diff != "" {
				t.Errorf("GetParameters calls (-want +got):\n%s", diff)
			}
			for _, text := range igPosts(t, hook) {
				if strings.Contains(text, token) || strings.Contains(text, secretURL) {
					t.Errorf("notification text holds the webhook secret: %q", text)
				}
			}
			logged := e.log.String()
			if strings.Contains(logged, token) {
				t.Errorf("log holds the webhook secret:\n%s", logged)
			}
			if status != http.StatusOK {
				lines := e.log.WithMsg(t, "notification failed")
				if len(lines) != 1 || lines[0]["webhook"] != "aws-secret(/callclock/hook)" {
					t.Errorf("notification failure lines %v, want one naming the placeholder", lines)
				}
			}
		})
	}
}

func TestNotifyFailingWebhookKeepsOutcome(t *testing.T) {
	t.Parallel()
	hooks := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"webhook answers 500", func(t *testing.T) string { return newTarget(t, answer(http.StatusInternalServerError)).URL + "/notify" }},
		{"webhook port closed", igClosedURL},
	}
	outcomes := []struct {
		name        string
		status      int
		wantOutcome string
	}{
		{"delivered", http.StatusOK, OutcomeDelivered},
		{"failed", http.StatusInternalServerError, OutcomeFailed},
	}
	for _, h := range hooks {
		for _, o := range outcomes {
			t.Run(h.name+"/"+o.name, func(t *testing.T) {
				t.Parallel()
				e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
				tg := newTarget(t, answer(o.status))
				m := httpFire("t-1", "POST", tg.URL+"/hook")
				m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}
				m.Notify = &Notify{Webhook: h.url(t), OnSuccess: ptrTo(true)}

				if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
					t.Errorf("failures (-want +got):\n%s", diff)
				}
				fires := e.store.Fires()
				if len(fires) != 1 || fires[0].Fire.Outcome != o.wantOutcome {
					t.Errorf("outcomes recorded %+v, want one %s", fires, o.wantOutcome)
				}
				wantDLQ := 0
				if o.wantOutcome == OutcomeFailed {
					wantDLQ = 1
				}
				if n := len(e.send.To(igDLQURL)); n != wantDLQ {
					t.Errorf("%d dead-letter sends, want %d", n, wantDLQ)
				}
				lines := e.log.WithMsg(t, "notification failed")
				if len(lines) != 1 || lines[0]["timerId"] != "t-1" {
					t.Errorf("notification failure lines %v, want one for t-1", lines)
				}
			})
		}
	}
}
