package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// The send window (sendWindowFrom, sendWindowTo in sweep.go): the sweeper
// sends a batch within [k+0.70 s, k+0.95 s) of a second k, so that a
// message becomes visible 50-300 ms before its instant. These tests run
// sweeps over swStore and swQueue with a fake clock that only the fake
// Sleep moves (and, where said, the fake SQS's latency).

// swWindow is one sweep's clock, waits and queue.
type swWindow struct {
	clock *swClock
	q     *swQueue
	sw    *Sweeper

	mu     sync.Mutex
	sleeps []time.Duration // the Sleep calls, in order
}

// newSwWindow is a sweep at now of one partition's timers, one an hour at
// each of instants (all later than now, in one minute, so in one chunk
// and, up to 10, one batch), with a fake Sleep that records each wait
// and moves the clock by it, and a queue that stamps what it accepts with
// the clock. latency, when not 0, is how far the clock moves while SQS
// takes a call.
func newSwWindow(t *testing.T, now time.Time, latency time.Duration, instants ...time.Time) *swWindow {
	t.Helper()
	w := &swWindow{clock: newSwClock(now)}
	store := newSwStore(100)
	ids := swIDsInPart("w", 3, len(instants))
	for i, at := range instants {
		tm := swTimerOf(ids[i], "rate(1 hour)", "")
		tm.Anchor = at
		store.addTimer(tm, at, at.Add(-time.Hour))
	}
	w.q = &swQueue{now: w.clock.Now}
	if latency != 0 {
		w.q.before = func(context.Context, int, []FireMessage) error {
			w.clock.Advance(latency)
			return nil
		}
	}
	w.sw = newSwSweeper(store, w.q, now)
	w.sw.Now = w.clock.Now
	w.sw.Workers = 1 // one chunk at a time: the clock moves for one batch at a time
	w.sw.AlignUpTo = defaultAlignUpTo
	w.sw.Sleep = func(ctx context.Context, d time.Duration) error {
		w.mu.Lock()
		w.sleeps = append(w.sleeps, d)
		w.mu.Unlock()
		w.clock.Advance(d)
		return ctx.Err()
	}
	return w
}

// waits returns the waits the sweep asked for, in order.
func (w *swWindow) waits() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.sleeps...)
}

// early is, for each message accepted, how long before its instant it
// becomes visible: SQS counts its delay from when it took the message.
func (w *swWindow) early() []time.Duration {
	var out []time.Duration
	for _, s := range w.q.acceptedSorted() {
		visible := s.SentAt.Add(time.Duration(s.Delay) * time.Second)
		out = append(out, s.Msg.ScheduledAt.Sub(visible))
	}
	return out
}

// swFrac is swNow (a whole second, 10:44:30) plus a fraction of a second.
func swFrac(ms int) time.Time { return swNow.Add(time.Duration(ms) * time.Millisecond) }

// TestSweepSendWindow: whatever the fraction of a second a sweep reaches
// a batch at, it sends it within the window, so that every message is
// visible between 300 ms and 50 ms before its instant; within the window
// it does not wait. The delays are counted from the clock after the wait.
func TestSweepSendWindow(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name      string
		now       time.Time
		wantWaits []time.Duration
		wantEarly time.Duration // of every message
	}{
		{"at a whole second: waits 0.70 s", swFrac(0), []time.Duration{700 * ms}, 300 * ms},
		{"at .100", swFrac(100), []time.Duration{600 * ms}, 300 * ms},
		{"at .500", swFrac(500), []time.Duration{200 * ms}, 300 * ms},
		{"at .699", swFrac(699), []time.Duration{1 * ms}, 300 * ms},
		{"at .700: the window opens, no wait", swFrac(700), nil, 300 * ms},
		{"at .800", swFrac(800), nil, 200 * ms},
		{"at .949999999: the window's last instant", swFrac(949).Add(999999 * time.Nanosecond), nil, 50*ms + time.Nanosecond},
		{"at .950: the window has closed, waits for the next", swFrac(950), []time.Duration{750 * ms}, 300 * ms},
		{"at .990", swFrac(990), []time.Duration{710 * ms}, 300 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			instants := []time.Time{swAt(10, 45, 0), swAt(10, 45, 7), swAt(10, 45, 59)}
			w := newSwWindow(t, tt.now, 0, instants...)
			res, err := w.sw.Sweep(t.Context(), "ev-1")
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			w.q.check(t)
			if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 3, Enqueued: 3}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWaits, w.waits()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			early := w.early()
			if diff := cmp.Diff([]time.Duration{tt.wantEarly, tt.wantEarly, tt.wantEarly}, early); diff != "" {
				t.Errorf("visible before the instant (-want +got):\n%s", diff)
			}
			for _, e := range early {
				if e < 50*ms || e > 300*ms {
					t.Errorf("a message is visible %v before its instant, outside [50 ms, 300 ms]", e)
				}
			}
		})
	}
}

