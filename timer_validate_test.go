package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// TestHTTPTargetValidateUnsendable: a target net/http could never send
// (a header value with a control character, a port outside 1-65535) is
// refused when it is stored, not retried to the end of its policy. A
// placeholder stands for a value in these checks.
func TestHTTPTargetValidateUnsendable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		target  HTTPTarget
		wantErr string // a fragment of the message; "" for valid
	}{
		{name: "plain", target: HTTPTarget{URL: "https://example.com/"}},
		{name: "port 1", target: HTTPTarget{URL: "https://example.com:1/"}},
		{name: "port 65535", target: HTTPTarget{URL: "http://example.com:65535/"}},
		{name: "placeholder host with port", target: HTTPTarget{URL: "https://aws-secret(/callclock/host):8443/"}},
		{name: "header value with tab", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "a\tb"}}},
		{name: "header value placeholder", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"Authorization": "Bearer aws-secret(/callclock/t)"}}},
		{name: "header value non-ASCII", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "ü"}}},
		{name: "port 0", target: HTTPTarget{URL: "https://example.com:0/"}, wantErr: "http.url"},
		{name: "port 99999", target: HTTPTarget{URL: "https://example.com:99999/"}, wantErr: "http.url"},
		{name: "port 65536", target: HTTPTarget{URL: "https://example.com:65536/"}, wantErr: "http.url"},
		{name: "port 00000", target: HTTPTarget{URL: "https://example.com:00000/"}, wantErr: "http.url"},
		{name: "port 99999 after a placeholder host", target: HTTPTarget{URL: "https://aws-secret(/callclock/host):99999/"}, wantErr: "http.url"},
		{name: "port only", target: HTTPTarget{URL: "https://:443/"}, wantErr: "http.url"},
		{name: "header value \\x01", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "a\x01"}}, wantErr: "http.headers.X-A"},
		{name: "header value \\x7f", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "a\x7f"}}, wantErr: "http.headers.X-A"},
		{name: "header value \\x0b", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "a\x0bb"}}, wantErr: "http.headers.X-A"},
		{name: "header value CR", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "a\rb"}}, wantErr: "http.headers.X-A"},
		{name: "header value control char next to a placeholder", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "aws-secret(/callclock/t)\x1f"}}, wantErr: "http.headers.X-A"},
		{name: "header name with colon", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X:A": "v"}}, wantErr: "not a valid header name"},
		{name: "header name with control char", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X\x01A": "v"}}, wantErr: "not a valid header name"},
		{name: "header name empty", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"": "v"}}, wantErr: "not a valid header name"},
		{name: "header names differing only in case", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-Key": "a", "x-key": "b"}}, wantErr: `"X-Key" and "x-key" are the same header`},
		{name: "header names differing only in case, three", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-A": "1", "authorization": "a", "Authorization": "b"}}, wantErr: `"Authorization" and "authorization" are the same header`},
		{name: "header names differing other than in case", target: HTTPTarget{URL: "https://example.com/", Headers: map[string]string{"X-Key": "a", "X-Key2": "b", "X-Kez": "c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.target.Validate("/callclock/")
			if got, want := errText(err), tt.wantErr; (want == "") != (got == "") || !strings.Contains(got, want) {
				t.Errorf("Validate() = %q, want an error containing %q", got, want)
			}
			if err != nil && ErrorCode(err) != EINVALID {
				t.Errorf("error code %q, want %q", ErrorCode(err), EINVALID)
			}
		})
	}
}

// TestNotifyValidatePorts: notify.webhook's port is checked as http.url's.
func TestNotifyValidatePorts(t *testing.T) {
	t.Parallel()
	got := map[string]bool{}
	for _, w := range []string{"https://hooks.example.com/x", "https://hooks.example.com:8443/x", "https://hooks.example.com:0/x",
		"https://hooks.example.com:99999/x", "https://aws-secret(/callclock/h):70000/x", "aws-secret(/callclock/w)"} {
		got[w] = (&Notify{Webhook: w}).Validate("/callclock/") == nil
	}
	want := map[string]bool{"https://hooks.example.com/x": true, "https://hooks.example.com:8443/x": true, "https://hooks.example.com:0/x": false,
		"https://hooks.example.com:99999/x": false, "https://aws-secret(/callclock/h):70000/x": false, "aws-secret(/callclock/w)": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhook accepted (-want +got):\n%s", diff)
	}
}

func TestCheckSecretsPlaceholders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		s       string
		prefix  string
		wantErr string // a fragment of the message; "" for no error
	}{
		{"empty", "", "/callclock/", ""},
		{"no placeholder", "Bearer abc(def)", "/callclock/", ""},
		{"one placeholder", "aws-secret(/callclock/token)", "/callclock/", ""},
		{"two placeholders in text", "u=aws-secret(/callclock/u)&p=aws-secret(/callclock/a/b.c-d_e)", "/callclock/", ""},
		{"second placeholder outside prefix", "aws-secret(/callclock/a) aws-secret(/other/b)", "/callclock/", "outside the allowed prefix"},
		{"other configured prefix", "aws-secret(/callclock/a)", "/team/", "outside the allowed prefix"},
		{"relative name", "aws-secret(callclock/x)", "/callclock/", "not a valid parameter name"},
		{"empty name", "aws-secret()", "/callclock/", "not a valid parameter name"},
		{"name with space", "aws-secret(/callclock/a b)", "/callclock/", "not a valid parameter name"},
		{"unclosed", "aws-secret(/callclock/x", "/callclock/", "malformed aws-secret"},
		{"nested", "aws-secret(aws-secret(/callclock/x))", "/callclock/", "malformed aws-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := checkSecrets("http.body", tt.s, tt.prefix)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("checkSecrets(%q) = %v, want nil", tt.s, err)
				}
				return
			}
			if err == nil || ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("checkSecrets(%q) = %v, want an %s error containing %q", tt.s, err, EINVALID, tt.wantErr)
			}
		})
	}
}

