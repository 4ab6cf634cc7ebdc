package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeAnswer is what the fake API answers to one request.
type fakeAnswer struct {
	status int
	body   string
}

// fakeRequest is one request the fake API saw.
type fakeRequest struct {
	Method, URI, Body string
}

// fakeTimersAPI is an httptest server answering like the API: each request
// must carry a valid SigV4 signature by testCreds (the local stack's
// verifier checks it), and is answered from routes by "METHOD PATH", or
// "METHOD PATH?cursor=C" for a list page.
func fakeTimersAPI(t *testing.T, routes map[string]fakeAnswer) (string, func() []fakeRequest) {
	t.Helper()
	verifier := NewSigV4Verifier(testCreds, "us-east-1")
	var mu sync.Mutex
	var seen []fakeRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fakeRequest{r.Method, r.URL.RequestURI(), string(body)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") == "" {
			t.Errorf("%s %s: no SigV4 Authorization header", r.Method, r.URL)
		}
		if err := verifier.Verify(r, body); err != nil {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"`+ErrorMessage(err)+`"}`)
			return
		}
		key := r.Method + " " + r.URL.Path
		if c := r.URL.Query().Get("cursor"); c != "" {
			key += "?cursor=" + c
		}
		a, ok := routes[key]
		if !ok {
			a = fakeAnswer{404, `{"error":{"code":"not_found","message":"no route ` + key + `"}}`}
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []fakeRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]fakeRequest(nil), seen...)
	}
}

// setTimerCmdEnv makes the SDK's credential chain testCreds alone, and
// CALLCLOCK_ENDPOINT unset. Not for parallel tests.
func setTimerCmdEnv(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", testCreds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testCreds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("CALLCLOCK_ENDPOINT", "")
	os.Unsetenv("CALLCLOCK_ENDPOINT")
}

// timersCLI runs `bootstrap timers ARGS...`.
func timersCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runTimers(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// The fake API's documents, as the API renders them: a timer with its
// last outcome, the same paused, a legacy hourly one, its upcoming
// occurrences across a DST change, its history, a manual firing.
const (
	fakeTimer = `{"id":"t1","group":"g","schedule":"cron(0 9 * * ? *)","timezone":"Europe/Paris","state":"active",` +
		`"nextFireAt":"2026-12-02T08:00:00Z","lastFire":{"scheduledAt":"2026-12-01T08:00:00Z","attemptedAt":"2026-12-01T08:00:01Z",` +
		`"attempt":1,"outcome":"delivered","status":200,"latencyMs":42},"http":{"method":"POST","url":"https://example.com/hook"},"version":3}`
	fakePaused     = `{"id":"t1","group":"g","schedule":"cron(0 9 * * ? *)","state":"paused","pauseReason":"deploy","nextFireAt":null,"version":4}`
	fakeHourly     = `{"id":"t2","group":"h","minuteOfHour":7,"state":"paused","nextFireAt":null,"version":1}`
	fakeHourlyFull = `{"id":"t2","group":"h","minuteOfHour":7,"state":"paused","nextFireAt":null,"version":1,` +
		`"lastFire":{"scheduledAt":"2026-12-01T07:07:00Z","attemptedAt":"2026-12-01T07:07:00Z","attempt":185,"outcome":"failed","status":503,"latencyMs":9}}`
	fakeUp = `{"timerId":"t1","timezone":"Europe/Paris","paused":false,"upcoming":[` +
		`{"scheduledAt":"2027-03-27T08:00:00Z","local":"2027-03-27T09:00:00+01:00"},` +
		`{"scheduledAt":"2027-03-28T07:00:00Z","local":"2027-03-28T09:00:00+02:00","offsetChanged":true}]}`
	fakeHist = `{"timerId":"t1","history":[` +
		`{"scheduledAt":"2026-12-01T08:00:00Z","attemptedAt":"2026-12-01T08:00:01Z","attempt":1,"outcome":"delivered","status":200,"latencyMs":42},` +
		`{"scheduledAt":"2026-11-30T08:00:00Z","attemptedAt":"2026-11-30T08:00:05Z","attempt":3,"outcome":"failed","status":503,"error":"HTTP 503","latencyMs":1000}]}`
	// t5 has issue 14's delivery controls: a spread, a limit, signing
	// during a rotation; its history the planned instant and the limit's
	// wait, on one entry of two.
	fakeControlled = `{"id":"t5","schedule":"rate(1 hour)","state":"active","nextFireAt":null,"version":2,"spreadSeconds":300,` +
		`"http":{"method":"POST","url":"https://example.com/hook","limitKey":"example","signing":{"secret":"aws-secret(/callclock/key-2)","previousSecret":"aws-secret(/callclock/key-1)"}}}`
	fakeControlledHist = `{"timerId":"t5","history":[` +
		`{"scheduledAt":"2026-12-01T08:00:00Z","plannedAt":"2026-12-01T08:01:28Z","attemptedAt":"2026-12-01T08:01:31Z","attempt":1,"outcome":"delivered","status":200,"latencyMs":42,"limitedMs":2900},` +
		`{"scheduledAt":"2026-12-01T07:00:00Z","attemptedAt":"2026-12-01T07:00:00Z","attempt":1,"outcome":"delivered","status":200,"latencyMs":40}]}`
	fakeFire   = `{"timerId":"t1","scheduledAt":"2026-12-01T10:00:00Z","manual":true,"idempotencyKey":"t1/m/2026-12-01T10:00:00Z"}`
	fakeReplay = `{"timerId":"t4","scheduledAt":"2026-11-30T08:00:00Z","manual":false,"replay":true,"idempotencyKey":"t4/2026-11-30T08:00:00Z"}`
)

// fakeRoutes answer like the API about t1, t2 and t3, listed on 3 pages.
var fakeRoutes = map[string]fakeAnswer{
	"GET /periodic/t1":           {200, fakeTimer},
	"GET /periodic/t1/upcoming":  {200, fakeUp},
	"GET /periodic/t1/history":   {200, fakeHist},
	"PUT /periodic/t1":           {200, fakeTimer},
	"DELETE /periodic/t1":        {200, `"t1"`},
	"POST /periodic/t1/fire":     {202, fakeFire},
	"POST /periodic/t1/pause":    {200, fakePaused},
	"POST /periodic/t1/resume":   {200, fakeTimer},
	"POST /periodic/t4/fire":     {202, fakeReplay},
	"POST /groups/g/pause":       {200, `{"group":"g","action":"pause","timers":2,"changed":1}`},
	"POST /groups/nope/resume":   {403, `{"error":{"code":"forbidden","message":"not yours"}}`},
	"GET /periodic":              {200, `{"timers":[` + fakeTimer + `],"cursor":"c2"}`},
	"GET /periodic?cursor=c2":    {200, `{"timers":[` + fakeHourly + `],"cursor":"c3"}`},
	"GET /periodic?cursor=c3":    {200, `{"timers":[{"id":"t3","schedule":"rate(5 minutes)","state":"completed","nextFireAt":null,"version":9}]}`},
	"GET /periodic/gone":         {404, `{"error":{"code":"not_found","message":"timer gone not found"}}`},
	"PUT /periodic/bad":          {400, `{"error":{"code":"invalid","message":"schedule is required"}}`},
	"PUT /periodic/big":          {413, `{"error":{"code":"payload_too_large","message":"body over 64 KiB"}}`},
	"GET /periodic/secret":       {403, `{"error":{"code":"forbidden","message":"not yours"}}`},
	"GET /periodic/iam":          {403, `{"message":"User: arn:aws:iam::1:user/x is not authorized to perform: execute-api:Invoke"}`},
	"GET /periodic/boom":         {500, `{"error":{"code":"internal","message":"internal error"}}`},
	"GET /periodic/gw":           {502, `Bad Gateway`},
	"POST /periodic/busy/resume": {409, `{"error":{"code":"conflict","message":"version changed"}}`},
	"GET /periodic/t2":           {200, fakeHourlyFull},
	"GET /periodic/t5":           {200, fakeControlled},
	"GET /periodic/t5/history":   {200, fakeControlledHist},
	"GET /limits":                {200, `{"limits":[{"key":"example","perSecond":2,"createdAt":"2026-12-01T00:00:00Z","updatedAt":"2026-12-01T00:00:00Z"}]}`},
	"PUT /limits/example":        {200, `{"key":"example","inFlight":1,"createdAt":"2026-12-01T00:00:00Z","updatedAt":"2026-12-01T01:00:00Z"}`},
	"DELETE /limits/example":     {200, `"example"`},
	"GET /periodic/t5/upcoming":  {200, `{"timerId":"t5","timezone":"UTC","paused":false,"upcoming":[{"scheduledAt":"2026-12-01T09:00:00Z","plannedAt":"2026-12-01T09:01:28Z","local":"2026-12-01T09:00:00Z"}]}`},
	"GET /periodic/nojson":       {200, `nope`},
}

// TestTimerCmdOutput: each command's human and JSON output, and the
// requests it makes.
func TestTimerCmdOutput(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	file := filepath.Join(t.TempDir(), "t1.json")
	os.WriteFile(file, []byte(`{"group":"g","schedule":"cron(0 9 * * ? *)"}`), 0o600)
	getText := "ID:            t1\nGroup:         g\nSchedule:      cron(0 9 * * ? *)\nTimezone:      Europe/Paris\nState:         active\n" +
		"Next:          2026-12-02T08:00:00Z\nLast outcome:  delivered (200)\nTarget:        POST https://example.com/hook\nVersion:       3\n"
	for _, tc := range []struct {
		name string
		args []string
		want string
		reqs []string // "METHOD URI" of each request
	}{
		{"get", []string{"get", "t1"}, getText, []string{"GET /periodic/t1"}},
		{"get json", []string{"get", "-o", "json", "t1"}, fakeTimer + "\n", []string{"GET /periodic/t1"}},
		{"describe", []string{"describe", "t1", "--count", "1"}, getText +
			"\nUpcoming (zone Europe/Paris):\n  UTC                   LOCAL                      DST\n" +
			"  2027-03-27T08:00:00Z  2027-03-27T09:00:00+01:00  \n  2027-03-28T07:00:00Z  2027-03-28T09:00:00+02:00  offset changed\n" +
			"\nLatest outcomes:\n  SCHEDULED                 ATTEMPTED                 ATTEMPT  OUTCOME    STATUS  LATENCY MS  ERROR\n" +
			"  2026-12-01T08:00:00.000Z  2026-12-01T08:00:01.000Z  1        delivered  200     42          -\n",
			[]string{"GET /periodic/t1", "GET /periodic/t1/upcoming?count=1", "GET /periodic/t1/history"}},
		{"describe json", []string{"describe", "t1", "-o", "json"}, `{"timer":` + fakeTimer + `,"upcoming":` + fakeUp + `,"history":` + fakeHist + "}\n",
			[]string{"GET /periodic/t1", "GET /periodic/t1/upcoming?count=5", "GET /periodic/t1/history"}},
		{"list over 3 pages", []string{"list"}, "ID  GROUP  SCHEDULE            STATE      NEXT                  LAST OUTCOME\n" +
			"t1  g      cron(0 9 * * ? *)   active     2026-12-02T08:00:00Z  delivered (200)\n" +
			"t2  h      hourly at minute 7  paused     -                     failed (503)\n" +
			"t3  -      rate(5 minutes)     completed  -                     -\n",
			[]string{"GET /periodic/t2", "GET /periodic/t3", "GET /periodic?cursor=c2&limit=500", "GET /periodic?cursor=c3&limit=500", "GET /periodic?limit=500"}},
		{"list json", []string{"list", "--group", "g", "--state", "active", "-o", "json"},
			`[` + fakeTimer + `,` + fakeHourly + `,{"id":"t3","schedule":"rate(5 minutes)","state":"completed","nextFireAt":null,"version":9}]` + "\n",
			[]string{"GET /periodic?group=g&limit=500&state=active", "GET /periodic?cursor=c2&group=g&limit=500&state=active", "GET /periodic?cursor=c3&group=g&limit=500&state=active"}},
		{"history", []string{"history", "t1"}, "SCHEDULED                 ATTEMPTED                 ATTEMPT  OUTCOME    STATUS  LATENCY MS  ERROR\n" +
			"2026-12-01T08:00:00.000Z  2026-12-01T08:00:01.000Z  1        delivered  200     42          -\n" +
			"2026-11-30T08:00:00.000Z  2026-11-30T08:00:05.000Z  3        failed     503     1000        HTTP 503\n",
			[]string{"GET /periodic/t1/history"}},
		{"history, planned and limited", []string{"history", "t5"},
			"SCHEDULED                 PLANNED                   ATTEMPTED                 ATTEMPT  OUTCOME    STATUS  LATENCY MS  LIMITED MS  ERROR\n" +
				"2026-12-01T08:00:00.000Z  2026-12-01T08:01:28.000Z  2026-12-01T08:01:31.000Z  1        delivered  200     42          2900        -\n" +
				"2026-12-01T07:00:00.000Z  -                         2026-12-01T07:00:00.000Z  1        delivered  200     40          -           -\n",
			[]string{"GET /periodic/t5/history"}},
		{"describe, delivery controls", []string{"describe", "t5", "--count", "1"},
			"ID:            t5\nGroup:         -\nSchedule:      rate(1 hour)\nTimezone:      -\nState:         active\nNext:          -\n" +
				"Last outcome:  -\nTarget:        POST https://example.com/hook\nVersion:       2\n" +
				"Spread:        within 300 s, each occurrence delivered 88 s after its instant\nLimit:         example\n" +
				"Signing:       signed with /callclock/key-2, and with /callclock/key-1 during the rotation\n" +
				"\nUpcoming (zone UTC):\n  UTC                   PLANNED               LOCAL                 DST\n" +
				"  2026-12-01T09:00:00Z  2026-12-01T09:01:28Z  2026-12-01T09:00:00Z  \n" +
				"\nLatest outcomes:\n  SCHEDULED                 PLANNED                   ATTEMPTED                 ATTEMPT  OUTCOME    STATUS  LATENCY MS  LIMITED MS  ERROR\n" +
				"  2026-12-01T08:00:00.000Z  2026-12-01T08:01:28.000Z  2026-12-01T08:01:31.000Z  1        delivered  200     42          2900        -\n",
			[]string{"GET /periodic/t5", "GET /periodic/t5/upcoming?count=1", "GET /periodic/t5/history"}},
		{"history json", []string{"history", "t1", "-o", "json"}, fakeHist + "\n", []string{"GET /periodic/t1/history"}},
		{"put file", []string{"put", "t1", "-f", file}, "put t1: version 3, active, next 2026-12-02T08:00:00Z\n", []string{"PUT /periodic/t1"}},
		{"delete", []string{"delete", "t1"}, "deleted t1\n", []string{"DELETE /periodic/t1"}},
		{"delete json", []string{"delete", "t1", "-o", "json"}, `"t1"` + "\n", []string{"DELETE /periodic/t1"}},
		{"fire", []string{"fire", "t1"}, "fired t1: occurrence 2026-12-01T10:00:00Z queued, idempotency key t1/m/2026-12-01T10:00:00Z\n", []string{"POST /periodic/t1/fire"}},
		{"fire json", []string{"fire", "t1", "-o", "json"}, fakeFire + "\n", []string{"POST /periodic/t1/fire"}},
		{"pause ID", []string{"pause", "t1", "--reason", "deploy"}, "paused t1: version 4, paused, next -\n", []string{"POST /periodic/t1/pause"}},
		{"pause ID json", []string{"pause", "-o", "json", "t1"}, fakePaused + "\n", []string{"POST /periodic/t1/pause"}},
		{"resume ID", []string{"resume", "t1"}, "resumed t1: version 3, active, next 2026-12-02T08:00:00Z\n", []string{"POST /periodic/t1/resume"}},
		{"fire --at", []string{"fire", "t4", "--at", "2026-11-30T08:00:00Z"},
			"fired t4 again: past occurrence 2026-11-30T08:00:00Z queued as a replay, idempotency key t4/2026-11-30T08:00:00Z\n", []string{"POST /periodic/t4/fire"}},
		{"fire --at json", []string{"fire", "t4", "--at", "2026-11-30T09:00:00+01:00", "-o", "json"}, fakeReplay + "\n", []string{"POST /periodic/t4/fire"}},
		{"wait", []string{"wait", "t1"}, "SCHEDULED                 ATTEMPTED                 ATTEMPT  OUTCOME    STATUS  LATENCY MS  ERROR\n" +
			"2026-12-01T08:00:00.000Z  2026-12-01T08:00:01.000Z  1        delivered  200     42          -\n", []string{"GET /periodic/t1"}},
		{"wait failed json", []string{"wait", "t2", "--outcome", "failed", "-o", "json"},
			`{"attempt":185,"attemptedAt":"2026-12-01T07:07:00Z","latencyMs":9,"outcome":"failed","scheduledAt":"2026-12-01T07:07:00Z","status":503}` + "\n", []string{"GET /periodic/t2"}},
		{"pause group", []string{"pause", "--group", "g"}, "paused group g: 2 timers, 1 changed\n", []string{"POST /groups/g/pause"}},
		{"pause group json", []string{"pause", "-o", "json", "--group", "g", "--reason", "deploy 2"}, `{"group":"g","action":"pause","timers":2,"changed":1}` + "\n", []string{"POST /groups/g/pause"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(seen())
			code, out, errs := timersCLI(append(tc.args, "--endpoint", api)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			var reqs []string
			for _, r := range seen()[before:] {
				reqs = append(reqs, r.Method+" "+r.URI)
			}
			if tc.name == "list over 3 pages" {
				sort.Strings(reqs) // the lastFire GETs run concurrently
			}
			if diff := cmp.Diff(tc.reqs, reqs); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
	// The bodies sent: the file as is, the replayed instant (in UTC),
	// nothing for a manual firing, the pause reason.
	var bodies []string
	for _, r := range seen() {
		if r.Method == "PUT" || strings.HasSuffix(r.URI, "/pause") || strings.HasSuffix(r.URI, "/fire") {
			bodies = append(bodies, r.Body)
		}
	}
	want := []string{`{"group":"g","schedule":"cron(0 9 * * ? *)"}`, ``, ``, `{"reason":"deploy"}`, ``,
		`{"scheduledAt":"2026-11-30T08:00:00Z"}`, `{"scheduledAt":"2026-11-30T08:00:00Z"}`, ``, `{"reason":"deploy 2"}`}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("bodies (-want +got):\n%s", diff)
	}
}

// TestTimerCmdPutStdin: put -f - sends standard input as the body.
func TestTimerCmdPutStdin(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	doc := `{"group":"g","schedule":"rate(1 hour)","timerCallbackData":{"a":"<&>"}}`
	var out, errb bytes.Buffer
	code := runTimerPut(context.Background(), []string{"t1", "-f", "-", "--endpoint", api, "-o", "json"}, strings.NewReader(doc), &out, &errb)
	if code != 0 || out.String() != fakeTimer+"\n" {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	if diff := cmp.Diff([]fakeRequest{{"PUT", "/periodic/t1", doc}}, seen()); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}
}

// TestTimerCmdExitCodes: the exit code and message of each failure.
func TestTimerCmdExitCodes(t *testing.T) {
	setTimerCmdEnv(t)
	api, _ := fakeTimersAPI(t, fakeRoutes)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "t.json")
	os.WriteFile(file, []byte(`{}`), 0o600)
	timerFile := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(timerFile, []byte(`{"id":"x","group":"g","schedule":"rate(1 hour)","timerCallbackData":{}}`), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		errs []string // substrings of stderr
	}{
		{"400 invalid", []string{"put", "bad", "-f", file, "--endpoint", api}, exitUsage, []string{"HTTP 400: schedule is required"}},
		{"413", []string{"put", "big", "-f", file, "--endpoint", api}, exitUsage, []string{"HTTP 413: body over 64 KiB"}},
		{"403 forbidden", []string{"get", "secret", "--endpoint", api}, exitDenied, []string{"HTTP 403: not yours", "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"}},
		{"403 IAM", []string{"describe", "iam", "--endpoint", api}, exitDenied, []string{"HTTP 403: User: arn:aws:iam::1:user/x is not authorized"}},
		{"404", []string{"get", "gone", "--endpoint", api}, exitNotFound, []string{"bootstrap timers get: HTTP 404: timer gone not found"}},
		{"404 history", []string{"history", "gone", "--endpoint", api}, exitNotFound, []string{"HTTP 404"}},
		{"500", []string{"get", "boom", "--endpoint", api}, exitUnavailable, []string{"HTTP 500: internal error"}},
		{"502 body", []string{"get", "gw", "--endpoint", api}, exitUnavailable, []string{"HTTP 502: Bad Gateway"}},
		{"409", []string{"resume", "busy", "--endpoint", api}, exitFailure, []string{"HTTP 409: version changed"}},
		{"refused", []string{"get", "t1", "--endpoint", refused}, exitUnavailable, []string{"connection refused", "nothing answers at " + refused}},
		{"not JSON", []string{"get", "nojson", "--endpoint", api}, exitFailure, []string{"not the JSON expected"}},
		{"bad flag", []string{"get", "t1", "--nope"}, exitUsage, []string{"flag provided but not defined"}},
		{"no ID", []string{"get"}, exitUsage, []string{"want 1 argument(s), got 0"}},
		{"bad -o", []string{"get", "t1", "-o", "yaml"}, exitUsage, []string{"-o is text or json"}},
		{"bad endpoint", []string{"list", "--endpoint", "127.0.0.1:8080"}, exitUsage, []string{"not an absolute http or https URL"}},
		{"bad count", []string{"describe", "t1", "--count", "0"}, exitUsage, []string{"--count is 1 to 100"}},
		{"put without -f", []string{"put", "t1"}, exitUsage, []string{"-f FILE|- is required"}},
		{"put missing file", []string{"put", "t1", "-f", file + ".none", "--endpoint", api}, exitUsage, []string{"no such file"}},
		{"pause both", []string{"pause", "t1", "--group", "g"}, exitUsage, []string{"not both or neither"}},
		{"pause neither", []string{"pause"}, exitUsage, []string{"not both or neither"}},
		{"resume two IDs", []string{"resume", "a", "b"}, exitUsage, []string{"not both or neither"}},
		{"group 403", []string{"resume", "--group", "nope", "--endpoint", api}, exitDenied, []string{"bootstrap timers resume: HTTP 403: not yours", "AWS_ACCESS_KEY_ID=test"}},
		{"group refused", []string{"pause", "--group", "g", "--endpoint", refused}, exitUnavailable, []string{"nothing answers at " + refused}},
		{"bad group", []string{"pause", "--group", "a b", "--endpoint", api}, exitUsage, []string{"--group: "}},
		{"fire bad --at", []string{"fire", "t1", "--at", "yesterday", "--endpoint", api}, exitUsage, []string{`--at "yesterday" is not an RFC 3339 instant`}},
		{"wait times out", []string{"wait", "t2", "--timeout", "1ms", "--endpoint", api}, exitFailure, []string{"timer t2: no delivered outcome after 1ms (latest: failed (503))"}},
		{"wait no timer", []string{"wait", "gone", "--endpoint", api}, exitNotFound, []string{"HTTP 404"}},
		{"wait bad timeout", []string{"wait", "t1", "--timeout", "-1s"}, exitUsage, []string{"--timeout must be positive"}},
		{"apply refused", []string{"apply", "--endpoint", refused, timerFile}, exitUnavailable, []string{"nothing answers at " + refused}},
		{"apply no files", []string{"apply", "--group", "g"}, exitUsage, []string{"name at least one timer FILE or DIR"}},
		{"apply bad group", []string{"apply", "--group", "a b", timerFile}, exitUsage, []string{"--group: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := timersCLI(tc.args...)
			if code != tc.code || out != "" {
				t.Errorf("exit %d, want %d; stdout %q", code, tc.code, out)
			}
			for _, s := range tc.errs {
				if !strings.Contains(errs, s) {
					t.Errorf("stderr %q lacks %q", errs, s)
				}
			}
		})
	}
}

// TestTimerCmdEndpoint: --endpoint, else CALLCLOCK_ENDPOINT, else the
// local stack, whose refused connection says to start it.
func TestTimerCmdEndpoint(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	t.Setenv("CALLCLOCK_ENDPOINT", api)
	if code, out, errs := timersCLI("get", "t1", "-o", "json"); code != 0 || out != fakeTimer+"\n" || len(seen()) != 1 {
		t.Fatalf("with CALLCLOCK_ENDPOINT: exit %d %s%s", code, out, errs)
	}
	if code, _, errs := timersCLI("get", "t1", "--endpoint", "http://127.0.0.1:1"); code != exitUnavailable || len(seen()) != 1 {
		t.Fatalf("--endpoint over CALLCLOCK_ENDPOINT: exit %d %s", code, errs)
	}
	c := newTimerCmd("get", "get ID", io.Discard)
	c.lookup = func(string) (string, bool) { return "", false }
	if _, code := c.parse([]string{"t1"}, 1); code != -1 || *c.endpoint != defaultEndpoint {
		t.Fatalf("default endpoint: code %d, endpoint %q", code, *c.endpoint)
	}
	refused := &url.Error{Op: "Get", URL: defaultEndpoint + "/periodic/t1",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	for _, tc := range []struct {
		err      error
		endpoint string
		want     string
	}{
		{refused, defaultEndpoint, "start it with `make run`"},
		{refused, "http://10.0.0.1:8080", "nothing answers at http://10.0.0.1:8080"},
		{&timersAPIError{Status: 403}, "http://localhost:8080", "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"},
		{&timersAPIError{Status: 403}, "https://abc.execute-api.us-east-1.amazonaws.com/prod", "execute-api:Invoke"},
		{&timersAPIError{Status: 404}, defaultEndpoint, ""},
	} {
		if got := errorHint(tc.err, tc.endpoint); (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("errorHint(%v, %s) = %q, want one containing %q", tc.err, tc.endpoint, got, tc.want)
		}
	}
	if got := exitCodeOf(refused); got != exitUnavailable {
		t.Errorf("exit code of a refused connection = %d", got)
	}
}

// TestIntegrationTimerCmds puts, gets, describes, lists, fires, pauses,
// resumes and deletes one timer through the commands, against the local
// stack on moto_server. Not parallel: it sets environment variables.
func TestIntegrationTimerCmds(t *testing.T) {
	clients, cfg := motoStack(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards = 2
	log := slog.New(slog.NewJSONHandler(&syncBuffer{}, nil))
	api, done := startLocal(t, ctx, newRouter(cfg, clients, log), cfg, clients, log)
	setTimerCmdEnv(t)
	t.Setenv("CALLCLOCK_ENDPOINT", api)
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		code, out, errs := timersCLI(args...)
		if code != wantCode {
			t.Fatalf("timers %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out, errs)
		}
		return out
	}
	file := filepath.Join(t.TempDir(), "cmd-timer.json")
	os.WriteFile(file, []byte(`{"group":"cmd-group","schedule":"cron(0 9 * * ? *)","timezone":"Europe/Paris","timerCallbackData":{"n":1}}`), 0o600)

	if out := cli(0, "put", "cmd-timer", "-f", file); !strings.HasPrefix(out, "put cmd-timer: version 1, active, next ") {
		t.Fatalf("put: %q", out)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(cli(0, "get", "cmd-timer", "-o", "json")), &doc); err != nil || doc["group"] != "cmd-group" || doc["state"] != StateActive {
		t.Fatalf("get -o json: %v %v", doc, err)
	}
	if out := cli(0, "get", "cmd-timer"); !strings.Contains(out, "Schedule:      cron(0 9 * * ? *)\n") || !strings.Contains(out, "Target:        callback data\n") {
		t.Fatalf("get: %q", out)
	}
	out := cli(0, "describe", "cmd-timer", "--count", "3")
	if !strings.Contains(out, "Upcoming (zone Europe/Paris):\n") || strings.Count(out, "T08:00:00Z")+strings.Count(out, "T09:00:00+01:00")+strings.Count(out, "T07:00:00Z") < 3 ||
		!strings.Contains(out, "Latest outcomes:\n  none\n") {
		t.Fatalf("describe: %q", out)
	}
	if out := cli(0, "list", "--group", "cmd-group"); !strings.HasPrefix(out, "ID ") || !strings.Contains(out, "\ncmd-timer  cmd-group  cron(0 9 * * ? *)  active ") {
		t.Fatalf("list: %q", out)
	}
	if out := cli(0, "fire", "cmd-timer"); !strings.HasPrefix(out, "fired cmd-timer: occurrence ") {
		t.Fatalf("fire: %q", out)
	}
	// wait returns once the manual firing is delivered; then the list's
	// LAST OUTCOME (GET's lastFire) and the history show it.
	if out := cli(0, "wait", "cmd-timer", "--timeout", "30s"); !strings.Contains(out, " delivered (manual) ") {
		t.Fatalf("wait: %q", out)
	}
	if out := cli(0, "list", "--group", "cmd-group"); !strings.Contains(out, " delivered\n") {
		t.Fatalf("list after delivery: %q", out)
	}
	if out := cli(0, "history", "cmd-timer"); !strings.Contains(out, " delivered (manual) ") {
		t.Fatalf("history: %q", out)
	}
	// A past occurrence again (a replay): yesterday's 09:00 in Paris was
	// never delivered, so it is now, and the history says so.
	paris, _ := time.LoadLocation("Europe/Paris")
	y := time.Now().In(paris).AddDate(0, 0, -1)
	past := time.Date(y.Year(), y.Month(), y.Day(), 9, 0, 0, 0, paris).UTC()
	if out := cli(0, "fire", "cmd-timer", "--at", past.Format(time.RFC3339)); !strings.HasPrefix(out, "fired cmd-timer again: past occurrence "+past.Format(time.RFC3339)+" queued as a replay") {
		t.Fatalf("fire --at: %q", out)
	}
	waitFor(t, "the replay delivered", 30*time.Second, func() bool {
		return strings.Contains(cli(0, "history", "cmd-timer"), past.Format("2006-01-02T15:04:05.000Z")+"  ")
	})
	// The API's refusals: a future instant, a bad document.
	code, _, errs := timersCLI("fire", "cmd-timer", "--at", "2099-01-01T08:00:00Z")
	if code != exitUsage || !strings.Contains(errs, "HTTP 400: scheduledAt 2099-01-01T08:00:00Z is in the future") {
		t.Fatalf("fire --at the future: exit %d %s", code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"schedule":"cron(0 9 * * *)","timerCallbackData":{}}`), 0o600)
	if code, _, errs := timersCLI("put", "cmd-timer", "-f", bad); code != exitUsage || !strings.Contains(errs, "HTTP 400: ") {
		t.Fatalf("put a bad document: exit %d %s", code, errs)
	}
	if out := cli(0, "pause", "cmd-timer", "--reason", "maintenance"); !strings.HasPrefix(out, "paused cmd-timer: version ") || !strings.Contains(out, ", paused, next -") {
		t.Fatalf("pause: %q", out)
	}
	if out := cli(0, "get", "cmd-timer"); !strings.Contains(out, "State:         paused (maintenance)\n") {
		t.Fatalf("get after pause: %q", out)
	}
	if out := cli(0, "resume", "cmd-timer"); !strings.HasPrefix(out, "resumed cmd-timer: version ") || !strings.Contains(out, ", active, next 20") {
		t.Fatalf("resume: %q", out)
	}
	if out := cli(0, "delete", "cmd-timer"); out != "deleted cmd-timer\n" {
		t.Fatalf("delete: %q", out)
	}
	cli(exitNotFound, "get", "cmd-timer")
	cli(exitNotFound, "describe", "cmd-timer")
	if out := cli(0, "list", "--group", "cmd-group", "-o", "json"); out != "[]\n" {
		t.Fatalf("list after delete: %q", out)
	}
	if out := cli(0, "list", "--group", "cmd-group"); out != "No timers.\n" {
		t.Fatalf("list table after delete: %q", out)
	}
	// A destination's limit, set, read, listed and deleted; refused when
	// invalid, not found once deleted.
	if out := cli(0, "limit", "set", "cmd-dest", "--per-second", "3"); !strings.Contains(out, "key:        cmd-dest\nper second: 3\n") {
		t.Fatalf("limit set: %q", out)
	}
	if out := cli(0, "limit", "get", "cmd-dest", "-o", "json"); !strings.Contains(out, `"perSecond":3`) {
		t.Fatalf("limit get -o json: %q", out)
	}
	if out := cli(0, "limit", "list"); !strings.Contains(out, "\ncmd-dest ") {
		t.Fatalf("limit list: %q", out)
	}
	cli(exitUsage, "limit", "set", "cmd-dest", "--per-second", "1000")
	cli(0, "limit", "delete", "cmd-dest")
	cli(exitNotFound, "limit", "get", "cmd-dest")
	// Other credentials than the local stack's: denied, and told which.
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	code, _, errs = timersCLI("get", "cmd-timer")
	if code != exitDenied || !strings.Contains(errs, "HTTP 403") || !strings.Contains(errs, "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test") {
		t.Fatalf("wrong credentials: exit %d %s", code, errs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestTimerCmdHelp: each command's -h prints its usage and exits 0, and
// `timers -h` lists them all.
func TestTimerCmdHelp(t *testing.T) {
	cmds := []string{"apply", "get", "describe", "list", "history", "put", "delete", "fire", "wait", "pause", "resume"}
	for _, cmd := range cmds {
		code, out, errs := timersCLI(cmd, "-h")
		if code != 0 || !strings.Contains(out+errs, "usage: bootstrap timers "+cmd+" ") || !strings.Contains(errs, "-endpoint URL") {
			t.Errorf("%s -h: exit %d\n%s%s", cmd, code, out, errs)
		}
	}
	_, out, _ := timersCLI("-h")
	for _, cmd := range cmds {
		if !strings.Contains(out, "  timers "+cmd+" ") {
			t.Errorf("timers -h lacks %s:\n%s", cmd, out)
		}
	}
}

// TestTimersApplyExitCode: a change the API refuses does not stop the
// others, and apply exits with the first failure's code (5 for a 500, as
// every timers command does), naming it.
func TestTimersApplyExitCode(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, map[string]fakeAnswer{
		"GET /periodic":       {200, `{"timers":[]}`},
		"PUT /periodic/a-500": {500, `{"error":{"code":"internal","message":"internal error"}}`},
		"PUT /periodic/b-ok":  {201, `{"id":"b-ok"}`},
	})
	dir := t.TempDir()
	for _, id := range []string{"a-500", "b-ok"} {
		os.WriteFile(filepath.Join(dir, id+".json"), []byte(`{"id":"`+id+`","group":"g","schedule":"rate(1 hour)","timerCallbackData":{}}`), 0o600)
	}
	code, out, errs := timersCLI("apply", "--endpoint", api, dir)
	if code != exitUnavailable || !strings.Contains(out, "created b-ok\nApply: 1 created, 0 updated, 0 deleted.\n") ||
		!strings.Contains(errs, "create a-500: HTTP 500: internal error") || !strings.Contains(errs, "1 change(s) failed, the first: HTTP 500") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	var puts []string
	for _, r := range seen() {
		if r.Method == "PUT" {
			puts = append(puts, r.URI)
		}
	}
	if diff := cmp.Diff([]string{"/periodic/a-500", "/periodic/b-ok"}, puts); diff != "" {
		t.Fatalf("PUTs (-want +got):\n%s", diff)
	}
}
