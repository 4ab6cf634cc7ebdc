package main

// Tests of the self-pause (selfpause.go) on ovStore (overlap_test.go),
// whose Pause is Store.Pause's and whose occurrences are the outcomes the
// invoker recorded.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// spEnv is an invoker on an ovStore holding timer t-1, which pauses after
// n failures in a row, has no retries, and calls a target answering codes
// in turn (the last repeated); its notifications go to a webhook, failures
// only unless onFailure is false.
type spEnv struct {
	*igEnv
	s      *ovStore
	target *target
	hook   *target
}

func newSPEnv(t *testing.T, n int, onFailure bool, codes ...int) *spEnv {
	t.Helper()
	tg := newTarget(t, igStatuses(codes...))
	hook := newTarget(t, answer(http.StatusOK))
	tm := Timer{ID: "t-1", Version: 1, PauseAfterFailures: n, DueFrom: igAt.Add(-time.Hour),
		HTTP:   &HTTPTarget{Method: "POST", URL: tg.URL + "/hook"},
		Retry:  RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600},
		Notify: &Notify{Webhook: hook.URL + "/slack", OnFailure: &onFailure}}
	e, s := ovEnv(t, tm)
	return &spEnv{igEnv: e, s: s, target: tg, hook: hook}
}

// occur delivers t-1's occurrence i minutes after igAt (by hand when
// manual) and fails the test if the message is not acked.
func (e *spEnv) occur(t *testing.T, i int, manual bool) {
	t.Helper()
	m := ovMessage(igAt.Add(time.Duration(i) * time.Minute))
	m.Manual = manual
	if got := e.invoke(igRecord(t, fmt.Sprintf("m-%d-%v", i, manual), 1, m)); len(got) != 0 {
		t.Fatalf("occurrence %d: failures %v, want none", i, got)
	}
}

// texts are the notifications' texts.
func (e *spEnv) texts(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range e.hook.Received() {
		var m map[string]string
		if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m["text"])
	}
	return out
}

// paused is the timer's pause reason, or "running".
func (e *spEnv) paused(t *testing.T) string {
	t.Helper()
	tm, err := e.s.Get(t.Context(), "t-1")
	if err != nil {
		t.Fatal(err)
	}
	if tm.PausedAt == nil {
		return "running"
	}
	return tm.PauseReason
}

// TestSelfPauseAtN: no pause below N; at the N-th failed occurrence in a
// row the timer pauses with the reason, once, and the notification says
// so; the next occurrence is dropped as paused.
func TestSelfPauseAtN(t *testing.T) {
	t.Parallel()
	e := newSPEnv(t, 3, true, http.StatusServiceUnavailable)
	e.occur(t, 0, false)
	e.occur(t, 1, false)
	if got := e.paused(t); got != "running" {
		t.Fatalf("after 2 failures: %q, want running", got)
	}
	e.occur(t, 2, false)
	want := "paused after 3 consecutive failed occurrences: POST " + e.target.URL + "/hook: status 503"
	if got := e.paused(t); got != want {
		t.Errorf("after 3 failures: %q, want %q", got, want)
	}
	e.occur(t, 3, false) // paused: dropped
	if n := len(e.target.Received()); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
	failed := func(i int) string {
		return fmt.Sprintf("callclock: timer t-1, scheduled 2025-03-01T09:0%d:00Z: failed after 1 attempts and was dead-lettered: POST %s/hook: status 503", i, e.target.URL)
	}
	wantTexts := []string{failed(0), failed(1), failed(2) + "; the timer paused after 3 consecutive failed occurrences and fires again once resumed"}
	if diff := cmp.Diff(wantTexts, e.texts(t)); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
	if n := strings.Count(strings.Join(e.s.Calls(), "\n"), "Pause t-1"); n != 1 {
		t.Errorf("%d Pause calls, want 1", n)
	}
}

