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

const seedDeployer = `{"name":"facilities-collect","deployment":{"enabled":true,"cron":"cron(*/1 * * * ? *)"},"request":{"protocol":"https","hostname":"blue.qa.example.com","port":443,"path":"/facilities/management/collect","method":"GET","headers":{"Authorization":"Bearer aws-secret(/callclock/qa/token)"}},"notification":{"slack":{"webhook":"aws-secret(/callclock/qa/slack)","onFailure":true,"onSuccess":false}}}`

func TestDeployerToPut(t *testing.T) {
	tests := []struct {
		name, in, id, body string
		enabled            bool
		err                string
	}{
		{name: "seed example", in: seedDeployer, id: "facilities-collect", enabled: true,
			body: `{"schedule":"cron(*/1 * * * ? *)","http":{"method":"GET","url":"https://blue.qa.example.com/facilities/management/collect","headers":{"Authorization":"Bearer aws-secret(/callclock/qa/token)"}},"notify":{"webhook":"aws-secret(/callclock/qa/slack)","onFailure":true,"onSuccess":false}}`},
		{name: "non-default port, default method", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"protocol":"HTTP","hostname":"h.example.com","port":8080,"path":"x"}}`,
			id: "a", enabled: true, body: `{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"http://h.example.com:8080/x"}}`},
		{name: "port as string, http 80 omitted, no path", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"protocol":"http","hostname":"h","port":"80"}}`,
			id: "a", enabled: true, body: `{"schedule":"rate(5 minutes)","http":{"method":"GET","url":"http://h"}}`},
		{name: "disabled", in: `{"name":"a","deployment":{"enabled":false,"cron":"rate(5 minutes)"},"request":{"hostname":"h","method":"post","body":"{}"}}`,
			id: "a", enabled: false, body: `{"schedule":"rate(5 minutes)","http":{"method":"POST","url":"https://h","body":"{}"}}`},
		{name: "no name", in: `{"deployment":{"cron":"rate(5 minutes)"},"request":{"hostname":"h"}}`, err: "name is required"},
		{name: "bad name", in: `{"name":"a b","deployment":{"cron":"rate(5 minutes)"},"request":{"hostname":"h"}}`, err: `name "a b"`},
		{name: "no cron", in: `{"name":"a","deployment":{"enabled":true},"request":{"hostname":"h"}}`, err: "deployment.cron is required"},
		{name: "no deployment", in: `{"name":"a","request":{"hostname":"h"}}`, err: "deployment.cron is required"},
		{name: "no request", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"}}`, err: "request is required"},
		{name: "no hostname", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"protocol":"https"}}`, err: "request.hostname is required"},
		{name: "hostname with scheme", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"hostname":"https://h"}}`, err: "bare host name"},
		{name: "unknown protocol", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"protocol":"ftp","hostname":"h"}}`, err: `request.protocol "ftp" is not http or https`},
		{name: "bad port", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"hostname":"h","port":70000}}`, err: "request.port 70000"},
		{name: "unknown field", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"hostname":"h","verb":"GET"}}`, err: `unknown field "verb"`},
		{name: "slack without webhook", in: `{"name":"a","deployment":{"cron":"rate(5 minutes)"},"request":{"hostname":"h"},"notification":{"slack":{}}}`, err: "notification.slack.webhook is required"},
		{name: "not JSON", in: `{"name":`, err: "malformed Deployer timer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, body, enabled, err := deployerToPut([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id != tt.id || enabled != tt.enabled || string(body) != tt.body {
				t.Fatalf("got (%q, %s, %v), want (%q, %s, %v)", id, body, enabled, tt.id, tt.body, tt.enabled)
			}
		})
	}
}

func TestTimersSubstituteEnv(t *testing.T) {
	env := map[string]string{"QA_HOST": "blue.qa.example.com", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct{ in, want, err string }{
		{in: `{"h":"${QA_HOST}"}`, want: `{"h":"blue.qa.example.com"}`},
		{in: `${QA_HOST}/${EMPTY}x`, want: `blue.qa.example.com/x`},
		{in: `cost $$5, $$${QA_HOST}, $5, $HOME, end$`, want: `cost $5, $blue.qa.example.com, $5, $HOME, end$`},
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
		{ID: "new", Enabled: true, Body: []byte("n"), Doc: doc("g", "rate(1 hour)")},
		{ID: "same", Enabled: true, Doc: doc("g", "rate(1 hour)")},
		{ID: "changed", Enabled: true, Body: []byte("c"), Doc: doc("g", "rate(2 hours)")},
		{ID: "disabled", Enabled: false},
		{ID: "moved", Enabled: true, Body: []byte("m"), Doc: doc("g", "rate(1 hour)")},
		{ID: "notify", Enabled: true, Body: []byte("x"), Doc: doc("g", "rate(1 hour)")}, // notify removed
		{ID: "never", Enabled: false},
	}
	got := computePlan("g", current, desired)
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
	printPlan(&out, got)
	wantOut := "+ create new\n= unchanged same\n~ update changed\n~ update moved\n~ update notify\n- delete disabled\n- delete gone\n" +
		"Plan: 1 to create, 3 to update, 2 to delete, 1 unchanged.\n"
	if out.String() != wantOut {
		t.Fatalf("printed plan:\n%s\nwant:\n%s", out.String(), wantOut)
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
		if d.Doc["group"] != "qa" || !strings.Contains(string(d.Body), `"group":"qa"`) || strings.Contains(string(d.Body), `"id"`) {
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
	if code := run(ctx, []string{"timers", "apply", "--group", "g", "testdata/deployer"}, nil, &out, &errb, slog.Default()); code != 2 || !strings.Contains(errb.String(), "--endpoint and --group are required") {
		t.Errorf("missing --endpoint: exit %d, %s", code, errb.String())
	}
}

func TestAPIPutDeployerFormat(t *testing.T) {
	api := NewAPI(newFakeTimerStore())
	api.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	put := func(id, body string) events.APIGatewayProxyResponse {
		return api.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "PUT", Path: "/periodic/" + id, Body: body})
	}
	ok := strings.Replace(strings.Replace(seedDeployer, `"aws-secret(/callclock/qa/slack)"`, `"https://hooks.example.com/aws-secret(/callclock/qa/slack)"`, 1), "facilities-collect", "fc", 1)
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
		{"fc", strings.Replace(ok, `"protocol":"https"`, `"protocol":"gopher"`, 1), `request.protocol \"gopher\"`},
		{"fc", `{"request":{},"extra":1}`, "unknown field"},
		// The API validates the converted body as any other.
		{"facilities-collect", strings.Replace(seedDeployer, `"aws-secret(/callclock/qa/slack)"`, `"ftp://hooks.example.com/x"`, 1),
			"notify.webhook must be an absolute http or https URL"},
		// A callclock document is still decoded strictly.
		{"fc", `{"timerCallbackData":1,"name":"fc"}`, `unknown field \"name\"`},
	} {
		resp := put(tt.id, tt.body)
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, tt.want) {
			t.Errorf("PUT %s %s: %d %s, want 400 with %q", tt.id, tt.body, resp.StatusCode, resp.Body, tt.want)
		}
	}
	// The seed's own example, unchanged: its webhook is a lone placeholder.
	if resp := put("facilities-collect", seedDeployer); resp.StatusCode != 201 || !strings.Contains(resp.Body, `"webhook":"aws-secret(/callclock/qa/slack)"`) {
		t.Errorf("PUT of the seed's example: %d %s", resp.StatusCode, resp.Body)
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
	wantPlan := "+ create qa-facilities-collect\n+ create qa-facilities-report\n+ create qa-nightly-callback\nPlan: 3 to create, 0 to update, 0 to delete, 0 unchanged.\n"
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
	if cb := got["qa-nightly-callback"]; cb["timezone"] != "Europe/Paris" || cb["timerCallbackData"].(map[string]any)["price"] != "$5" {
		t.Fatalf("qa-nightly-callback = %v", cb)
	}
	versions := map[string]any{}
	for _, id := range ids {
		versions[id] = got[id]["version"]
	}

	// Re-applying changes nothing.
	code, out, errs = cli("apply", "--endpoint", api, "--group", group, "testdata/deployer")
	wantSame := "= unchanged qa-facilities-collect\n= unchanged qa-facilities-report\n= unchanged qa-nightly-callback\n" +
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
	if code != 0 || out != "~ update qa-facilities-collect\n= unchanged qa-nightly-callback\n- delete qa-facilities-report\nPlan: 0 to create, 1 to update, 1 to delete, 1 unchanged.\n" {
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
