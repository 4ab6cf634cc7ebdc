package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestIntegrationLifecycle runs the deployment lifecycle on moto_server:
// a paused group delivers nothing and catches nothing up on resume, a
// PUT while paused keeps the timer paused, and a timer fired by hand while
// paused is delivered once.
func TestIntegrationLifecycle(t *testing.T) {
	clients, cfg := motoStack(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards, cfg.AllowPrivateTargets = 2, true
	var (
		mu   sync.Mutex
		hits = map[string][]string{} // timer id -> Idempotency-Key of each call
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("X-Callclock-Timer-Id")
		hits[id] = append(hits[id], r.Header.Get("Idempotency-Key"))
	}))
	defer target.Close()
	calls := func(id string) []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), hits[id]...) }

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	clock := newTestClock(time.Now().UTC().Truncate(time.Second))
	router := newRouter(cfg, clients, log)
	router.API.(*API).Now = clock.Now
	router.Sweeper.(*Sweeper).Now = clock.Now
	api, _ := startLocal(t, ctx, router, cfg, clients, log)
	waitFor(t, "the start-up sweep", 10*time.Second, func() bool { return strings.Contains(logs.String(), `"msg":"sweep"`) })
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		code, resp := signedDo(t, testCreds, method, api+path, body)
		if code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, code, resp, want)
		}
		var doc map[string]any
		json.Unmarshal([]byte(resp), &doc)
		return doc
	}
	sweep := func() {
		t.Helper()
		if _, err := router.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","id":"`+newID()+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Every minute from ten minutes on: a PUT sends nothing itself (its
	// first occurrence is beyond short notice) and links it.
	startAt := clock.Now().Add(10 * time.Minute)
	every := func(n string) string {
		return `{"group":"qa-facilities","schedule":"rate(1 minute)","startAt":"` + startAt.Format(time.RFC3339) +
			`","http":{"url":"` + target.URL + `/` + n + `"}}`
	}
	call("PUT", "/periodic/a", every("a"), 201)
	call("PUT", "/periodic/b", every("b"), 201)

	// Pause the group before any sweep: nothing is sent.
	doc := call("POST", "/groups/qa-facilities/pause", `{"reason":"deploy 42"}`, 200)
	if doc["timers"] != 2.0 || doc["changed"] != 2.0 {
		t.Fatalf("group pause = %v, want 2 timers changed", doc)
	}
	doc = call("GET", "/periodic/a", "", 200)
	if doc["state"] != "paused" || doc["pauseReason"] != "deploy 42" || doc["nextFireAt"] != nil {
		t.Fatalf("paused timer = %v", doc)
	}
	// The group's paused timers, one page of one at a time.
	var listed []string
	for cursor := ""; ; {
		page := call("GET", "/periodic?group=qa-facilities&limit=1&state=paused"+cursor, "", 200)
		for _, tm := range page["timers"].([]any) {
			listed = append(listed, tm.(map[string]any)["id"].(string))
		}
		c, ok := page["cursor"].(string)
		if !ok {
			break
		}
		cursor = "&cursor=" + c
	}
	if strings.Join(listed, ",") != "a,b" {
		t.Errorf("listed paused timers of the group: %v, want a,b", listed)
	}
	if page := call("GET", "/periodic?state=active", "", 200); len(page["timers"].([]any)) != 0 {
		t.Errorf("active timers while the group is paused: %v", page["timers"])
	}
	// Pausing again is harmless, and a PUT while paused keeps it paused.
	call("POST", "/groups/qa-facilities/pause", "", 200)
	call("PUT", "/periodic/b", every("b"), 200)
	if doc = call("GET", "/periodic/b", "", 200); doc["state"] != "paused" {
		t.Fatalf("b after a PUT while paused: %v", doc)
	}
	for range 3 { // three minutes of sweeps while paused
		clock.Add(time.Minute)
		sweep()
	}

	// Fire a by hand while paused: delivered once, with its own key.
	fired := call("POST", "/periodic/a/fire", "", 202)
	waitFor(t, "the manual fire", 20*time.Second, func() bool { return len(calls("a")) == 1 })
	if got := calls("a")[0]; got != fired["idempotencyKey"] || !strings.HasPrefix(got, "a/manual/") {
		t.Errorf("manual fire key %q, response %v", got, fired)
	}
	if len(calls("b")) != 0 {
		t.Fatalf("b fired while paused: %v", calls("b"))
	}

	// Resume: the next occurrence is after now (here, startAt); nothing
	// was sent while paused, so nothing is caught up.
	resumedAt := clock.Now()
	call("POST", "/groups/qa-facilities/resume", "", 200)
	doc = call("GET", "/periodic/b", "", 200)
	next, _ := time.Parse(time.RFC3339, doc["nextFireAt"].(string))
	if doc["state"] != "active" || !next.After(resumedAt) || !next.Equal(startAt) {
		t.Fatalf("b after resume: %v (resumed at %s), want its first occurrence %s", doc, resumedAt, startAt)
	}
	clock.Set(next)
	sweep()
	waitFor(t, "b's first occurrence after resume", 20*time.Second, func() bool { return len(calls("b")) == 1 })
	time.Sleep(500 * time.Millisecond) // room for any wrong extra delivery to arrive
	if got := calls("b"); len(got) != 1 || got[0] != "b/"+next.Format(time.RFC3339) {
		t.Errorf("b deliveries %v, want exactly its occurrence at %s", got, next.Format(time.RFC3339))
	}
}
