package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

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
