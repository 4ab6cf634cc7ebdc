package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// phContext is a context whose every value is distinct.
func phContext() *deliveryContext {
	return &deliveryContext{
		ScheduledAt:    time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		DeliveredAt:    time.Date(2026, 12, 1, 10, 0, 1, 25e6, time.FixedZone("CET", 3600)),
		Attempt:        3,
		IdempotencyKey: "t.1/2026-12-01T09:00:00Z",
		TimerID:        "t.1",
		Group:          "qa-facilities",
	}
}

// TestContextValues: each placeholder's value and format: instants in
// RFC 3339 UTC (the scheduled one to the second, the delivery instant to
// the millisecond), the attempt in decimal.
func TestContextValues(t *testing.T) {
	t.Parallel()
	dc := phContext()
	got := map[string]string{}
	for _, n := range contextNames {
		v, ok := dc.value(n)
		if !ok {
			t.Errorf("value(%q) unknown", n)
		}
		got[n] = v
	}
	want := map[string]string{
		"scheduled-time":  "2026-12-01T09:00:00Z",
		"delivery-time":   "2026-12-01T09:00:01.025Z",
		"attempt-number":  "3",
		"idempotency-key": "t.1/2026-12-01T09:00:00Z",
		"timer-id":        "t.1",
		"group":           "qa-facilities",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if _, ok := dc.value("nope"); ok {
		t.Error(`value("nope") is known`)
	}
}

// TestExpand: one pass over the text resolves both kinds of placeholder,
// escapes context values for where they land in a URL, and never reads
// a resolved value again (a secret that spells a context placeholder, a
// context value that spells a secret's).
func TestExpand(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{"/callclock/s": "S3CRET", "/callclock/tricky": "callclock(timer-id)"}
	tests := []struct {
		name   string
		in     string
		dc     *deliveryContext
		escape func(before, v string) string
		want   string
	}{
		{"text", "at callclock(scheduled-time) try callclock(attempt-number) by aws-secret(/callclock/s)", phContext(), nil,
			"at 2026-12-01T09:00:00Z try 3 by S3CRET"},
		{"adjacent", "callclock(timer-id)callclock(group)aws-secret(/callclock/s)", phContext(), nil, "t.1qa-facilitiesS3CRET"},
		{"URL path and query", "https://h/a/callclock(idempotency-key)/b?k=callclock(idempotency-key)&t=callclock(delivery-time)", phContext(), escapeInURL,
			"https://h/a/t.1%2F2026-12-01T09:00:00Z/b?k=t.1%2F2026-12-01T09%3A00%3A00Z&t=2026-12-01T09%3A00%3A01.025Z"},
		{"secret in a URL is not escaped", "https://aws-secret(/callclock/s)/p?x=aws-secret(/callclock/s)", phContext(), escapeInURL, "https://S3CRET/p?x=S3CRET"},
		{"a secret's value is not expanded", "aws-secret(/callclock/tricky)", phContext(), nil, "callclock(timer-id)"},
		{"a context value is not expanded", "callclock(timer-id)", &deliveryContext{TimerID: "aws-secret(/callclock/s)"}, nil, "aws-secret(/callclock/s)"},
		{"without a context, context placeholders stay", "callclock(timer-id) aws-secret(/callclock/s)", nil, nil, "callclock(timer-id) S3CRET"},
		{"unknown ones stay", "callclock(nope) aws-secret(/callclock/other)", phContext(), nil, "callclock(nope) aws-secret(/callclock/other)"},
		{"empty group", "g=callclock(group);", &deliveryContext{}, nil, "g=;"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, expand(tt.in, secrets, tt.dc, tt.escape)); diff != "" {
				t.Errorf("expand(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestExpandCallbackData: placeholders in string values are resolved
// and encoded as JSON strings; keys, other values and data without
// placeholders keep their bytes.
func TestExpandCallbackData(t *testing.T) {
	t.Parallel()
	quoting := &deliveryContext{TimerID: `a"b\c`, ScheduledAt: phContext().ScheduledAt}
	tests := []struct {
		name string
		data string
		dc   *deliveryContext
		want string
	}{
		{"none", `{"z":1,"m":"\u00e9","n":null}`, phContext(), `{"z":1,"m":"\u00e9","n":null}`},
		{"values", `{"at":"callclock(scheduled-time)","n":[1,"try callclock(attempt-number)"],"k":"callclock(idempotency-key)"}`, phContext(),
			`{"at":"2026-12-01T09:00:00Z","n":[1,"try 3"],"k":"t.1/2026-12-01T09:00:00Z"}`},
		{"a key is kept", `{"callclock(timer-id)":"callclock(timer-id)"}`, phContext(), `{"callclock(timer-id)":"t.1"}`},
		{"escaped spelling", `{"id":"\u0063allclock(timer-id)","e":"\u00e9"}`, phContext(), `{"id":"t.1","e":"\u00e9"}`},
		{"a string value alone", `"callclock(group)"`, phContext(), `"qa-facilities"`},
		{"a value needing JSON escapes", `{"id":"<callclock(timer-id)>"}`, quoting, `{"id":"<a\"b\\c>"}`},
		{"an escaped quote before it", `{"a":"x\"y","b":"callclock(timer-id)"}`, phContext(), `{"a":"x\"y","b":"t.1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := string(expandCallbackData(json.RawMessage(tt.data), tt.dc))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("expandCallbackData(%s) (-want +got):\n%s", tt.data, diff)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("expandCallbackData(%s) = %s, not valid JSON", tt.data, got)
			}
		})
	}
}

// TestCheckContext: what a PUT refuses, naming the placeholder.
func TestCheckContext(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, s string
		url     bool
		wantErr string
	}{
		{name: "none", s: "plain (text)"},
		{name: "every known one", s: "callclock(scheduled-time)callclock(delivery-time)callclock(attempt-number)callclock(idempotency-key)callclock(timer-id)callclock(group)"},
		{name: "other case is text", s: "Callclock(nope)"},
		{name: "unknown", s: "x callclock(nope) y", wantErr: "unknown placeholder callclock(nope)"},
		{name: "unknown after a known one", s: "callclock(group)callclock(Group)", wantErr: "callclock(Group)"},
		{name: "empty name", s: "callclock()", wantErr: "unknown placeholder callclock()"},
		{name: "unclosed", s: "callclock(scheduled-time", wantErr: `malformed placeholder "callclock(scheduled-time"`},
		{name: "nested", s: "callclock(callclock(group))", wantErr: "malformed placeholder"},
		{name: "URL path", s: "https://h/callclock(timer-id)", url: true},
		{name: "URL query", s: "https://h/p?at=callclock(scheduled-time)", url: true},
		{name: "URL query without a path", s: "https://h?at=callclock(scheduled-time)", url: true},
		{name: "URL host", s: "https://callclock(group).example.com/", url: true, wantErr: "in the URL's path or query only"},
		{name: "URL port", s: "https://h:callclock(attempt-number)/", url: true, wantErr: "in the URL's path or query only"},
		{name: "URL fragment", s: "https://h/p#callclock(group)", url: true, wantErr: "in the URL's path or query only"},
		{name: "URL unknown", s: "https://h/callclock(nope)", url: true, wantErr: "unknown placeholder callclock(nope)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check := checkContext
			if tt.url {
				check = checkContextURL
			}
			err := check("http.url", tt.s)
			if got := errText(err); (tt.wantErr == "") != (got == "") || !strings.Contains(got, tt.wantErr) {
				t.Errorf("check(%q) = %q, want an error containing %q", tt.s, got, tt.wantErr)
			}
			if err != nil && ErrorCode(err) != EINVALID {
				t.Errorf("error code %q, want %q", ErrorCode(err), EINVALID)
			}
		})
	}
}

// TestAPIPutRejectsBadPlaceholders: an unknown or malformed context
// placeholder, one where it may not stand, and a bad signing secret are
// a 400 at PUT that names them, and nothing is stored.
func TestAPIPutRejectsBadPlaceholders(t *testing.T) {
	t.Parallel()
	target := func(fields string) string { return `{"http":{"url":"https://example.com/hook"` + fields + `}}` }
	tests := []struct {
		name, body, wantMsg string
	}{
		{"unknown in the URL", `{"http":{"url":"https://example.com/callclock(nope)"}}`, "http.url: unknown placeholder callclock(nope)"},
		{"unknown in a header", target(`,"headers":{"X-At":"callclock(scheduled_time)"}`), "http.headers.X-At: unknown placeholder callclock(scheduled_time)"},
		{"unknown in the body", target(`,"body":"{\"a\":\"callclock(attempt)\"}"`), "http.body: unknown placeholder callclock(attempt)"},
		{"malformed in the body", target(`,"body":"callclock(group"`), `http.body: malformed placeholder "callclock(group"`},
		{"in the host", `{"http":{"url":"https://callclock(group).example.com/"}}`, "callclock(group) may appear in the URL's path or query only"},
		{"unknown in callback data", `{"timerCallbackData":{"a":["callclock(nope)"]}}`, "timerCallbackData: unknown placeholder callclock(nope)"},
		{"escaped unknown in callback data", `{"timerCallbackData":{"a":"\u0063allclock(nope)"}}`, "timerCallbackData: unknown placeholder callclock(nope)"},
		{"in a callback data key", `{"timerCallbackData":{"callclock(timer-id)":1}}`, `not in the key "callclock(timer-id)"`},
		{"signing secret in clear", target(`,"signing":{"secret":"hunter2"}`), "http.signing.secret must be one aws-secret(/name) placeholder"},
		{"signing secret in text", target(`,"signing":{"secret":"k-aws-secret(/callclock/k)"}`), "http.signing.secret must be one aws-secret(/name) placeholder"},
		{"signing secret missing", target(`,"signing":{}`), "http.signing.secret must be one"},
		{"signing secret outside the prefix", target(`,"signing":{"secret":"aws-secret(/other/k)"}`), "outside the allowed prefix"},
		{"previous secret the same", target(`,"signing":{"secret":"aws-secret(/callclock/k)","previousSecret":"aws-secret(/callclock/k)"}`), "previousSecret must name another parameter"},
		{"previous secret in clear", target(`,"signing":{"secret":"aws-secret(/callclock/k)","previousSecret":"old"}`), "http.signing.previousSecret must be one"},
		{"signed with a non-ASCII host", `{"http":{"url":"https://bücher.example/hook","signing":{"secret":"aws-secret(/callclock/k)"}}}`, `write "bücher.example" in its punycode (xn--) form`},
		{"unknown signing field", target(`,"signing":{"secret":"aws-secret(/callclock/k)","algorithm":"md5"}`), "algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut, Path: "/periodic/t1", Body: tt.body})
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400; body %s", resp.StatusCode, resp.Body)
			}
			if e := decodeError(t, resp); e.Code != EINVALID || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("error %q %q, want %q containing %q", e.Code, e.Message, EINVALID, tt.wantMsg)
			}
			if n := a.store.puts(); n != 0 {
				t.Errorf("store received %d Put calls, want none", n)
			}
		})
	}
}

// TestAPIPutKeepsPlaceholders: a timer with placeholders is stored and
// shown as written; they are resolved at delivery only.
func TestAPIPutKeepsPlaceholders(t *testing.T) {
	t.Parallel()
	body := `{"group":"qa","timerCallbackData":{"at":"callclock(scheduled-time)"},"http":{"method":"POST",` +
		`"url":"https://example.com/t/callclock(timer-id)?try=callclock(attempt-number)","headers":{"X-Key":"callclock(idempotency-key)"},` +
		`"body":"{\"sent\":\"callclock(delivery-time)\",\"group\":\"callclock(group)\"}",` +
		`"signing":{"secret":"aws-secret(/callclock/sign/new)","previousSecret":"aws-secret(/callclock/sign/old)"}}}`
	a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
	resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut, Path: "/periodic/t1", Body: body})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
	}
	want := &HTTPTarget{Method: "POST", URL: "https://example.com/t/callclock(timer-id)?try=callclock(attempt-number)",
		Headers: map[string]string{"X-Key": "callclock(idempotency-key)"}, Body: `{"sent":"callclock(delivery-time)","group":"callclock(group)"}`,
		Signing: &Signing{Secret: "aws-secret(/callclock/sign/new)", PreviousSecret: "aws-secret(/callclock/sign/old)"}}
	stored := a.store.stored("t1")
	if diff := cmp.Diff(want, stored.HTTP); diff != "" {
		t.Errorf("stored target (-want +got):\n%s", diff)
	}
	if got := string(stored.CallbackData); got != `{"at":"callclock(scheduled-time)"}` {
		t.Errorf("stored callback data %s", got)
	}
	if !strings.Contains(resp.Body, `"signing":{"secret":"aws-secret(/callclock/sign/new)","previousSecret":"aws-secret(/callclock/sign/old)"}`) {
		t.Errorf("the document does not show the signing secrets as written: %s", resp.Body)
	}
}

// TestTimerFilesPlaceholders: a timer file's placeholders survive the
// deploy-time ${VAR} substitution unchanged (they hold no $), and an
// unknown one is refused by the same rules as a PUT, naming the file.
func TestTimerFilesPlaceholders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string { return writeTestFile(t, dir, name, s) }
	lookup := func(k string) (string, bool) { return map[string]string{"HOST": "qa.example.com"}[k], k == "HOST" }
	good := write("good.json", `{"id":"a","schedule":"rate(1 hour)","http":{"url":"https://${HOST}/c/callclock(timer-id)?at=callclock(scheduled-time)",`+
		`"signing":{"secret":"aws-secret(/callclock/qa/sign)"}},"timerCallbackData":{"n":"callclock(attempt-number)"}}`)
	desired, err := readTimerFiles([]string{good}, "qa", lookup, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"url":"https://qa.example.com/c/callclock(timer-id)?at=callclock(scheduled-time)"`,
		`"signing":{"secret":"aws-secret(/callclock/qa/sign)"}`, `{"n":"callclock(attempt-number)"}`} {
		if !strings.Contains(string(desired[0].Body), frag) {
			t.Errorf("body %s lacks %s", desired[0].Body, frag)
		}
	}
	bad := write("bad.json", `{"id":"b","schedule":"rate(1 hour)","http":{"url":"https://${HOST}/c?at=callclock(nope)"}}`)
	_, err = readTimerFiles([]string{bad}, "qa", lookup, time.Now())
	if err == nil || !strings.Contains(err.Error(), "bad.json") || !strings.Contains(err.Error(), "unknown placeholder callclock(nope)") {
		t.Errorf("err = %v, want the file and callclock(nope) named", err)
	}
}
