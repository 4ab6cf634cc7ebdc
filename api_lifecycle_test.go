package main

// Tests of the timer lifecycle: pausing and resuming a timer, firing it by
// hand, and their routes. Groups are api_group_test.go's, the invoker's
// side of a pause http_invoke_paused_test.go's. Helpers here are prefixed
// "lc" so as not to meet others'.

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// lcPutAt is when the tests' timers are created; minute 45 then first
// fires at 10:45.
var lcPutAt = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)

// lcPauseAt has a fraction of a second, which pausedAt drops.
var lcPauseAt = time.Date(2026, 11, 22, 10, 31, 7, 250e6, time.UTC)

// lcResumeAt is after 10:45, the occurrence that fell while paused.
var lcResumeAt = time.Date(2026, 11, 22, 10, 50, 0, 123456789, time.UTC)

// lcFireQueueURL is the fire queue the lifecycle tests' API sends to.
const lcFireQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/callclock-fire"

// lcDoc is the timer document with the lifecycle fields timerDoc lacks.
type lcDoc struct {
	timerDoc
	Group       string  `json:"group"`
	PausedAt    *string `json:"pausedAt"`
	PauseReason string  `json:"pauseReason"`
}

// lcDocOpts compare lcDocs: callback data as text.
var lcDocOpts = cmp.Options{rawAsString, cmp.AllowUnexported(lcDoc{})}

// decodeLCDoc decodes a timer document strictly, lifecycle fields and all.
func decodeLCDoc(t *testing.T, resp events.APIGatewayProxyResponse) lcDoc {
	t.Helper()
	var d lcDoc
	decodeStrict(t, resp.Body, &d)
	return d
}

// groupResult is the body of POST /groups/{group}/pause or /resume.
type groupResult struct {
	Group   string `json:"group"`
	Action  string `json:"action"`
	Timers  int    `json:"timers"`
	Changed int    `json:"changed"`
}

// fireResult is the body of POST /periodic/{id}/fire.
type fireResult struct {
	TimerID        string `json:"timerId"`
	ScheduledAt    string `json:"scheduledAt"`
	Manual         bool   `json:"manual"`
	Replay         bool   `json:"replay,omitempty"`
	IdempotencyKey string `json:"idempotencyKey"`
}

// lcEnv is a test API whose clock the test moves, with a fire sender.
type lcEnv struct {
	*testAPI
	clock *testClock
	fires *sqsSender
}

// newLCEnv returns a test API at lcPutAt with a clock the test moves.
func newLCEnv(t *testing.T) *lcEnv {
	t.Helper()
	clock := newTestClock(lcPutAt)
	a := newTestAPI(lcPutAt, 1)
	a.Now = clock.Now
	fires := &sqsSender{}
	a.Fire, a.FireQueueURL = fires, lcFireQueueURL
	return &lcEnv{testAPI: a, clock: clock, fires: fires}
}

// must sends one request, fails the test unless it gets status want, and
// returns the response.
func (e *lcEnv) must(t *testing.T, method, path, body string, want int) events.APIGatewayProxyResponse {
	t.Helper()
	resp := e.call(t, method, path, body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, resp.Body)
	}
	return resp
}

// put creates or replaces timer id with body and returns its document.
func (e *lcEnv) put(t *testing.T, id, body string) lcDoc {
	t.Helper()
	resp := e.call(t, http.MethodPut, "/periodic/"+id, body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: status %d; body %s", id, resp.StatusCode, resp.Body)
	}
	return decodeLCDoc(t, resp)
}

// get returns timer id's document.
func (e *lcEnv) get(t *testing.T, id string) lcDoc {
	t.Helper()
	return decodeLCDoc(t, e.must(t, http.MethodGet, "/periodic/"+id, "", http.StatusOK))
}

// storeCalls returns the store's calls so far.
func (e *lcEnv) storeCalls() []string {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	return slices.Clone(e.store.calls)
}

// lifecycleCalls returns the Pause and Resume calls among calls.
func lifecycleCalls(calls []string) []string {
	var out []string
	for _, c := range calls {
		if strings.HasPrefix(c, "Pause ") || strings.HasPrefix(c, "Resume ") {
			out = append(out, c)
		}
	}
	return out
}

