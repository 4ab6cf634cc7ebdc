package main

// Tests of retry.go: the retry policy's defaults, the retry delay and
// backoff, sleeping, ids.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRetryDelayBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, 1 * time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{4, 8 * time.Second, 16 * time.Second},
		{5, 16 * time.Second, 32 * time.Second},
		{8, 128 * time.Second, 256 * time.Second},
		{9, 150 * time.Second, 300 * time.Second}, // 512 s capped at 5 minutes
		{12, 150 * time.Second, 300 * time.Second},
		{185, 150 * time.Second, 300 * time.Second},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.attempt), func(t *testing.T) {
			t.Parallel()
			if lo, hi := igRetryBounds(tt.attempt); lo != tt.lo || hi != tt.hi {
				t.Fatalf("igRetryBounds(%d) = %v..%v, table says %v..%v", tt.attempt, lo, hi, tt.lo, tt.hi)
			}
			seen := map[time.Duration]bool{}
			for range 500 {
				d := retryDelay(tt.attempt)
				if d < tt.lo || d > tt.hi {
					t.Fatalf("retryDelay(%d) = %v, want %v to %v", tt.attempt, d, tt.lo, tt.hi)
				}
				if d%time.Second != 0 {
					t.Fatalf("retryDelay(%d) = %v, not whole seconds", tt.attempt, d)
				}
				seen[d] = true
			}
			// Equal jitter: 500 draws over a range of several seconds
			// are not all alike.
			if tt.hi-tt.lo >= 4*time.Second && len(seen) < 2 {
				t.Errorf("retryDelay(%d) always %v: no jitter", tt.attempt, seen)
			}
		})
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *RetryPolicy
		want RetryPolicy
	}{
		{"none", nil, RetryPolicy{MaxAttempts: DefaultMaxAttempts, MaxAgeSeconds: DefaultMaxAgeSeconds}},
		{"no retries, default age", &RetryPolicy{}, RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: DefaultMaxAgeSeconds}},
		{"both set", &RetryPolicy{MaxAttempts: 3, MaxAgeSeconds: 60}, RetryPolicy{MaxAttempts: 3, MaxAgeSeconds: 60}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.in.withDefaults()); diff != "" {
				t.Errorf("withDefaults (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRetryBackoffBounds(t *testing.T) {
	t.Parallel()
	for attempt, hi := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second, 2 * time.Second} {
		for range 200 {
			// Full jitter over [0, hi), plus the millisecond that keeps a
			// retry from coming at once.
			if d := backoff(attempt); d < time.Millisecond || d >= hi+time.Millisecond {
				t.Fatalf("backoff(%d) = %v, want 1ms to %v", attempt, d, hi+time.Millisecond)
			}
		}
	}
}

func TestRetrySleepCtx(t *testing.T) {
	t.Parallel()
	if err := sleepCtx(context.Background(), time.Millisecond); err != nil {
		t.Errorf("sleepCtx, not cancelled: %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx, cancelled: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("sleepCtx, cancelled, returned after %v", d)
	}
}

func TestRetryNewID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id := newID()
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("newID() = %q, want 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
	}
}
