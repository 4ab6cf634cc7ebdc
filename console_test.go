package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// consoleFor serves a Console whose client calls api with the SDK's
// credential chain (setTimerCmdEnv's testCreds), and returns its URL.
func consoleFor(t *testing.T, api string) string {
	t.Helper()
	client, err := newAPIClient(context.Background(), api)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = &Console{API: client, Endpoint: client.Endpoint, Hosts: consoleHosts(srv.Listener.Addr()),
		Now: func() time.Time { return time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC) }}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

// consoleReq makes one request to the console as its page would (its
// header on a state-changing one), with extra headers; it returns the
// status and the body.
func consoleReq(t *testing.T, method, u, body string, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if method != http.MethodGet {
		req.Header.Set(consoleHeader, "1")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestConsoleAssets: the page and its files are served from the binary,
// with a policy that keeps the page to its own origin, and none of them
// loads anything from elsewhere.
func TestConsoleAssets(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	con := consoleFor(t, api)
	for path, want := range map[string]string{"/": "<title>callclock console</title>", "/console.js": "X-Callclock-Console", "/console.css": "--accent"} {
		status, body, h := consoleReq(t, http.MethodGet, con+path, "", nil)
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, status, want)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if status, _, _ := consoleReq(t, http.MethodGet, con+"/no-such-file.js", "", nil); status != http.StatusNotFound {
		t.Errorf("a missing file: %d", status)
	}
	if n := len(seen()); n != 0 {
		t.Errorf("serving the page called the API %d times", n)
	}
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|@import|fetch\(\s*["'` + "`" + `]https?:`)
	fs.WalkDir(consoleFiles, "console", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := consoleFiles.ReadFile(path)
		if m := external.Find(b); m != nil {
			t.Errorf("%s loads from elsewhere: %q", path, m)
		}
		return nil
	})
}

// TestConsoleForwardSigns: each call the page makes reaches the API as
// sent (method, escaped path, query, body), signed: the fake API checks
// every signature with the local stack's verifier. Signed with another
// secret, the API's 403 comes back as it answered.
func TestConsoleForwardSigns(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	con := consoleFor(t, api)
	calls := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/api/periodic/t1", "", 200, fakeTimer},
		{"PUT", "/api/periodic/t1", `{"schedule":"cron(0 9 * * ? *)"}`, 200, fakeTimer},
		{"POST", "/api/periodic/t1/pause", `{"reason":"deploy"}`, 200, fakePaused},
		{"POST", "/api/periodic/t1/fire", "", 200, fakeFire},
		{"DELETE", "/api/periodic/t1", "", 200, `"t1"`},
		{"POST", "/api/groups/g/pause", "", 200, `{"group":"g","action":"pause","timers":2,"changed":1}`},
		{"GET", "/api/periodic?cursor=c2&limit=500", "", 200, `{"timers":[` + fakeHourly + `],"cursor":"c3"}`},
		{"GET", "/api/periodic/t1/upcoming?count=10", "", 200, fakeUp},
		{"GET", "/api/periodic/a%3Ab", "", 404, `{"error":{"code":"not_found","message":"no route GET /periodic/a:b"}}` + "\n"},
		{"GET", "/api/limits", "", 200, fakeRoutes["GET /limits"].body},
		{"PUT", "/api/limits/example", `{"inFlight":1}`, 200, fakeRoutes["PUT /limits/example"].body},
		{"DELETE", "/api/limits/example", "", 200, `"example"`},
	}
	for _, c := range calls {
		status, body, _ := consoleReq(t, c.method, con+c.path, c.body, nil)
		if status != c.status || body != c.want {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, status, body, c.status, c.want)
		}
	}
	want := []fakeRequest{
		{"GET", "/periodic/t1", ""}, {"PUT", "/periodic/t1", `{"schedule":"cron(0 9 * * ? *)"}`},
		{"POST", "/periodic/t1/pause", `{"reason":"deploy"}`}, {"POST", "/periodic/t1/fire", ""}, {"DELETE", "/periodic/t1", ""},
		{"POST", "/groups/g/pause", ""}, {"GET", "/periodic?cursor=c2&limit=500", ""}, {"GET", "/periodic/t1/upcoming?count=10", ""},
		{"GET", "/periodic/a%3Ab", ""},
		{"GET", "/limits", ""}, {"PUT", "/limits/example", `{"inFlight":1}`}, {"DELETE", "/limits/example", ""},
	}
	if d := cmp.Diff(want, seen()); d != "" {
		t.Errorf("requests the API saw (-want +got):\n%s", d)
	}

	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	status, body, _ := consoleReq(t, "GET", consoleFor(t, api)+"/api/periodic/t1", "", nil)
	if status != http.StatusForbidden || !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, "signature") {
		t.Errorf("signed with another secret: %d %s", status, body)
	}
}

// TestConsoleErrors: the API's errors reach the page as its JSON error,
// with its status; an API that does not answer is a 502 that says what
// to do.
func TestConsoleErrors(t *testing.T) {
	setTimerCmdEnv(t)
	api, _ := fakeTimersAPI(t, fakeRoutes)
	con := consoleFor(t, api)
	for _, c := range []struct {
		method, path string
		status       int
		want         consoleError
	}{
		{"PUT", "/api/periodic/bad", 400, consoleError{Error: apiErrorBody{EINVALID, "schedule is required"}}},
		{"GET", "/api/periodic/gone", 404, consoleError{Error: apiErrorBody{ENOTFOUND, "timer gone not found"}}},
		{"POST", "/api/periodic/busy/resume", 409, consoleError{Error: apiErrorBody{ECONFLICT, "version changed"}}},
		{"GET", "/api/periodic/iam", 403, consoleError{Error: apiErrorBody{EFORBIDDEN, "User: arn:aws:iam::1:user/x is not authorized to perform: execute-api:Invoke"},
			Hint: "the local stack accepts requests signed with AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test: export them"}},
		{"GET", "/api/periodic/gw", 502, consoleError{Error: apiErrorBody{EBADGATEWAY, "Bad Gateway"}}},
		{"GET", "/console/timer?id=gone", 404, consoleError{Error: apiErrorBody{ENOTFOUND, "timer gone not found"}}},
		{"GET", "/console/timer", 400, consoleError{Error: apiErrorBody{EINVALID, "id is required"}}},
		{"GET", "/console/timer?id=nojson", 502, consoleError{Error: apiErrorBody{EBADGATEWAY, "the API's timer is not the JSON expected: invalid character 'o' in literal null (expecting 'u')"}}},
	} {
		status, body, _ := consoleReq(t, c.method, con+c.path, "", nil)
		var got consoleError
		json.Unmarshal([]byte(body), &got)
		if status != c.status || !cmp.Equal(got, c.want) {
			t.Errorf("%s %s: %d %s, want %d %+v", c.method, c.path, status, body, c.status, c.want)
		}
	}

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing answers there now
	status, body, _ := consoleReq(t, "GET", consoleFor(t, down)+"/console/timers", "", nil)
	var got consoleError
	json.Unmarshal([]byte(body), &got)
	want := consoleError{Error: apiErrorBody{EBADGATEWAY, "the API at " + down + " does not answer: start the local stack with make run"}}
	if status != http.StatusBadGateway || !cmp.Equal(got, want) {
		t.Errorf("API down: %d %s", status, body)
	}
}

// TestConsoleGuards: the console refuses what a hostile page could send
// through the operator's browser (another Host, another site or origin,
// a state-changing call without its header) and what is no API path; the
// API sees none of them. Its own page's calls go through.
func TestConsoleGuards(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	con := consoleFor(t, api)
	self := strings.TrimPrefix(con, "http://")
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
		status             int
	}{
		{"DNS rebinding", "GET", "/api/periodic/t1", map[string]string{"Host": "evil.example:" + portOf(self)}, 403},
		{"DNS rebinding, the page", "GET", "/", map[string]string{"Host": "evil.example"}, 403},
		{"no console header", "POST", "/api/periodic/t1/fire", map[string]string{consoleHeader: ""}, 403},
		{"no console header, delete", "DELETE", "/api/periodic/t1", map[string]string{consoleHeader: ""}, 403},
		{"another origin", "POST", "/api/periodic/t1/fire", map[string]string{"Origin": "http://evil.example"}, 403},
		{"another port", "PUT", "/api/periodic/t1", map[string]string{"Origin": "http://127.0.0.1:1"}, 403},
		{"cross-site read", "GET", "/console/timers", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site read", "GET", "/api/periodic/t1", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"cross-site write", "POST", "/api/periodic/t1/fire", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"no console header, a limit's PUT", "PUT", "/api/limits/example", map[string]string{consoleHeader: ""}, 403},
		{"no console header, a limit's delete", "DELETE", "/api/limits/example", map[string]string{consoleHeader: ""}, 403},
		{"another origin, a limit", "DELETE", "/api/limits/example", map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site, the limits", "GET", "/api/limits", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"cross-site, the limits' view", "GET", "/console/limits", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"DNS rebinding, a limit", "PUT", "/api/limits/example", map[string]string{"Host": "evil.example:" + portOf(self)}, 403},
		{"a limit's dot-dot", "DELETE", "/api/limits/%2E%2E", nil, 400},
		{"a path beside the limits", "GET", "/api/limitsx", nil, 404},
		{"another method on a limit", "PATCH", "/api/limits/example", nil, 405},
		{"not the API's tree", "GET", "/api/other", nil, 404},
		{"a dot-dot segment", "GET", "/api/periodic/%2E%2E", nil, 400},
		{"an empty segment", "GET", "/api/periodic//history", nil, 400},
		{"an escaped slash", "GET", "/api/periodic/a%2Fb", nil, 400},
		{"another method", "PATCH", "/api/periodic/t1", nil, 405},
		{"a write to the page", "POST", "/", nil, 405},
		{"a write to an aggregate", "POST", "/console/timers", nil, 405},
	} {
		status, body, _ := consoleReq(t, c.method, con+c.path, "", c.header)
		if status != c.status || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, c.status)
		}
	}
	if got := seen(); len(got) != 0 {
		t.Errorf("the API saw refused requests: %v", got)
	}
	for _, c := range []struct {
		name, method, path string
		header             map[string]string
	}{
		{"the page's write", "POST", "/api/periodic/t1/fire", map[string]string{"Origin": con, "Sec-Fetch-Site": "same-origin"}},
		{"the page's limit", "PUT", "/api/limits/example", map[string]string{"Origin": con, "Sec-Fetch-Site": "same-origin"}},
		{"the page by localhost", "GET", "/api/periodic/t1", map[string]string{"Host": "localhost:" + portOf(self)}},
		{"a navigation from elsewhere", "GET", "/", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	} {
		if status, body, _ := consoleReq(t, c.method, con+c.path, "", c.header); status/100 != 2 {
			t.Errorf("%s: %d %s, want it served", c.name, status, body)
		}
	}
}

// portOf is the port of host:port.
func portOf(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

// TestCheckLoopback: the console listens on loopback only.
func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8081": true, "127.0.0.2:80": true, "[::1]:8081": true, "localhost:0": true,
		"0.0.0.0:8081": false, ":8081": false, "[::]:8081": false, "192.168.1.10:8081": false, "example.com:80": false, "8081": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v", addr, err)
		}
	}
	// Cancelled already, so that a console that did start would stop.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errs strings.Builder
	if code := runConsole(ctx, []string{"--addr", "0.0.0.0:0"}, &out, &errs); code != exitUsage ||
		!strings.Contains(errs.String(), "is not a loopback address") || out.String() != "" {
		t.Errorf("--addr 0.0.0.0:0: exit %d, %q", code, errs.String())
	}
	if code := runConsole(ctx, []string{"--endpoint", "ftp://x"}, &out, &errs); code != exitUsage {
		t.Errorf("--endpoint ftp://x: exit %d", code)
	}
}

// TestRunConsole: the command prints its ready line, serves, and stops
// cleanly when its context ends (Ctrl-C).
func TestRunConsole(t *testing.T) {
	setTimerCmdEnv(t)
	api, _ := fakeTimersAPI(t, fakeRoutes)
	t.Setenv("CALLCLOCK_ENDPOINT", api)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	code := make(chan int, 1)
	go func() { code <- runConsole(ctx, []string{"--addr", "127.0.0.1:0"}, &out, &errs) }()
	ready := regexp.MustCompile(`^callclock console on (http://127\.0\.0\.1:\d+) \(API ` + regexp.QuoteMeta(api) + `\)\n$`)
	waitFor(t, "the ready line", 10*time.Second, func() bool { return ready.MatchString(out.String()) || errs.String() != "" })
	m := ready.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("stdout %q, stderr %q", out.String(), errs.String())
	}
	if status, body, _ := consoleReq(t, "GET", m[1]+"/console/info", "", nil); status != 200 || body != `{"endpoint":"`+api+`"}`+"\n" {
		t.Errorf("/console/info: %d %s", status, body)
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d: %s", c, errs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bootstrap console did not stop")
	}
	var help strings.Builder
	if c := run(context.Background(), []string{"-h"}, nil, &help, &help, nil); c != 0 || !strings.Contains(help.String(), "bootstrap console ") {
		t.Errorf("usage: %d %s", c, help.String())
	}
}

// TestConsoleTimersAggregate: the timers aggregate follows every page of
// the list, GETs each timer for its last outcome, says each schedule in
// words, drops a timer deleted meanwhile, counts its API calls, and
// computes the failures panel.
func TestConsoleTimersAggregate(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	con := consoleFor(t, api)
	status, body, _ := consoleReq(t, "GET", con+"/console/timers", "", nil)
	var got consoleTimers
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	words := map[string]string{}
	for _, tm := range got.Timers {
		words[str(tm, "id")] = str(tm, "scheduleWords") + " / " + lastOutcome(tm)
	}
	// t3 is listed but its GET answers 404: deleted since the list.
	if d := cmp.Diff(map[string]string{"t1": "every day at 09:00, Europe/Paris / delivered (200)", "t2": "every hour at minute 7 / failed (503)"}, words); d != "" {
		t.Errorf("timers (-want +got):\n%s", d)
	}
	wantFailures := []consoleFailure{{TimerID: "t2", Group: "h", Kind: OutcomeFailed, At: time.Date(2026, 12, 1, 7, 7, 0, 0, time.UTC), Detail: "attempt 185, status 503"}}
	if d := cmp.Diff(wantFailures, got.Failures); d != "" || got.APICalls != 6 || got.Truncated {
		t.Errorf("failures (-want +got):\n%s\napiCalls %d (want 3 pages + 3 GETs), truncated %v", d, got.APICalls, got.Truncated)
	}
	if n := len(seen()); n != got.APICalls {
		t.Errorf("the API saw %d calls, the answer counts %d", n, got.APICalls)
	}

	// A prefix filters before the GETs; group and state go to the list.
	before := len(seen())
	_, body, _ = consoleReq(t, "GET", con+"/console/timers?prefix=t1&group=g&state=active", "", nil)
	json.Unmarshal([]byte(body), &got)
	calls := seen()[before:]
	if len(got.Timers) != 1 || got.APICalls != 4 || calls[0].URI != "/periodic?group=g&limit=500&state=active" || calls[3].URI != "/periodic/t1" {
		t.Errorf("prefix t1: %d timers, %d calls: %v", len(got.Timers), got.APICalls, calls)
	}
}

// countingAPI answers a list of n timers on one page and each GET, and
// records the most GETs in flight at once.
type countingAPI struct {
	n                 int
	inFlight, maxSeen atomic.Int32
	mu                sync.Mutex
	gets              int
}

func (c *countingAPI) do(ctx context.Context, method, path string, q url.Values, body []byte) ([]byte, error) {
	if path == "/periodic" {
		var ts []string
		for i := range c.n {
			ts = append(ts, fmt.Sprintf(`{"id":"t%03d"}`, i))
		}
		return []byte(`{"timers":[` + strings.Join(ts, ",") + `]}`), nil
	}
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for m := c.maxSeen.Load(); n > m && !c.maxSeen.CompareAndSwap(m, n); m = c.maxSeen.Load() {
	}
	time.Sleep(5 * time.Millisecond) // so that the GETs overlap
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return []byte(`{"id":"` + strings.TrimPrefix(path, "/periodic/") + `","schedule":"rate(5 minutes)","state":"active"}`), nil
}

// TestConsoleLookupsBounded: the aggregate's GETs run at most
// timerLookups at a time, one per timer.
func TestConsoleLookupsBounded(t *testing.T) {
	api := &countingAPI{n: 40}
	c := &Console{API: api, Now: time.Now}
	out, err := c.timers(context.Background(), "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Timers) != 40 || api.gets != 40 || out.APICalls != 41 {
		t.Errorf("%d timers, %d GETs, %d calls counted", len(out.Timers), api.gets, out.APICalls)
	}
	if m := api.maxSeen.Load(); m > timerLookups || m < 2 {
		t.Errorf("%d GETs in flight at most, want 2 to %d", m, timerLookups)
	}
}

// TestFailuresOf: failed and retrying last outcomes and missed
// occurrences since the cut-off, newest first; older ones and deliveries
// left out.
func TestFailuresOf(t *testing.T) {
	var docs []map[string]any
	json.Unmarshal([]byte(`[
	 {"id":"a","group":"g","lastFire":{"outcome":"failed","attempt":3,"status":500,"error":"boom","attemptedAt":"2026-12-01T10:00:00.5Z"}},
	 {"id":"b","lastFire":{"outcome":"retrying","attempt":1,"attemptedAt":"2026-12-01T11:00:00Z"},"missedCount":1,"lastMissedAt":"2026-12-01T09:00:00Z"},
	 {"id":"c","lastFire":{"outcome":"delivered","attempt":1,"attemptedAt":"2026-12-01T12:00:00Z"},"missedCount":4,"lastMissedAt":"2026-12-01T12:30:00Z"},
	 {"id":"old","lastFire":{"outcome":"failed","attempt":1,"attemptedAt":"2026-11-01T00:00:00Z"},"missedCount":2,"lastMissedAt":"2026-11-02T00:00:00Z"},
	 {"id":"self","state":"paused","pausedAt":"2026-12-01T13:00:00Z","pauseReason":"paused after 3 consecutive failed occurrences: POST https://x.example/: status 503"},
	 {"id":"byhand","state":"paused","pausedAt":"2026-12-01T14:00:00Z","pauseReason":"deploy"},
	 {"id":"resumed","state":"active","pauseReason":"paused after 3 consecutive failed occurrences: boom"}
	]`), &docs)
	at := func(h, m int, ns int) time.Time { return time.Date(2026, 12, 1, h, m, 0, ns, time.UTC) }
	want := []consoleFailure{
		{TimerID: "self", Kind: consolePaused, At: at(13, 0, 0), Detail: "paused after 3 consecutive failed occurrences: POST https://x.example/: status 503"},
		{TimerID: "c", Kind: OutcomeMissed, At: at(12, 30, 0), Detail: "4 occurrences missed (later than the catch-up window)"},
		{TimerID: "b", Kind: OutcomeRetrying, At: at(11, 0, 0), Detail: "attempt 1"},
		{TimerID: "a", Group: "g", Kind: OutcomeFailed, At: at(10, 0, 5e8), Detail: "attempt 3, status 500: boom"},
		{TimerID: "b", Kind: OutcomeMissed, At: at(9, 0, 0), Detail: "1 occurrence missed (later than the catch-up window)"},
	}
	if d := cmp.Diff(want, failuresOf(docs, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC))); d != "" {
		t.Errorf("failures (-want +got):\n%s", d)
	}
}

// TestConsoleTimerAggregate: one timer's page is its document (with its
// schedule in words, and as the API sent it), its next 10 occurrences and
// its history: three calls.
func TestConsoleTimerAggregate(t *testing.T) {
	setTimerCmdEnv(t)
	api, seen := fakeTimersAPI(t, fakeRoutes)
	status, body, _ := consoleReq(t, "GET", consoleFor(t, api)+"/console/timer?id=t1", "", nil)
	var got struct {
		Timer    map[string]any
		Document json.RawMessage
		Upcoming UpcomingList
		History  historyAnswer
		APICalls int
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if str(got.Timer, "scheduleWords") != "every day at 09:00, Europe/Paris" || string(got.Document) != fakeTimer ||
		len(got.Upcoming.Upcoming) != 2 || len(got.History.History) != 2 || got.APICalls != 3 {
		t.Errorf("%s", body)
	}
	want := []fakeRequest{{"GET", "/periodic/t1", ""}, {"GET", "/periodic/t1/upcoming?count=10", ""}, {"GET", "/periodic/t1/history", ""}}
	if d := cmp.Diff(want, seen()); d != "" {
		t.Errorf("calls (-want +got):\n%s", d)
	}
}

// TestConsoleTimerDelivery: one timer's page says its delivery controls
// as the Go code computes them: the spread offset spread.go delivers at,
// the limit's key, the signing secrets' parameter names (never their
// values), and nothing for a timer that sets none.
func TestConsoleTimerDelivery(t *testing.T) {
	setTimerCmdEnv(t)
	api, _ := fakeTimersAPI(t, fakeRoutes)
	con := consoleFor(t, api)
	var got struct {
		Timer struct {
			Delivery consoleDelivery `json:"delivery"`
		} `json:"timer"`
	}
	status, body, _ := consoleReq(t, "GET", con+"/console/timer?id=t5", "", nil)
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	off := 88
	want := consoleDelivery{SpreadSeconds: 300, SpreadOffsetSeconds: &off, Spread: spreadLine("t5", 300), LimitKey: "example",
		SigningSecret: "/callclock/key-2", PreviousSecret: "/callclock/key-1"}
	if d := cmp.Diff(want, got.Timer.Delivery); d != "" || int(spreadOffset("t5", 300)/time.Second) != off {
		t.Errorf("t5's delivery (-want +got):\n%s", d)
	}
	_, body, _ = consoleReq(t, "GET", con+"/console/timer?id=t1", "", nil)
	if !strings.Contains(body, `"delivery":{}`) {
		t.Errorf("t1 sets no delivery control: %s", body)
	}
}

// TestWithDelivery: the overlap branch's fields show when the document
// has them, a timer paused by its pauseAfterFailures is marked, and a
// signing secret that is no single placeholder shows as set, not as
// written.
func TestWithDelivery(t *testing.T) {
	var doc map[string]any
	json.Unmarshal([]byte(`{"id":"p","state":"paused","overlap":"skip","pauseAfterFailures":3,
	 "pauseReason":"paused after 3 consecutive failed occurrences: status 503",
	 "http":{"url":"https://x.example/","signing":{"secret":"s3cr3t-value"}}}`), &doc)
	want := consoleDelivery{Overlap: "skip", PauseAfterFailures: 3, SelfPaused: true, SigningSecret: "(set)"}
	if d := cmp.Diff(want, withDelivery(doc)["delivery"]); d != "" {
		t.Errorf("delivery (-want +got):\n%s", d)
	}
}

// mapAPI answers "METHOD PATH" from its map, and counts its calls.
type mapAPI struct {
	answers map[string]string
	calls   atomic.Int32
}

func (m *mapAPI) do(ctx context.Context, method, path string, q url.Values, body []byte) ([]byte, error) {
	m.calls.Add(1)
	b, ok := m.answers[method+" "+path]
	if !ok {
		return nil, Errorf(ENOTFOUND, "no route %s %s", method, path)
	}
	return []byte(b), nil
}

// TestConsoleLimitsAggregate: the destinations' view is the API's limits,
// each with the timers naming its key (none for a limit no timer names),
// and the keys timers name with no limit set; its calls counted. A
// deployment without limits answers the API's 404.
func TestConsoleLimitsAggregate(t *testing.T) {
	api := &mapAPI{answers: map[string]string{
		"GET /limits":      `{"limits":[{"key":"example","perSecond":2},{"key":"idle","inFlight":1}]}`,
		"GET /periodic":    `{"timers":[{"id":"t5"},{"id":"t6"},{"id":"t7"},{"id":"t8"}]}`,
		"GET /periodic/t5": `{"id":"t5","http":{"url":"https://a.example/","limitKey":"example"}}`,
		"GET /periodic/t6": `{"id":"t6","http":{"url":"https://b.example/","limitKey":"other"}}`,
		"GET /periodic/t7": `{"id":"t7","timerCallbackData":{}}`,
		"GET /periodic/t8": `{"id":"t8","http":{"url":"https://a.example/2","limitKey":"example"}}`,
	}}
	c := &Console{API: api, Now: time.Now}
	got, err := c.limits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &consoleLimits{
		Limits: []map[string]any{
			{"key": "example", "perSecond": 2.0, "timers": []string{"t5", "t8"}},
			{"key": "idle", "inFlight": 1.0, "timers": []string{}},
		},
		Unlimited: []consoleKey{{Key: "other", Timers: []string{"t6"}}},
		APICalls:  6,
	}
	if d := cmp.Diff(want, got); d != "" || int(api.calls.Load()) != got.APICalls {
		t.Errorf("limits (-want +got):\n%s\n%d calls made", d, api.calls.Load())
	}

	delete(api.answers, "GET /limits")
	if _, err := c.limits(context.Background()); ErrorCode(err) != ENOTFOUND {
		t.Errorf("no limits: %v", err)
	}
}