// paused returns d as a pause at at with reason would leave it.
func paused(d lcDoc, at, reason string) lcDoc {
	d.State, d.NextFireAt, d.PausedAt, d.PauseReason = StatePaused, nil, &at, reason
	return d
}

// ---------------------------------------------------------------- pause

func TestAPILifecyclePause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantReason string
	}{
		{name: "no body"},
		{name: "whitespace body", body: " \n\t"},
		{name: "empty object", body: `{}`},
		{name: "empty reason", body: `{"reason":""}`},
		{name: "with reason", body: `{"reason":"deploy 1.4.2"}`, wantReason: "deploy 1.4.2"},
		{name: "reason of 256 characters", body: `{"reason":"` + strings.Repeat("r", 256) + `"}`, wantReason: strings.Repeat("r", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			created := e.put(t, "t1", `{"timerCallbackData":{"k":1},"minuteOfHour":45}`)
			e.clock.Set(lcPauseAt)

			resp := e.must(t, http.MethodPost, "/periodic/t1/pause", tt.body, http.StatusOK)

			want := paused(created, "2026-11-22T10:31:07Z", tt.wantReason)
			if diff := cmp.Diff(want, decodeLCDoc(t, resp), lcDocOpts); diff != "" {
				t.Errorf("pause response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, e.get(t, "t1"), lcDocOpts); diff != "" {
				t.Errorf("GET after pause (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPILifecyclePauseAgainKeepsFirstPausedAt(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	created := e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45}`)
	steps := []struct {
		at         time.Time
		body       string
		wantReason string
	}{
		{lcPauseAt, `{"reason":"first"}`, "first"},
		{lcPauseAt.Add(9 * time.Minute), `{"reason":"second"}`, "second"}, // a new reason is taken
		{lcPauseAt.Add(20 * time.Minute), ``, "second"},                   // no reason keeps the last
	}
	for i, s := range steps {
		e.clock.Set(s.at)
		resp := e.must(t, http.MethodPost, "/periodic/t1/pause", s.body, http.StatusOK)
		want := paused(created, "2026-11-22T10:31:07Z", s.wantReason)
		if diff := cmp.Diff(want, decodeLCDoc(t, resp), lcDocOpts); diff != "" {
			t.Errorf("pause %d at %s (-want +got):\n%s", i+1, s.at.Format(time.RFC3339), diff)
		}
	}
}

func TestAPILifecyclePauseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		id       string // default t1, which exists
		body     string
		wantCode string
		wantMsg  string
	}{
		{name: "reason of 257 characters", body: `{"reason":"` + strings.Repeat("r", 257) + `"}`, wantCode: EINVALID, wantMsg: "at most 256"},
		{name: "malformed JSON", body: `{"reason":`, wantCode: EINVALID, wantMsg: "malformed JSON"},
		{name: "not an object", body: `"deploy"`, wantCode: EINVALID, wantMsg: "malformed JSON"},
		{name: "reason not a string", body: `{"reason":42}`, wantCode: EINVALID, wantMsg: "malformed JSON"},
		{name: "unknown field", body: `{"reason":"x","until":"tomorrow"}`, wantCode: EINVALID, wantMsg: "until"},
		{name: "trailing data", body: `{"reason":"x"}{}`, wantCode: EINVALID, wantMsg: "after the JSON object"},
		{name: "missing timer", id: "nope", body: `{"reason":"x"}`, wantCode: ENOTFOUND, wantMsg: "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			before := e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45}`)
			id := tt.id
			if id == "" {
				id = "t1"
			}
			e.clock.Set(lcPauseAt)

			resp := e.call(t, http.MethodPost, "/periodic/"+id+"/pause", tt.body)

			if want := errorStatus(tt.wantCode); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			if got := decodeError(t, resp); got.Code != tt.wantCode || !strings.Contains(got.Message, tt.wantMsg) {
				t.Errorf("error %+v, want code %q with a message containing %q", got, tt.wantCode, tt.wantMsg)
			}
			if diff := cmp.Diff(before, e.get(t, "t1"), lcDocOpts); diff != "" {
				t.Errorf("t1 changed by a refused pause (-before +after):\n%s", diff)
			}
		})
	}
}

// TestAPILifecyclePauseReasonLimitCountsCharacters: the limit says "256
// characters", so 256 two-byte characters are within it.
func TestAPILifecyclePauseReasonLimitCountsCharacters(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45}`)
	reason := strings.Repeat("é", 256)
	resp := e.call(t, http.MethodPost, "/periodic/t1/pause", `{"reason":"`+reason+`"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", resp.StatusCode, resp.Body)
	}
	if got := decodeLCDoc(t, resp).PauseReason; got != reason {
		t.Errorf("pauseReason %q, want %q", got, reason)
	}
}

// ---------------------------------------------------------------- resume

func TestAPILifecycleResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		put      string
		resumeAt time.Time
		wantNext string
	}{
		{
			name:     "occurrence fell while paused: skipped, not caught up",
			put:      `{"timerCallbackData":1,"minuteOfHour":45}`,
			resumeAt: lcResumeAt,
			wantNext: "2026-11-22T11:45:00Z",
		},
		{
			name:     "resumed before the occurrence",
			put:      `{"timerCallbackData":1,"minuteOfHour":45}`,
			resumeAt: time.Date(2026, 11, 22, 10, 44, 59, 999e6, time.UTC),
			wantNext: "2026-11-22T10:45:00Z",
		},
		{
			name:     "resumed exactly on an occurrence: strictly after",
			put:      `{"timerCallbackData":1,"minuteOfHour":45}`,
			resumeAt: time.Date(2026, 11, 22, 11, 45, 0, 0, time.UTC),
			wantNext: "2026-11-22T12:45:00Z",
		},
		{
			name:     "cron in a zone",
			put:      `{"timerCallbackData":1,"schedule":"cron(0 9 * * ? *)","timezone":"America/New_York"}`,
			resumeAt: lcResumeAt,
			wantNext: "2026-11-22T14:00:00Z", // 09:00 EST
		},
		{
			name:     "rate keeps its anchor",
			put:      `{"timerCallbackData":1,"schedule":"rate(7 minutes)"}`, // 10:30, 10:37, 10:44, 10:51
			resumeAt: lcResumeAt,
			wantNext: "2026-11-22T10:51:00Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			created := e.put(t, "t1", tt.put)
			e.clock.Set(lcPauseAt)
			e.must(t, http.MethodPost, "/periodic/t1/pause", `{"reason":"deploy"}`, http.StatusOK)
			e.clock.Set(tt.resumeAt)

			resp := e.must(t, http.MethodPost, "/periodic/t1/resume", "", http.StatusOK)

			want := created
			want.State, want.NextFireAt = StateActive, ptrTo(tt.wantNext)
			if diff := cmp.Diff(want, decodeLCDoc(t, resp), lcDocOpts); diff != "" {
				t.Errorf("resume response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, e.get(t, "t1"), lcDocOpts); diff != "" {
				t.Errorf("GET after resume (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPILifecycleResumeRunningTimerChangesNothing(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	created := e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`)
	e.clock.Set(lcResumeAt) // past its 10:45 occurrence
	sent := len(e.fires.All())

	resp := e.must(t, http.MethodPost, "/periodic/t1/resume", "", http.StatusOK)

	// Nothing changes but nextFireAt, which follows the clock.
	want := created
	want.NextFireAt = ptrTo("2026-11-22T11:45:00Z")
	if diff := cmp.Diff(want, decodeLCDoc(t, resp), lcDocOpts); diff != "" {
		t.Errorf("resume response (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, e.get(t, "t1"), lcDocOpts); diff != "" {
		t.Errorf("GET after resume (-want +got):\n%s", diff)
	}
	if n := len(e.fires.All()) - sent; n != 0 {
		t.Errorf("resuming a running timer sent %d fire messages, want none", n)
	}
}

func TestAPILifecycleMissingTimer(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"pause", "resume", "fire"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			other := e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45}`)

			resp := e.call(t, http.MethodPost, "/periodic/nope/"+action, "")

			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status %d, want 404; body %s", resp.StatusCode, resp.Body)
			}
			if got := decodeError(t, resp); got.Code != ENOTFOUND || !strings.Contains(got.Message, "nope") {
				t.Errorf("error %+v, want %s naming nope", got, ENOTFOUND)
			}
			if got := e.store.stored("nope"); got != nil {
				t.Errorf("store now holds %+v, want no timer nope", got)
			}
			if diff := cmp.Diff(other, e.get(t, "t1"), lcDocOpts); diff != "" {
				t.Errorf("t1 changed (-before +after):\n%s", diff)
			}
			if sent := e.fires.All(); len(sent) != 0 {
				t.Errorf("fire queue received %+v, want nothing", sent)
			}
		})
	}
}

// ---------------------------------------------------------------- fire

func TestAPILifecycleFire(t *testing.T) {
	t.Parallel()
	const put = `{"timerCallbackData":{"order":7,"note":"a<b"},"minuteOfHour":45,` +
		`"retry":{"maxAttempts":3,"maxAgeSeconds":600},"notify":{"webhook":"https://hooks.example.com/x"},` +
		`"http":{"method":"post","url":"https://example.com/hook","headers":{"Authorization":"Bearer aws-secret(/callclock/token)"}}}`
	tests := []struct {
		name      string
		pause     bool
		now       time.Time
		wantAt    string // scheduledAt and the instant of the key
		wantAtUTC time.Time
	}{
		{name: "running timer", now: lcResumeAt, wantAt: "2026-11-22T10:50:00.123456789Z", wantAtUTC: lcResumeAt},
		{name: "paused timer", pause: true, now: lcResumeAt, wantAt: "2026-11-22T10:50:00.123456789Z", wantAtUTC: lcResumeAt},
		{name: "non-UTC clock", now: lcResumeAt.In(time.FixedZone("IST", 5*3600+1800)),
			wantAt: "2026-11-22T10:50:00.123456789Z", wantAtUTC: lcResumeAt},
		{name: "clock on a whole second", now: time.Date(2026, 11, 22, 10, 50, 0, 0, time.UTC),
			wantAt: "2026-11-22T10:50:00Z", wantAtUTC: time.Date(2026, 11, 22, 10, 50, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			e.put(t, "t1", put)
			e.put(t, "t1", put) // version 2: the message carries the timer's version
			if tt.pause {
				e.clock.Set(lcPauseAt)
				e.must(t, http.MethodPost, "/periodic/t1/pause", `{"reason":"deploy"}`, http.StatusOK)
			}
			before := e.get(t, "t1")
			e.API.Now = func() time.Time { return tt.now }

			resp := e.must(t, http.MethodPost, "/periodic/t1/fire", "", http.StatusAccepted)

			var got fireResult
			decodeStrict(t, resp.Body, &got)
			want := fireResult{TimerID: "t1", ScheduledAt: tt.wantAt, Manual: true, IdempotencyKey: "t1/manual/" + tt.wantAt}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fire response (-want +got):\n%s", diff)
			}

			sent := e.fires.All()
			if len(sent) != 1 {
				t.Fatalf("fire queue received %d messages, want 1: %+v", len(sent), sent)
			}
			if sent[0].QueueURL != lcFireQueueURL {
				t.Errorf("sent to %q, want %q", sent[0].QueueURL, lcFireQueueURL)
			}
			var msg FireMessage
			decodeStrict(t, sent[0].Body, &msg)
			// It names the occurrence; the invoker delivers the timer as it
			// reads it, at that version.
			wantMsg := FireMessage{TimerID: "t1", Version: 2, ScheduledAt: tt.wantAtUTC, Manual: true}
			if diff := cmp.Diff(wantMsg, msg, rawAsString); diff != "" {
				t.Errorf("fire message (-want +got):\n%s", diff)
			}
			if key := msg.IdempotencyKey(); key != want.IdempotencyKey {
				t.Errorf("the message's idempotency key %q differs from the response's %q", key, want.IdempotencyKey)
			}
			if diff := cmp.Diff(before, e.get(t, "t1"), lcDocOpts, cmpopts.IgnoreFields(timerDoc{}, "NextFireAt")); diff != "" {
				t.Errorf("fire changed the timer (-before +after; nextFireAt follows the clock):\n%s", diff)
			}
		})
	}
}

// TestAPILifecycleFireOccurrence: POST /periodic/{id}/fire naming a past
// occurrence sends that occurrence again (a replay, with the occurrence's
// own idempotency key); an instant that is in the future or not an
// occurrence of the schedule is refused, and nothing is sent.
func TestAPILifecycleFireOccurrence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       *fireResult
		wantErr    string
	}{
		{name: "a past occurrence", body: `{"scheduledAt":"2026-11-22T09:45:00Z"}`,
			want: &fireResult{TimerID: "t1", ScheduledAt: "2026-11-22T09:45:00Z", Replay: true, IdempotencyKey: "t1/2026-11-22T09:45:00Z"}},
		{name: "in another zone", body: `{"scheduledAt":"2026-11-22T11:45:00+02:00"}`,
			want: &fireResult{TimerID: "t1", ScheduledAt: "2026-11-22T09:45:00Z", Replay: true, IdempotencyKey: "t1/2026-11-22T09:45:00Z"}},
		{name: "empty object fires now", body: `{}`,
			want: &fireResult{TimerID: "t1", ScheduledAt: "2026-11-22T10:50:00.123456789Z", Manual: true, IdempotencyKey: "t1/manual/2026-11-22T10:50:00.123456789Z"}},
		{name: "not an occurrence", body: `{"scheduledAt":"2026-11-22T09:46:00Z"}`, wantErr: "is not an occurrence of timer t1"},
		{name: "in the future", body: `{"scheduledAt":"2026-11-22T11:45:00Z"}`, wantErr: "is in the future"},
		{name: "not an instant", body: `{"scheduledAt":"yesterday"}`, wantErr: "malformed JSON body"},
		{name: "unknown field", body: `{"at":"2026-11-22T09:45:00Z"}`, wantErr: "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45}`)
			e.API.Now = func() time.Time { return lcResumeAt }
			if tt.wantErr != "" {
				resp := e.must(t, http.MethodPost, "/periodic/t1/fire", tt.body, http.StatusBadRequest)
				if !strings.Contains(resp.Body, tt.wantErr) {
					t.Errorf("body %s, want %q", resp.Body, tt.wantErr)
				}
				if n := len(e.fires.All()); n != 0 {
					t.Errorf("%d messages sent for a refused fire", n)
				}
				return
			}
			resp := e.must(t, http.MethodPost, "/periodic/t1/fire", tt.body, http.StatusAccepted)
			var got fireResult
			decodeStrict(t, resp.Body, &got)
			if diff := cmp.Diff(*tt.want, got); diff != "" {
				t.Errorf("fire response (-want +got):\n%s", diff)
			}
			sent := e.fires.All()
			if len(sent) != 1 {
				t.Fatalf("fire queue received %d messages, want 1", len(sent))
			}
			var msg FireMessage
			decodeStrict(t, sent[0].Body, &msg)
			if msg.Replay != tt.want.Replay || msg.Manual != tt.want.Manual || msg.IdempotencyKey() != tt.want.IdempotencyKey {
				t.Errorf("message %+v, want replay %v manual %v key %s", msg, tt.want.Replay, tt.want.Manual, tt.want.IdempotencyKey)
			}
		})
	}
}

func TestAPILifecycleFireErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		id        string
		noQueue   bool  // Fire nil
		sendErr   error // the sender fails with it
		wantError apiError
		wantSends int
		wantLog   string // a fragment of the ERROR line; "" for none
	}{
		{name: "missing timer", id: "nope", wantError: apiError{ENOTFOUND, "timer nope not found"}},
		{name: "no fire queue", id: "t1", noQueue: true,
			wantError: apiError{EINTERNAL, "internal error"}, wantLog: "FIRE_QUEUE_URL"},
		{name: "sender fails", id: "t1", sendErr: errors.New("AccessDenied: secret detail"),
			wantError: apiError{EINTERNAL, "internal error"}, wantSends: 1, wantLog: "AccessDenied: secret detail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45}`)
			if tt.noQueue {
				e.API.Fire = nil
			}
			e.fires.errs = map[string]error{lcFireQueueURL: tt.sendErr}

			resp := e.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPost, Path: "/periodic/" + tt.id + "/fire",
				RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-7"}})

			if want := errorStatus(tt.wantError.Code); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			if diff := cmp.Diff(tt.wantError, decodeError(t, resp)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := len(e.fires.All()); n != tt.wantSends {
				t.Errorf("fire queue received %d messages, want %d", n, tt.wantSends)
			}
			errLines := 0
			for _, line := range strings.Split(strings.TrimSpace(e.log.String()), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) {
					errLines++
					if tt.wantLog == "" || !strings.Contains(line, tt.wantLog) || !strings.Contains(line, `"requestId":"req-7"`) {
						t.Errorf("ERROR log line %s, want one with %q and the request id", line, tt.wantLog)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[tt.wantLog != ""]; errLines != want {
				t.Errorf("%d ERROR log lines, want %d", errLines, want)
			}
		})
	}
}

// ---------------------------------------------------------------- routing

func TestAPILifecycleRouting(t *testing.T) {
	t.Parallel()
	type route struct {
		name      string
		method    string
		path      string
		wantCode  string
		wantAllow string
	}
	var tests []route
	for _, path := range []string{"/periodic/t1/pause", "/periodic/t1/resume", "/periodic/t1/fire", "/groups/qa/pause", "/groups/qa/resume"} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, "post"} {
			tests = append(tests, route{method + " " + path, method, path, EMETHOD, "POST"})
		}
	}
	tests = append(tests,
		route{name: "unknown action", method: http.MethodPost, path: "/periodic/t1/unknown", wantCode: ENOTFOUND},
		route{name: "GET unknown action", method: http.MethodGet, path: "/periodic/t1/unknown", wantCode: ENOTFOUND},
		route{name: "action case", method: http.MethodPost, path: "/periodic/t1/Pause", wantCode: ENOTFOUND},
		route{name: "trailing slash after action", method: http.MethodPost, path: "/periodic/t1/pause/", wantCode: ENOTFOUND},
		route{name: "segment after action", method: http.MethodPost, path: "/periodic/t1/pause/now", wantCode: ENOTFOUND},
		route{name: "group without action", method: http.MethodPost, path: "/groups/qa", wantCode: ENOTFOUND},
		route{name: "GET group", method: http.MethodGet, path: "/groups/qa", wantCode: ENOTFOUND},
		route{name: "groups collection", method: http.MethodPost, path: "/groups", wantCode: ENOTFOUND},
		route{name: "action on the collection", method: http.MethodPost, path: "/periodic/pause", wantCode: EMETHOD, wantAllow: "DELETE, GET, PUT"},
		route{name: "invalid id in pause", method: http.MethodPost, path: "/periodic/a b/pause", wantCode: EINVALID},
		route{name: "escaped invalid id in resume", method: http.MethodPost, path: "/periodic/a%2Fb/resume", wantCode: EINVALID},
		route{name: "id of 129 characters in fire", method: http.MethodPost, path: "/periodic/" + strings.Repeat("a", 129) + "/fire", wantCode: EINVALID},
		route{name: "empty id in pause", method: http.MethodPost, path: "/periodic//pause", wantCode: EINVALID},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			// t1 exists, in group qa: a 404 here comes from routing.
			e.store.timers["t1"] = &Timer{ID: "t1", ShardID: "shard0", Group: "qa", CallbackData: json.RawMessage(`1`), Version: 1,
				NextFireAt: time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)}

			resp := e.call(t, tt.method, tt.path, `{"reason":"x"}`)

			if want := errorStatus(tt.wantCode); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			if got := decodeError(t, resp).Code; got != tt.wantCode {
				t.Errorf("error code %q, want %q", got, tt.wantCode)
			}
			allow, ok := resp.Headers["Allow"]
			if ok != (tt.wantAllow != "") || allow != tt.wantAllow {
				t.Errorf("Allow header %q (present %t), want %q", allow, ok, tt.wantAllow)
			}
			if calls := e.storeCalls(); len(calls) != 0 {
				t.Errorf("store was called: %v", calls)
			}
			if sent := e.fires.All(); len(sent) != 0 {
				t.Errorf("fire queue received %+v", sent)
			}
		})
	}
}

// TestAPILifecycleGroupFireNotAllowedForAnyMethod: there is no
// /groups/{group}/fire, so no method should be advertised for it.
func TestAPILifecycleGroupFireNotAllowedForAnyMethod(t *testing.T) {
	t.Parallel()
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPost} {
		e := newLCEnv(t)
		resp := e.call(t, method, "/groups/qa/fire", "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404; Allow %q", method, resp.StatusCode, resp.Headers["Allow"])
		}
	}
}
