package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// rawAsString shows json.RawMessage values as text in diffs and compares
// them byte for byte.
var rawAsString = cmp.Transformer("RawString", func(r json.RawMessage) string { return string(r) })

// testAPI is an API over a fake store with a fixed clock and a captured log.
type testAPI struct {
	*API
	store *fakeTimerStore
	log   *bytes.Buffer
}

// newTestAPI returns an API over a new fake store at now, with shards
// shards, logging to a buffer.
func newTestAPI(now time.Time, shards int) *testAPI {
	var buf bytes.Buffer
	store := newFakeTimerStore()
	return &testAPI{
		API: &API{
			Timers:       store,
			Shards:       shards,
			SecretPrefix: "/callclock/",
			Now:          func() time.Time { return now },
			Log:          slog.New(slog.NewJSONHandler(&buf, nil)),
			// The occurrences a PUT or a resume sends at once (short notice).
			Fire: &sqsSender{}, FireQueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/callclock-fire",
			Limits: newLtAdmin(),
		},
		store: store,
		log:   &buf,
	}
}

// do sends one request and checks what every response must have: a JSON
// content type and a body that is valid JSON.
func (a *testAPI) do(t *testing.T, req events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	resp := a.Handle(t.Context(), req)
	if got := resp.Headers["Content-Type"]; got != "application/json" {
		t.Errorf("%s %s: Content-Type = %q, want application/json", req.HTTPMethod, req.Path, got)
	}
	if !json.Valid([]byte(resp.Body)) {
		t.Errorf("%s %s: body is not valid JSON: %q", req.HTTPMethod, req.Path, resp.Body)
	}
	return resp
}

// call sends one request without query parameters (see do).
func (a *testAPI) call(t *testing.T, method, path, body string) events.APIGatewayProxyResponse {
	t.Helper()
	return a.do(t, events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: body})
}

// timerDoc is the API's timer document, with the instants as the text the
// client sees.
type timerDoc struct {
	ID                string          `json:"id"`
	ShardID           string          `json:"shardId"`
	TimeShardID       string          `json:"timeShardId"`
	MinuteOfHour      int             `json:"minuteOfHour"`
	TimerCallbackData json.RawMessage `json:"timerCallbackData"`
	HTTP              *HTTPTarget     `json:"http"`
	NextFireAt        *string         `json:"nextFireAt"`
	State             string          `json:"state"`
	Schedule          string          `json:"schedule"`
	Timezone          string          `json:"timezone"`
	StartAt           *string         `json:"startAt"`
	EndAt             *string         `json:"endAt"`
	DeleteAfter       bool            `json:"deleteAfterCompletion"`
	CatchUpSeconds    int             `json:"catchUpSeconds"`
	Retry             RetryPolicy     `json:"retry"`
	Notify            *Notify         `json:"notify"`
	LastFire          *LastFire       `json:"lastFire"`
	CreatedAt         string          `json:"createdAt"`
	UpdatedAt         string          `json:"updatedAt"`
	Version           int64           `json:"version"`
}

// decodeStrict decodes body into v, failing on fields v does not have.
func decodeStrict(t *testing.T, body string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, body, err)
	}
}

// decodeTimer decodes a timer document strictly.
func decodeTimer(t *testing.T, resp events.APIGatewayProxyResponse) timerDoc {
	t.Helper()
	var d timerDoc
	decodeStrict(t, resp.Body, &d)
	return d
}

// apiError is the error body's "error".
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// decodeError decodes an error body strictly.
func decodeError(t *testing.T, resp events.APIGatewayProxyResponse) apiError {
	t.Helper()
	var e struct {
		Error apiError `json:"error"`
	}
	decodeStrict(t, resp.Body, &e)
	return e.Error
}

