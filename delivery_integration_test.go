package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestIntegrationDelivery runs delivery on moto_server through the local
// stack: a secret from SSM reaches the target, a fire message sent twice
// delivers once, and a target answering 500 ends, after its retries, on
// the dead-letter queue with the reason, as GET's lastFire shows.
func TestIntegrationDelivery(t *testing.T) {
	clients, cfg := motoStack(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards, cfg.SecretPrefix, cfg.AllowPrivateTargets = 2, "/callclock/", true
	const secret = "delivery-s3cr3t"
	putSecret(t, clients, "/callclock/delivery/token", secret)
	var (
		mu   sync.Mutex
		hits = map[string][]string{} // path -> Authorization headers
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path] = append(hits[r.URL.Path], r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/broken" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer target.Close()
	count := func(path string) int { mu.Lock(); defer mu.Unlock(); return len(hits[path]) }

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	now := time.Now().UTC().Truncate(time.Second)
	router := newRouter(cfg, clients, log)
	// The timers' first occurrence is the API's now: pinned, so that the
	// copy sent below, at now, is the same occurrence however long the
	// start-up takes on a busy machine.
	router.API.(*API).Now = func() time.Time { return now }
	router.Sweeper.(*Sweeper).Now = func() time.Time { return now.Add(5 * time.Second) }
	api, _ := startLocal(t, ctx, router, cfg, clients, log)
	// The local stack sweeps once as it starts; let that pass first.
	waitFor(t, "the start-up sweep", 10*time.Second, func() bool { return strings.Contains(logs.String(), `"msg":"sweep"`) })

	// Both timers fire at once (a rate without startAt), now.
	ok := `{"schedule":"rate(1 hour)","http":{"url":"` + target.URL + `/ok","headers":{"Authorization":"Bearer aws-secret(/callclock/delivery/token)"}}}`
	broken := `{"schedule":"rate(1 hour)","retry":{"maxAttempts":2,"maxAgeSeconds":600},"http":{"url":"` + target.URL + `/broken"}}`
	for id, body := range map[string]string{"ok": ok, "broken": broken} {
		if code, resp := signedDo(t, testCreds, "PUT", api+"/periodic/"+id, body); code != 201 {
			t.Fatalf("PUT %s: %d %s", id, code, resp)
		}
	}
	// Each PUT sent its first occurrence itself (short notice): a sweep
	// has nothing to send.
	if out, err := router.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","id":"e1"}`)); err != nil || !strings.Contains(string(out), `"enqueued":0`) {
		t.Fatalf("sweep: %s %v", out, err)
	}
	waitFor(t, "the ok target's call", 20*time.Second, func() bool { return count("/ok") == 1 })

	// The same occurrence sent again, as a second sweep or SQS could: the
	// claim drops it.
	_, okDoc := signedDo(t, testCreds, "GET", api+"/periodic/ok", "")
	var doc struct {
		Version  int64     `json:"version"`
		LastFire *LastFire `json:"lastFire"`
	}
	json.Unmarshal([]byte(okDoc), &doc)
	dup, _ := marshalJSON(FireMessage{TimerID: "ok", Version: doc.Version, ScheduledAt: now,
		HTTP: &HTTPTarget{Method: "GET", URL: target.URL + "/ok", Headers: map[string]string{"Authorization": "Bearer aws-secret(/callclock/delivery/token)"}}})
	if _, err := clients.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &cfg.FireQueueURL, MessageBody: aws.String(string(dup))}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the duplicate to be suppressed", 60*time.Second, func() bool {
		return strings.Contains(logs.String(), `"msg":"duplicate suppressed","timerId":"ok"`)
	})
	_, okDoc = signedDo(t, testCreds, "GET", api+"/periodic/ok", "")
	json.Unmarshal([]byte(okDoc), &doc)
	mu.Lock()
	if got := hits["/ok"]; len(got) != 1 || got[0] != "Bearer "+secret {
		t.Errorf("ok target got %q, want one call with the resolved secret", got)
	}
	mu.Unlock()
	if doc.LastFire == nil || doc.LastFire.Outcome != OutcomeDelivered || doc.LastFire.Status != 200 || !doc.LastFire.ScheduledAt.Equal(now) {
		t.Errorf("ok lastFire = %+v, want delivered with status 200 at %s", doc.LastFire, now)
	}

	// The broken target: the first try and 2 retries, then the dead-letter
	// queue, with the reason.
	waitFor(t, "the broken timer to be dead-lettered", 40*time.Second, func() bool {
		return strings.Contains(logs.String(), `"msg":"delivery failed; dead-lettered","timerId":"broken"`)
	})
	if n := count("/broken"); n != 3 {
		t.Errorf("broken target called %d times, want 3 (1 + maxAttempts 2)", n)
	}
	_, brokenDoc := signedDo(t, testCreds, "GET", api+"/periodic/broken", "")
	json.Unmarshal([]byte(brokenDoc), &doc)
	if f := doc.LastFire; f == nil || f.Outcome != OutcomeFailed || f.Attempt != 3 || f.Status != 500 || !strings.Contains(f.Error, "status 500") {
		t.Errorf("broken lastFire = %+v, want failed on attempt 3 with status 500", f)
	}
	out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &cfg.DeadLetterQueueURL,
		MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("dead-letter queue holds %d messages, want 1", len(out.Messages))
	}
	attrs := out.Messages[0].MessageAttributes
	if aws.ToString(attrs["TimerId"].StringValue) != "broken" || aws.ToString(attrs["Attempts"].StringValue) != "3" ||
		!strings.Contains(aws.ToString(attrs["Reason"].StringValue), "status 500") {
		t.Errorf("dead letter attributes: TimerId %q Attempts %q Reason %q", aws.ToString(attrs["TimerId"].StringValue),
			aws.ToString(attrs["Attempts"].StringValue), aws.ToString(attrs["Reason"].StringValue))
	}
	// The history, one entry per occurrence with its latest attempt: the
	// broken timer's third, and the ok timer's delivery with the copy that
	// was dropped.
	outcomes := func(id string) []string {
		_, body := signedDo(t, testCreds, "GET", api+"/periodic/"+id+"/history", "")
		var h struct{ History []LastFire }
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("history of %s: %s", id, body)
		}
		var o []string
		for _, f := range h.History {
			o = append(o, fmt.Sprintf("%s#%d+%d", f.Outcome, f.Attempt, f.Duplicates))
		}
		return o
	}
	if got := strings.Join(outcomes("broken"), ","); got != "failed#3+0" {
		t.Errorf("broken history %s, want failed#3+0", got)
	}
	if got := strings.Join(outcomes("ok"), ","); got != "delivered#1+1" {
		t.Errorf("ok history %s, want delivered#1+1 (one duplicate)", got)
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the secret value appears in the logs")
	}
	if strings.Contains(brokenDoc+okDoc, secret) {
		t.Error("the secret value appears in an API response")
	}
}
