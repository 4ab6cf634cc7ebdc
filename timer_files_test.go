package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTimersSubstituteEnv(t *testing.T) {
	env := map[string]string{"QA_HOST": "blue.qa.example.com", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, err string }{
		{in: `{"h":"${QA_HOST}"}`, want: `{"h":"blue.qa.example.com"}`},
		{in: `${QA_HOST}/${EMPTY}x`, want: `blue.qa.example.com/x`},
		{in: `cost $$5, $$${QA_HOST}, $5, $$HOME, end$`, want: `cost $5, $blue.qa.example.com, $5, $HOME, end$`},
		{in: `https://$QA_HOST/x $QA_HOST.y $EMPTY-z`, want: `https://blue.qa.example.com/x blue.qa.example.com.y -z`},
		{in: `$HOME`, err: "environment variable HOME is not defined"},
		{in: `${QA_HOST}x`, want: `blue.qa.example.comx`},
		{in: `${A-B}`, err: "not a variable name"},
		{in: `${}`, err: "not a variable name"},
		{in: `$${QA_HOST}`, want: `${QA_HOST}`},
		{in: `${NOPE}`, err: "environment variable NOPE is not defined"},
		{in: `${QA_HOST`, err: "unterminated ${"},
		{in: `${1X}`, err: "not a variable name"},
	}
	for _, tt := range tests {
		got, err := substituteEnv(tt.in, lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("substituteEnv(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("substituteEnv(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestTimersReadFiles(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "QA_HOST" {
			return "blue.qa.example.com", true
		}
		return "", false
	}
	desired, err := readTimerFiles([]string{"testdata/deployer"}, "qa", lookup, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range desired {
		ids = append(ids, d.ID)
		var top map[string]any
		json.Unmarshal(d.Body, &top)
		if _, hasID := top["id"]; d.Doc["group"] != "qa" || top["group"] != "qa" || hasID {
			t.Errorf("%s: body %s doc %v", d.ID, d.Body, d.Doc)
		}
	}
	if diff := cmp.Diff([]string{"qa-facilities-collect", "qa-facilities-report", "qa-nightly-callback"}, ids); diff != "" {
		t.Fatalf("ids (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(desired[0].Body), `"url":"https://blue.qa.example.com/facilities/management/collect"`) ||
		!strings.Contains(string(desired[2].Body), `"price":"$5"`) {
		t.Fatalf("bodies: %s %s", desired[0].Body, desired[2].Body)
	}
	// Undefined variable: the error names the file and the variable.
	_, err = readTimerFiles([]string{"testdata/deployer"}, "qa", func(string) (string, bool) { return "", false }, time.Now())
	if err == nil || !strings.Contains(err.Error(), "facilities-collect.json") || !strings.Contains(err.Error(), "QA_HOST") {
		t.Fatalf("err = %v, want the file and QA_HOST named", err)
	}
	dir := t.TempDir()
	write := func(name, s string) string { return writeTestFile(t, dir, name, s) }
	for _, tt := range []struct{ file, err string }{
		{`{"schedule":"rate(1 hour)","timerCallbackData":1}`, `needs an "id"`},
		{`{"id":"a","schedule":"rate(1 hour)","bogus":1,"timerCallbackData":1}`, `unknown field "bogus"`},
		{`{"id":"a","group":"prod","schedule":"rate(1 hour)","timerCallbackData":1}`, `group "prod" but --group is qa`},
		{`{"id":"a","schedule":"cron(nope)","timerCallbackData":1}`, `cron`},
	} {
		_, err := readTimerFiles([]string{write("t.json", tt.file)}, "qa", lookup, time.Now())
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want %q", tt.file, err, tt.err)
		}
	}
	// A five-field cron names the file and says what it probably meant.
	five := write("five.json", `{"name":"nightly","deployment":{"enabled":true,"cron":"0 0 * * *"},"request":{"hostname":"h"}}`)
	if _, err := readTimerFiles([]string{five}, "qa", lookup, time.Now()); err == nil ||
		!strings.HasPrefix(err.Error(), five+": ") || !strings.Contains(err.Error(), `AWS cron has six`) || !strings.Contains(err.Error(), `did you mean "0 0 * * ? *"?`) {
		t.Errorf("five-field cron: err = %v", err)
	}
	// Without --group: a Deployer file's product is its group, a callclock
	// file's own group is; a file with neither is refused.
	noGroup := t.TempDir()
	os.WriteFile(filepath.Join(noGroup, "a.json"), []byte(augmentedDeployer), 0o644)
	os.WriteFile(filepath.Join(noGroup, "b.json"), []byte(`{"id":"b","group":"other","timerCallbackData":1,"bogus-free":null}`), 0o644)
	if _, err := readTimerFiles([]string{noGroup}, "", lookup, time.Now()); err == nil || !strings.Contains(err.Error(), `unknown field "bogus-free"`) {
		t.Errorf("a callclock file stays strict: err = %v", err)
	}
	os.WriteFile(filepath.Join(noGroup, "b.json"), []byte(`{"id":"b","group":"other","timerCallbackData":1}`), 0o644)
	got, err := readTimerFiles([]string{noGroup}, "", lookup, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Group != "callculon-manual-test" || got[0].Doc["group"] != "callculon-manual-test" || got[1].Group != "other" {
		t.Errorf("groups without --group: %q %v, %q", got[0].Group, got[0].Doc["group"], got[1].Group)
	}
	if info, _ := got[0].Doc["deploymentInfo"].(map[string]any); info["version"] != "1.0.0" || info["id"] != "0-callculon-manual-test-0-0-0-000" {
		t.Errorf("deploymentInfo = %v", got[0].Doc["deploymentInfo"])
	}
	for _, tt := range []struct{ file, err string }{
		{`{"name":"x","deployment":{"cron":"0 0 * * ? *"},"request":{"hostname":"h"}}`, "no deployment.product to take its group from: give --group"},
		{`{"name":"x","deployment":{"cron":"0 0 * * ? *","product":"a b"},"request":{"hostname":"h"}}`, `deployment.product "a b" cannot be the group`},
		{`{"id":"x","timerCallbackData":1}`, `names no "group": give --group`},
	} {
		if _, err := readTimerFiles([]string{write("g.json", tt.file)}, "", lookup, time.Now()); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s without --group: err = %v, want %q", tt.file, err, tt.err)
		}
	}
	// An unknown field of a Deployer file is kept as a warning for the plan.
	warned, err := readTimerFiles([]string{write("w.json", `{"name":"w","deployment":{"cron":"0 0 * * ? *","owner":"me"},"request":{"hostname":"h"}}`)}, "qa", lookup, time.Now())
	if err != nil || len(warned) != 1 || !cmp.Equal(warned[0].Warnings, []string{"unknown field deployment.owner ignored"}) {
		t.Errorf("warnings: %v, %v", warned, err)
	}

	// A deployment unit's directory: timer-*.json at any depth, as the
	// Deployer finds them, and the directory's own *.json.
	du := t.TempDir()
	for name, body := range map[string]string{
		"timer-a.json":            `{"id":"du-a","timerCallbackData":1}`,
		"s3/config/other.json":    `not a timer`,
		"s3/timer-b.json":         `{"id":"du-b","timerCallbackData":1}`,
		"k8s/timers/timer-c.json": `{"id":"du-c","timerCallbackData":1}`,
		"deployment.yaml":         `kind: Deployment`,
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(du, name)), 0o755)
		os.WriteFile(filepath.Join(du, name), []byte(body), 0o644)
	}
	found, err := readTimerFiles([]string{du}, "qa", lookup, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var foundIDs []string
	for _, d := range found {
		foundIDs = append(foundIDs, d.ID)
	}
	if diff := cmp.Diff([]string{"du-c", "du-b", "du-a"}, foundIDs); diff != "" {
		t.Errorf("deployment unit timers (-want +got):\n%s", diff)
	}

	a := write("a.json", `{"id":"dup","timerCallbackData":1}`)
	b := write("b.json", `{"id":"dup","timerCallbackData":2}`)
	if _, err := readTimerFiles([]string{a, b}, "qa", lookup, time.Now()); err == nil || !strings.Contains(err.Error(), "also defined in") {
		t.Fatalf("duplicate id: err = %v", err)
	}
}
