package main

// Tests of the timer model's rules (timer.go): the checks of a
// definition, its targets and placeholders, and the defaults.

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRetryPolicyWithDefaults: a message's policy with what it leaves
// out filled in; the invoker's retryPolicy follows the same rule.
func TestRetryPolicyWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   *RetryPolicy
		want RetryPolicy
	}{
		{nil, RetryPolicy{MaxAttempts: DefaultMaxAttempts, MaxAgeSeconds: DefaultMaxAgeSeconds}},
		{&RetryPolicy{MaxAttempts: 3}, RetryPolicy{MaxAttempts: 3, MaxAgeSeconds: DefaultMaxAgeSeconds}},
		{&RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 120}, RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 120}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.in.withDefaults()); diff != "" {
			t.Errorf("%+v.withDefaults() (-want +got):\n%s", tt.in, diff)
		}
	}
	if diff := cmp.Diff(RetryPolicy{MaxAttempts: 185, MaxAgeSeconds: 86400}, defaultRetry()); diff != "" {
		t.Errorf("defaultRetry, EventBridge Scheduler's (-want +got):\n%s", diff)
	}
}

// TestTimerCatchUpWindow: a timer stored without a catch-up window gets
// the default, not a window of none.
func TestTimerCatchUpWindow(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{0: DefaultCatchUpSeconds, -1: DefaultCatchUpSeconds, 60: 60, MaxCatchUpSeconds: MaxCatchUpSeconds} {
		if got := (&Timer{CatchUpSeconds: in}).catchUpWindow(); got != want {
			t.Errorf("catchUpWindow of %d = %d, want %d", in, got, want)
		}
	}
}

// TestTimerNewFireMessage: a fire message names its occurrence and
// nothing of the delivery, which the invoker reads after its claim.
func TestTimerNewFireMessage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	m := newFireMessage("t1", 3, at)
	if diff := cmp.Diff(FireMessage{TimerID: "t1", Version: 3, ScheduledAt: at}, m); diff != "" {
		t.Errorf("newFireMessage (-want +got):\n%s", diff)
	}
	body, err := marshalJSON(m)
	if err != nil || string(body) != `{"timerId":"t1","version":3,"scheduledAt":"2026-11-22T10:45:00Z"}` {
		t.Errorf("message body %s %v", body, err)
	}
	if got := m.IdempotencyKey(); got != "t1/2026-11-22T10:45:00Z" {
		t.Errorf("IdempotencyKey = %q", got)
	}
}
