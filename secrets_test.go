package main

// Tests of secrets.go: resolving aws-secret(...) placeholders from SSM (in
// chunks, cached, within the allowed prefix), substituting them, and
// redacting their values.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	names := func(from, to int) string { // aws-secret(/callclock/sFROM)...aws-secret(/callclock/sTO-1)
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "aws-secret(/callclock/s%02d)", i)
		}
		return b.String()
	}
	values := map[string]string{}
	for i := range 25 {
		values[fmt.Sprintf("/callclock/s%02d", i)] = fmt.Sprintf("v%02d", i)
	}
	tests := []struct {
		name      string
		fields    []string
		wantSizes []int
		wantN     int // distinct names resolved
	}{
		{name: "no placeholders", fields: []string{"http://x/", "", "plain"}, wantSizes: nil, wantN: 0},
		{name: "one", fields: []string{names(0, 1)}, wantSizes: []int{1}, wantN: 1},
		{name: "ten in one call", fields: []string{names(0, 4), names(4, 10)}, wantSizes: []int{10}, wantN: 10},
		{name: "eleven in two calls", fields: []string{names(0, 11)}, wantSizes: []int{10, 1}, wantN: 11},
		{name: "twenty-one in three calls", fields: []string{names(0, 7), names(7, 14), names(14, 21)}, wantSizes: []int{10, 10, 1}, wantN: 21},
		{name: "repeats asked once", fields: []string{names(0, 6), names(0, 6) + names(3, 11), names(5, 6)}, wantSizes: []int{10, 1}, wantN: 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &paramStore{}
			inv := testInvoker(store.fake(t, values), noCallback(t), nil)

			got, err := inv.resolve(context.Background(), tt.fields...)
			if err != nil {
				t.Fatalf("resolve: %v", err)
			}
			var sizes []int
			seen := map[string]bool{}
			for _, c := range store.Calls() {
				sizes = append(sizes, len(c))
				for _, n := range c {
					if seen[n] {
						t.Errorf("%s asked twice", n)
					}
					seen[n] = true
				}
			}
			if diff := cmp.Diff(tt.wantSizes, sizes); diff != "" {
				t.Errorf("GetParameters call sizes (-want +got):\n%s", diff)
			}
			want := map[string]string{}
			for n := range seen {
				want[n] = values[n]
			}
			if len(want) != tt.wantN {
				t.Errorf("resolved %d distinct names, want %d", len(want), tt.wantN)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSubstitute(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{
		"/callclock/a":      "A",
		"/callclock/b":      "B",
		"/callclock/dollar": "$1${0}",
		"/callclock/nested": "aws-secret(/callclock/a)",
	}
	tests := []struct {
		name, in string
		secrets  map[string]string
		want     string
	}{
		{"no placeholder", "Bearer plain", secrets, "Bearer plain"},
		{"one", "Bearer aws-secret(/callclock/a)", secrets, "Bearer A"},
		{"several in one value", "aws-secret(/callclock/a):aws-secret(/callclock/b)/aws-secret(/callclock/a)", secrets, "A:B/A"},
		{"unknown name left as is", "x aws-secret(/callclock/zzz) y", secrets, "x aws-secret(/callclock/zzz) y"},
		{"no secrets", "aws-secret(/callclock/a)", nil, "aws-secret(/callclock/a)"},
		{"unclosed placeholder", "aws-secret(/callclock/a", secrets, "aws-secret(/callclock/a"},
		{"value with $ is literal", "p=aws-secret(/callclock/dollar)", secrets, "p=$1${0}"},
		{"value is not substituted again", "aws-secret(/callclock/nested)", secrets, "aws-secret(/callclock/a)"},
		{"empty", "", secrets, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, substitute(tt.in, tt.secrets)); diff != "" {
				t.Errorf("substitute(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		secrets  map[string]string
		want     string
	}{
		{"no secrets", "dial tcp: s3cr3t", nil, "dial tcp: s3cr3t"},
		{"one value", "lookup s3cr3t.example: no such host", map[string]string{"/callclock/h": "s3cr3t"},
			"lookup aws-secret(/callclock/h).example: no such host"},
		{"every occurrence", "s3cr3t and s3cr3t", map[string]string{"/callclock/h": "s3cr3t"},
			"aws-secret(/callclock/h) and aws-secret(/callclock/h)"},
		{"several values", "u=alice p=hunter2", map[string]string{"/callclock/u": "alice", "/callclock/p": "hunter2"},
			"u=aws-secret(/callclock/u) p=aws-secret(/callclock/p)"},
		{"empty value ignored", "abc", map[string]string{"/callclock/e": ""}, "abc"},
		{"value absent", "connection refused", map[string]string{"/callclock/h": "s3cr3t"}, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, redact(tt.in, tt.secrets)); diff != "" {
				t.Errorf("redact(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// When one secret's value contains another's, redact must replace the
// longer one first, or part of it survives in the log. Map order decides,
// so the test tries many times.
func TestRedactOverlappingValues(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{"/callclock/short": "hunter", "/callclock/long": "hunter2-extra-private"}
	const want = "auth failed for aws-secret(/callclock/long)"
	for range 200 {
		if got := redact("auth failed for hunter2-extra-private", secrets); got != want {
			t.Fatalf("redact = %q, want %q: part of /callclock/long is still in the text", got, want)
		}
	}
}

// igRotatingParams answers every name with "v<n>", n counting the calls,
// so that a test sees whether a value came from the cache.
type igRotatingParams struct {
	mu    sync.Mutex
	calls int
}

// GetParameters answers every name with the call's count.
func (p *igRotatingParams) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	out := &ssm.GetParametersOutput{}
	for _, n := range in.Names {
		out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(n), Value: aws.String("v" + strconv.Itoa(p.calls))})
	}
	return out, nil
}

// Calls returns how often GetParameters was called.
func (p *igRotatingParams) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func TestSecretCacheTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ttl  time.Duration
		// advances moves the clock before each delivery after the first.
		advances  []time.Duration
		wantCalls int
		wantAuth  []string
	}{
		{"within the TTL", 30 * time.Second, []time.Duration{29 * time.Second}, 1, []string{"Bearer v1", "Bearer v1"}},
		{"after the TTL", 30 * time.Second, []time.Duration{31 * time.Second}, 2, []string{"Bearer v1", "Bearer v2"}},
		{"refreshed value cached anew", 30 * time.Second, []time.Duration{31 * time.Second, 20 * time.Second}, 2,
			[]string{"Bearer v1", "Bearer v2", "Bearer v2"}},
		{"TTL 0", 0, []time.Duration{0, 0}, 3, []string{"Bearer v1", "Bearer v2", "Bearer v3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := &igRotatingParams{}
			clock := newTestClock(igAt.Add(5 * time.Second))
			inv := testInvoker(params, noCallback(t), nil)
			inv.Now, inv.SecretTTL = clock.Now, tt.ttl
			tg := newTarget(t, answer(http.StatusOK))

			for i := range len(tt.advances) + 1 {
				if i > 0 {
					clock.Add(tt.advances[i-1])
				}
				m := httpFire(fmt.Sprintf("t-%d", i), "POST", tg.URL+"/hook")
				m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/callclock/token)"}
				resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{fire(t, fmt.Sprintf("m-%d", i), m)}})
				if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
					t.Errorf("delivery %d failures (-want +got):\n%s", i, diff)
				}
			}

			if n := params.Calls(); n != tt.wantCalls {
				t.Errorf("%d GetParameters calls, want %d", n, tt.wantCalls)
			}
			var auth []string
			for _, r := range tg.Received() {
				auth = append(auth, r.Header.Get("Authorization"))
			}
			if diff := cmp.Diff(tt.wantAuth, auth); diff != "" {
				t.Errorf("Authorization at target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretOutsidePrefixRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		outside string // the refused parameter
		craft   func(m *FireMessage)
	}{
		{"in the URL", "/other/key", func(m *FireMessage) { m.HTTP.URL += "?k=aws-secret(/other/key)" }},
		{"in a header", "/prod/db-password", func(m *FireMessage) {
			m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/prod/db-password)"}
		}},
		{"in the body", "/other/key", func(m *FireMessage) { m.HTTP.Body = `{"k":"aws-secret(/other/key)"}` }},
		{"prefix look-alike", "/callclockevil/key", func(m *FireMessage) { m.HTTP.URL += "?k=aws-secret(/callclockevil/key)" }},
		{"next to an allowed one", "/other/key", func(m *FireMessage) {
			m.HTTP.URL += "?ok=aws-secret(/callclock/ok)"
			m.HTTP.Headers = map[string]string{"X-Key": "aws-secret(/other/key)"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1)) // SSM must not be asked at all
			tg := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			tt.craft(&m)
			rec := igRecord(t, "m-1", 1, m)

			if diff := cmp.Diff([]string{}, e.invoke(rec)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			reason := "invalid: aws-secret(" + tt.outside + ") is outside the allowed prefix /callclock/"
			if diff := cmp.Diff([]sqsSent{igDeadLetter(rec, reason, 1)}, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			if calls := e.vis.Calls(); len(calls) != 0 {
				t.Errorf("ChangeMessageVisibility calls %+v, want none: the refusal is permanent", calls)
			}
		})
	}
}

func TestSecretOutsidePrefixWebhookNotResolved(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	hook := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Notify = &Notify{Webhook: hook.URL + "/aws-secret(/other/hook)", OnSuccess: ptrTo(true)}

	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if n := len(hook.Received()); n != 0 {
		t.Errorf("webhook received %d requests, want 0", n)
	}
	if fires := e.store.Fires(); len(fires) != 1 || fires[0].Fire.Outcome != OutcomeDelivered {
		t.Errorf("outcomes recorded %+v, want one delivered", fires)
	}
	lines := e.log.WithMsg(t, "notification failed")
	if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["error"]), "outside the allowed prefix") {
		t.Errorf("notification failure lines %v, want one about the prefix", lines)
	}
}

// leakedFragment returns the longest part of secret, of minSecretFragment
// bytes or more, that occurs in out (ignoring ASCII case) and in none of
// public, the text the output may quote legitimately; "" when there is
// none.
func leakedFragment(out, secret string, public ...string) string {
	out, secret = asciiLower(out), asciiLower(secret)
	longest := ""
	for i := range secret {
		for n := minSecretFragment; i+n <= len(secret); n++ {
			w := secret[i : i+n]
			if !strings.Contains(out, w) {
				break // no longer window from i occurs either
			}
			quoted := false
			for _, p := range public {
				quoted = quoted || strings.Contains(asciiLower(p), w)
			}
			if !quoted && len(w) > len(longest) {
				longest = w
			}
		}
	}
	return longest
}

// TestSecretFragmentsNeverLeave fires timers whose secrets make the
// request or the notification fail (invalid URLs, ports, hosts and header
// values, and a valid URL that refuses connections) and checks every
// channel the invoker writes to: log lines, the recorded outcome (lastFire
// and history), the dead-letter message's attributes and the notification
// text. None may hold any fragment of a secret's value of 6 bytes or more.
func TestSecretFragmentsNeverLeave(t *testing.T) {
	t.Parallel()
	closed := igClosedURL(t) // http://127.0.0.1:port/hook, nothing listening
	tests := []struct {
		name    string
		secret  string // the value of /callclock/s
		fire    func(m *FireMessage, targetURL, hookURL string)
		hookURL bool // the notification goes to the secret, not to the test's webhook
	}{
		{"URL with an invalid port", "http://127.0.0.1:LEAKPORT-77/x", func(m *FireMessage, _, _ string) {
			m.HTTP.URL = "aws-secret(/callclock/s)"
		}, false},
		{"port", "LEAKPORT-77", func(m *FireMessage, _, _ string) {
			m.HTTP.URL = "http://127.0.0.1:aws-secret(/callclock/s)/target"
		}, false},
		{"host with a space", "leak host-4242.example", func(m *FireMessage, _, _ string) {
			m.HTTP.URL = "http://aws-secret(/callclock/s)/x"
		}, false},
		{"host with a bad escape", "LEAKHOST%zz-4242", func(m *FireMessage, _, _ string) {
			m.HTTP.URL = "http://aws-secret(/callclock/s)/x"
		}, false},
		{"header value with a line break", "LEAKTOKEN-31337\r\nX-Injected: 1", func(m *FireMessage, _, _ string) {
			m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/callclock/s)"}
		}, false},
		{"header value with a NUL", "LEAKTOKEN-31337\x00tail", func(m *FireMessage, _, _ string) {
			m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/callclock/s)"}
		}, false},
		{"URL refusing connections", closed + "/LEAKPATH-5150", func(m *FireMessage, _, _ string) {
			m.HTTP.URL = "aws-secret(/callclock/s)"
		}, false},
		{"webhook with an invalid port", "http://127.0.0.1:LEAKPORT-77/hook", func(m *FireMessage, _, _ string) {
			m.Notify.Webhook = "aws-secret(/callclock/s)"
		}, true},
		{"webhook refusing connections", closed + "/LEAKHOOK-2600", func(m *FireMessage, _, _ string) {
			m.Notify.Webhook = "aws-secret(/callclock/s)"
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t, answer(http.StatusInternalServerError))
			hook := newTarget(t, answer(http.StatusOK))
			e := newIGEnv(t, (&paramStore{}).fake(t, map[string]string{"/callclock/s": tt.secret}), igTimer("t-1", 1))
			m := httpFire("t-1", http.MethodPost, tg.URL+"/target")
			m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600} // dead-letter at once
			m.Notify = &Notify{Webhook: hook.URL + "/hook"}
			tt.fire(&m, tg.URL+"/target", hook.URL+"/hook")
			body, _ := json.Marshal(m)

			e.invoke(igRecord(t, "m-1", 1, m))

			outputs := map[string]string{"log": e.log.String()}
			for i, f := range e.store.Fires() { // the history, and the lastFire derived from it
				outputs[fmt.Sprintf("outcome %d", i)] = f.Fire.Error
			}
			for i, sent := range e.send.To(igDLQURL) {
				attrs, _ := json.Marshal(sent.Attributes)
				outputs[fmt.Sprintf("dead letter %d", i)] = string(attrs)
			}
			for i, text := range igPosts(t, hook) {
				outputs[fmt.Sprintf("notification %d", i)] = text
			}
			if len(e.send.To(igDLQURL)) != 1 || len(e.store.Fires()) != 1 {
				t.Fatalf("dead letters %v, outcomes %v: want one of each", e.send.To(igDLQURL), e.store.Fires())
			}
			if !tt.hookURL && len(hook.Received()) != 1 {
				t.Errorf("webhook received %d notifications, want 1", len(hook.Received()))
			}
			if tt.hookURL && len(e.log.WithMsg(t, "notification failed")) != 1 {
				t.Errorf("want one \"notification failed\" line; log:\n%s", e.log.String())
			}
			for channel, out := range outputs {
				if w := leakedFragment(out, tt.secret, string(body), tg.URL, hook.URL); w != "" {
					t.Errorf("%s holds %q of the secret %q:\n%s", channel, w, tt.secret, out)
				}
			}
		})
	}
}

// TestRedactFragments checks redact's backstop on its own: any run of 6
// bytes or more of a value goes, whatever its case, and shorter runs stay.
func TestRedactFragments(t *testing.T) {
	t.Parallel()
	secrets := map[string]string{"/callclock/a": "http://Example.test:LEAKPORT-77/x", "/callclock/b": "k3y"}
	tests := []struct{ in, want string }{
		{`invalid port ":LEAKPORT-77" after host`, `invalid port "aws-secret(/callclock/a)" after host`},
		{`lookup example.test: no such host`, `lookup aws-secret(/callclock/a) no such host`}, // the ':' is the value's too
		{`port LEAK only`, `port LEAK only`}, // 4 bytes: too short to matter
		{`the k3y and K3Y`, `the aws-secret(/callclock/b) and aws-secret(/callclock/b)`},
	}
	for _, tt := range tests {
		if got := redact(tt.in, secrets); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