// ntAt is the instant the newTimer tests define their timers at: a
// fraction of a second past 10:00:30, in a zone other than UTC.
var ntAt = time.Date(2026, 11, 22, 11, 0, 30, 750e6, time.FixedZone("CET", 3600))

// ntDefine is newTimer of body (a PUT body) as timer id at ntAt.
func ntDefine(t *testing.T, id, body string, opt timerOptions) (*Timer, error) {
	t.Helper()
	var in putRequest
	if err := decodeBody(events.APIGatewayProxyRequest{Body: body}, &in); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return newTimer(id, in, opt)
}

// TestNewTimerNeedsNoAPI: newTimer takes the clock, the shards and the
// secret prefix as options, so the command line checks a timer file by
// the server's rules without an API.
func TestNewTimerNeedsNoAPI(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC)
	got, err := ntDefine(t, "t1", `{"timerCallbackData":{"a": [1, 2]},"http":{"method":"post","url":"https://h/aws-secret(/team/host)"}}`,
		timerOptions{Now: ntAt, Shards: 7, SecretPrefix: "/team/"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Timer{
		ID: "t1", ShardID: shardFor("t1", 7), MinuteOfHour: defaultMinute("t1"),
		CatchUpSeconds: DefaultCatchUpSeconds, Retry: defaultRetry(),
		Anchor: at, CreatedAt: at, UpdatedAt: at, // in UTC, to the second
		CallbackData: json.RawMessage(`{"a":[1,2]}`),
		HTTP:         &HTTPTarget{Method: "POST", URL: "https://h/aws-secret(/team/host)"},
		NextFireAt:   time.Date(2026, 11, 22, 10, defaultMinute("t1"), 0, 0, time.UTC),
	}
	if defaultMinute("t1") == 0 {
		want.NextFireAt = want.NextFireAt.Add(time.Hour)
	}
	if diff := cmp.Diff(want, got, rawAsString); diff != "" {
		t.Errorf("newTimer (-want +got):\n%s", diff)
	}
	if _, err := ntDefine(t, "t1", `{"http":{"url":"https://h/aws-secret(/team/host)"}}`, timerOptions{Now: ntAt, SecretPrefix: DefaultSecretPrefix}); ErrorCode(err) != EINVALID {
		t.Errorf("a placeholder outside the prefix: %v, want %s", err, EINVALID)
	}
	if got, err := ntDefine(t, "t1", `{"timerCallbackData":1}`, timerOptions{Now: ntAt}); err != nil || got.ShardID != "shard0" {
		t.Errorf("no shard count: %v %v, want shard0", got, err)
	}
}

// TestNewTimerRules: each rule of a definition, as newTimer applies it.
// The error names the field; a definition that passes is shown by what
// it sets.
func TestNewTimerRules(t *testing.T) {
	t.Parallel()
	type fields struct {
		Minute   int
		Schedule string
		Data     string
		Retry    RetryPolicy
		CatchUp  int
		Deploy   *DeploymentInfo
		Next     time.Time
	}
	tests := []struct {
		name    string
		body    string
		wantErr string // a fragment of the message; "" for none
		want    fields
	}{
		{name: "callback data is required without http", body: `{"minuteOfHour":5}`, wantErr: "timerCallbackData is required"},
		{name: "null callback data is none", body: `{"timerCallbackData":null}`, wantErr: "timerCallbackData is required"},
		{name: "both schedule and minute", body: `{"timerCallbackData":1,"minuteOfHour":5,"schedule":"rate(5 minutes)"}`, wantErr: "not both"},
		{name: "timezone without schedule", body: `{"timerCallbackData":1,"timezone":"Europe/Paris"}`, wantErr: "timezone applies to a schedule"},
		{name: "minute above 59", body: `{"timerCallbackData":1,"minuteOfHour":60}`, wantErr: "minuteOfHour"},
		{name: "retry attempts above the bound", body: `{"timerCallbackData":1,"retry":{"maxAttempts":186}}`, wantErr: "retry.maxAttempts"},
		{name: "retry age below the bound", body: `{"timerCallbackData":1,"retry":{"maxAgeSeconds":59}}`, wantErr: "retry.maxAgeSeconds"},
		{name: "catch-up below one sweep", body: `{"timerCallbackData":1,"catchUpSeconds":59}`, wantErr: "catchUpSeconds"},
		{name: "group name", body: `{"timerCallbackData":1,"group":"a b"}`, wantErr: "group must be"},
		{name: "schedule without an occurrence left", body: `{"timerCallbackData":1,"schedule":"at(2026-11-22T09:00:00)"}`, wantErr: "no occurrence at or after 2026-11-22T10:00:30Z"},
		{name: "an unknown zone", body: `{"timerCallbackData":1,"schedule":"rate(1 hour)","timezone":"Mars/Olympus"}`, wantErr: "timezone"},
		{name: "minute 0", body: `{"timerCallbackData":1,"minuteOfHour":0}`, want: fields{
			Minute: 0, Data: "1", Retry: defaultRetry(), CatchUp: DefaultCatchUpSeconds,
			Next: time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)}},
		{name: "a schedule's minute is its first occurrence's, in UTC", body: `{"timerCallbackData":" x ","schedule":" cron(30 12 * * ? *) ","timezone":"Asia/Kolkata"}`, want: fields{
			Minute: 0, Schedule: "cron(30 12 * * ? *)", Data: `" x "`, Retry: defaultRetry(), CatchUp: DefaultCatchUpSeconds,
			Next: time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)}},
		{name: "a rate schedule fires at once", body: `{"timerCallbackData":1,"schedule":"rate(1 hour)"}`, want: fields{
			Minute: 0, Schedule: "rate(1 hour)", Data: "1", Retry: defaultRetry(), CatchUp: DefaultCatchUpSeconds,
			Next: time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC)}},
		{name: "a retry field left out takes its default", body: `{"timerCallbackData":1,"minuteOfHour":5,"retry":{"maxAttempts":0}}`, want: fields{
			Minute: 5, Data: "1", Retry: RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: DefaultMaxAgeSeconds}, CatchUp: DefaultCatchUpSeconds,
			Next: time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)}},
		{name: "catch-up and an empty deployment", body: `{"timerCallbackData":1,"minuteOfHour":5,"catchUpSeconds":86400,"deploymentInfo":{}}`, want: fields{
			Minute: 5, Data: "1", Retry: defaultRetry(), CatchUp: MaxCatchUpSeconds,
			Next: time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)}},
		{name: "a deployment is kept", body: `{"timerCallbackData":1,"minuteOfHour":5,"deploymentInfo":{"product":"p","version":"1"}}`, want: fields{
			Minute: 5, Data: "1", Retry: defaultRetry(), CatchUp: DefaultCatchUpSeconds, Deploy: &DeploymentInfo{Product: "p", Version: "1"},
			Next: time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ntDefine(t, "t1", tt.body, timerOptions{Now: ntAt, Shards: 1, SecretPrefix: DefaultSecretPrefix})
			if tt.wantErr != "" {
				if ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tt.wantErr) || got != nil {
					t.Errorf("newTimer = %v, %v; want no timer and an %s error containing %q", got, err, EINVALID, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := fields{got.MinuteOfHour, got.ScheduleExpr, string(got.CallbackData), got.Retry, got.CatchUpSeconds, got.Deployment, got.NextFireAt}
			if diff := cmp.Diff(tt.want, f); diff != "" {
				t.Errorf("newTimer (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNewTimerErrorOrder: a definition that breaks several rules gets the
// error of the first in newTimer's order, every time.
func TestNewTimerErrorOrder(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"data":     `"timerCallbackData":null`,
		"minute":   `"minuteOfHour":60`,
		"http":     `"http":{"url":"ftp://x"}`,
		"retry":    `"retry":{"maxAttempts":-1}`,
		"notify":   `"notify":{"webhook":"ftp://x"}`,
		"deploy":   `"deploymentInfo":{"id":"a\nb"}`,
		"group":    `"group":"a b"`,
		"catchUp":  `"catchUpSeconds":1`,
		"schedule": `"schedule":"at(2026-11-22T09:00:00)"`,
	}
	tests := []struct {
		rules   []string
		wantErr string
	}{
		{[]string{"data", "minute"}, "timerCallbackData is required"},
		{[]string{"minute", "http"}, "minuteOfHour"},
		{[]string{"http", "retry"}, "http.url"},
		{[]string{"retry", "notify"}, "retry.maxAttempts"},
		{[]string{"notify", "deploy"}, "notify.webhook"},
		{[]string{"deploy", "group"}, "deploymentInfo.id"},
		{[]string{"group", "catchUp"}, "group must be"},
		{[]string{"catchUp", "schedule"}, "catchUpSeconds"},
	}
	for _, tt := range tests {
		var parts []string
		for _, r := range tt.rules {
			parts = append(parts, bad[r])
		}
		if !slices.Contains(tt.rules, "data") {
			parts = append(parts, `"timerCallbackData":1`)
		}
		body := "{" + strings.Join(parts, ",") + "}"
		for range 3 {
			if _, err := ntDefine(t, "t1", body, timerOptions{Now: ntAt, SecretPrefix: DefaultSecretPrefix}); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: newTimer error %v, want one containing %q", tt.rules, err, tt.wantErr)
			}
		}
	}
}

// TestTimerOccurrences: which instants are a timer's past occurrences, to
// be fired again, and which is its last, after which a
// deleteAfterCompletion timer goes.
func TestTimerOccurrences(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 50, 0, 0, time.UTC)
	hourly := &Timer{ID: "t1", MinuteOfHour: 45}
	end := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ending := &Timer{ID: "t2", ScheduleExpr: "cron(45 * * * ? *)", EndAt: &end}
	tests := []struct {
		name    string
		t       *Timer
		at      time.Time
		wantErr string // of checkOccurrence; "" for none
		last    bool
	}{
		{"a past occurrence", hourly, time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC), "", false},
		{"a second off", hourly, time.Date(2026, 11, 22, 10, 45, 1, 0, time.UTC), "is not an occurrence", false},
		{"in the future", hourly, time.Date(2026, 11, 22, 11, 45, 0, 0, time.UTC), "is in the future", false},
		{"not the last before its end", ending, time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC), "", false},
		{"the last before its end", ending, time.Date(2026, 11, 22, 11, 45, 0, 0, time.UTC), "is in the future", true},
	}
	for _, tt := range tests {
		err := tt.t.checkOccurrence(tt.at, now)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: checkOccurrence = %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
		if got := tt.t.isLast(tt.at); got != tt.last {
			t.Errorf("%s: isLast = %t, want %t", tt.name, got, tt.last)
		}
	}
}
