package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The sweeper's sending (sweep_send.go): SQS entry failures and their
// retries, delaySeconds, full batches (the send window is in
// sweep_window_test.go).

// ---------------------------------------------------------------- SQS entry failures

// TestSweepRetriesSQSFailures: entries SQS fails for its own reasons (or
// does not answer) are sent again until MaxAttempts; entries it refuses as
// the sender's fault are given up at once. What is given up is Failed and
// holds the next sweep back to its minute.
func TestSweepRetriesSQSFailures(t *testing.T) {
	t.Parallel()
	errCall := errors.New("connection reset")
	ids := swIDsInPart("t", 0, 12) // one chunk: batches ids[0:10] and ids[10:12]
	in := func(id string, idx ...int) bool {
		return slices.ContainsFunc(idx, func(i int) bool { return ids[i] == id })
	}
	tests := []struct {
		name string
		fate func(m FireMessage, attempt int) swFate
		// failCall fails a whole call, given its entries and how often
		// each was received before.
		failCall func(msgs []FireMessage, attempts map[string]int) bool
		// wantCalls are the entries of each call, sorted.
		wantCalls []int
		// wantAttempts are the receipts per entry index, where not 1.
		wantAttempts map[int]int
		wantFailed   []int
		wantErr      error
	}{
		{
			name: "transient failures are retried",
			fate: func(m FireMessage, attempt int) swFate {
				if attempt == 0 && in(m.TimerID, 1, 5, 10) {
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 2, 2, 10},
			wantAttempts: map[int]int{1: 2, 5: 2, 10: 2},
		},
		{
			name: "an unanswered entry is retried",
			fate: func(m FireMessage, attempt int) swFate {
				if attempt == 0 && in(m.TimerID, 4) {
					return swNoAnswer
				}
				return swAccept
			},
			wantCalls:    []int{1, 2, 10},
			wantAttempts: map[int]int{4: 2},
		},
		{
			name: "a failed call is retried",
			failCall: func(msgs []FireMessage, attempts map[string]int) bool {
				return msgs[0].TimerID == ids[0] && attempts[ids[0]] == 0
			},
			wantCalls:    []int{2, 10, 10},
			wantAttempts: map[int]int{0: 2, 1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2, 8: 2, 9: 2},
		},
		{
			name: "sender faults are not retried",
			fate: func(m FireMessage, attempt int) swFate {
				if in(m.TimerID, 3, 11) {
					return swSenderFault
				}
				return swAccept
			},
			wantCalls:  []int{2, 10},
			wantFailed: []int{3, 11},
		},
		{
			name: "transient failures and a sender fault in one batch",
			fate: func(m FireMessage, attempt int) swFate {
				switch {
				case in(m.TimerID, 2):
					return swSenderFault
				case attempt < 2 && in(m.TimerID, 6):
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 1, 2, 10},
			wantAttempts: map[int]int{6: 3},
			wantFailed:   []int{2},
		},
		{
			name: "a transient failure on every attempt gives up after MaxAttempts",
			fate: func(m FireMessage, attempt int) swFate {
				if in(m.TimerID, 7) {
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 1, 2, 10},
			wantAttempts: map[int]int{7: 3},
			wantFailed:   []int{7},
		},
		{
			name: "a call failing on every attempt gives up after MaxAttempts",
			failCall: func(msgs []FireMessage, _ map[string]int) bool {
				return msgs[0].TimerID == ids[10] || msgs[0].TimerID == ids[11]
			},
			wantCalls:    []int{2, 2, 2, 10},
			wantAttempts: map[int]int{10: 3, 11: 3},
			wantFailed:   []int{10, 11},
			wantErr:      errCall,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := newSwStore(100)
			for _, id := range ids {
				store.addTimer(swHourly(id, 45), swAt(10, 45, 0), swAt(9, 45, 0))
			}
			q := &swQueue{fate: tt.fate}
			var (
				mu   sync.Mutex
				seen = map[string]int{} // receipts per timer before this call
			)
			q.before = func(_ context.Context, _ int, msgs []FireMessage) error {
				mu.Lock()
				defer mu.Unlock()
				fail := tt.failCall != nil && tt.failCall(msgs, seen)
				for _, m := range msgs {
					seen[m.TimerID]++
				}
				if fail {
					return errCall
				}
				return nil
			}
			res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
			q.check(t)
			if diff := cmp.Diff(tt.wantCalls, q.callSizes()); diff != "" {
				t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
			}
			wantAttempts := map[swOcc]int{}
			var wantIDs []string
			for i, id := range ids {
				n := 1
				if a, ok := tt.wantAttempts[i]; ok {
					n = a
				}
				wantAttempts[swOcc{id, swAt(10, 45, 0)}] = n
				if !slices.Contains(tt.wantFailed, i) {
					wantIDs = append(wantIDs, id)
				}
			}
			if diff := cmp.Diff(wantAttempts, q.attempts); diff != "" {
				t.Errorf("sends per occurrence (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantIDs, q.acceptedIDs()); diff != "" {
				t.Errorf("timers enqueued (-want +got):\n%s", diff)
			}
			nf := len(tt.wantFailed)
			if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 12, Enqueued: 12 - nf, Failed: nf}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			switch {
			case nf == 0 && err != nil:
				t.Errorf("Sweep: %v, want no error once the retries succeeded", err)
			case nf > 0 && err == nil:
				t.Error("Sweep succeeded, want an error for the failed entries")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Sweep error = %v, want one wrapping %v", err, tt.wantErr)
			}
			through := swLast + 1
			if nf > 0 {
				through = swM45
			}
			if diff := cmp.Diff([]swRelease{{"ev-1", through, nf == 0, true}}, store.releaseLog()); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
			// Every timer was linked on before its batch went out, failed or not.
			if got := len(store.linksWritten()); got != 12 {
				t.Errorf("%d links written, want 12", got)
			}
		})
	}
}

// ---------------------------------------------------------------- delaySeconds

// TestDelaySeconds: a delay is rounded down, never negative, and at most
// SQS's limit.
func TestDelaySeconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 43, 29, 800e6, time.UTC)
	tests := []struct {
		name string
		d    time.Duration // at - now
		want int32
	}{
		{"90.2 s rounds down", 90*time.Second + 200*time.Millisecond, 90},
		{"whole seconds stay", 90 * time.Second, 90},
		{"999 ms rounds down to 0", 999 * time.Millisecond, 0},
		{"1 ns rounds down to 0", 1, 0},
		{"1 s", time.Second, 1},
		{"at now", 0, 0},
		{"1 ns in the past", -1, 0},
		{"3 h in the past", -3 * time.Hour, 0},
		{"2.5 minutes", 150 * time.Second, 150},
		{"just under 15 minutes", 15*time.Minute - 1, 899},
		{"exactly 15 minutes", 15 * time.Minute, 900},
		{"just over 15 minutes", 15*time.Minute + 1, 900},
		{"an hour", time.Hour, 900},
		{"a century", 100 * 365 * 24 * time.Hour, 900},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := delaySeconds(now.Add(tt.d), now); got != tt.want {
				t.Errorf("delaySeconds(now%+v, now) = %d, want %d", tt.d, got, tt.want)
			}
		})
	}
}

