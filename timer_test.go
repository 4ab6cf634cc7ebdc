package main

// Tests of the timer model's rules (timer.go): the checks of a
// definition, its targets and placeholders, and the defaults.

import (
	"strings"
	"testing"

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
