package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/chromedp/chromedp"
)

// needChromium is the path of a Chromium to drive. Without one the test
// is skipped, except under CI, which must run it (.ci/run installs
// Debian's chromium).
func needChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("the console's browser test needs chromium under CI (apt-get install -y chromium)")
	}
	t.Skip("browser test skipped: no chromium on PATH (apt-get install -y chromium)")
	return ""
}

// startConsoleCmd runs `bootstrap console` against api on a free loopback
// port until ctx ends, and returns its URL, read from its ready line, and
// a channel that yields its exit code.
func startConsoleCmd(t *testing.T, ctx context.Context, api string) (string, <-chan int) {
	t.Helper()
	out, errs := &syncBuffer{}, &syncBuffer{}
	code := make(chan int, 1)
	go func() { code <- runConsole(ctx, []string{"--addr", "127.0.0.1:0", "--endpoint", api}, out, errs) }()
	ready := regexp.MustCompile(`^callclock console on (http://127\.0\.0\.1:[0-9]+) \(API ` + regexp.QuoteMeta(api) + `\)\n$`)
	var url string
	waitFor(t, "the console's ready line", 10*time.Second, func() bool {
		if m := ready.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url != "" || errs.String() != ""
	})
	if url == "" {
		t.Fatalf("bootstrap console: %s", errs.String())
	}
	return url, code
}

// newBrowser starts a headless Chromium with a fresh profile, with the
// flags that work on a CI machine, and returns a tab's context.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The browser starts now, on ctx itself: started by a step's context,
	// it would end with that step's deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

// page drives one tab: each step within a deadline, failing the test
// with what the page showed.
type page struct {
	t   *testing.T
	ctx context.Context
	api *apiClient // for what the test checks or sets up beside the page

	mu     sync.Mutex
	errors []string // the page's exceptions, errors and refusals by its policy
}

// watchConsole records what the page's console shows that a person
// would take for a bug: an uncaught exception, an error the script
// logged, a resource its Content-Security-Policy refused. The network's
// own errors (the API's 400 the form shows) are the test's to check.
func (p *page) watchConsole() {
	msgs := chromedp.Console(p.ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() || m.Source == "security" || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				p.mu.Lock()
				p.errors = append(p.errors, m.String())
				p.mu.Unlock()
			}
		}
	}()
}

// consoleErrors is what watchConsole recorded.
func (p *page) consoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errors...)
}

// do runs actions within 30 s.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\npage text: %s", what, err, p.text("body"))
	}
}

// text is the text the element sel shows ("" if there is none).
func (p *page) text(sel string) string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel)))
	return s
}