func TestAPIPutCreatesThenReplaces(t *testing.T) {
	t.Parallel()
	const id = "fee5f544-af54-4ec3-9631-32f0d8d88309"
	const shards = 7
	now := time.Date(2026, 11, 22, 10, 44, 59, 0, time.UTC)
	a := newTestAPI(now, shards)
	a.Now = func() time.Time { return now } // follows now as the test moves it

	resp := a.call(t, http.MethodPut, "/periodic/"+id, `{"timerCallbackData":{"z":1,"a":[1,2]},"minuteOfHour":45}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("first PUT: status %d, want 201; body %s", resp.StatusCode, resp.Body)
	}
	created := timerDoc{
		ID:                id,
		ShardID:           shardFor(id, shards),
		TimeShardID:       "45:" + id,
		MinuteOfHour:      45,
		TimerCallbackData: json.RawMessage(`{"z":1,"a":[1,2]}`),
		NextFireAt:        ptrTo("2026-11-22T10:45:00Z"),
		State:             "active",
		CatchUpSeconds:    3600,
		Retry:             RetryPolicy{MaxAttempts: 185, MaxAgeSeconds: 86400},
		CreatedAt:         "2026-11-22T10:44:59Z",
		UpdatedAt:         "2026-11-22T10:44:59Z",
		Version:           1,
	}
	if diff := cmp.Diff(created, decodeTimer(t, resp), rawAsString); diff != "" {
		t.Errorf("first PUT document (-want +got):\n%s", diff)
	}
	if !regexp.MustCompile(`^shard[0-6]$`).MatchString(created.ShardID) {
		t.Errorf("shardId %q is not one of shard0..shard6", created.ShardID)
	}

	now = time.Date(2026, 11, 22, 11, 2, 3, 700e6, time.UTC)
	resp = a.call(t, http.MethodPut, "/periodic/"+id, `{"timerCallbackData":"second","minuteOfHour":5}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second PUT: status %d, want 200; body %s", resp.StatusCode, resp.Body)
	}
	replaced := timerDoc{
		ID:                id,
		ShardID:           shardFor(id, shards),
		TimeShardID:       "05:" + id,
		MinuteOfHour:      5,
		TimerCallbackData: json.RawMessage(`"second"`),
		NextFireAt:        ptrTo("2026-11-22T11:05:00Z"),
		State:             "active",
		CatchUpSeconds:    3600,
		Retry:             RetryPolicy{MaxAttempts: 185, MaxAgeSeconds: 86400},
		CreatedAt:         "2026-11-22T10:44:59Z", // kept from the first PUT
		UpdatedAt:         "2026-11-22T11:02:03Z",
		Version:           2,
	}
	if diff := cmp.Diff(replaced, decodeTimer(t, resp), rawAsString); diff != "" {
		t.Errorf("second PUT document (-want +got):\n%s", diff)
	}

	resp = a.call(t, http.MethodGet, "/periodic/"+id, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d, want 200; body %s", resp.StatusCode, resp.Body)
	}
	if diff := cmp.Diff(replaced, decodeTimer(t, resp), rawAsString); diff != "" {
		t.Errorf("GET document (-want +got):\n%s", diff)
	}
}

func TestAPIPutNextFireAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{"one second before", time.Date(2026, 11, 22, 10, 44, 59, 0, time.UTC), "2026-11-22T10:45:00Z"},
		// A timer created in its firing second fires in it: the first
		// occurrence may be now, as for a rate schedule without startAt.
		{"exactly on the minute", time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC), "2026-11-22T10:45:00Z"},
		{"within the firing second", time.Date(2026, 11, 22, 10, 45, 0, 1, time.UTC), "2026-11-22T10:45:00Z"},
		{"one second after the minute", time.Date(2026, 11, 22, 10, 45, 1, 0, time.UTC), "2026-11-22T11:45:00Z"},
		{"sub-second before", time.Date(2026, 11, 22, 10, 44, 59, 999e6, time.UTC), "2026-11-22T10:45:00Z"},
		{"across midnight", time.Date(2026, 12, 31, 23, 50, 0, 0, time.UTC), "2027-01-01T00:45:00Z"},
		{"non-UTC clock", time.Date(2026, 11, 22, 16, 14, 59, 0, time.FixedZone("IST", 5*3600+1800)), "2026-11-22T10:45:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(tt.now, 1)
			resp := a.call(t, http.MethodPut, "/periodic/t1", `{"timerCallbackData":1,"minuteOfHour":45}`)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
			}
			if diff := cmp.Diff(ptrTo(tt.want), decodeTimer(t, resp).NextFireAt); diff != "" {
				t.Errorf("nextFireAt (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIPutMinuteAndShard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		id         string
		shards     int
		body       string
		wantMinute int
	}{
		{"omitted minute is the id's default", "fee5f544-af54-4ec3-9631-32f0d8d88309", 4, `{"timerCallbackData":1}`, defaultMinute("fee5f544-af54-4ec3-9631-32f0d8d88309")},
		{"null minute is the id's default", "x.y:z_1-2", 4, `{"timerCallbackData":1,"minuteOfHour":null}`, defaultMinute("x.y:z_1-2")},
		{"minute 0", "a", 1, `{"timerCallbackData":1,"minuteOfHour":0}`, 0},
		{"single-digit minute", "b", 10, `{"timerCallbackData":1,"minuteOfHour":7}`, 7},
		{"minute 59", "c", 100, `{"timerCallbackData":1,"minuteOfHour":59}`, 59},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC), tt.shards)
			resp := a.call(t, http.MethodPut, "/periodic/"+tt.id, tt.body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
			}
			d := decodeTimer(t, resp)
			next := time.Date(2026, 11, 22, 10, tt.wantMinute, 0, 0, time.UTC)
			if tt.wantMinute == 0 { // 10:00 has passed at 10:00:30
				next = next.Add(time.Hour)
			}
			type summary struct {
				Minute      int
				TimeShardID string
				ShardID     string
				NextFireAt  string
			}
			want := summary{
				Minute:      tt.wantMinute,
				TimeShardID: fmt.Sprintf("%02d:%s", tt.wantMinute, tt.id),
				ShardID:     shardFor(tt.id, tt.shards),
				NextFireAt:  next.Format(time.RFC3339),
			}
			got := summary{Minute: d.MinuteOfHour, TimeShardID: d.TimeShardID, ShardID: d.ShardID}
			if d.NextFireAt != nil {
				got.NextFireAt = *d.NextFireAt
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("timer (-want +got):\n%s", diff)
			}
			if !regexp.MustCompile(`^\d\d:`).MatchString(d.TimeShardID) {
				t.Errorf("timeShardId %q does not start with a two-digit minute", d.TimeShardID)
			}
		})
	}
}