// TestSelfPauseSuccessResets: a delivered occurrence ends the run of
// failures; failures within one occurrence (retries) are not counted.
func TestSelfPauseSuccessResets(t *testing.T) {
	t.Parallel()
	e := newSPEnv(t, 3, true, 503, 503, 200, 503, 503, 503)
	for i := range 5 {
		e.occur(t, i, false)
	}
	if got := e.paused(t); got != "running" {
		t.Fatalf("fail, fail, deliver, fail, fail: %q, want running", got)
	}
	e.occur(t, 5, false)
	if got := e.paused(t); !strings.HasPrefix(got, "paused after 3 consecutive failed occurrences") {
		t.Errorf("then a third failure: %q, want paused", got)
	}
}

// TestSelfPauseResumeClears: a resume (a new dueFrom) starts the count
// afresh; fires by hand neither count nor reset it.
func TestSelfPauseResumeClears(t *testing.T) {
	t.Parallel()
	e := newSPEnv(t, 2, true, 503)
	e.occur(t, 0, false)
	e.occur(t, 1, true) // by hand
	e.occur(t, 1, true)
	if got := e.paused(t); got != "running" {
		t.Fatalf("one failure and two fires by hand: %q, want running", got)
	}
	e.occur(t, 2, false)
	if got := e.paused(t); !strings.HasPrefix(got, "paused after 2 consecutive") {
		t.Fatalf("after 2 failures: %q, want paused", got)
	}
	tm, _ := e.s.Get(t.Context(), "t-1")
	tm.PausedAt, tm.PauseReason, tm.DueFrom = nil, "", igAt.Add(2*time.Minute+time.Second) // Store.Resume's
	e.s.setTimer(*tm)
	e.occur(t, 3, false)
	if got := e.paused(t); got != "running" {
		t.Fatalf("one failure after the resume: %q, want running", got)
	}
	e.occur(t, 4, false)
	if got := e.paused(t); !strings.HasPrefix(got, "paused after 2 consecutive") {
		t.Errorf("two failures after the resume: %q, want paused", got)
	}
}

// TestSelfPauseNotifiedWithoutOnFailure: with onFailure false, the
// failures are not notified but the pause is; a secret in the URL stays a
// placeholder in the reason and the notification.
func TestSelfPauseNotifiedWithoutOnFailure(t *testing.T) {
	t.Parallel()
	e := newSPEnv(t, 1, false, 503)
	tm, _ := e.s.Get(t.Context(), "t-1")
	tm.HTTP.URL += "?key=aws-secret(/callclock/sp/key)"
	e.s.setTimer(*tm)
	e.inv.Secrets = (&paramStore{}).fake(t, map[string]string{"/callclock/sp/key": "sp-s3cr3t"})
	e.occur(t, 0, false)
	want := "paused after 1 consecutive failed occurrences: POST " + e.target.URL + "/hook?key=aws-secret(/callclock/sp/key): status 503"
	if got := e.paused(t); got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	texts := e.texts(t)
	if len(texts) != 1 || !strings.HasSuffix(texts[0], "; the timer paused after 1 consecutive failed occurrences and fires again once resumed") {
		t.Errorf("notifications %q, want one, of the pause", texts)
	}
	if got := e.target.Received(); len(got) != 1 || got[0].Query != "key=sp-s3cr3t" {
		t.Errorf("the target got %+v, want the secret resolved", got)
	}
	if all := strings.Join(texts, "") + e.log.String() + e.paused(t); strings.Contains(all, "sp-s3cr3t") {
		t.Errorf("the secret's value is in a notification, the log or the reason")
	}
}

// TestSelfPauseOffCostsNothing: a timer without pauseAfterFailures makes
// no self-pause call, whatever fails; one with it makes one read per
// failed occurrence and none per delivered one.
func TestSelfPauseOffCostsNothing(t *testing.T) {
	t.Parallel()
	off := newSPEnv(t, 0, true, 503)
	for i := range 3 {
		off.occur(t, i, false)
	}
	if calls := off.s.Calls(); len(calls) != 0 {
		t.Errorf("without the option: calls %v, want none", calls)
	}
	on := newSPEnv(t, 5, true, 200, 503, 200)
	for i := range 3 {
		on.occur(t, i, false)
	}
	if diff := cmp.Diff([]string{"occurrences t-1"}, on.s.Calls()); diff != "" {
		t.Errorf("with the option, delivered, failed, delivered: calls (-want +got):\n%s", diff)
	}
}

