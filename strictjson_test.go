package main

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// TestAPIStrictJSON: every request body the API reads refuses duplicate
// keys, case variants of field names and invalid UTF-8, with a 400 naming
// the key, and nothing is stored.
func TestAPIStrictJSON(t *testing.T) {
	t.Parallel()
	const deployer = `{"name":"t1","deployment":{"cron":"0 0 * * ? *","enabled":true},"request":{"protocol":"https","hostname":"example.com","path":"/p"%s}}`
	tests := []struct {
		name    string
		method  string // default PUT
		path    string // default /periodic/t1
		body    string
		base64  bool
		wantMsg string
	}{
		{name: "duplicate http", body: `{"http":{"url":"https://example.com/"},"http":{"url":"http://127.0.0.1:9/"}}`, wantMsg: `duplicate key "http"`},
		{name: "duplicate nested key", body: `{"http":{"url":"https://example.com/","url":"http://127.0.0.1:9/"}}`, wantMsg: `duplicate key "http.url"`},
		{name: "duplicate header", body: `{"http":{"url":"https://example.com/","headers":{"X-A":"1","X-A":"2"}}}`, wantMsg: `duplicate key "http.headers.X-A"`},
		{name: "duplicate key in callback data", body: `{"timerCallbackData":{"a":1,"a":2}}`, wantMsg: `duplicate key "timerCallbackData.a"`},
		{name: "duplicate in an array in callback data", body: `{"timerCallbackData":[{"a":1,"a":2}]}`, wantMsg: `duplicate key "timerCallbackData[0].a"`},
		{name: "duplicate in base64 body", body: base64.StdEncoding.EncodeToString([]byte(`{"timerCallbackData":1,"timerCallbackData":2}`)), base64: true, wantMsg: `duplicate key "timerCallbackData"`},
		{name: "case variant", body: `{"TimerCallbackData":1}`, wantMsg: `unknown field "TimerCallbackData"`},
		{name: "case variant nested", body: `{"http":{"URL":"https://example.com/"}}`, wantMsg: `unknown field "http.URL"`},
		{name: "case variant in retry", body: `{"timerCallbackData":1,"retry":{"maxattempts":3}}`, wantMsg: `unknown field "retry.maxattempts"`},
		{name: "invalid UTF-8 in callback data", body: "{\"timerCallbackData\":\"a\xffb\"}", wantMsg: "invalid UTF-8"},
		{name: "invalid UTF-8 in a key", body: "{\"timerCallbackData\":1,\"\xc3\":1}", wantMsg: "invalid UTF-8"},
		{name: "lone high surrogate escape", body: `{"timerCallbackData":"a\ud800b"}`, wantMsg: "surrogate"},
		{name: "lone low surrogate escape", body: `{"timerCallbackData":"\udc00"}`, wantMsg: "surrogate"},
		{name: "high surrogate escape at the end", body: `{"timerCallbackData":"\uD83D"}`, wantMsg: "surrogate"},
		{name: "two high surrogate escapes", body: `{"timerCallbackData":"\ud83d\ud83d"}`, wantMsg: "surrogate"},
		{name: "lone surrogate escape in a key", body: `{"timerCallbackData":{"\ud800":1}}`, wantMsg: "surrogate"},
		{name: "pause reason duplicate", method: http.MethodPost, path: "/periodic/t1/pause", body: `{"reason":"a","reason":"b"}`, wantMsg: `duplicate key "reason"`},
		{name: "pause reason case variant", method: http.MethodPost, path: "/periodic/t1/pause", body: `{"Reason":"a"}`, wantMsg: `unknown field "Reason"`},
		{name: "group pause invalid UTF-8", method: http.MethodPost, path: "/groups/qa/pause", body: "{\"reason\":\"\xfe\"}", wantMsg: "invalid UTF-8"},
		{name: "Deployer duplicate hostname", body: strings.Replace(deployer, "%s", `,"hostname":"127.0.0.1"`, 1), wantMsg: `duplicate key "request.hostname"`},
		{name: "Deployer invalid UTF-8", body: strings.Replace(deployer, "%s", ",\"headers\":{\"X\":\"\xff\"}", 1), wantMsg: "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPut
			}
			if path == "" {
				path = "/periodic/t1"
			}
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			resp := a.Handle(t.Context(), events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: tt.body, IsBase64Encoded: tt.base64})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400; body %s", resp.StatusCode, resp.Body)
			}
			e := decodeError(t, resp)
			if e.Code != EINVALID || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("error %s %q, want %s containing %q", e.Code, e.Message, EINVALID, tt.wantMsg)
			}
			if n := a.store.puts(); n != 0 {
				t.Errorf("store received %d Put calls, want none", n)
			}
		})
	}
}

// TestAPIStrictJSONAccepts: what the strict pre-pass must let through.
func TestAPIStrictJSONAccepts(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"timerCallbackData":{"a":1,"A":2,"b":{"a":1}}}`, // callback data's keys are its owner's: only duplicates count
		`{"timerCallbackData":"\u00fc ü \ufffd"}`,         // U+FFFD the client sent itself is data
		`{"timerCallbackData":[{"a":1},{"a":2}]}`,
		`{"timerCallbackData":"\ud83d\ude00 \u00e9 \\ud800"}`, // a pair, a BMP escape, and an escaped backslash before "ud800"
		`{"timerCallbackData":"\"\\\ud83d\ude00"}`,
	} {
		a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
		if resp := a.call(t, http.MethodPut, "/periodic/t1", body); resp.StatusCode != http.StatusCreated {
			t.Errorf("PUT %s: status %d, want 201; body %s", body, resp.StatusCode, resp.Body)
		}
	}
}
