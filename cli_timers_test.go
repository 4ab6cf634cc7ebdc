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

	"github.com/google/go-cmp/cmp"
)

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

func TestTimersCLIUsage(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"timers", "-h"}, {"timers", "apply", "-h"}, {"timers", "pause", "-h"}, {"timers", "resume", "-h"}} {
		var out, errb bytes.Buffer
		if code := run(ctx, args, nil, &out, &errb, slog.Default()); code != 0 || !strings.Contains(out.String()+errb.String(), "usage: bootstrap timers") {
			t.Errorf("%v: exit %d, %s%s", args, code, out.String(), errb.String())
		}
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

	setTimerCmdEnv(t)
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
	if code != 0 || out != "paused group "+group+": 2 timers, 2 changed\n" {
		t.Fatalf("pause: exit %d\n%s%s", code, out, errs)
	}
	for id, tm := range list() {
		if tm["state"] != StatePaused || tm["pauseReason"] != "deploy 1.4.2" {
			t.Fatalf("after pause %s = %v", id, tm)
		}
	}
	code, out, errs = cli("resume", "--endpoint", api, "--group", group, "-o", "json")
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
	// Wrong credentials: the API refuses, exit 4 (denied), for apply and
	// the group commands alike.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	t.Setenv("QA_HOST", "x.example.com")
	for _, args := range [][]string{{"apply", "--endpoint", api, "--group", group, dir}, {"pause", "--endpoint", api, "--group", group}} {
		code, _, errs = cli(args...)
		if code != exitDenied || !strings.Contains(errs, "HTTP 403") || !strings.Contains(errs, "AWS_ACCESS_KEY_ID=test") {
			t.Fatalf("%s with wrong credentials: exit %d %s", args[0], code, errs)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
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