func TestAPIGetAndDelete(t *testing.T) {
	t.Parallel()
	a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)

	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		resp := a.call(t, method, "/periodic/t1", "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s missing timer: status %d, want 404", method, resp.StatusCode)
		}
		if got := decodeError(t, resp).Code; got != ENOTFOUND {
			t.Errorf("%s missing timer: error code %q, want %q", method, got, ENOTFOUND)
		}
	}

	put := a.call(t, http.MethodPut, "/periodic/t1", `{"timerCallbackData":{"k":"v"}}`)
	if put.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: status %d, want 201; body %s", put.StatusCode, put.Body)
	}
	get := a.call(t, http.MethodGet, "/periodic/t1", "")
	if get.StatusCode != http.StatusOK {
		t.Fatalf("GET: status %d, want 200; body %s", get.StatusCode, get.Body)
	}
	if diff := cmp.Diff(decodeTimer(t, put), decodeTimer(t, get), rawAsString); diff != "" {
		t.Errorf("GET differs from PUT response (-put +get):\n%s", diff)
	}

	del := a.call(t, http.MethodDelete, "/periodic/t1", "")
	if del.StatusCode != http.StatusOK {
		t.Errorf("DELETE: status %d, want 200", del.StatusCode)
	}
	var deleted string
	decodeStrict(t, del.Body, &deleted)
	if deleted != "t1" {
		t.Errorf("DELETE body = %q, want the JSON string \"t1\"", del.Body)
	}

	get = a.call(t, http.MethodGet, "/periodic/t1", "")
	if get.StatusCode != http.StatusNotFound {
		t.Errorf("GET after DELETE: status %d, want 404", get.StatusCode)
	}
	if got := decodeError(t, get).Code; got != ENOTFOUND {
		t.Errorf("GET after DELETE: error code %q, want %q", got, ENOTFOUND)
	}
}

