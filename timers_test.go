package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// deployerExample is the Deployer's own example timer file
// (deployer-tests/timer-deployer.json in the Deployer's repository) with
// our names: the bare six-field cron, an upper-case protocol, a Slack
// channel.
const deployerExample = `{"name":"facilities-collect","deployment":{"enabled":true,"cron":"*/1 * * * ? *"},"request":{"protocol":"HTTPS","hostname":"blue.qa.example.com","port":443,"path":"/facilities/management/collect","method":"GET","headers":{"Authorization":"Bearer aws-secret(/callclock/qa/token)"}},"notification":{"slack":{"webhook":"aws-secret(/callclock/qa/slack)","channel":"shanktovoid","onFailure":true,"onSuccess":false}}}`

// augmentedDeployer is a file as the Deployer hands it to Callculon, with
// deployment.product, version and id merged in at deploy time (Callculon's
// payload.json, with a six-field cron and our names).
const augmentedDeployer = `{"name":"callculon-manual-test","deployment":{"enabled":true,"cron":"0 0 * * ? *","product":"callculon-manual-test","version":"1.0.0","id":"0-callculon-manual-test-0-0-0-000"},"request":{"protocol":"HTTPS","hostname":"blue.qa.example.com","port":443,"path":"/fhir/v0/dstu2/Patient/1011537977V693883","method":"GET","headers":{"xAuthorization":"Bearer aws-secret(/callclock/qa/token)"}},"notification":{"slack":{"webhook":"aws-secret(/callclock/slack/liberty)","channel":"shanktovoid","onFailure":true,"onSuccess":true}}}`