// TestSweepDelayCountsFromTheSend: a message must become visible at its
// instant however long the sweep has been running when it is sent. SQS
// counts DelaySeconds from when it receives the message, so the sweeper
// computes every delay when it sends, not from the sweep's start.
func TestSweepDelayCountsFromTheSend(t *testing.T) {
	t.Parallel()
	// Three chunks of 50, one worker: each chunk is sent after its links
	// are written, and each PutLinks takes 7 s of sweep time, so the later
	// chunks are sent 14 and 21 s into the sweep.
	store := newSwStore(1000)
	at := swAt(10, 45, 50)
	for _, id := range swIDsInPart("t", 0, 3*chunkSize) {
		tm := swTimerOf(id, "rate(1 hour)", "")
		tm.Anchor = at
		store.addTimer(tm, at, at.Add(-time.Hour))
	}
	clock := newSwClock(swNow)
	store.beforePutLinks = func([]DueEntry) { clock.Advance(7 * time.Second) }
	q := &swQueue{now: clock.Now}
	sw := newSwSweeper(store, q, swNow)
	sw.Now = clock.Now
	sw.Workers = 1
	if _, err := sw.Sweep(t.Context(), "ev-1"); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	sent := q.acceptedSorted()
	if len(sent) != 3*chunkSize {
		t.Fatalf("%d sent, want %d", len(sent), 3*chunkSize)
	}
	last := sent[0].SentAt
	for _, s := range sent {
		last = maxTime(last, s.SentAt)
		if err := swOnTime(s); err != nil {
			t.Error(err)
			break
		}
	}
	if last.Sub(swNow) < 21*time.Second {
		t.Fatalf("the last call was sent %v into the sweep; the test needs it 21 s in", last.Sub(swNow))
	}
}

// TestSweepFullBatchesAroundMissedTimers: only the last SQS batch of a
// bucket partition may be partial, also when some of its entries are
// skipped as missed: the old sweeper put missed timers into chunks of
// their own, and so must this one (see the report on issue 11).
func TestSweepFullBatchesAroundMissedTimers(t *testing.T) {
	t.Parallel()
	// In id order: 45 sent, 5 missed, 45 sent, 5 missed, all at 10:40
	// (270 s late): the sent ones have the default window, the missed 60 s.
	store := newSwStore(100)
	store.setThrough(swMinute(swAt(10, 40, 0)))
	for g := range 4 {
		n := map[bool]int{false: 45, true: 5}[g%2 == 1]
		for _, id := range swIDsInPart(fmt.Sprintf("g%d-", g), 0, n) { // all in one partition
			tm := swHourly(id, 40)
			if g%2 == 1 {
				tm.CatchUpSeconds = 60
			}
			store.addTimer(tm, swAt(10, 40, 0), swAt(9, 40, 0))
		}
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Minutes: int(swLast - swMinute(swAt(10, 40, 0)) + 1), Due: 100, Enqueued: 90, Missed: 10}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// 90 messages: nine full batches.
	if diff := cmp.Diff([]int{10, 10, 10, 10, 10, 10, 10, 10, 10}, q.callSizes()); diff != "" {
		t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
	}
}