// TestSelfPauseValidation: pauseAfterFailures is 1-100 or left out.
func TestSelfPauseValidation(t *testing.T) {
	t.Parallel()
	opt := timerOptions{Now: igAt, SecretPrefix: DefaultSecretPrefix}
	for _, tc := range []struct {
		n    *int
		want string
	}{
		{nil, "0"}, {ptr(1), "1"}, {ptr(100), "100"},
		{ptr(0), "pauseAfterFailures must be from 1 to 100; leave it out to never pause"},
		{ptr(101), "pauseAfterFailures must be from 1 to 100; leave it out to never pause"},
	} {
		tm, err := newTimer("t-1", putRequest{TimerCallbackData: []byte(`{}`), PauseAfterFailures: tc.n}, opt)
		got := ErrorMessage(err)
		if err == nil {
			got = fmt.Sprint(tm.PauseAfterFailures)
		}
		if got != tc.want {
			t.Errorf("%v: %q, want %q", tc.n, got, tc.want)
		}
	}
}

// ptr is a pointer to v.
func ptr[T any](v T) *T { return &v }

// TestSelfPauseManualNeither: a fire by hand that fails does not count,
// and one that is delivered does not reset the count.
func TestSelfPauseManualNeither(t *testing.T) {
	t.Parallel()
	e := newSPEnv(t, 2, true, 503, 503, 200, 503)
	e.occur(t, 0, true)  // by hand, failed
	e.occur(t, 1, false) // failed
	if got := e.paused(t); got != "running" {
		t.Fatalf("a failure by hand and one scheduled: %q, want running", got)
	}
	e.occur(t, 2, true)  // by hand, delivered
	e.occur(t, 3, false) // failed: the second in a row
	if got := e.paused(t); !strings.HasPrefix(got, "paused after 2 consecutive") {
		t.Errorf("then a delivery by hand and a failure: %q, want paused", got)
	}
}

// TestSelfPauseDueFrom: an occurrence counts when it was due or attempted
// from the timer's dueFrom on: a rate's first occurrence, due in its PUT's
// own second a fraction before dueFrom, counts; one due and attempted
// within the second before a resume does not.
func TestSelfPauseDueFrom(t *testing.T) {
	t.Parallel()
	x := igAt
	failed := func(at, attempted time.Time) igFire {
		return igFire{TimerID: "t-1", Fire: LastFire{ScheduledAt: at, AttemptedAt: attempted, Attempt: 1, Outcome: OutcomeFailed}}
	}
	for _, tc := range []struct {
		name    string
		dueFrom time.Time
		prior   igFire
		want    int
	}{
		{"the PUT's own second", x.Add(500 * time.Millisecond), failed(x, x.Add(600*time.Millisecond)), 2},
		{"just before a resume", x.Add(300 * time.Millisecond), failed(x, x.Add(100*time.Millisecond)), 1},
		{"long before", x.Add(time.Hour), failed(x, x.Add(time.Second)), 1},
	} {
		s := newOVStore()
		s.fires = []igFire{tc.prior}
		msg := &FireMessage{TimerID: "t-1", ScheduledAt: x.Add(2 * time.Hour), DueFrom: tc.dueFrom}
		n, err := failedInARow(context.Background(), s, msg, 5)
		if err != nil || n != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.name, n, err, tc.want)
		}
	}
}

// TestIsSelfPauseReason: the reason the invoker writes reads back as a
// self-pause; reasons given by hand, even alike, do not.
func TestIsSelfPauseReason(t *testing.T) {
	t.Parallel()
	for reason, want := range map[string]bool{
		fmt.Sprintf(selfPauseFormat, 3) + ": GET https://x.example/: status 503": true,
		fmt.Sprintf(selfPauseFormat, 1):                                          true,
		"paused after deploy 1.4.2":                                              false,
		"paused after 3 days of maintenance":                                     false,
		"deploy: paused after 3 consecutive failed occurrences":                  false,
		"": false,
	} {
		if got := isSelfPauseReason(reason); got != want {
			t.Errorf("isSelfPauseReason(%q) = %v, want %v", reason, got, want)
		}
	}
}
