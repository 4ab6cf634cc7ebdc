package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// The spread path end to end on fakes with the real services' limits:
// the sweeper's and the API's sends, SQS's delays and visibility, the
// invoker's hold, retries and records (spread.go).

// newSpQueue is the fire queue between a fake sweeper and an invoker,
// holding what swQueue accepted (its delay 0-900 s checked there), each
// message visible from its send plus its delay, on clock now.
func newSpQueue(now func() time.Time, sent []swSent) *fakeFireQueue {
	q := newFakeFireQueue(now)
	for i, s := range sent {
		body, _ := marshalJSON(s.Msg)
		q.send("m"+strconv.Itoa(i), string(body), s.SentAt.Add(time.Duration(s.Delay)*time.Second))
	}
	return q
}

// TestSpreadSweepToDelivery runs a sweep (the fake store and SQS, with
// SQS's 900 s limit on a delay) and then the invoker on the queue it
// filled, with SQS's visibility rules: a timer without spread is sent
// delayed to its instant and delivered at its one receive; a spread timer
// whose planned instant is within 900 s of the sweep is sent delayed to
// it, and delivered at its one receive too; one whose planned instant is
// beyond SQS's reach is sent capped at 900 s, returned to the queue at its
// early receive (one ChangeMessageVisibility, no claim, no attempt), and
// delivered at its planned instant as attempt 1. Each records its planned
// instant, and its lateness is measured against it.
func TestSpreadSweepToDelivery(t *testing.T) {
	t.Parallel()
	at := swAt(10, 46, 0) // 90 s after the sweep at swNow
	near := spID(t, 900, func(o time.Duration) bool { return o > 100*time.Second && o < 700*time.Second })
	far := spID(t, 900, func(o time.Duration) bool { return o > 850*time.Second })
	store := newSwStore(100)
	var timers []Timer
	for _, tt := range []struct {
		id     string
		spread int
	}{{"plain", 0}, {near, 900}, {far, 900}} {
		tm := swTimerOf(tt.id, "rate(1 hour)", "")
		tm.Anchor, tm.SpreadSeconds = at, tt.spread
		store.addTimer(tm, at, at.Add(-time.Hour))
		timers = append(timers, Timer{ID: tt.id, Version: tm.Version, CallbackData: json.RawMessage(`{"id":"` + tt.id + `"}`), SpreadSeconds: tt.spread})
	}
	sq := &swQueue{now: func() time.Time { return swNow }}
	if _, err := newSwSweeper(store, sq, swNow).Sweep(t.Context(), "ev-spread"); err != nil {
		t.Fatal(err)
	}
	sq.check(t)
	planned := map[string]time.Time{"plain": at, near: at.Add(spreadOffset(near, 900)), far: at.Add(spreadOffset(far, 900))}
	delays := map[string]int32{}
	for _, s := range sq.acceptedSorted() {
		delays[s.Msg.TimerID] = s.Delay
		if want := planned[s.Msg.TimerID]; s.Msg.TimerID != "plain" && !s.Msg.PlannedAt.Equal(want) {
			t.Errorf("%s: message plannedAt %s, want %s", s.Msg.TimerID, s.Msg.PlannedAt, want)
		}
	}
	wantDelays := map[string]int32{"plain": 90, near: int32(planned[near].Sub(swNow) / time.Second), far: 900}
	if diff := cmp.Diff(wantDelays, delays); diff != "" {
		t.Errorf("DelaySeconds (-want +got):\n%s", diff)
	}

	clock := newSwClock(swNow)
	store2 := newIGStore(timers...)
	callbacks := &sqsSender{}
	log := &syncBuffer{}
	inv := testInvoker(nil, callbacks, log)
	inv.Now, inv.Timers, inv.FireQueueURL = clock.Now, store2, igFireQueueURL
	q := newSpQueue(clock.Now, sq.acceptedSorted())
	inv.Visibility = q
	if left := q.run(t, clock, inv, 10); left != 0 {
		t.Fatalf("the fire queue still holds %d messages after 10 batches", left)
	}

	if q.Receives() != 4 {
		t.Errorf("%d receives, want 4: one each, and the capped one's early receive", q.Receives())
	}
	hold := int32(planned[far].Sub(swNow.Add(900*time.Second)) / time.Second)
	if len(q.Changes()) != 1 || q.Changes()[0].Timeout != hold || q.Changes()[0].QueueURL != igFireQueueURL || !strings.HasSuffix(q.Changes()[0].ReceiptHandle, "-1") {
		t.Errorf("ChangeMessageVisibility calls %+v, want one, of a first receive, for %d s", q.Changes(), hold)
	}
	for _, p := range q.Problems() {
		t.Errorf("SQS: %s", p)
	}
	got := map[string]LastFire{}
	for _, f := range store2.Fires() {
		if _, twice := got[f.TimerID]; twice {
			t.Errorf("%s recorded twice", f.TimerID)
		}
		got[f.TimerID] = f.Fire
	}
	for id, p := range planned {
		f := got[id]
		var wantPlanned *time.Time
		if id != "plain" {
			wantPlanned = ptrTo(p)
		}
		want := LastFire{ScheduledAt: at, PlannedAt: wantPlanned, AttemptedAt: p, Attempt: 1, Outcome: OutcomeDelivered}
		if diff := cmp.Diff(want, f); diff != "" {
			t.Errorf("%s's outcome (-want +got):\n%s", id, diff)
		}
	}
	if n := len(callbacks.All()); n != 3 {
		t.Errorf("%d callback messages, want 3", n)
	}
	for _, rec := range log.Lines(t) {
		if rec["msg"] == "delivered" && rec["latenessMs"] != float64(0) {
			t.Errorf("%s delivered with lateness %v ms, want 0 against its planned instant", rec["timerId"], rec["latenessMs"])
		}
	}
	if !strings.Contains(log.String(), `"msg":"held until its planned instant"`) {
		t.Errorf("no log line for the held receive:\n%s", log.String())
	}
}