// waitText waits until the element sel shows every one of want, within
// 30 s (a sweep, a delivery and the page's refresh on a busy machine).
func (p *page) waitText(sel string, want ...string) {
	p.t.Helper()
	js, _ := json.Marshal(want)
	cond := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && %s.every((w) => e.innerText.includes(w)); })()`, sel, js)
	p.do(fmt.Sprintf("%s shows %q", sel, want), chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
}

// waitJS waits until the JavaScript expression cond is true.
func (p *page) waitJS(what, cond string) {
	p.t.Helper()
	p.do(what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
}

// screenshot saves the page (or element sel) as dir/name, when
// CONSOLE_SCREENSHOTS names a directory.
func (p *page) screenshot(name, sel string) {
	p.t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	var png []byte
	var err error
	if sel == "" {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
}

// TestIntegrationConsoleBrowser drives the console in Chromium against
// the local stack on moto_server: the failures panel shows a failed
// timer; through the page, a timer is created (after an invalid one,
// whose 400 is shown), listed with its schedule in words, opened with its
// upcoming occurrences, paused, fired (its delivery appears in its
// history) and deleted with the confirmation; its group is paused. It
// checks what the page shows. CONSOLE_SCREENSHOTS=DIR also saves the main views there.
func TestIntegrationConsoleBrowser(t *testing.T) {
	chrome := needChromium(t)
	clients, cfg := motoStack(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards = 2
	cfg.AllowPrivateTargets = true // the failing target below is on loopback
	log := slog.New(slog.NewJSONHandler(&syncBuffer{}, nil))
	api, done := startLocal(t, ctx, newRouter(cfg, clients, log), cfg, clients, log)
	setTimerCmdEnv(t)
	client, err := newAPIClient(ctx, api)
	if err != nil {
		t.Fatal(err)
	}
	consoleURL, consoleExit := startConsoleCmd(t, ctx, api)
	broken := addFailedTimer(t, client)
	if os.Getenv("CONSOLE_SCREENSHOTS") != "" {
		screenshotTimers(t, client, clients, cfg, broken)
	}

	p := &page{t: t, ctx: newBrowser(t, chrome), api: client}
	p.watchConsole()
	p.do("open the console", chromedp.Navigate(consoleURL+"/#/"))
	p.waitText("#failures", "Needs attention", "ui-broken", "failed", "status 503")
	p.waitText("#endpoint", "API "+api)
	p.createTimer()
	p.pauseAndFire()
	p.deleteTimer()
	p.pauseGroup()
	if errs := p.consoleErrors(); len(errs) > 0 {
		t.Errorf("the page's console:\n%s", strings.Join(errs, "\n"))
	}

	cancel()
	if code := <-consoleExit; code != exitOK {
		t.Errorf("bootstrap console stopped with exit code %d", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// addFailedTimer adds ui-broken, whose target (on a server it starts)
// fails, fired once and not retried: the failures panel's. It returns
// the target's URL.
func addFailedTimer(t *testing.T, client *apiClient) string {
	t.Helper()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(broken.Close)
	apiCall(t, client, http.MethodPut, "/periodic/ui-broken", `{"group":"ui","schedule":"rate(1 day)","startAt":"2030-01-01T00:00:00Z",`+
		`"retry":{"maxAttempts":0,"maxAgeSeconds":60},"http":{"url":"`+broken.URL+`/hook"}}`)
	apiCall(t, client, http.MethodPost, "/periodic/ui-broken/fire", "")
	waitFor(t, "ui-broken's failed outcome", 20*time.Second, func() bool {
		return strings.Contains(apiCall(t, client, http.MethodGet, "/periodic/ui-broken", ""), `"outcome":"failed"`)
	})
	return broken.URL
}

// createTimer creates ui-daily through the form: first an invalid body,
// whose 400 the form shows, then a valid one, which the table lists with
// its schedule in words.
func (p *page) createTimer() {
	p.t.Helper()
	p.do("open the form", chromedp.Click(chromedp.CSS("#put-form summary")))
	p.do("fill an invalid timer", chromedp.SetValue(chromedp.ID("put-id"), "ui-daily"),
		chromedp.SetValue(chromedp.ID("put-body"), `{"group":"ui","schedule":"cron(0 9 * *)","timerCallbackData":{"n":1}}`),
		chromedp.Click(chromedp.ID("put-submit")))
	p.waitText("#put-error", "cron needs 6 fields")
	p.do("fill a valid timer", chromedp.SetValue(chromedp.ID("put-body"),
		"{\n  \"group\": \"ui\",\n  \"schedule\": \"cron(0 9 * * ? *)\",\n  \"timezone\": \"America/New_York\",\n  \"timerCallbackData\": {\"n\": 1}\n}"),
		chromedp.Click(chromedp.ID("put-submit")))
	p.waitText("#banner", "Created ui-daily (version 1)")
	p.waitText(`tr[data-id="ui-daily"]`, "ui-daily", "ui", "every day at 09:00, America/New_York", "active", "never fired")
	p.screenshot("console-timers.png", "")
	p.screenshot("console-failures.png", "#failures")
}

// pauseAndFire opens ui-daily (its ten upcoming occurrences), pauses it
// (the page shows it paused, with none upcoming), and fires it: by hand,
// it is delivered even while paused, and its history shows the delivery.
func (p *page) pauseAndFire() {
	p.t.Helper()
	p.do("open ui-daily", chromedp.Click(chromedp.CSS(`tr[data-id="ui-daily"] a.mono`)))
	p.waitText("#timer-words", "every day at 09:00, America/New_York")
	p.waitJS("10 upcoming occurrences", `document.querySelectorAll("#upcoming-list li").length === 10`)
	p.waitText("#upcoming", "Upcoming", "zone America/New_York", " 09:00:00-05:00")
	p.waitText("#history", "No delivery yet.")
	p.do("pause", chromedp.Click(chromedp.ID("btn-pause")))
	p.waitText("#timer-state", "paused", "paused from the console")
	p.waitText("#upcoming", "None: the timer is paused.")
	p.waitJS("the resume button", `!!document.getElementById("btn-resume")`)
	p.do("fire", chromedp.Click(chromedp.ID("btn-fire")))
	p.waitText("#banner", "Fired ui-daily")
	p.waitText("#history-table", "delivered", "manual")
	if os.Getenv("CONSOLE_SCREENSHOTS") != "" {
		p.screenshotTimer()
	}
}

// screenshotTimer saves ui-daily's view, with a few deliveries, resumed.
func (p *page) screenshotTimer() {
	t, client := p.t, p.api
	for n := 2; n <= 4; n++ { // a history with a few bars
		apiCall(t, client, http.MethodPost, "/periodic/ui-daily/fire", "")
		waitFor(t, "another delivery", 20*time.Second, func() bool {
			return strings.Count(apiCall(t, client, http.MethodGet, "/periodic/ui-daily/history", ""), `"delivered"`) >= n
		})
	}
	p.do("resume for the screenshot", chromedp.Click(chromedp.ID("btn-resume")))
	p.waitText("#timer-state", "active")
	p.waitJS("10 upcoming occurrences", `document.querySelectorAll("#upcoming-list li").length === 10`)
	p.screenshot("console-timer.png", "")
}

// deleteTimer deletes ui-daily through the confirmation: back on the
// list, it is gone.
func (p *page) deleteTimer() {
	p.t.Helper()
	p.do("delete", chromedp.Click(chromedp.ID("btn-delete")))
	p.waitJS("the confirmation", `document.getElementById("confirm").open`)
	p.waitText("#confirm", "Delete timer ui-daily?")
	p.do("confirm", chromedp.Click(chromedp.ID("confirm-ok")))
	p.waitText("#banner", "Deleted ui-daily")
	p.waitJS("the list without ui-daily", `location.hash === "#/" && !!document.querySelector('tr[data-id="ui-broken"]') && !document.querySelector('tr[data-id="ui-daily"]')`)
	if got := apiErr(p.api, "/periodic/ui-daily"); got != exitNotFound {
		p.t.Errorf("ui-daily after the delete: exit code %d, want not found", got)
	}
}

// pauseGroup opens group ui from the list and pauses it: its one timer
// left shows paused.
func (p *page) pauseGroup() {
	p.t.Helper()
	p.do("open group ui", chromedp.Click(chromedp.CSS(`tr[data-id="ui-broken"] a[href="#/groups/ui"]`)))
	p.waitText("#group-box", "1 timer(s), 0 paused", "ui-broken")
	p.do("pause the group", chromedp.SetValue(chromedp.ID("group-reason"), "deploy 1.4.2"), chromedp.Click(chromedp.ID("group-pause")))
	p.waitText("#banner", "Paused 1 timer(s) of group ui")
	p.waitText("#group-box", "1 timer(s), 1 paused", "deploy 1.4.2")
}

// apiCall makes one signed API call and returns its answer.
func apiCall(t *testing.T, c *apiClient, method, path, body string) string {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	out, err := c.do(context.Background(), method, path, nil, b)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return string(out)
}

// apiErr is the exit code a GET of path ends in.
func apiErr(c *apiClient, path string) int {
	_, err := c.do(context.Background(), http.MethodGet, path, nil, nil)
	return exitCodeOf(err)
}

// screenshotTimers adds timers of each kind, for the screenshots' list,
// one of them retrying a failing target, one with missed occurrences.
func screenshotTimers(t *testing.T, c *apiClient, clients awsClients, cfg Config, broken string) {
	for id, body := range map[string]string{
		"billing-nightly": `{"group":"billing","schedule":"cron(30 2 * * ? *)","timezone":"Europe/Berlin","http":{"method":"POST","url":"https://billing.example.com/run"}}`,
		"partner-poll":    `{"group":"partners","schedule":"rate(5 minutes)","timerCallbackData":{"partner":"acme"}}`,
		"cache-refresh":   `{"group":"partners","minuteOfHour":45,"timerCallbackData":{"cache":"prices"}}`,
		"report-weekdays": `{"group":"reports","schedule":"cron(0 8 ? * MON-FRI *)","timezone":"America/Chicago","http":{"url":"https://reports.example.com/daily"}}`,
		"launch-2027":     `{"group":"marketing","schedule":"at(2027-01-01T00:00:00)","timerCallbackData":{"launch":true}}`,
	} {
		apiCall(t, c, http.MethodPut, "/periodic/"+id, body)
	}
	apiCall(t, c, http.MethodPut, "/periodic/partner-webhook", `{"group":"partners","schedule":"cron(0 */6 * * ? *)",`+
		`"retry":{"maxAttempts":20,"maxAgeSeconds":3600},"http":{"method":"POST","url":"`+broken+`/partner"}}`)
	apiCall(t, c, http.MethodPost, "/periodic/partner-webhook/fire", "")
	waitFor(t, "partner-webhook's first attempt", 20*time.Second, func() bool {
		return strings.Contains(apiCall(t, c, http.MethodGet, "/periodic/partner-webhook", ""), `"outcome":"retrying"`)
	})
	// Missed occurrences are the sweeper's to record (after missed
	// sweeps); the screenshot's are written in the timer's item.
	if _, err := clients.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: &cfg.Table, Key: timerKey("cache-refresh"),
		UpdateExpression: aws.String("SET missedCount = :n, lastMissedAt = :at"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":n":  &types.AttributeValueMemberN{Value: "2"},
			":at": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(-40*time.Minute).Unix(), 10)},
		},
	}); err != nil {
		t.Fatal(err)
	}
}