// TestSweepSendWindowSoon: a batch whose earliest occurrence is less than
// 2 s away goes at once (precision first: the wait could make it late),
// even when its other occurrences are far off; from 2 s on it waits.
func TestSweepSendWindowSoon(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	at := swAt(10, 45, 0)
	tests := []struct {
		name      string
		now       time.Time
		instants  []time.Time
		wantWaits []time.Duration
		wantEarly []time.Duration // by timer id, as instants
	}{
		{"1.7 s away: at once, visible 0.7 s early", at.Add(-1700 * ms), []time.Time{at}, nil, []time.Duration{700 * ms}},
		{"0.4 s away: at once", at.Add(-400 * ms), []time.Time{at}, nil, []time.Duration{400 * ms}},
		{"1.999 s away: at once", at.Add(-1999 * ms), []time.Time{at}, nil, []time.Duration{999 * ms}},
		{"2 s away: waits", at.Add(-2 * time.Second), []time.Time{at}, []time.Duration{700 * ms}, []time.Duration{300 * ms}},
		{"1.5 s and 40 s away in one batch: at once", at.Add(-1500 * ms), []time.Time{at, at.Add(40 * time.Second)}, nil,
			[]time.Duration{500 * ms, 500 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newSwWindow(t, tt.now, 0, tt.instants...)
			res, err := w.sw.Sweep(t.Context(), "ev-1")
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			w.q.check(t)
			if res.Enqueued != len(tt.instants) {
				t.Errorf("enqueued %d, want %d (%+v)", res.Enqueued, len(tt.instants), res)
			}
			if diff := cmp.Diff(tt.wantWaits, w.waits()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEarly, w.early()); diff != "" {
				t.Errorf("visible before the instant (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSweepSendWindowAlignUpTo: a sweep waits for the window only while it
// has found at most AlignUpTo occurrences (a sweep of a million must keep
// its throughput); negative, never. Two chunks of 6 (minutes 10:45 and
// 10:46) go out one after the other; SQS takes 300 ms a call, so the
// second chunk comes at a whole second, out of the window.
func TestSweepSendWindowAlignUpTo(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	var instants []time.Time
	for i := range 6 {
		instants = append(instants, swAt(10, 45, i), swAt(10, 46, i))
	}
	tests := []struct {
		name      string
		alignUpTo int
		wantWaits []time.Duration
	}{
		{"AlignUpTo 100: both chunks wait", 100, []time.Duration{700 * ms, 700 * ms}},
		{"AlignUpTo 6: the second chunk comes with 6 found, and waits", 6, []time.Duration{700 * ms, 700 * ms}},
		{"AlignUpTo 5: the second chunk comes with 6 found, and goes at once", 5, []time.Duration{700 * ms}},
		{"AlignUpTo 0: only the first chunk, with none found yet, waits", 0, []time.Duration{700 * ms}},
		{"AlignUpTo -1: never", -1, nil},
		{"AlignUpTo -100000: never", -100000, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newSwWindow(t, swFrac(0), 300*ms, instants...)
			w.sw.AlignUpTo = tt.alignUpTo
			res, err := w.sw.Sweep(t.Context(), "ev-1")
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			w.q.check(t)
			if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 12, Enqueued: 12}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int{6, 6}, w.q.callSizes()); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWaits, w.waits()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSweepSendWindowRetry: a batch's retry waits for the window too, and
// counts its delays from the clock after that wait. SQS takes 300 ms a
// call and fails the first try of every entry for its own reasons.
func TestSweepSendWindowRetry(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	w := newSwWindow(t, swFrac(500), 300*ms, swAt(10, 45, 0), swAt(10, 45, 1))
	w.q.fate = func(_ FireMessage, attempt int) swFate {
		if attempt == 0 {
			return swTransient
		}
		return swAccept
	}
	res, err := w.sw.Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	w.q.check(t)
	if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 2, Enqueued: 2}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// 10:44:30.5 waits to .7 and sends; SQS answers at 31.0 (failed); the
	// retry waits to 31.7 and sends.
	if diff := cmp.Diff([]time.Duration{200 * ms, 700 * ms}, w.waits()); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	// Sent at 31.7 with delays of 28 s and 29 s, taken by SQS at 32.0:
	// visible at 10:45:00.0 and 10:45:01.0, the 300 ms latency eating the
	// window's margin.
	if diff := cmp.Diff([]int32{28, 29}, []int32{w.q.acceptedSorted()[0].Delay, w.q.acceptedSorted()[1].Delay}); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
}

// TestSweepSendWindowCancelled: a sweep whose context is cancelled while a
// batch waits for the window returns without sending it, and says so;
// with the default Sleep (sleepCtx, real time) the wait ends at once.
func TestSweepSendWindowCancelled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// sleep is the Sweeper's Sleep; cancel cancels the sweep.
		sleep func(cancel context.CancelFunc) func(context.Context, time.Duration) error
	}{
		{"a fake Sleep during which the sweep is cancelled", func(cancel context.CancelFunc) func(context.Context, time.Duration) error {
			return func(ctx context.Context, d time.Duration) error {
				cancel()
				return ctx.Err()
			}
		}},
		{"the default Sleep, the sweep cancelled 20 ms into its wait", func(cancel context.CancelFunc) func(context.Context, time.Duration) error {
			return func(ctx context.Context, d time.Duration) error {
				time.AfterFunc(20*time.Millisecond, cancel)
				return NewSweeper(nil, nil, "").Sleep(ctx, d)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newSwWindow(t, swFrac(0), 0, swAt(10, 45, 0), swAt(10, 45, 1), swAt(10, 45, 2))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var waited []time.Duration
			sleep := tt.sleep(cancel)
			w.sw.Sleep = func(ctx context.Context, d time.Duration) error {
				waited = append(waited, d) // one worker: no race
				return sleep(ctx, d)
			}
			start := time.Now()
			res, err := w.sw.Sweep(ctx, "ev-1")
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("the sweep took %v: it waited out the window after its context was cancelled", took)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Sweep error %v, want context.Canceled", err)
			}
			if diff := cmp.Diff([]time.Duration{700 * time.Millisecond}, waited); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			if n := w.q.callCount(); n != 0 {
				t.Errorf("%d SendMessageBatch calls after the cancelled wait, want none", n)
			}
			if diff := cmp.Diff(SweepResult{Minutes: swFirstMinutes, Due: 3, Failed: 3}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSweeperSendWindowDefaults: NewSweeper aligns sweeps of up to 100,000
// occurrences and waits in real time; the window is the one the cost
// model and the invoker's comment assume.
func TestSweeperSendWindowDefaults(t *testing.T) {
	t.Parallel()
	sw := NewSweeper(nil, nil, "")
	if sw.AlignUpTo != 100000 {
		t.Errorf("AlignUpTo %d, want 100000", sw.AlignUpTo)
	}
	if sw.Sleep == nil {
		t.Error("no default Sleep")
	}
	if sendWindowFrom != 700*time.Millisecond || sendWindowTo != 950*time.Millisecond || sendWindowHold != 300*time.Millisecond {
		t.Errorf("window [%v, %v), hold %v; want [700ms, 950ms), 300ms", sendWindowFrom, sendWindowTo, sendWindowHold)
	}
	// The longest wait must leave an occurrence alignMinLead away at least
	// a whole second of delay, or it would be sent with delay 0, late.
	if longest := time.Second - sendWindowTo + sendWindowFrom; alignMinLead-longest < time.Second {
		t.Errorf("a wait of up to %v leaves an occurrence %v away less than a second", longest, alignMinLead)
	}
}

// TestIntegrationSweepSendWindow runs the sweeper as deployed (NewSweeper:
// the real clock and the real Sleep) on moto_server, which holds a message
// for its DelaySeconds in real time: the fire messages of instants 8-10 s
// away are sent within the window, so that each becomes visible shortly
// before its instant (50-300 ms, plus the way to moto and the polling
// here), not up to a second before.
func TestIntegrationSweepSendWindow(t *testing.T) {
	t.Parallel()
	clients, cfg := motoStack(t, 0)
	ctx := t.Context()
	store := NewStore(clients.DynamoDB, cfg.Table)
	now := time.Now().UTC()
	base := now.Truncate(time.Second).Add(8 * time.Second)
	for i := range 3 {
		at := base.Add(time.Duration(i) * time.Second)
		tm := &Timer{ID: fmt.Sprintf("window-%d", i), ShardID: "shard0", ScheduleExpr: "at(" + at.Format("2006-01-02T15:04:05") + ")",
			CatchUpSeconds: 3600, CallbackData: json.RawMessage(`{}`), CreatedAt: now, UpdatedAt: now}
		// Written 4 minutes before: beyond short notice, so linked, the
		// sweeper's to send.
		if _, _, direct, err := store.Put(ctx, tm, at.Add(-4*time.Minute)); err != nil || len(direct) != 0 {
			t.Fatalf("put %s: %v, %d occurrences to send at once, want none", tm.ID, err, len(direct))
		}
	}
	sw := NewSweeper(store, clients.SQS, cfg.FireQueueURL)
	sw.Log = slog.New(slog.DiscardHandler)
	// Sweep from 0.1 s into a second: sent at once, the messages would be
	// visible some 0.9 s early.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(1100 * time.Millisecond)))
	start := time.Now()
	res, err := sw.Sweep(ctx, "event-1")
	if err != nil || res.Enqueued != 3 {
		t.Fatalf("sweep: %+v, %v; want 3 enqueued", res, err)
	}
	if sent := time.Now(); sent.After(base.Add(-alignMinLead)) {
		t.Fatalf("the sweep ended %v before the first instant: too late for the test", base.Sub(sent))
	}
	t.Logf("sweep took %v", time.Since(start).Round(time.Millisecond))
	early := map[string]time.Duration{}
	for len(early) < 3 && time.Now().Before(base.Add(5*time.Second)) {
		out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &cfg.FireQueueURL, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		got := time.Now()
		for _, m := range out.Messages {
			var fm FireMessage
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &fm); err != nil {
				t.Fatal(err)
			}
			if _, seen := early[fm.TimerID]; !seen {
				early[fm.TimerID] = fm.ScheduledAt.Sub(got)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("received before the instant: %v", early)
	if len(early) != 3 {
		t.Fatalf("%d of 3 fire messages received", len(early))
	}
	for id, e := range early {
		// Sent at once, a message would be visible up to a second early;
		// within the window, at most sendWindowHold. The lower bound leaves
		// the way to moto and this polling 150 ms on a busy machine.
		if e > sendWindowHold+50*time.Millisecond || e < 50*time.Millisecond-150*time.Millisecond {
			t.Errorf("%s received %v before its instant, want within (-100 ms, 350 ms]", id, e)
		}
	}
}