// jsonBodyOfSize returns a valid PUT body of exactly n bytes.
func jsonBodyOfSize(n int) string {
	const head, tail = `{"timerCallbackData":"`, `"}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestAPIPutRejectsBadInput(t *testing.T) {
	t.Parallel()
	const okBody = `{"timerCallbackData":1}`
	httpBody := func(target string) string { return `{"http":` + target + `}` }
	tests := []struct {
		name     string
		path     string // default /periodic/t1
		body     string
		base64   bool
		wantCode string
		wantMsg  string // a fragment of the message, when several checks could reject the input
	}{
		{name: "malformed JSON", body: `{"timerCallbackData":`, wantCode: EINVALID},
		{name: "trailing object", body: okBody + ` {}`, wantCode: EINVALID},
		{name: "trailing garbage", body: okBody + `x`, wantCode: EINVALID},
		{name: "unknown field", body: `{"timerCallbackData":1,"extra":true}`, wantCode: EINVALID},
		{name: "unknown field in http", body: httpBody(`{"url":"https://example.com","timeout":5}`), wantCode: EINVALID},
		{name: "empty body", body: "", wantCode: EINVALID, wantMsg: "empty"},
		{name: "blank body", body: " \n\t", wantCode: EINVALID, wantMsg: "empty"},
		{name: "JSON array", body: `[` + okBody + `]`, wantCode: EINVALID},
		{name: "JSON null", body: `null`, wantCode: EINVALID},
		{name: "null timerCallbackData without http", body: `{"timerCallbackData":null}`, wantCode: EINVALID},
		{name: "missing timerCallbackData without http", body: `{"minuteOfHour":5}`, wantCode: EINVALID},
		{name: "empty object", body: `{}`, wantCode: EINVALID},
		{name: "minuteOfHour -1", body: `{"timerCallbackData":1,"minuteOfHour":-1}`, wantCode: EINVALID},
		{name: "minuteOfHour 60", body: `{"timerCallbackData":1,"minuteOfHour":60}`, wantCode: EINVALID},
		{name: "minuteOfHour 1.5", body: `{"timerCallbackData":1,"minuteOfHour":1.5}`, wantCode: EINVALID},
		{name: "minuteOfHour string", body: `{"timerCallbackData":1,"minuteOfHour":"5"}`, wantCode: EINVALID},
		{name: "id of 129 characters", path: "/periodic/" + strings.Repeat("a", 129), body: okBody, wantCode: EINVALID},
		{name: "id with space", path: "/periodic/a b", body: okBody, wantCode: EINVALID},
		{name: "id with escaped space", path: "/periodic/a%20b", body: okBody, wantCode: EINVALID},
		{name: "id with escaped slash", path: "/periodic/a%2Fb", body: okBody, wantCode: EINVALID},
		{name: "id with non-ASCII letter", path: "/periodic/ü", body: okBody, wantCode: EINVALID},
		{name: "id with escaped non-ASCII letter", path: "/periodic/%C3%BC", body: okBody, wantCode: EINVALID},
		{name: "malformed path escape", path: "/periodic/a%zz", body: okBody, wantCode: EINVALID},
		{name: "body over MaxBodyBytes", body: jsonBodyOfSize(MaxBodyBytes + 1), wantCode: ETOOLARGE},
		{name: "base64 body over MaxBodyBytes", body: base64.StdEncoding.EncodeToString([]byte(jsonBodyOfSize(MaxBodyBytes + 1))), base64: true, wantCode: ETOOLARGE},
		{name: "invalid base64", body: "eyJ0aW1lckNhbGxiYWNrRGF0YSI6MX0!", base64: true, wantCode: EINVALID},
		{name: "http method with space", body: httpBody(`{"method":"GE T","url":"https://example.com"}`), wantCode: EINVALID},
		{name: "http url ftp", body: httpBody(`{"url":"ftp://x"}`), wantCode: EINVALID},
		{name: "http url relative", body: httpBody(`{"url":"/hook"}`), wantCode: EINVALID},
		{name: "http url missing", body: httpBody(`{"method":"POST"}`), wantCode: EINVALID},
		{name: "http header name with space", body: httpBody(`{"url":"https://example.com","headers":{"X Bad":"v"}}`), wantCode: EINVALID},
		{name: "http header value with CRLF", body: httpBody(`{"url":"https://example.com","headers":{"X-Ok":"v\r\nX-Evil: 1"}}`), wantCode: EINVALID},
		{name: "http header names differing only in case", body: httpBody(`{"url":"https://example.com","headers":{"X-Key":"a","x-key":"b"}}`), wantCode: EINVALID, wantMsg: `"X-Key" and "x-key"`},
		{name: "secret outside prefix", body: httpBody(`{"url":"https://example.com","headers":{"Authorization":"aws-secret(/other/x)"}}`), wantCode: EINVALID, wantMsg: "outside the allowed prefix"},
		{name: "secret prefix without its slash", body: httpBody(`{"url":"https://example.com","headers":{"Authorization":"aws-secret(/callclockx/y)"}}`), wantCode: EINVALID, wantMsg: "outside the allowed prefix"},
		{name: "malformed placeholder", body: httpBody(`{"url":"https://example.com","body":"aws-secret(/callclock/x"}`), wantCode: EINVALID, wantMsg: "malformed aws-secret"},
		{name: "placeholder with invalid name", body: httpBody(`{"url":"https://example.com","headers":{"Authorization":"aws-secret(callclock/x)"}}`), wantCode: EINVALID, wantMsg: "not a valid parameter name"},
		{name: "placeholder name with space", body: httpBody(`{"url":"https://example.com","headers":{"Authorization":"aws-secret(/callclock/a b)"}}`), wantCode: EINVALID, wantMsg: "not a valid parameter name"},
		{name: "placeholder name with a .. segment", body: httpBody(`{"url":"https://example.com","body":"aws-secret(/callclock/../other/x)"}`), wantCode: EINVALID, wantMsg: "not a valid parameter name"},
		{name: "placeholder name with a . segment", body: httpBody(`{"url":"https://example.com","body":"aws-secret(/callclock/./x)"}`), wantCode: EINVALID, wantMsg: "not a valid parameter name"},
		{name: "placeholder name with double slash", body: httpBody(`{"url":"https://example.com","body":"aws-secret(/callclock//x)"}`), wantCode: EINVALID, wantMsg: "not a valid parameter name"},
		{name: "placeholder outside prefix in url", body: httpBody(`{"url":"https://aws-secret(/other/host)/x"}`), wantCode: EINVALID, wantMsg: "outside the allowed prefix"},
		{name: "notify channel with space", body: `{"timerCallbackData":1,"notify":{"webhook":"https://h/w","channel":"a b"}}`, wantCode: EINVALID, wantMsg: "notify.channel"},
		{name: "notify channel on a secret webhook, too long", body: `{"timerCallbackData":1,"notify":{"webhook":"aws-secret(/callclock/w)","channel":"` + strings.Repeat("c", 81) + `"}}`, wantCode: EINVALID, wantMsg: "notify.channel"},
		{name: "deploymentInfo version too long", body: `{"timerCallbackData":1,"deploymentInfo":{"version":"` + strings.Repeat("v", MaxDeploymentField+1) + `"}}`, wantCode: EINVALID, wantMsg: "deploymentInfo.version"},
		{name: "deploymentInfo id with a newline", body: `{"timerCallbackData":1,"deploymentInfo":{"id":"a\nb"}}`, wantCode: EINVALID, wantMsg: "deploymentInfo.id"},
		{name: "deploymentInfo unknown field", body: `{"timerCallbackData":1,"deploymentInfo":{"owner":"me"}}`, wantCode: EINVALID, wantMsg: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.path
			if path == "" {
				path = "/periodic/t1"
			}
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut, Path: path, Body: tt.body, IsBase64Encoded: tt.base64})
			if want := errorStatus(tt.wantCode); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			e := decodeError(t, resp)
			if e.Code != tt.wantCode {
				t.Errorf("error code %q, want %q (message %q)", e.Code, tt.wantCode, e.Message)
			}
			if e.Message == "" || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("error message %q, want one containing %q", e.Message, tt.wantMsg)
			}
			if n := a.store.puts(); n != 0 {
				t.Errorf("store received %d Put calls, want none", n)
			}
		})
	}
}

func TestAPIPutAcceptsEdgeInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		id       string
		path     string // default /periodic/<id>
		body     string
		base64   bool
		wantData string
	}{
		{"id of 128 characters of every allowed kind", strings.Repeat("Az09._:-", 16), "", `{"timerCallbackData":1}`, false, `1`},
		{"percent-encoded id", "a:b-c", "/periodic/a%3Ab%2Dc", `{"timerCallbackData":1}`, false, `1`},
		{"body of exactly MaxBodyBytes", "t1", "", jsonBodyOfSize(MaxBodyBytes), false, strings.TrimSuffix(strings.TrimPrefix(jsonBodyOfSize(MaxBodyBytes), `{"timerCallbackData":`), "}")},
		{"trailing whitespace", "t1", "", "{\"timerCallbackData\":true}\n \t", false, `true`},
		{"base64 body", "t1", "", base64.StdEncoding.EncodeToString([]byte(`{"timerCallbackData":{"k":"v"},"minuteOfHour":7}`)), true, `{"k":"v"}`},
		{"callback data key order kept", "t1", "", `{"timerCallbackData":{"z":1,"a":[1,2],"m":{"y":null,"b":false}}}`, false, `{"z":1,"a":[1,2],"m":{"y":null,"b":false}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.path
			if path == "" {
				path = "/periodic/" + tt.id
			}
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut, Path: path, Body: tt.body, IsBase64Encoded: tt.base64})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201; body %.200s", resp.StatusCode, resp.Body)
			}
			d := decodeTimer(t, resp)
			if d.ID != tt.id {
				t.Errorf("id %q, want %q", d.ID, tt.id)
			}
			if got := string(d.TimerCallbackData); got != tt.wantData {
				t.Errorf("timerCallbackData %.80q, want %.80q", got, tt.wantData)
			}
			if got := string(a.store.stored(tt.id).CallbackData); got != tt.wantData {
				t.Errorf("stored callback data %.80q, want %.80q", got, tt.wantData)
			}
		})
	}
}

func TestAPIPutHTTPTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		want     *HTTPTarget
		wantData string
	}{
		{
			name: "secret in a header",
			body: `{"http":{"method":"POST","url":"https://example.com/hook","headers":{"Authorization":"Bearer aws-secret(/callclock/token)"},"body":"{}"}}`,
			want: &HTTPTarget{Method: "POST", URL: "https://example.com/hook", Headers: map[string]string{"Authorization": "Bearer aws-secret(/callclock/token)"}, Body: "{}"},
		},
		{
			name: "lower-case method is normalised",
			body: `{"http":{"method":"post","url":"https://example.com/hook"}}`,
			want: &HTTPTarget{Method: "POST", URL: "https://example.com/hook"},
		},
		{
			name: "method defaults to GET",
			body: `{"http":{"url":"http://example.com/x?y=1"}}`,
			want: &HTTPTarget{Method: "GET", URL: "http://example.com/x?y=1"},
		},
		{
			name: "secrets in url and body with null callback data",
			body: `{"timerCallbackData":null,"http":{"url":"https://aws-secret(/callclock/host)/x","body":"token=aws-secret(/callclock/a/b.c_d-e)"}}`,
			want: &HTTPTarget{Method: "GET", URL: "https://aws-secret(/callclock/host)/x", Body: "token=aws-secret(/callclock/a/b.c_d-e)"},
		},
		{
			name:     "callback data and http together",
			body:     `{"timerCallbackData":{"k":1},"http":{"method":"PUT","url":"https://example.com"}}`,
			want:     &HTTPTarget{Method: "PUT", URL: "https://example.com"},
			wantData: `{"k":1}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			resp := a.call(t, http.MethodPut, "/periodic/t1", tt.body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
			}
			d := decodeTimer(t, resp)
			if diff := cmp.Diff(tt.want, d.HTTP); diff != "" {
				t.Errorf("http in response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, a.store.stored("t1").HTTP); diff != "" {
				t.Errorf("http stored (-want +got):\n%s", diff)
			}
			if got := string(d.TimerCallbackData); got != tt.wantData {
				t.Errorf("timerCallbackData %q, want %q", got, tt.wantData)
			}
		})
	}
}

func TestAPIRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		method    string
		path      string
		wantCode  string
		wantAllow string
	}{
		{name: "unknown path", method: http.MethodGet, path: "/timers/x", wantCode: ENOTFOUND},
		{name: "root", method: http.MethodGet, path: "/", wantCode: ENOTFOUND},
		{name: "empty path", method: http.MethodGet, path: "", wantCode: ENOTFOUND},
		{name: "collection: only GET lists", method: http.MethodPost, path: "/periodic", wantCode: EMETHOD, wantAllow: "GET"},
		{name: "trailing slash after id", method: http.MethodGet, path: "/periodic/x/", wantCode: ENOTFOUND},
		{name: "extra segment", method: http.MethodGet, path: "/periodic/x/y", wantCode: ENOTFOUND},
		{name: "trailing slash without id", method: http.MethodGet, path: "/periodic/", wantCode: EINVALID}, // an empty id
		{name: "POST", method: http.MethodPost, path: "/periodic/x", wantCode: EMETHOD, wantAllow: "DELETE, GET, PUT"},
		{name: "PATCH", method: http.MethodPatch, path: "/periodic/x", wantCode: EMETHOD, wantAllow: "DELETE, GET, PUT"},
		{name: "lower-case get", method: "get", path: "/periodic/x", wantCode: EMETHOD, wantAllow: "DELETE, GET, PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			// Timer x exists, so a 404 here comes from routing, not the store.
			a.store.timers["x"] = &Timer{ID: "x", ShardID: "shard0", CallbackData: json.RawMessage(`1`), Version: 1}
			resp := a.call(t, tt.method, tt.path, `{"timerCallbackData":1}`)
			if want := errorStatus(tt.wantCode); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			if got := decodeError(t, resp).Code; got != tt.wantCode {
				t.Errorf("error code %q, want %q", got, tt.wantCode)
			}
			allow, ok := resp.Headers["Allow"]
			if tt.wantAllow == "" && ok {
				t.Errorf("unexpected Allow header %q", allow)
			}
			if allow != tt.wantAllow {
				t.Errorf("Allow header %q, want %q", allow, tt.wantAllow)
			}
			if len(a.store.calls) != 0 {
				t.Errorf("store was called: %v", a.store.calls)
			}
		})
	}
}

func TestAPIInternalErrorIsHidden(t *testing.T) {
	t.Parallel()
	const detail = "boom: secret detail"
	tests := []struct {
		method string
		body   string
	}{
		{http.MethodGet, ""},
		{http.MethodPut, `{"timerCallbackData":1}`},
		{http.MethodDelete, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			a.store.err = errors.New(detail)
			resp := a.do(t, events.APIGatewayProxyRequest{
				HTTPMethod:     tt.method,
				Path:           "/periodic/t1",
				Body:           tt.body,
				RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-42"},
			})
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", resp.StatusCode)
			}
			if diff := cmp.Diff(apiError{Code: EINTERNAL, Message: "internal error"}, decodeError(t, resp)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if strings.Contains(resp.Body, "secret detail") {
				t.Errorf("response body leaks the internal detail: %s", resp.Body)
			}

			type logLine struct {
				Level     string `json:"level"`
				Msg       string `json:"msg"`
				RequestID string `json:"requestId"`
				Error     string `json:"error"`
			}
			var errorLines []logLine
			for _, line := range strings.Split(strings.TrimSpace(a.log.String()), "\n") {
				var l logLine
				if err := json.Unmarshal([]byte(line), &l); err != nil {
					t.Fatalf("log line is not JSON: %q", line)
				}
				if l.Level == "ERROR" {
					errorLines = append(errorLines, l)
				}
			}
			want := []logLine{{Level: "ERROR", Msg: "api request failed", RequestID: "req-42", Error: detail}}
			if diff := cmp.Diff(want, errorLines); diff != "" {
				t.Errorf("error log lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAPIPutCallbackDataHTMLCharsByteExact checks that callback data holding
// <, > and & comes back exactly as sent.
func TestAPIPutCallbackDataHTMLCharsByteExact(t *testing.T) {
	t.Parallel()
	const data = `{"q":"a<b && c>d"}`
	a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
	resp := a.call(t, http.MethodPut, "/periodic/t1", `{"timerCallbackData":`+data+`}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
	}
	if got := string(decodeTimer(t, resp).TimerCallbackData); got != data {
		t.Errorf("timerCallbackData %s, want %s", got, data)
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

// TestAPIPutRefusesUnsendableTarget: the PUT refuses a target net/http
// could never send (TestHTTPTargetValidateUnsendable, timer_test.go) with
// a 400 and stores nothing.
func TestAPIPutRefusesUnsendableTarget(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"http":{"url":"https://example.com/","headers":{"X-A":"a\u0001"}}}`,
		`{"http":{"url":"https://example.com/","headers":{"X-A":"a\u007f"}}}`,
		`{"http":{"url":"https://example.com:99999/"}}`,
		`{"timerCallbackData":1,"notify":{"webhook":"https://h:0/w"}}`,
		`{"http":{"url":"https://example.com/","headers":{"X-Key":"a","x-key":"b"}}}`,
	} {
		a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
		resp := a.call(t, http.MethodPut, "/periodic/t1", body)
		if resp.StatusCode != http.StatusBadRequest || a.store.puts() != 0 {
			t.Errorf("PUT %s: status %d with %d Put calls, want 400 and none; body %s", body, resp.StatusCode, a.store.puts(), resp.Body)
		}
	}
}

// errText is err's text, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
