package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// ltAdmin is an in-memory limitAdmin with the Store's semantics: a
// replacement keeps createdAt, a missing limit is ENOTFOUND, the list is
// by key.
type ltAdmin struct {
	mu     sync.Mutex
	limits map[string]Limit
}

func newLtAdmin() *ltAdmin { return &ltAdmin{limits: map[string]Limit{}} }

func (a *ltAdmin) PutLimit(_ context.Context, l Limit, now time.Time) (Limit, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	old, ok := a.limits[l.Key]
	l.CreatedAt, l.UpdatedAt = now.UTC(), now.UTC()
	if ok {
		l.CreatedAt = old.CreatedAt
	}
	a.limits[l.Key] = l
	return l, !ok, nil
}

func (a *ltAdmin) GetLimit(_ context.Context, key string) (Limit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.limits[key]
	if !ok {
		return Limit{}, Errorf(ENOTFOUND, "no limit for %s", key)
	}
	return l, nil
}

func (a *ltAdmin) DeleteLimit(_ context.Context, key string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.limits[key]; !ok {
		return Errorf(ENOTFOUND, "no limit for %s", key)
	}
	delete(a.limits, key)
	return nil
}

func (a *ltAdmin) ListLimits(context.Context) ([]Limit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ls []Limit
	for _, l := range a.limits {
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Key < ls[j].Key })
	return ls, nil
}

// TestAPILimits: PUT creates (201) and replaces (200, createdAt kept),
// GET reads, the list holds them by key, DELETE removes; each error is a
// 4xx naming its field, and a refused PUT stores nothing.
func TestAPILimits(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	a := newTestAPI(now, 1)
	do := func(method, path, body string) (int, string) {
		resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: body})
		return resp.StatusCode, strings.TrimSpace(resp.Body)
	}
	if code, body := do("PUT", "/limits/billing-api", `{"perSecond":2,"inFlight":5}`); code != 201 ||
		body != `{"key":"billing-api","perSecond":2,"inFlight":5,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T10:00:00Z"}` {
		t.Errorf("PUT: %d %s", code, body)
	}
	a.API.Now = func() time.Time { return now.Add(time.Hour) }
	if code, body := do("PUT", "/limits/billing-api", `{"inFlight":1}`); code != 200 ||
		body != `{"key":"billing-api","inFlight":1,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T11:00:00Z"}` {
		t.Errorf("PUT again: %d %s", code, body)
	}
	do("PUT", "/limits/api.example.com", `{"perSecond":250}`)
	code, body := do("GET", "/limits", "")
	var list struct{ Limits []Limit }
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 {
		t.Fatalf("GET /limits: %d %s", code, body)
	}
	var keys []string
	for _, l := range list.Limits {
		keys = append(keys, l.Key)
	}
	if diff := cmp.Diff([]string{"api.example.com", "billing-api"}, keys); diff != "" {
		t.Errorf("the list's keys (-want +got):\n%s", diff)
	}
	if code, body := do("GET", "/limits/billing-api", ""); code != 200 || !strings.Contains(body, `"inFlight":1`) {
		t.Errorf("GET: %d %s", code, body)
	}
	for _, tc := range []struct{ method, path, body, want string }{
		{"PUT", "/limits/billing-api", `{"perSecond":0}`, "perSecond must be from 1 to 250"},
		{"PUT", "/limits/billing-api", `{"perSecond":251}`, "perSecond must be from 1 to 250"},
		{"PUT", "/limits/billing-api", `{"inFlight":101}`, "inFlight must be from 1 to 100"},
		{"PUT", "/limits/billing-api", `{}`, "perSecond, inFlight or both"},
		{"PUT", "/limits/billing-api", `{"perSecond":2,"burst":3}`, "burst"},
		{"PUT", "/limits/billing-api", `{"perSecond":2,"PerSecond":3}`, "PerSecond"},
		{"PUT", "/limits/bad%20key", `{"perSecond":2}`, "the limit's key"},
	} {
		code, body := do(tc.method, tc.path, tc.body)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s %s: %d %s, want a 400 naming %q", tc.method, tc.path, tc.body, code, body, tc.want)
		}
	}
	resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/limits", QueryStringParameters: map[string]string{"limit": "5"}})
	if resp.StatusCode != 400 {
		t.Errorf("GET /limits?limit=5: %d, want 400", resp.StatusCode)
	}
	if code, body := do("GET", "/limits/billing-api", ""); !strings.Contains(body, `"inFlight":1`) || strings.Contains(body, "perSecond") {
		t.Errorf("after the refused PUTs: %d %s, want the limit unchanged", code, body)
	}
	if code, body := do("DELETE", "/limits/billing-api", ""); code != 200 || body != `"billing-api"` {
		t.Errorf("DELETE: %d %s", code, body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if code, _ := do(m, "/limits/billing-api", ""); code != 404 {
			t.Errorf("%s after DELETE: %d, want 404", m, code)
		}
	}
	if code, _ := do("POST", "/limits/billing-api", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", code)
	}
}

// TestAPILimitKeyOnTimers: http.limitKey is stored and shown; a bad one is
// a 400 naming it, storing nothing.
func TestAPILimitKeyOnTimers(t *testing.T) {
	t.Parallel()
	a := newTestAPI(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), 1)
	resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: "PUT", Path: "/periodic/t1",
		Body: `{"schedule":"rate(1 hour)","http":{"url":"https://api.example.com/x","limitKey":"api.example.com"}}`})
	if resp.StatusCode != 201 || !strings.Contains(resp.Body, `"limitKey":"api.example.com"`) {
		t.Errorf("PUT with limitKey: %d %s", resp.StatusCode, resp.Body)
	}
	resp = a.do(t, events.APIGatewayProxyRequest{HTTPMethod: "PUT", Path: "/periodic/t2",
		Body: `{"schedule":"rate(1 hour)","http":{"url":"https://api.example.com/x","limitKey":"no#hash"}}`})
	if resp.StatusCode != 400 || !strings.Contains(resp.Body, "http.limitKey") {
		t.Errorf("PUT with a bad limitKey: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/periodic/t2"}); resp.StatusCode != 404 {
		t.Errorf("the refused timer: %d, want 404", resp.StatusCode)
	}
}