// spFireQueue is the API's fire queue: it records each message and its
// delay, and refuses a delay SQS would (above 900 s).
type spFireQueue struct {
	mu     sync.Mutex
	msgs   []FireMessage
	delays []int32
}

// SendMessage records the message and its delay.
func (q *spFireQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if in.DelaySeconds < 0 || in.DelaySeconds > 900 {
		return nil, fmt.Errorf("InvalidParameterValue: DelaySeconds %d", in.DelaySeconds)
	}
	var m FireMessage
	if err := json.Unmarshal([]byte(aws.ToString(in.MessageBody)), &m); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs, q.delays = append(q.msgs, m), append(q.delays, in.DelaySeconds)
	return &sqs.SendMessageOutput{MessageId: aws.String("m")}, nil
}

// TestSpreadAPI: a PUT that fires at once (short notice) sends its
// occurrence delayed to the planned instant, carrying it; a manual fire is
// not spread; a window out of range is a 400 naming spreadSeconds, and
// nothing is stored or sent.
func TestSpreadAPI(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a := newTestAPI(now, 4)
	q := &spFireQueue{}
	a.Fire = q
	id := spID(t, 900, func(o time.Duration) bool { return o > 60*time.Second })
	off := spreadOffset(id, 900)
	resp := a.call(t, "PUT", "/periodic/"+id, `{"schedule":"rate(1 hour)","spreadSeconds":900,"timerCallbackData":{}}`)
	if resp.StatusCode != 201 || !strings.Contains(resp.Body, `"spreadSeconds":900`) {
		t.Fatalf("PUT: %d %s", resp.StatusCode, resp.Body)
	}
	if resp := a.call(t, "POST", "/periodic/"+id+"/fire", ""); resp.StatusCode != 202 {
		t.Fatalf("fire: %d %s", resp.StatusCode, resp.Body)
	}
	if len(q.msgs) != 2 {
		t.Fatalf("%d messages sent, want the PUT's occurrence and the manual fire", len(q.msgs))
	}
	if m, d := q.msgs[0], q.delays[0]; !m.ScheduledAt.Equal(now) || !m.PlannedAt.Equal(now.Add(off)) || m.Redelay || d != int32(off/time.Second) {
		t.Errorf("the PUT's message %+v, delay %d; want scheduledAt %s, plannedAt %s later, delay %d", m, d, now, off, int32(off/time.Second))
	}
	if m, d := q.msgs[1], q.delays[1]; !m.Manual || !m.PlannedAt.IsZero() || d != 0 {
		t.Errorf("the manual fire %+v, delay %d; want it now, unspread", m, d)
	}
	for _, body := range []string{`{"schedule":"rate(1 hour)","spreadSeconds":901,"timerCallbackData":{}}`,
		`{"schedule":"rate(1 hour)","spreadSeconds":0,"timerCallbackData":{}}`,
		`{"schedule":"rate(1 hour)","spreadSeconds":"60","timerCallbackData":{}}`} {
		resp := a.call(t, "PUT", "/periodic/refused", body)
		if resp.StatusCode != 400 || !strings.Contains(resp.Body, "spreadSeconds") {
			t.Errorf("PUT %s: %d %s, want a 400 naming spreadSeconds", body, resp.StatusCode, resp.Body)
		}
	}
	if resp := a.call(t, "GET", "/periodic/refused", ""); resp.StatusCode != 404 {
		t.Errorf("a refused PUT stored its timer: %d %s", resp.StatusCode, resp.Body)
	}
	if len(q.msgs) != 2 {
		t.Errorf("a refused PUT sent %d messages", len(q.msgs)-2)
	}
}

