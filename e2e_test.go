package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
)

// TestIntegrationE2E runs the whole path on moto_server with the real SDK:
// signed REST calls to the local API Gateway, a sweep, an HTTP target with
// a secret from SSM, a callback message, and a delete.
func TestIntegrationE2E(t *testing.T) {
	clients, cfg := motoStack(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards, cfg.SecretPrefix, cfg.AllowPrivateTargets = 3, "/callclock/", true
	const secret = "e2e-s3cr3t-value"
	putSecret(t, clients, "/callclock/e2e/token", secret)

	type hit struct {
		Method, Path, Auth, Key, Body string
	}
	hits := make(chan hit, 10)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hits <- hit{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Idempotency-Key"), string(b)}
	}))
	defer target.Close()

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	clock := newTestClock(time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC))
	router := newRouter(cfg, clients, log)
	router.API.(*API).Now = clock.Now
	router.Sweeper.(*Sweeper).Now = clock.Now
	api, done := startLocal(t, ctx, router, cfg, clients, log)

	// Unsigned and wrongly signed requests are refused and store nothing.
	if code, body := signedDo(t, aws.Credentials{}, "PUT", api+"/periodic/e2e-http", `{"timerCallbackData":{}}`); code != 403 || !strings.Contains(body, `"forbidden"`) {
		t.Fatalf("unsigned PUT: %d %s, want 403 forbidden", code, body)
	}
	wrong := aws.Credentials{AccessKeyID: testCreds.AccessKeyID, SecretAccessKey: "not-the-secret"}
	if code, _ := signedDo(t, wrong, "PUT", api+"/periodic/e2e-http", `{"timerCallbackData":{}}`); code != 403 {
		t.Fatalf("badly signed PUT: %d, want 403", code)
	}

	httpTimer := `{"minuteOfHour":5,"http":{"method":"POST","url":"` + target.URL + `/hook?x=1",` +
		`"headers":{"Authorization":"Bearer aws-secret(/callclock/e2e/token)"},"body":"{\"ping\":true}"}}`
	if code, body := signedDo(t, testCreds, "PUT", api+"/periodic/e2e-http", httpTimer); code != 201 {
		t.Fatalf("PUT http timer: %d %s", code, body)
	}
	if code, body := signedDo(t, testCreds, "PUT", api+"/periodic/e2e-callback", `{"minuteOfHour":5,"timerCallbackData":{"hello":"world"}}`); code != 201 {
		t.Fatalf("PUT callback timer: %d %s", code, body)
	}
	code, body := signedDo(t, testCreds, "GET", api+"/periodic/e2e-http", "")
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil {
		t.Fatalf("GET: %d %s", code, body)
	}
	if got["nextFireAt"] != "2026-01-01T10:05:00Z" || got["timeShardId"] != "05:e2e-http" || got["shardId"] != shardFor("e2e-http", 3) {
		t.Fatalf("GET document = %s", body)
	}

	// The sweep that covers 10:05 sends both occurrences; the invoker
	// delivers them through the local event source mapping.
	clock.Set(time.Date(2026, 1, 1, 10, 5, 0, 0, time.UTC))
	out, err := router.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	var res SweepResult
	json.Unmarshal(out, &res)
	if diff := cmp.Diff(SweepResult{Minutes: 5, Due: 2, Enqueued: 2}, res); diff != "" { // 10:03 to 10:07: the first sweep, at start, read to 10:02
		t.Fatalf("sweep result (-want +got):\n%s", diff)
	}
	select {
	case h := <-hits:
		want := hit{"POST", "/hook?x=1", "Bearer " + secret, "e2e-http/2026-01-01T10:05:00Z", `{"ping":true}`}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Fatalf("target request (-want +got):\n%s", diff)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the HTTP target was not called within 20s of the sweep")
	}
	waitFor(t, "the callback message", 20*time.Second, func() bool {
		return strings.Contains(logs.String(), `"msg":"callback message"`) && strings.Contains(logs.String(), `"body":"{\"hello\":\"world\"}"`) &&
			strings.Contains(logs.String(), `"IdempotencyKey":"e2e-callback/2026-01-01T10:05:00Z"`)
	})

	// Both timers moved on to the next hour; a second sweep finds nothing.
	clock.Set(time.Date(2026, 1, 1, 10, 5, 1, 0, time.UTC))
	_, body = signedDo(t, testCreds, "GET", api+"/periodic/e2e-callback", "")
	if !strings.Contains(body, `"nextFireAt":"2026-01-01T11:05:00Z"`) {
		t.Fatalf("after the sweep, GET = %s, want nextFireAt 11:05", body)
	}
	out, _ = router.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`))
	if !strings.Contains(string(out), `"due":0`) {
		t.Fatalf("second sweep = %s, want nothing due", out)
	}

	if code, body := signedDo(t, testCreds, "DELETE", api+"/periodic/e2e-http", ""); code != 200 || body != "\"e2e-http\"\n" {
		t.Fatalf("DELETE: %d %q", code, body)
	}
	if code, _ := signedDo(t, testCreds, "GET", api+"/periodic/e2e-http", ""); code != 404 {
		t.Fatalf("GET after DELETE: %d, want 404", code)
	}
	if code, _ := signedDo(t, testCreds, "DELETE", api+"/periodic/e2e-http", ""); code != 404 {
		t.Fatalf("second DELETE: %d, want 404", code)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the secret value appears in the logs")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case h := <-hits:
		t.Fatalf("unexpected extra delivery: %+v", h)
	default:
	}
}
