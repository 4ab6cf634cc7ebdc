package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestAPIPutRefusesUnsendableTarget: the PUT refuses such targets with a
// 400 and stores nothing.
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

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestTimersApplyRefusesHeaderCaseVariants: `timers apply` reads a timer
// file as the API decodes a PUT, so a file whose http.headers name one
// header twice in different cases is refused before anything is sent,
// with both names in the error; so is a Deployer file's request.
func TestTimersApplyRefusesHeaderCaseVariants(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"callclock.json": `{"id":"t1","group":"qa","minuteOfHour":5,"http":{"url":"https://example.com/","headers":{"X-Key":"a","x-key":"b"}}}`,
		"deployer.json": `{"name":"t1","deployment":{"product":"qa","cron":"0 0 * * ? *","enabled":true},` +
			`"request":{"protocol":"https","hostname":"example.com","path":"/p","headers":{"X-Key":"a","x-key":"b"}}}`,
	} {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readTimerFile(file, "", func(string) (string, bool) { return "", false }, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		if want := `"X-Key" and "x-key" are the same header`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: readTimerFile error %v, want one containing %q", name, err, want)
		}
	}
}

// TestTimersApplyRefusesDuplicateKeys: a callclock timer file with a key
// twice (the second "http" would win in a map) is refused, as the API
// refuses such a body, naming the key.
func TestTimersApplyRefusesDuplicateKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, doc := range map[string]string{
		"top level": `{"id":"t1","group":"qa","minuteOfHour":5,"http":{"url":"https://example.com/"},"http":{"url":"http://127.0.0.1:9/"}}`,
		"nested":    `{"id":"t1","group":"qa","minuteOfHour":5,"http":{"url":"https://example.com/","url":"http://127.0.0.1:9/"}}`,
		"id twice":  `{"id":"t1","id":"t2","group":"qa","minuteOfHour":5,"timerCallbackData":1}`,
	} {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readTimerFile(file, "", func(string) (string, bool) { return "", false }, time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
		if err == nil || !strings.Contains(err.Error(), "duplicate") {
			t.Errorf("%s: readTimerFile error %v, want a duplicate key refused", name, err)
		}
	}
}
