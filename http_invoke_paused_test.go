package main

// Tests of how the invoker treats paused timers and manual fires. The
// environment is the invoker's (newIGEnv, invoke_guarantee_test.go).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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

// lcPausedEnv is an invoker with a paused timer, a target answering 200
// and the target's URL when the timer calls it (viaHTTP), "" when it
// sends to the callback queue.
func lcPausedEnv(t *testing.T, viaHTTP bool) (*igEnv, *target, string) {
	e := newIGEnv(t, noSecrets(t), lcPausedTimer())
	tg := newTarget(t, answer(http.StatusOK))
	if viaHTTP {
		return e, tg, tg.URL + "/hook"
	}
	return e, tg, ""
}

func TestInvokePausedScheduledDropped(t *testing.T) {
	t.Parallel()
	for _, viaHTTP := range []bool{true, false} {
		t.Run(map[bool]string{true: "http target", false: "callback queue"}[viaHTTP], func(t *testing.T) {
			t.Parallel()
			e, tg, url := lcPausedEnv(t, viaHTTP)

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
			e, tg, url := lcPausedEnv(t, viaHTTP)

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
				want := []sqsSent{{QueueURL: testQueueURL, Body: `{"k":1}`, Attributes: map[string]string{
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