func TestReadDeployerTimer(t *testing.T) {
	rate := `"deployment":{"cron":"rate(5 minutes)"}`
	tests := []struct {
		name, in string
		want     DeployerTimer
		err      string
	}{
		{name: "the Deployer's example", in: deployerExample, want: DeployerTimer{ID: "facilities-collect", Enabled: true,
			Body: []byte(`{"schedule":"cron(*/1 * * * ? *)","http":{"method":"GET","url":"https://blue.qa.example.com/facilities/management/collect","headers":{"Authorization":"Bearer aws-secret(/callclock/qa/token)"}},"notify":{"webhook":"aws-secret(/callclock/qa/slack)","channel":"shanktovoid","onFailure":true,"onSuccess":false}}`)}},
		{name: "merged deployment metadata", in: augmentedDeployer, want: DeployerTimer{ID: "callculon-manual-test", Enabled: true, Product: "callculon-manual-test",
			Body: []byte(`{"schedule":"cron(0 0 * * ? *)","http":{"method":"GET","url":"https://blue.qa.example.com/fhir/v0/dstu2/Patient/1011537977V693883","headers":{"xAuthorization":"Bearer aws-secret(/callclock/qa/token)"}},"notify":{"webhook":"aws-secret(/callclock/slack/liberty)","channel":"shanktovoid","onFailure":true,"onSuccess":true},"deploymentInfo":{"product":"callculon-manual-test","version":"1.0.0","id":"0-callculon-manual-test-0-0-0-000"}}`)}},
		{name: "environment kept too", in: `{"name":"a","deployment":{"cron":"0 9 * * ? *","environment":"qa"},"request":{"hostname":"h"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"cron(0 9 * * ? *)","http":{"method":"GET","url":"https://h"},"deploymentInfo":{"environment":"qa"}}`)}},
		{name: "extra spaces in the bare fields", in: `{"name":"a","deployment":{"cron":"  0  9 * * ?   * "},"request":{"hostname":"h"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"cron(0 9 * * ? *)","http":{"method":"GET","url":"https://h"}}`)}},
		{name: "wrapped cron kept", in: `{"name":"a","deployment":{"cron":"cron(0 9 * * ? *)"},"request":{"hostname":"h"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"cron(0 9 * * ? *)","http":{"method":"GET","url":"https://h"}}`)}},
		{name: "non-default port, default method", in: `{"name":"a",` + rate + `,"request":{"protocol":"HTTP","hostname":"h.example.com","port":8080,"path":"x"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"http://h.example.com:8080/x"}}`)}},
		{name: "port as string, http 80 omitted, no path", in: `{"name":"a",` + rate + `,"request":{"protocol":"http","hostname":"h","port":"80"}}`,
			want: DeployerTimer{ID: "a", Enabled: true, Body: []byte(`{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"http://h"}}`)}},
		{name: "disabled", in: `{"name":"a","deployment":{"enabled":false,"cron":"rate(5 minutes)"},"request":{"hostname":"h","method":"post","body":"{}"}}`,
			want: DeployerTimer{ID: "a", Enabled: false, Body: []byte(`{"schedule":"rate(5 minutes)","http":{"method":"POST","url":"https://h","body":"{}"}}`)}},
		{name: "unknown fields are warnings, case and all", in: `{"name":"a","owner":"x",` + rate + `,"request":{"hostname":"h","verb":"GET","Path":"/p"},"notification":{"email":{},"slack":{"webhook":"https://h/w","icon":":x:"}}}`,
			want: DeployerTimer{ID: "a", Enabled: true,
				Body:     []byte(`{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"https://h"},"notify":{"webhook":"https://h/w"}}`),
				Warnings: []string{"unknown field owner ignored", "unknown field request.Path ignored", "unknown field request.verb ignored", "unknown field notification.email ignored", "unknown field notification.slack.icon ignored"}}},
		{name: "five-field Unix cron", in: `{"name":"a","deployment":{"cron":"0 0 * * *"},"request":{"hostname":"h"}}`,
			err: `deployment.cron "0 0 * * *" has five fields, as a Unix cron; AWS cron has six (minutes hours day-of-month month day-of-week year, with ? in one of the day fields): did you mean "0 0 * * ? *"?`},
		{name: "five fields, weekdays", in: `{"name":"a","deployment":{"cron":"30 8 * * 1-5"},"request":{"hostname":"h"}}`, err: `did you mean "30 8 ? * 2-6 *"?`},
		{name: "five fields, Sunday as 0 and 7", in: `{"name":"a","deployment":{"cron":"0 12 * * 0,7"},"request":{"hostname":"h"}}`, err: `did you mean "0 12 ? * 1,1 *"?`},
		{name: "five fields, both days", in: `{"name":"a","deployment":{"cron":"0 0 1 * 1"},"request":{"hostname":"h"}}`, err: "AWS cron cannot match both a day of the month and a day of the week"},
		{name: "four fields", in: `{"name":"a","deployment":{"cron":"0 0 * *"},"request":{"hostname":"h"}}`, err: `deployment.cron "0 0 * *" must be the six fields of an AWS cron expression`},
		{name: "cron not a string", in: `{"name":"a","deployment":{"cron":5},"request":{"hostname":"h"}}`, err: "deployment.cron must be a string"},
		{name: "enabled not a bool", in: `{"name":"a","deployment":{"enabled":"yes","cron":"0 0 * * ? *"},"request":{"hostname":"h"}}`, err: "deployment.enabled must be true or false"},
		{name: "headers not strings", in: `{"name":"a",` + rate + `,"request":{"hostname":"h","headers":{"x":1}}}`, err: "request.headers must be an object of strings"},
		{name: "deployment not an object", in: `{"name":"a","deployment":[],"request":{"hostname":"h"}}`, err: "deployment must be a JSON object"},
		{name: "no name", in: `{` + rate + `,"request":{"hostname":"h"}}`, err: "name is required"},
		{name: "bad name", in: `{"name":"a b",` + rate + `,"request":{"hostname":"h"}}`, err: `name "a b"`},
		{name: "no cron", in: `{"name":"a","deployment":{"enabled":true},"request":{"hostname":"h"}}`, err: "deployment.cron is required"},
		{name: "no deployment", in: `{"name":"a","request":{"hostname":"h"}}`, err: "deployment.cron is required"},
		{name: "no request", in: `{"name":"a",` + rate + `}`, err: "request is required"},
		{name: "no hostname", in: `{"name":"a",` + rate + `,"request":{"protocol":"https"}}`, err: "request.hostname is required"},
		{name: "hostname with scheme", in: `{"name":"a",` + rate + `,"request":{"hostname":"https://h"}}`, err: "bare host name"},
		{name: "unknown protocol", in: `{"name":"a",` + rate + `,"request":{"protocol":"ftp","hostname":"h"}}`, err: `request.protocol "ftp" is not http or https`},
		{name: "bad port", in: `{"name":"a",` + rate + `,"request":{"hostname":"h","port":70000}}`, err: "request.port 70000"},
		{name: "slack without webhook", in: `{"name":"a",` + rate + `,"request":{"hostname":"h"},"notification":{"slack":{"channel":"c"}}}`, err: "notification.slack.webhook is required"},
		{name: "not JSON", in: `{"name":`, err: "malformed Deployer timer"},
		{name: "trailing data", in: `{"name":"a"} {}`, err: "unexpected data after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readDeployerTimer([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Transformer("string", func(b []byte) string { return string(b) })); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestAWSCronFromUnixParses checks that every suggestion for a five-field
// cron is a schedule callclock accepts, firing when the Unix cron would.
func TestAWSCronFromUnixParses(t *testing.T) {
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) // a Tuesday
	for _, tt := range []struct{ unix, want string }{
		{"0 0 * * *", "2026-12-01T00:00:00Z"},
		{"30 8 * * 1-5", "2026-12-01T08:30:00Z"}, // Mon-Fri: Tuesday
		{"0 12 * * 0", "2026-12-06T12:00:00Z"},   // Sunday
		{"0 12 * * 7", "2026-12-06T12:00:00Z"},   // Sunday too
		{"15 3 * * SAT", "2026-12-05T03:15:00Z"},
		{"0 6 15 * *", "2026-12-15T06:00:00Z"},
		{"0 0 * * */2", "2026-12-01T00:00:00Z"}, // Sun, Tue, Thu, Sat
	} {
		expr, ok := awsCronFromUnix(strings.Fields(tt.unix))
		if !ok {
			t.Errorf("%q: no suggestion", tt.unix)
			continue
		}
		s, err := ParseSchedule(ScheduleSpec{Expression: "cron(" + expr + ")"})
		if err != nil {
			t.Errorf("%q -> %q: %v", tt.unix, expr, err)
			continue
		}
		next, _ := s.Next(from.Add(-time.Second))
		if got := next.Format(time.RFC3339); got != tt.want {
			t.Errorf("%q -> %q: first %s, want %s", tt.unix, expr, got, tt.want)
		}
	}
}

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