// TestSpreadCatchUpAndRetryAge: the sweeper's catch-up window and the
// retry policy's maxAgeSeconds run from the planned instant. After a
// 5-minute outage, a timer with a 60 s catch-up window whose planned
// instant is still ahead is sent (delayed to it), where the same timer
// without spread is recorded missed; and a spread occurrence that fails
// at its planned instant, long after its nominal one, is retried within
// a maxAgeSeconds of 60.
func TestSpreadCatchUpAndRetryAge(t *testing.T) {
	t.Parallel()
	id := spID(t, 900, func(o time.Duration) bool { return o > 400*time.Second })
	off := spreadOffset(id, 900)
	nominal := swNow.Add(-5 * time.Minute).Truncate(time.Minute)
	store := newSwStore(100)
	store.setThrough(swMinute(nominal))
	for _, tt := range []struct {
		id     string
		spread int
	}{{id, 900}, {"plain", 0}} {
		tm := swTimerOf(tt.id, "cron(* * * * ? 2099)", "") // far off but this one, linked: the sweeper's
		tm.CatchUpSeconds, tm.SpreadSeconds = 60, tt.spread
		store.addTimer(tm, nominal, nominal.Add(-time.Hour))
	}
	sq := &swQueue{now: func() time.Time { return swNow }}
	if _, err := newSwSweeper(store, sq, swNow).Sweep(t.Context(), "ev-late"); err != nil {
		t.Fatal(err)
	}
	var sent []string
	for _, s := range sq.acceptedSorted() {
		if s.Msg.ScheduledAt.Equal(nominal) {
			sent = append(sent, fmt.Sprintf("%s delay %d", s.Msg.TimerID, s.Delay))
		}
	}
	want := []string{fmt.Sprintf("%s delay %d", id, int(nominal.Add(off).Sub(swNow)/time.Second))}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("the late occurrence's messages (-want +got):\n%s", diff)
	}
	var missed []string
	for _, m := range store.missedLog() {
		missed = append(missed, m.ID)
	}
	if diff := cmp.Diff([]string{"plain"}, missed); diff != "" {
		t.Errorf("recorded missed (-want +got):\n%s", diff)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	target := srv.URL
	tm := Timer{ID: id, Version: 1, SpreadSeconds: 900, HTTP: &HTTPTarget{Method: "GET", URL: target}, Retry: RetryPolicy{MaxAttempts: 3, MaxAgeSeconds: 60}}
	env := newIGEnv(t, nil, tm)
	msg := newFireMessage(id, 1, igAt)
	spreadMessage(&msg, 900, igAt.Add(-time.Minute))
	env.clock.Set(msg.PlannedAt.Add(time.Second))
	if failed := env.invoke(igRecord(t, "m1", 1, msg)); !slices.Equal(failed, []string{"m1"}) {
		t.Errorf("failed %v, want m1 left for its retry", failed)
	}
	if n := len(env.send.To(igDLQURL)); n != 0 {
		t.Errorf("%d dead letters: the age was counted from the nominal instant", n)
	}
	if calls := env.vis.Calls(); len(calls) != 1 {
		t.Errorf("visibility calls %+v, want the retry's delay", calls)
	}
}

