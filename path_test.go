package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// TestLocalProxyEventPath: the local stack passes path as API Gateway's
// REST API does, percent-encoded as the client sent it, with the
// {proxy+} parameter decoded once.
func TestLocalProxyEventPath(t *testing.T) {
	t.Parallel()
	l := &Local{Verifier: verifierAt(0), Account: "123456789012"}
	type paths struct{ Path, Proxy, ContextPath string }
	tests := []struct {
		target string
		want   paths
	}{
		{"/periodic/auth-base", paths{"/periodic/auth-base", "periodic/auth-base", "/local/periodic/auth-base"}},
		{"/periodic/auth%252Dbase", paths{"/periodic/auth%252Dbase", "periodic/auth%2Dbase", "/local/periodic/auth%252Dbase"}},
		{"/periodic/auth-base%2Fhistory", paths{"/periodic/auth-base%2Fhistory", "periodic/auth-base/history", "/local/periodic/auth-base%2Fhistory"}},
		{"/periodic/a%3Ab", paths{"/periodic/a%3Ab", "periodic/a:b", "/local/periodic/a%3Ab"}},
	}
	for _, tt := range tests {
		ev := l.proxyEvent(httptest.NewRequest(http.MethodGet, "http://127.0.0.1:3000"+tt.target, nil), nil)
		got := paths{ev.Path, ev.PathParameters["proxy"], ev.RequestContext.Path}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("GET %s: event paths (-want +got):\n%s", tt.target, diff)
		}
	}
}

// TestLocalPathsDecodedOnce: through the local stack, an escaped escape
// or an escaped "/" does not reach another timer or route, and the ids
// . and .. are refused.
func TestLocalPathsDecodedOnce(t *testing.T) {
	t.Parallel()
	a := newTestAPI(sigSignedAt, 1)
	if resp := a.call(t, http.MethodPut, "/periodic/auth-base", `{"timerCallbackData":1}`); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT auth-base: %d %s", resp.StatusCode, resp.Body)
	}
	l := &Local{Handler: &Router{API: a}, Verifier: verifierAt(0), Account: "123456789012", Log: a.Log}
	got := map[string]string{}
	for _, path := range []string{"/periodic/auth-base", "/periodic/auth%252Dbase", "/periodic/auth-base%2Fhistory",
		"/periodic/auth-base/history", "/periodic/%2E", "/periodic/%2E%2E"} {
		r, _ := signed(t, sigReq{method: http.MethodGet, target: "http://api.example" + path})
		rec := httptest.NewRecorder()
		l.ServeHTTP(rec, r)
		var body struct {
			ID, TimerID string
			Error       struct{ Code string }
		}
		json.Unmarshal(rec.Body.Bytes(), &body)
		got[path] = strings.TrimSpace(http.StatusText(rec.Code) + " " + body.ID + body.TimerID + body.Error.Code)
	}
	want := map[string]string{
		"/periodic/auth-base":           "OK auth-base",
		"/periodic/auth%252Dbase":       "Bad Request invalid",
		"/periodic/auth-base%2Fhistory": "Bad Request invalid",
		"/periodic/auth-base/history":   "OK auth-base",
		"/periodic/%2E":                 "Bad Request invalid",
		"/periodic/%2E%2E":              "Bad Request invalid",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("responses (-want +got):\n%s", diff)
	}
}

// TestAPIRefusesDotIDs: the ids and group names . and .. are refused
// wherever they appear, since clients that normalise paths cannot
// address them.
func TestAPIRefusesDotIDs(t *testing.T) {
	t.Parallel()
	tests := []struct{ method, path, body string }{
		{http.MethodPut, "/periodic/.", `{"timerCallbackData":1}`},
		{http.MethodPut, "/periodic/..", `{"timerCallbackData":1}`},
		{http.MethodPut, "/periodic/%2E%2E", `{"timerCallbackData":1}`},
		{http.MethodGet, "/periodic/../history", ""},
		{http.MethodPost, "/periodic/./pause", ""},
		{http.MethodPut, "/periodic/t1", `{"timerCallbackData":1,"group":".."}`},
		{http.MethodPost, "/groups/../pause", ""},
		{http.MethodGet, "/periodic?group=.", ""},
	}
	for _, tt := range tests {
		a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
		base, q, _ := strings.Cut(tt.path, "?")
		req := events.APIGatewayProxyRequest{HTTPMethod: tt.method, Path: base, Body: tt.body}
		if k, v, ok := strings.Cut(q, "="); ok {
			req.QueryStringParameters = map[string]string{k: v}
		}
		resp := a.do(t, req)
		if resp.StatusCode != http.StatusBadRequest || a.store.puts() != 0 {
			t.Errorf("%s %s: %d with %d Put calls, want 400 and none; body %s", tt.method, tt.path, resp.StatusCode, a.store.puts(), resp.Body)
		}
	}
}