func TestTimersPlan(t *testing.T) {
	doc := func(group, schedule string) map[string]any {
		return map[string]any{"group": group, "schedule": schedule, "catchUpSeconds": 3600.0,
			"retry": map[string]any{"maxAttempts": 185.0, "maxAgeSeconds": 86400.0}}
	}
	current := map[string]map[string]any{
		"same":     doc("g", "rate(1 hour)"),
		"changed":  doc("g", "rate(1 hour)"),
		"gone":     doc("g", "rate(1 hour)"),
		"disabled": doc("g", "rate(1 hour)"),
		"moved":    doc("other", "rate(1 hour)"), // found by GET, in another group
		"notify":   doc("g", "rate(1 hour)"),
	}
	current["notify"]["notify"] = map[string]any{"webhook": "https://h"}
	current["same"]["version"] = 7.0 // not a definition field
	desired := []desiredTimer{
		{ID: "new", Group: "g", Enabled: true, Body: []byte("n"), Doc: doc("g", "rate(1 hour)"), File: "new.json", Warnings: []string{"unknown field x ignored"}},
		{ID: "same", Group: "g", Enabled: true, Doc: doc("g", "rate(1 hour)")},
		{ID: "changed", Group: "g", Enabled: true, Body: []byte("c"), Doc: doc("g", "rate(2 hours)")},
		{ID: "disabled", Group: "g", Enabled: false},
		{ID: "moved", Group: "g", Enabled: true, Body: []byte("m"), Doc: doc("g", "rate(1 hour)")},
		{ID: "notify", Group: "g", Enabled: true, Body: []byte("x"), Doc: doc("g", "rate(1 hour)")}, // notify removed
		{ID: "never", Group: "g", Enabled: false},
	}
	got := computePlan(current, desired)
	want := []planStep{
		{planCreate, "new", []byte("n")},
		{planUnchanged, "same", nil},
		{planUpdate, "changed", []byte("c")},
		{planUpdate, "moved", []byte("m")},
		{planUpdate, "notify", []byte("x")},
		{planDelete, "disabled", nil},
		{planDelete, "gone", nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("plan (-want +got):\n%s", diff)
	}
	var out bytes.Buffer
	printPlan(&out, desired, got)
	wantOut := "! new.json: unknown field x ignored\nGroups: g\n+ create new\n= unchanged same\n~ update changed\n~ update moved\n~ update notify\n- delete disabled\n- delete gone\n" +
		"Plan: 1 to create, 3 to update, 2 to delete, 1 unchanged.\n"
	if out.String() != wantOut {
		t.Fatalf("printed plan:\n%s\nwant:\n%s", out.String(), wantOut)
	}
}

// TestTimersPlanGroups: files of several groups (no --group) delete only
// in their own groups.
func TestTimersPlanGroups(t *testing.T) {
	current := map[string]map[string]any{
		"a-old": {"group": "a"}, "b-old": {"group": "b"}, "c-kept": {"group": "c"},
	}
	desired := []desiredTimer{{ID: "b-new", Group: "b", Enabled: true}, {ID: "a-new", Group: "a", Enabled: true}}
	got := computePlan(current, desired)
	want := []planStep{{planCreate, "b-new", nil}, {planCreate, "a-new", nil}, {planDelete, "a-old", nil}, {planDelete, "b-old", nil}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("plan (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "b"}, planGroups(desired)); diff != "" {
		t.Fatalf("groups (-want +got):\n%s", diff)
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
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
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

func TestTimersCLIUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"timers", "-h"}, {"timers", "apply", "-h"}, {"timers", "pause", "-h"}, {"timers", "resume", "-h"}} {
		var out, errb bytes.Buffer
		if code := run(ctx, args, nil, &out, &errb, slog.Default()); code != 0 || !strings.Contains(out.String()+errb.String(), "usage: bootstrap timers") {
			t.Errorf("%v: exit %d, %s%s", args, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"timers", "apply", "--group", "g", "testdata/deployer"}, nil, &out, &errb, slog.Default()); code != 2 || !strings.Contains(errb.String(), "--endpoint is required") {
		t.Errorf("missing --endpoint: exit %d, %s", code, errb.String())
	}
}

func TestAPIPutDeployerFormat(t *testing.T) {
	api := NewAPI(newFakeTimerStore())
	api.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	api.Fire, api.FireQueueURL = &lcSender{}, lcFireQueueURL // its first occurrence is within seconds
	put := func(id, body string) events.APIGatewayProxyResponse {
		return api.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "PUT", Path: "/periodic/" + id, Body: body})
	}
	ok := strings.Replace(strings.Replace(deployerExample, `"aws-secret(/callclock/qa/slack)"`, `"https://hooks.example.com/aws-secret(/callclock/qa/slack)"`, 1), "facilities-collect", "fc", 1)
	resp := put("fc", ok)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT Deployer document: %d %s", resp.StatusCode, resp.Body)
	}
	var doc map[string]any
	json.Unmarshal([]byte(resp.Body), &doc)
	h, _ := doc["http"].(map[string]any)
	if doc["schedule"] != "cron(*/1 * * * ? *)" || h["url"] != "https://blue.qa.example.com/facilities/management/collect" ||
		h["headers"].(map[string]any)["Authorization"] != "Bearer aws-secret(/callclock/qa/token)" || doc["notify"] == nil {
		t.Fatalf("document = %s", resp.Body)
	}
	for _, tt := range []struct{ id, body, want string }{
		{"other", ok, `name \"fc\" must equal the id in the path \"other\"`},
		{"fc", strings.Replace(ok, `"enabled":true`, `"enabled":false`, 1), "a disabled timer is not deployed"},
		{"fc", strings.Replace(ok, `"protocol":"HTTPS"`, `"protocol":"gopher"`, 1), `request.protocol \"gopher\"`},
		{"fc", `{"name":"fc","deployment":{"cron":"0 0 * * ? *"},"request":{"hostname":"h"},"extra":1}`, "Deployer timer fc: unknown field extra"},
		{"fc", `{"name":"fc","deployment":{"cron":"0 0 * * *"},"request":{"hostname":"h"}}`, `did you mean \"0 0 * * ? *\"?`},
		// The API validates the converted body as any other.
		{"facilities-collect", strings.Replace(deployerExample, `"aws-secret(/callclock/qa/slack)"`, `"ftp://hooks.example.com/x"`, 1),
			"notify.webhook must be an absolute http or https URL"},
		// A callclock document is still decoded strictly.
		{"fc", `{"timerCallbackData":1,"name":"fc"}`, `unknown field \"name\"`},
	} {
		resp := put(tt.id, tt.body)
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, tt.want) {
			t.Errorf("PUT %s %s: %d %s, want 400 with %q", tt.id, tt.body, resp.StatusCode, resp.Body, tt.want)
		}
	}
	// The Deployer's own example, unchanged: its webhook is a lone placeholder.
	if resp := put("facilities-collect", deployerExample); resp.StatusCode != 201 || !strings.Contains(resp.Body, `"webhook":"aws-secret(/callclock/qa/slack)"`) {
		t.Errorf("PUT of the Deployer's example: %d %s", resp.StatusCode, resp.Body)
	}
}

