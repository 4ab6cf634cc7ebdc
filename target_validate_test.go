package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