// TestSpreadHoldsUntilPlanned: a spread message that comes a fraction of
// a second before its planned instant (SQS's delays are whole seconds) is
// held until that instant, not its nominal one, long past.
func TestSpreadHoldsUntilPlanned(t *testing.T) {
	t.Parallel()
	id := spID(t, 60, func(o time.Duration) bool { return o > 10*time.Second })
	env := newIGEnv(t, nil, Timer{ID: id, Version: 1, SpreadSeconds: 60, CallbackData: json.RawMessage(`{}`)})
	msg := newFireMessage(id, 1, igAt)
	spreadMessage(&msg, 60, igAt)
	env.clock.Set(msg.PlannedAt.Add(-400 * time.Millisecond))
	start := time.Now()
	if failed := env.invoke(igRecord(t, "m1", 1, msg)); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	if held := time.Since(start); held < 350*time.Millisecond {
		t.Errorf("delivered after %s, want it held the 400 ms until its planned instant", held)
	}
	if n := len(env.send.To(testQueueURL)); n != 1 {
		t.Errorf("%d callback messages, want 1", n)
	}
}

// TestSpreadHeldMessageFenced: a capped message held until its planned
// instant is fenced like any other when it comes back: its timer paused,
// replaced or deleted meanwhile, it is dropped as stale, never delivered.
func TestSpreadHeldMessageFenced(t *testing.T) {
	t.Parallel()
	at := swAt(10, 46, 0)
	sentAt := at.Add(-2 * time.Minute)
	var sent []swSent
	var timers []Timer
	for _, id := range spIDs(900, 3, func(o time.Duration) bool { return o > 800*time.Second && o < 890*time.Second }) {
		timers = append(timers, Timer{ID: id, Version: 1, SpreadSeconds: 900, CallbackData: json.RawMessage(`{}`)})
		m := newFireMessage(id, 1, at)
		spreadMessage(&m, 900, sentAt)
		if !m.Redelay {
			t.Fatalf("%s: not capped", id)
		}
		sent = append(sent, swSent{Msg: m, Delay: 900, SentAt: sentAt})
	}
	clock := newSwClock(sentAt)
	store := newIGStore(timers...)
	callbacks := &sqsSender{}
	log := &syncBuffer{}
	inv := testInvoker(nil, callbacks, log)
	inv.Now, inv.Timers, inv.FireQueueURL = clock.Now, store, igFireQueueURL
	q := newSpQueue(clock.Now, sent)
	inv.Visibility = q
	if left := q.run(t, clock, inv, 1); left != 3 || len(q.Changes()) != 3 || len(store.Claimed()) != 0 {
		t.Fatalf("the early receive: %d messages left, %d held, %d claims; want 3, 3, 0", left, len(q.Changes()), len(store.Claimed()))
	}
	paused := sentAt
	store.mu.Lock()
	p := store.timers[timers[0].ID]
	p.PausedAt = &paused
	store.timers[timers[0].ID] = p
	r := store.timers[timers[1].ID]
	r.Version = 2
	store.timers[timers[1].ID] = r
	delete(store.timers, timers[2].ID)
	store.mu.Unlock()
	if left := q.run(t, clock, inv, 10); left != 0 {
		t.Fatalf("%d messages left", left)
	}
	if n := len(callbacks.All()); n != 0 || len(store.Fires()) != 0 {
		t.Errorf("%d callbacks, %d outcomes recorded; want none", n, len(store.Fires()))
	}
	if n := strings.Count(log.String(), `"msg":"stale occurrence dropped"`); n != 3 {
		t.Errorf("%d stale drops logged, want 3:\n%s", n, log.String())
	}
}

// spIDs are the first n ids "spread-<i>" whose offsets in window satisfy
// ok.
func spIDs(window, n int, ok func(time.Duration) bool) []string {
	var ids []string
	for i := 0; len(ids) < n; i++ {
		if id := "spread-" + strconv.Itoa(i); ok(spreadOffset(id, window)) {
			ids = append(ids, id)
		}
	}
	return ids
}