// TestIntegrationTimersApply runs `bootstrap timers` against the local
// stack on moto_server, signed with the credential chain from the
// environment. Not parallel: it sets environment variables.
func TestIntegrationTimersApply(t *testing.T) {
	clients, cfg := motoStack(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards, cfg.SecretPrefix = 2, "/callclock/"
	log := slog.New(slog.NewJSONHandler(&syncBuffer{}, nil))
	router := newRouter(cfg, clients, log)
	api, done := startLocal(t, ctx, router, cfg, clients, log)

	t.Setenv("AWS_ACCESS_KEY_ID", testCreds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testCreds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("QA_HOST", "green.qa.example.com")

	cli := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"timers"}, args...), nil, &out, &errb, log)
		return code, out.String(), errb.String()
	}
	group := "qa-facilities"
	list := func() map[string]map[string]any {
		t.Helper()
		code, body := signedDo(t, testCreds, "GET", api+"/periodic?group="+group, "")
		var page struct{ Timers []map[string]any }
		if err := json.Unmarshal([]byte(body), &page); code != 200 || err != nil {
			t.Fatalf("list: %d %s", code, body)
		}
		m := map[string]map[string]any{}
		for _, tm := range page.Timers {
			m[tm["id"].(string)] = tm
		}
		return m
	}
	ids := []string{"qa-facilities-collect", "qa-facilities-report", "qa-nightly-callback"}

	code, out, errs := cli("apply", "--endpoint", api, "--group", group, "--dry-run", "testdata/deployer")
	wantPlan := "Groups: qa-facilities\n+ create qa-facilities-collect\n+ create qa-facilities-report\n+ create qa-nightly-callback\nPlan: 3 to create, 0 to update, 0 to delete, 0 unchanged.\n"
	if code != 0 || out != wantPlan {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errs)
	}
	if n := len(list()); n != 0 {
		t.Fatalf("the dry run created %d timers", n)
	}

	code, out, errs = cli("apply", "--endpoint", api+"/", "--group", group, "testdata/deployer")
	if code != 0 || !strings.HasPrefix(out, wantPlan) || !strings.Contains(out, "created qa-nightly-callback\n") ||
		!strings.HasSuffix(out, "Apply: 3 created, 0 updated, 0 deleted.\n") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	got := list()
	if len(got) != 3 {
		t.Fatalf("after apply the group has %d timers: %v", len(got), got)
	}
	h := got["qa-facilities-collect"]["http"].(map[string]any)
	if h["url"] != "https://green.qa.example.com/facilities/management/collect" ||
		h["headers"].(map[string]any)["Authorization"] != "Bearer aws-secret(/callclock/qa/token)" {
		t.Fatalf("qa-facilities-collect http = %v", h)
	}
	if u := got["qa-facilities-report"]["http"].(map[string]any)["url"]; u != "http://reports.qa.example.com:8080/reports/daily" {
		t.Fatalf("qa-facilities-report url = %v", u)
	}
	// The Deployer's forms, kept: the bare cron wrapped, the Slack channel,
	// the merged deployment metadata (in the list and in GET).
	if n := got["qa-facilities-collect"]["notify"].(map[string]any); got["qa-facilities-collect"]["schedule"] != "cron(*/1 * * * ? *)" || n["channel"] != "qa-facilities" {
		t.Fatalf("qa-facilities-collect schedule %v notify %v", got["qa-facilities-collect"]["schedule"], n)
	}
	wantInfo := map[string]any{"product": "qa-facilities", "version": "1.4.2", "id": "0-qa-facilities-1-4-2-017"}
	if diff := cmp.Diff(wantInfo, got["qa-facilities-report"]["deploymentInfo"]); diff != "" {
		t.Fatalf("listed deploymentInfo (-want +got):\n%s", diff)
	}
	if code, body := signedDo(t, testCreds, "GET", api+"/periodic/qa-facilities-report", ""); code != 200 ||
		!strings.Contains(body, `"deploymentInfo":{"product":"qa-facilities","version":"1.4.2","id":"0-qa-facilities-1-4-2-017"}`) {
		t.Fatalf("GET qa-facilities-report: %d %s", code, body)
	}
	if cb := got["qa-nightly-callback"]; cb["timezone"] != "Europe/Paris" || cb["timerCallbackData"].(map[string]any)["price"] != "$5" {
		t.Fatalf("qa-nightly-callback = %v", cb)
	}
	versions := map[string]any{}
	for _, id := range ids {
		versions[id] = got[id]["version"]
	}

	// Re-applying changes nothing.
	code, out, errs = cli("apply", "--endpoint", api, "--group", group, "testdata/deployer")
	wantSame := "Groups: qa-facilities\n= unchanged qa-facilities-collect\n= unchanged qa-facilities-report\n= unchanged qa-nightly-callback\n" +
		"Plan: 0 to create, 0 to update, 0 to delete, 3 unchanged.\nApply: 0 created, 0 updated, 0 deleted.\n"
	if code != 0 || out != wantSame {
		t.Fatalf("re-apply: exit %d\n%s%s", code, out, errs)
	}
	for id, tm := range list() {
		if tm["version"] != versions[id] {
			t.Fatalf("re-apply wrote %s: version %v, was %v", id, tm["version"], versions[id])
		}
	}

	// A changed variable is an update; a removed file is a delete.
	dir := t.TempDir()
	for _, f := range []string{"facilities-collect.json", "nightly-callback.json"} {
		b, err := os.ReadFile(filepath.Join("testdata/deployer", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	t.Setenv("QA_HOST", "blue.qa.example.com")
	code, out, errs = cli("apply", "--endpoint", api, "--group", group, "--dry-run", dir)
	if code != 0 || out != "Groups: qa-facilities\n~ update qa-facilities-collect\n= unchanged qa-nightly-callback\n- delete qa-facilities-report\nPlan: 0 to create, 1 to update, 1 to delete, 1 unchanged.\n" {
		t.Fatalf("dry run of the copy: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli("apply", "--endpoint", api, "--group", group, dir)
	if code != 0 || !strings.Contains(out, "updated qa-facilities-collect\n") || !strings.Contains(out, "deleted qa-facilities-report\n") {
		t.Fatalf("apply of the copy: exit %d\n%s%s", code, out, errs)
	}
	got = list()
	if _, ok := got["qa-facilities-report"]; ok || len(got) != 2 {
		t.Fatalf("after the delete: %v", got)
	}
	if u := got["qa-facilities-collect"]["http"].(map[string]any)["url"]; u != "https://blue.qa.example.com/facilities/management/collect" {
		t.Fatalf("updated url = %v", u)
	}

	// Without --group, each Deployer file's product is its group; a new
	// deployment's version and id are an update of the metadata alone.
	product := t.TempDir()
	for i, v := range []string{"1.0.0", "1.0.1"} {
		doc := strings.ReplaceAll(augmentedDeployer, "1.0.0", v)
		if err := os.WriteFile(filepath.Join(product, "manual.json"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs = cli("apply", "--endpoint", api, product)
		want := "Groups: callculon-manual-test\n+ create callculon-manual-test\nPlan: 1 to create, 0 to update, 0 to delete, 0 unchanged.\n"
		if i == 1 {
			want = "Groups: callculon-manual-test\n~ update callculon-manual-test\nPlan: 0 to create, 1 to update, 0 to delete, 0 unchanged.\n"
		}
		if code != 0 || !strings.HasPrefix(out, want) {
			t.Fatalf("apply %s without --group: exit %d\n%s%s", v, code, out, errs)
		}
	}
	if code, body := signedDo(t, testCreds, "GET", api+"/periodic/callculon-manual-test", ""); code != 200 ||
		!strings.Contains(body, `"group":"callculon-manual-test"`) || !strings.Contains(body, `"version":"1.0.1"`) {
		t.Fatalf("GET callculon-manual-test: %d %s", code, body)
	}

	// Pause and resume the group.
	code, out, errs = cli("pause", "--endpoint", api, "--group", group, "--reason", "deploy 1.4.2")
	if code != 0 || !strings.Contains(out, `"action":"pause"`) || !strings.Contains(out, `"changed":2`) {
		t.Fatalf("pause: exit %d\n%s%s", code, out, errs)
	}
	for id, tm := range list() {
		if tm["state"] != StatePaused || tm["pauseReason"] != "deploy 1.4.2" {
			t.Fatalf("after pause %s = %v", id, tm)
		}
	}
	code, out, errs = cli("resume", "--endpoint", api, "--group", group)
	if code != 0 || !strings.Contains(out, `"action":"resume"`) || !strings.Contains(out, `"changed":2`) {
		t.Fatalf("resume: exit %d\n%s%s", code, out, errs)
	}
	for id, tm := range list() {
		if tm["state"] != StateActive {
			t.Fatalf("after resume %s = %v", id, tm)
		}
	}

	// An undefined variable is a bad file: exit 2, the variable named,
	// nothing sent.
	os.Unsetenv("QA_HOST") // t.Setenv above restores it
	code, out, errs = cli("apply", "--endpoint", api, "--group", group, dir)
	if code != 2 || out != "" || !strings.Contains(errs, "QA_HOST is not defined") || !strings.Contains(errs, "facilities-collect.json") {
		t.Fatalf("undefined variable: exit %d\n%s%s", code, out, errs)
	}
	// Wrong credentials: the API refuses, exit 1.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	t.Setenv("QA_HOST", "x.example.com")
	code, _, errs = cli("apply", "--endpoint", api, "--group", group, dir)
	if code != 1 || !strings.Contains(errs, "HTTP 403") {
		t.Fatalf("wrong credentials: exit %d %s", code, errs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
