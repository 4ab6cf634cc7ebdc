package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestIntegrationSlowTargetCalledOnce: a target that takes 40 s, with a
// 120 s timeout and no retries, is called exactly once under the
// template's timeouts (the invoker's Lambda timeout, the fire queue's
// visibility), as the local stack runs them. With the old ones (a 30 s
// invoker timeout and visibility) the call was cut off, never settled, and
// made again as if new.
func TestIntegrationSlowTargetCalledOnce(t *testing.T) {
	t.Parallel()                    // it mostly waits (sweeps, a slow target, a rate limit, a spread window)
	clients, cfg := motoStack(t, 0) // the template's queues
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards, cfg.SecretPrefix, cfg.AllowPrivateTargets = 1, "/callclock/", true
	var calls atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-time.After(40 * time.Second):
		case <-r.Context().Done():
			return
		}
	}))
	defer target.Close()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	router := newRouter(cfg, clients, log)
	api, _ := startLocal(t, ctx, router, cfg, clients, log)

	body := `{"schedule":"at(2199-01-01T00:00:00)","retry":{"maxAttempts":0,"maxAgeSeconds":600},` +
		`"http":{"method":"POST","url":"` + target.URL + `/slow","timeoutSeconds":120}}`
	if code, resp := signedDo(t, testCreds, "PUT", api+"/periodic/slow", body); code != 201 {
		t.Fatalf("PUT: %d %s", code, resp)
	}
	if code, resp := signedDo(t, testCreds, "POST", api+"/periodic/slow/fire", ""); code != 202 {
		t.Fatalf("fire: %d %s", code, resp)
	}
	waitFor(t, "the slow call to be delivered", 120*time.Second, func() bool {
		return strings.Contains(logs.String(), `"msg":"delivered","timerId":"slow"`)
	})
	// A redelivery of a call cut off would come now: the message is settled
	// and deleted instead.
	time.Sleep(3 * time.Second)
	if n := calls.Load(); n != 1 {
		t.Errorf("the 40 s target was called %d times, want 1", n)
	}
	for _, msg := range []string{`"msg":"delivery failed`, `"msg":"duplicate suppressed"`, `task timed out`} {
		if strings.Contains(logs.String(), msg) {
			t.Errorf("log has %s:\n%s", msg, logs.String())
		}
	}
}
