package main

// Tests of the timer lifecycle: pausing and resuming a timer or a group,
// firing a timer by hand, their routes, the group of a PUT, and how the
// invoker treats paused timers and manual fires. Helpers here are prefixed
// "lc" so as not to meet others'.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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

const lcFireQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/callclock-fire"

// lcDoc is the timer document with the lifecycle fields timerDoc lacks.
type lcDoc struct {
	timerDoc
	Group       string  `json:"group"`
	PausedAt    *string `json:"pausedAt"`
	PauseReason string  `json:"pauseReason"`
}

var lcDocOpts = cmp.Options{rawAsString, cmp.AllowUnexported(lcDoc{})}

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

// lcSent is one SendMessage call of the API's fire sender.
type lcSent struct {
	QueueURL, Body string
}

// lcSender is a messageSender for the API's manual fires: it records each
// call and fails them all with err when set.
type lcSender struct {
	mu   sync.Mutex
	err  error
	sent []lcSent
}

func (s *lcSender) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, lcSent{QueueURL: aws.ToString(in.QueueUrl), Body: aws.ToString(in.MessageBody)})
	if s.err != nil {
		return nil, s.err
	}
	return &sqs.SendMessageOutput{MessageId: aws.String(fmt.Sprintf("fire-%d", len(s.sent)))}, nil
}

func (s *lcSender) Sent() []lcSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// lcEnv is a test API whose clock the test moves, with a fire sender.
type lcEnv struct {
	*testAPI
	clock *testClock
	fires *lcSender
}

func newLCEnv(t *testing.T) *lcEnv {
	t.Helper()
	clock := newTestClock(lcPutAt)
	a := newTestAPI(lcPutAt, 1)
	a.Now = clock.Now
	fires := &lcSender{}
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
	sent := len(e.fires.Sent())

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
	if n := len(e.fires.Sent()) - sent; n != 0 {
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
			if sent := e.fires.Sent(); len(sent) != 0 {
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

			sent := e.fires.Sent()
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
				if n := len(e.fires.Sent()); n != 0 {
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
			sent := e.fires.Sent()
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
			e.fires.err = tt.sendErr

			resp := e.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPost, Path: "/periodic/" + tt.id + "/fire",
				RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-7"}})

			if want := errorStatus(tt.wantError.Code); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			if diff := cmp.Diff(tt.wantError, decodeError(t, resp)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := len(e.fires.Sent()); n != tt.wantSends {
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

// ---------------------------------------------------------------- groups

func TestAPILifecycleGroupPauseResume(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	bodies := map[string]string{
		"qa-1":   `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`,
		"qa-2":   `{"timerCallbackData":2,"schedule":"cron(0 9 * * ? *)","timezone":"America/New_York","group":"qa"}`,
		"qa-3":   `{"timerCallbackData":3,"minuteOfHour":5,"group":"qa"}`,
		"prod-1": `{"timerCallbackData":4,"minuteOfHour":45,"group":"prod"}`,
		"solo":   `{"timerCallbackData":5,"minuteOfHour":45}`,
	}
	created := map[string]lcDoc{}
	for id, body := range bodies {
		created[id] = e.put(t, id, body)
	}
	// prod-1 is paused by itself: resuming qa must not resume it.
	e.must(t, http.MethodPost, "/periodic/prod-1/pause", `{"reason":"freeze"}`, http.StatusOK)
	others := map[string]lcDoc{"prod-1": e.get(t, "prod-1"), "solo": e.get(t, "solo")}
	qa := []string{"qa-1", "qa-2", "qa-3"}

	checkOthers := func(step string) {
		t.Helper()
		for id, want := range others {
			// Its nextFireAt follows the clock; nothing else may change.
			if diff := cmp.Diff(want, e.get(t, id), lcDocOpts, cmpopts.IgnoreFields(timerDoc{}, "NextFireAt")); diff != "" {
				t.Errorf("%s: %s, outside the group, changed (-before +after):\n%s", step, id, diff)
			}
		}
	}
	group := func(step, action, body string, want groupResult) {
		t.Helper()
		n := len(e.storeCalls())
		resp := e.must(t, http.MethodPost, "/groups/qa/"+action, body, http.StatusOK)
		var got groupResult
		decodeStrict(t, resp.Body, &got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: response (-want +got):\n%s", step, diff)
		}
		calls := lifecycleCalls(e.storeCalls()[n:])
		slices.Sort(calls)
		var wantCalls []string
		for _, id := range qa {
			wantCalls = append(wantCalls, strings.ToUpper(action[:1])+action[1:]+" "+id)
		}
		if diff := cmp.Diff(wantCalls, calls); diff != "" {
			t.Errorf("%s: store calls (-want +got):\n%s", step, diff)
		}
	}

	e.clock.Set(lcPauseAt)
	group("pause", "pause", `{"reason":"deploy 42"}`, groupResult{Group: "qa", Action: "pause", Timers: 3, Changed: 3})
	for _, id := range qa {
		if diff := cmp.Diff(paused(created[id], "2026-11-22T10:31:07Z", "deploy 42"), e.get(t, id), lcDocOpts); diff != "" {
			t.Errorf("pause: %s (-want +got):\n%s", id, diff)
		}
	}
	checkOthers("pause")

	e.clock.Set(lcPauseAt.Add(9 * time.Minute))
	group("pause again", "pause", "", groupResult{Group: "qa", Action: "pause", Timers: 3, Changed: 0})
	for _, id := range qa {
		if diff := cmp.Diff(paused(created[id], "2026-11-22T10:31:07Z", "deploy 42"), e.get(t, id), lcDocOpts); diff != "" {
			t.Errorf("pause again: %s (-want +got): the first pause's instant and reason are kept\n%s", id, diff)
		}
	}
	checkOthers("pause again")

	e.clock.Set(lcResumeAt)
	group("resume", "resume", "", groupResult{Group: "qa", Action: "resume", Timers: 3, Changed: 3})
	wantNext := map[string]string{
		"qa-1": "2026-11-22T11:45:00Z", // 10:45 fell while paused
		"qa-2": "2026-11-22T14:00:00Z", // 09:00 in New York
		"qa-3": "2026-11-22T11:05:00Z",
	}
	for _, id := range qa {
		want := created[id]
		want.State, want.NextFireAt = StateActive, ptrTo(wantNext[id])
		if diff := cmp.Diff(want, e.get(t, id), lcDocOpts); diff != "" {
			t.Errorf("resume: %s (-want +got):\n%s", id, diff)
		}
	}
	checkOthers("resume")
}

// TestAPILifecycleGroupPauseCoversNewTimers: a timer created in a paused
// group is created paused, with the group's pause, and runs when the group
// resumes; a timer that already exists keeps its own state, and another
// group is not affected.
func TestAPILifecycleGroupPauseCoversNewTimers(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	running := e.put(t, "running", `{"timerCallbackData":0,"minuteOfHour":45}`)
	e.clock.Set(lcPauseAt)
	e.must(t, http.MethodPost, "/groups/qa/pause", `{"reason":"deploy 43"}`, http.StatusOK)

	e.clock.Set(lcPauseAt.Add(time.Minute))
	resp := e.must(t, http.MethodPut, "/periodic/qa-new", `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`, http.StatusCreated)
	created := decodeLCDoc(t, resp)
	want := created
	want.State, want.NextFireAt, want.PausedAt, want.PauseReason = StatePaused, nil, ptrTo("2026-11-22T10:31:07Z"), "deploy 43"
	if diff := cmp.Diff(want, created, lcDocOpts); diff != "" {
		t.Errorf("created in the paused group (-want +got):\n%s", diff)
	}
	if other := e.put(t, "prod-new", `{"timerCallbackData":2,"minuteOfHour":45,"group":"prod"}`); other.State != StateActive {
		t.Errorf("created in another group: state %q, want active", other.State)
	}
	if moved := e.put(t, "running", `{"timerCallbackData":0,"minuteOfHour":45,"group":"qa"}`); moved.State != StateActive || moved.PausedAt != nil ||
		*moved.NextFireAt != *running.NextFireAt {
		t.Errorf("an existing timer moved into the paused group: %+v, want it running as before", moved)
	}

	e.clock.Set(lcResumeAt)
	e.must(t, http.MethodPost, "/groups/qa/resume", "", http.StatusOK)
	if got := e.get(t, "qa-new"); got.State != StateActive || got.NextFireAt == nil || *got.NextFireAt != "2026-11-22T11:45:00Z" {
		t.Errorf("after the group's resume: state %q next %v, want active at 11:45", got.State, got.NextFireAt)
	}
	if later := e.put(t, "qa-later", `{"timerCallbackData":3,"minuteOfHour":45,"group":"qa"}`); later.State != StateActive {
		t.Errorf("created after the resume: state %q, want active", later.State)
	}
}

func TestAPILifecycleGroupEmpty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action, group string
	}{
		{"pause", "nobody"},
		{"resume", "nobody"},
		{"pause", strings.Repeat("g", 64)},
		{"resume", "A.b_C-9"},
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.group, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			other := e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`)

			resp := e.must(t, http.MethodPost, "/groups/"+tt.group+"/"+tt.action, "", http.StatusOK)

			var got groupResult
			decodeStrict(t, resp.Body, &got)
			if diff := cmp.Diff(groupResult{Group: tt.group, Action: tt.action}, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(other, e.get(t, "t1"), lcDocOpts); diff != "" {
				t.Errorf("t1, of another group, changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAPILifecycleGroupRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		path     string
		body     string
		wantCode string
	}{
		{name: "group with space", path: "/groups/a b/pause", wantCode: EINVALID},
		{name: "group with escaped space", path: "/groups/a%20b/resume", wantCode: EINVALID},
		{name: "group with escaped slash", path: "/groups/qa%2Fx/pause", wantCode: EINVALID},
		{name: "group with colon", path: "/groups/qa:x/pause", wantCode: EINVALID},
		{name: "group of 65 characters", path: "/groups/" + strings.Repeat("g", 65) + "/pause", wantCode: EINVALID},
		{name: "empty group", path: "/groups//pause", wantCode: EINVALID},
		{name: "group fire", path: "/groups/qa/fire", wantCode: ENOTFOUND},
		{name: "reason of 257 characters", path: "/groups/qa/pause", body: `{"reason":"` + strings.Repeat("r", 257) + `"}`, wantCode: EINVALID},
		{name: "malformed body", path: "/groups/qa/pause", body: `{"reason":`, wantCode: EINVALID},
		{name: "unknown field", path: "/groups/qa/pause", body: `{"reason":"x","force":true}`, wantCode: EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			before := e.put(t, "qa-1", `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`)

			resp := e.call(t, http.MethodPost, tt.path, tt.body)

			if want := errorStatus(tt.wantCode); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			if got := decodeError(t, resp); got.Code != tt.wantCode || got.Message == "" {
				t.Errorf("error %+v, want code %q with a message", got, tt.wantCode)
			}
			if calls := lifecycleCalls(e.storeCalls()); len(calls) != 0 {
				t.Errorf("store calls %v, want no Pause or Resume", calls)
			}
			if diff := cmp.Diff(before, e.get(t, "qa-1"), lcDocOpts); diff != "" {
				t.Errorf("qa-1 changed (-before +after):\n%s", diff)
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
			if sent := e.fires.Sent(); len(sent) != 0 {
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

// ---------------------------------------------------------------- PUT group

func TestAPILifecyclePutGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		group     string // the JSON value; "" leaves the field out
		wantGroup string
		wantCode  string // "" for success
	}{
		{name: "named", group: `"qa-facilities"`, wantGroup: "qa-facilities"},
		{name: "every allowed kind", group: `"Az09._-"`, wantGroup: "Az09._-"},
		{name: "64 characters", group: `"` + strings.Repeat("g", 64) + `"`, wantGroup: strings.Repeat("g", 64)},
		{name: "absent", wantGroup: ""},
		{name: "empty string is no group", group: `""`, wantGroup: ""},
		{name: "null is no group", group: `null`, wantGroup: ""},
		{name: "65 characters", group: `"` + strings.Repeat("g", 65) + `"`, wantCode: EINVALID},
		{name: "space", group: `"a b"`, wantCode: EINVALID},
		{name: "slash", group: `"qa/x"`, wantCode: EINVALID},
		{name: "colon", group: `"qa:x"`, wantCode: EINVALID},
		{name: "non-ASCII letter", group: `"ü"`, wantCode: EINVALID},
		{name: "number", group: `7`, wantCode: EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			body := `{"timerCallbackData":1,"minuteOfHour":45}`
			if tt.group != "" {
				body = `{"timerCallbackData":1,"minuteOfHour":45,"group":` + tt.group + `}`
			}

			resp := e.call(t, http.MethodPut, "/periodic/t1", body)

			if tt.wantCode != "" {
				if want := errorStatus(tt.wantCode); resp.StatusCode != want {
					t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
				}
				if got := decodeError(t, resp).Code; got != tt.wantCode {
					t.Errorf("error code %q, want %q", got, tt.wantCode)
				}
				if n := e.store.puts(); n != 0 {
					t.Errorf("store received %d Put calls, want none", n)
				}
				if got := e.store.stored("t1"); got != nil {
					t.Errorf("store holds %+v, want nothing", got)
				}
				return
			}
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
			}
			if got := decodeLCDoc(t, resp).Group; got != tt.wantGroup {
				t.Errorf("group in response %q, want %q", got, tt.wantGroup)
			}
			if got := e.get(t, "t1").Group; got != tt.wantGroup {
				t.Errorf("group in GET %q, want %q", got, tt.wantGroup)
			}
			if got := e.store.stored("t1").Group; got != tt.wantGroup {
				t.Errorf("group stored %q, want %q", got, tt.wantGroup)
			}
			if has := strings.Contains(resp.Body, `"group"`); has != (tt.wantGroup != "") {
				t.Errorf("response has a group field: %t, want %t; body %s", has, tt.wantGroup != "", resp.Body)
			}
		})
	}
}

// ---------------------------------------------------------------- invoker

// lcPausedTimer is timer t-1 at version 1, paused.
func lcPausedTimer() Timer {
	at := igAt.Add(-time.Hour)
	return Timer{ID: "t-1", Version: 1, PausedAt: &at, PauseReason: "deploy"}
}

// lcMessage is an occurrence of t-1 at at: to an HTTP target when url is
// set, otherwise a callback message.
func lcMessage(url string, at time.Time, manual bool) FireMessage {
	m := FireMessage{TimerID: "t-1", Version: 1, ScheduledAt: at, Manual: manual}
	if url != "" {
		m.HTTP = &HTTPTarget{Method: "POST", URL: url}
	} else {
		m.CallbackData = json.RawMessage(`{"k":1}`)
	}
	return m
}

func TestInvokePausedScheduledDropped(t *testing.T) {
	t.Parallel()
	for _, viaHTTP := range []bool{true, false} {
		t.Run(map[bool]string{true: "http target", false: "callback queue"}[viaHTTP], func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), lcPausedTimer())
			tg := newTarget(t, answer(http.StatusOK))
			url := ""
			if viaHTTP {
				url = tg.URL + "/hook"
			}

			got := e.invoke(igRecord(t, "m-1", 1, lcMessage(url, igAt, false)))

			if diff := cmp.Diff([]string{}, got); diff != "" {
				t.Errorf("failures (-want +got): a paused occurrence must be acked\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			if sent := e.send.All(); len(sent) != 0 {
				t.Errorf("SendMessage calls %+v, want none", sent)
			}
			if fires := e.store.Fires(); len(fires) != 0 {
				t.Errorf("outcomes recorded %+v, want none", fires)
			}
			if settled := e.store.Settled(); len(settled) != 0 {
				t.Errorf("settled %v, want none", settled)
			}
			if calls := e.vis.Calls(); len(calls) != 0 {
				t.Errorf("ChangeMessageVisibility calls %+v, want none", calls)
			}
			lines := e.log.WithMsg(t, "stale occurrence dropped")
			if len(lines) != 1 {
				t.Fatalf("stale-occurrence lines %v, want one", lines)
			}
			want := map[string]any{"reason": "timer paused", "timerId": "t-1", "messageId": "m-1", "scheduledAt": igScheduledAt}
			gotKeys := map[string]any{}
			for k := range want {
				gotKeys[k] = lines[0][k]
			}
			if diff := cmp.Diff(want, gotKeys); diff != "" {
				t.Errorf("stale-occurrence line (-want +got):\n%s", diff)
			}
			if n := len(e.log.WithMsg(t, "delivered")); n != 0 {
				t.Errorf("%d delivered lines, want 0", n)
			}
		})
	}
}

func TestInvokePausedManualDelivered(t *testing.T) {
	t.Parallel()
	at := igAt.Add(1500 * time.Millisecond)
	const key = "t-1/manual/2025-03-01T09:00:01.5Z"
	for _, viaHTTP := range []bool{true, false} {
		t.Run(map[bool]string{true: "http target", false: "callback queue"}[viaHTTP], func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), lcPausedTimer())
			tg := newTarget(t, answer(http.StatusOK))
			url := ""
			if viaHTTP {
				url = tg.URL + "/hook"
			}

			got := e.invoke(igRecord(t, "m-1", 1, lcMessage(url, at, true)))

			if diff := cmp.Diff([]string{}, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if viaHTTP {
				var keys []string
				for _, r := range tg.Received() {
					keys = append(keys, r.Header.Get("Idempotency-Key"))
				}
				if diff := cmp.Diff([]string{key}, keys); diff != "" {
					t.Errorf("Idempotency-Key of the requests (-want +got):\n%s", diff)
				}
				if sent := e.send.All(); len(sent) != 0 {
					t.Errorf("SendMessage calls %+v, want none", sent)
				}
			} else {
				want := []igSent{{QueueURL: testQueueURL, Body: `{"k":1}`, Attributes: map[string]string{
					"IdempotencyKey": "String:" + key,
					"TimerId":        "String:t-1",
					"ScheduledAt":    "String:2025-03-01T09:00:01Z",
				}}}
				if diff := cmp.Diff(want, e.send.All()); diff != "" {
					t.Errorf("SendMessage calls (-want +got):\n%s", diff)
				}
			}
			fires := e.store.Fires()
			if len(fires) != 1 || fires[0].Fire.Outcome != OutcomeDelivered || !fires[0].Fire.ScheduledAt.Equal(at) {
				t.Errorf("outcomes recorded %+v, want one delivered at %s", fires, at.Format(time.RFC3339Nano))
			}
			if diff := cmp.Diff([]string{igOccurrence("t-1/manual", at)}, e.store.Settled()); diff != "" {
				t.Errorf("settled (-want +got):\n%s", diff)
			}
			if lines := e.log.WithMsg(t, "stale occurrence dropped"); len(lines) != 0 {
				t.Errorf("stale-occurrence lines %v, want none", lines)
			}
		})
	}
}

func TestInvokePausedManualClaims(t *testing.T) {
	t.Parallel()
	at1 := igAt.Add(2*time.Second + 100)
	at2 := igAt.Add(2*time.Second + 101)
	tests := []struct {
		name         string
		msgs         []FireMessage // delivered as m-1, m-2, ... one batch each
		wantKeys     []string
		wantClaims   []string
		wantSettled  []string
		wantSuppress []string // message ids logged "duplicate suppressed"
	}{
		{
			name:        "two manual fires at different nanoseconds",
			msgs:        []FireMessage{lcMessage("URL", at1, true), lcMessage("URL", at2, true)},
			wantKeys:    []string{"t-1/manual/2025-03-01T09:00:02.0000001Z", "t-1/manual/2025-03-01T09:00:02.000000101Z"},
			wantClaims:  []string{igOccurrence("t-1/manual", at1) + " by m-1", igOccurrence("t-1/manual", at2) + " by m-2"},
			wantSettled: []string{igOccurrence("t-1/manual", at1), igOccurrence("t-1/manual", at2)},
		},
		{
			name:         "one manual fire in two messages",
			msgs:         []FireMessage{lcMessage("URL", at1, true), lcMessage("URL", at1, true)},
			wantKeys:     []string{"t-1/manual/2025-03-01T09:00:02.0000001Z"},
			wantClaims:   []string{igOccurrence("t-1/manual", at1) + " by m-1", igOccurrence("t-1/manual", at1) + " by m-2"},
			wantSettled:  []string{igOccurrence("t-1/manual", at1)},
			wantSuppress: []string{"m-2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), lcPausedTimer())
			tg := newTarget(t, answer(http.StatusOK))
			for i, m := range tt.msgs {
				target := *m.HTTP
				target.URL = tg.URL + "/hook"
				m.HTTP = &target
				id := fmt.Sprintf("m-%d", i+1)
				if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, id, 1, m))); diff != "" {
					t.Errorf("%s failures (-want +got):\n%s", id, diff)
				}
			}

			var keys []string
			for _, r := range tg.Received() {
				keys = append(keys, r.Header.Get("Idempotency-Key"))
			}
			if diff := cmp.Diff(tt.wantKeys, keys); diff != "" {
				t.Errorf("deliveries by Idempotency-Key (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantClaims, e.store.Claimed()); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSettled, e.store.Settled()); diff != "" {
				t.Errorf("settled (-want +got):\n%s", diff)
			}
			var suppressed []string
			for _, l := range e.log.WithMsg(t, "duplicate suppressed") {
				suppressed = append(suppressed, fmt.Sprint(l["messageId"]))
			}
			if diff := cmp.Diff(tt.wantSuppress, suppressed); diff != "" {
				t.Errorf("duplicates suppressed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInvokePausedManualOnWholeSecondNotSuppressed: a manual fire is its
// own firing, with its own idempotency key, even when the API's clock read
// a whole second on which a scheduled occurrence also falls.
func TestInvokePausedManualOnWholeSecondNotSuppressed(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	scheduled := lcMessage(tg.URL+"/hook", igAt, false)
	manual := lcMessage(tg.URL+"/hook", igAt, true)

	e.invoke(igRecord(t, "m-1", 1, scheduled))
	e.invoke(igRecord(t, "m-2", 1, manual))

	var keys []string
	for _, r := range tg.Received() {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
	}
	want := []string{"t-1/" + igScheduledAt, "t-1/manual/" + igScheduledAt}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("deliveries by Idempotency-Key (-want +got):\n%s", diff)
	}
}

// TestAPIListRejects checks GET /periodic's query validation: each bad
// parameter is a 400 and the store is not asked.
func TestAPIListRejects(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"limit=0", "limit=501", "limit=ten", "state=sleeping", "group=a%20b", "cursor=%%%", "cursor=bm90LWpzb24", "sort=id"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			k, v, _ := strings.Cut(q, "=")
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			}
			req := events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic", QueryStringParameters: map[string]string{k: v}}
			resp := a.do(t, req)
			if resp.StatusCode != http.StatusBadRequest || decodeError(t, resp).Code != EINVALID {
				t.Errorf("GET /periodic?%s = %d %s, want 400 invalid", q, resp.StatusCode, resp.Body)
			}
			for _, c := range a.store.calls {
				if strings.HasPrefix(c, "List") && q != "state=sleeping" {
					t.Errorf("the store was asked: %v", a.store.calls)
				}
			}
		})
	}
}

// TestAPIListPages follows the cursor through every timer, filtered by
// group and state.
func TestAPIListPages(t *testing.T) {
	t.Parallel()
	a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
	for i, g := range []string{"qa", "prod", "qa", "qa", "", "qa"} {
		id := fmt.Sprintf("t%d", i)
		if resp := a.call(t, http.MethodPut, "/periodic/"+id, `{"timerCallbackData":1,"group":"`+g+`"}`); resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d %s", id, resp.StatusCode, resp.Body)
		}
	}
	a.call(t, http.MethodPost, "/periodic/t2/pause", "")
	list := func(query string) []string {
		var ids []string
		for cursor := ""; ; {
			q := map[string]string{"limit": "2"}
			for _, kv := range strings.Split(query, "&") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					q[k] = v
				}
			}
			if cursor != "" {
				q["cursor"] = cursor
			}
			resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic", QueryStringParameters: q})
			var page struct {
				Timers []struct{ ID string } `json:"timers"`
				Cursor string                `json:"cursor"`
			}
			if err := json.Unmarshal([]byte(resp.Body), &page); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /periodic?%s: %d %s", query, resp.StatusCode, resp.Body)
			}
			for _, tm := range page.Timers {
				ids = append(ids, tm.ID)
			}
			if page.Cursor == "" {
				return ids
			}
			cursor = page.Cursor
		}
	}
	for query, want := range map[string][]string{
		"":                      {"t0", "t1", "t2", "t3", "t4", "t5"},
		"group=qa":              {"t0", "t2", "t3", "t5"},
		"group=qa&state=paused": {"t2"},
		"state=active":          {"t0", "t1", "t3", "t4", "t5"},
	} {
		if diff := cmp.Diff(want, list(query)); diff != "" {
			t.Errorf("GET /periodic?%s (-want +got):\n%s", query, diff)
		}
	}
}
