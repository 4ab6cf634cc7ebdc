package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeDueStore is an in-memory dueStore: timers by shard, handed out in
// pages of pageSize, oldest first, filtered by the until it is given.
type fakeDueStore struct {
	mu       sync.Mutex
	pageSize int
	shards   map[string][]*Timer
	dueCalls []dueCall
	advances []advanceCall
	// advance, when set, decides each Advance call; nil means success.
	advance func(t *Timer, next time.Time) (bool, error)
}

type dueCall struct {
	Shard string
	Until time.Time
}

type advanceCall struct {
	ID         string
	From, Next time.Time
}

func newFakeDueStore(pageSize int, timers ...*Timer) *fakeDueStore {
	f := &fakeDueStore{pageSize: pageSize, shards: map[string][]*Timer{}}
	for _, t := range timers {
		f.shards[t.ShardID] = append(f.shards[t.ShardID], t)
	}
	return f
}

func (f *fakeDueStore) Due(_ context.Context, shard string, until time.Time, page func([]*Timer) error) error {
	f.mu.Lock()
	f.dueCalls = append(f.dueCalls, dueCall{shard, until})
	var due []*Timer
	for _, t := range f.shards[shard] {
		if !t.NextFireAt.IsZero() && !t.NextFireAt.After(until) {
			c := *t
			due = append(due, &c)
		}
	}
	f.mu.Unlock()
	sort.Slice(due, func(i, j int) bool {
		if !due[i].NextFireAt.Equal(due[j].NextFireAt) {
			return due[i].NextFireAt.Before(due[j].NextFireAt)
		}
		return due[i].ID < due[j].ID
	})
	for len(due) > 0 {
		n := min(f.pageSize, len(due))
		if err := page(due[:n]); err != nil {
			return err
		}
		due = due[n:]
	}
	return nil
}

func (f *fakeDueStore) Advance(_ context.Context, t *Timer, next time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ok, err := true, error(nil)
	if f.advance != nil {
		ok, err = f.advance(t, next)
	}
	if ok && err == nil {
		f.advances = append(f.advances, advanceCall{t.ID, t.NextFireAt, next})
	}
	return ok, err
}

// advanced returns the successful Advance calls, sorted by timer id.
func (f *fakeDueStore) advanced() []advanceCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := slices.Clone(f.advances)
	sort.Slice(a, func(i, j int) bool { return a[i].ID < a[j].ID })
	return a
}

// fakeQueue is a batchSender that records every call. It answers with the
// successful entries in reverse order, as SQS does not promise any order.
type fakeQueue struct {
	mu      sync.Mutex
	batches []*sqs.SendMessageBatchInput
	// fail, when set, can fail a whole call.
	fail func(ids []string) error
	// reject, when set, reports the entries it returns true for as Failed.
	reject func(m FireMessage) bool
}

func (q *fakeQueue) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.batches = append(q.batches, in)
	var ids []string
	msgs := make([]FireMessage, len(in.Entries))
	for i, e := range in.Entries {
		if err := json.Unmarshal([]byte(aws.ToString(e.MessageBody)), &msgs[i]); err != nil {
			return nil, fmt.Errorf("fake queue: undecodable message body: %w", err)
		}
		ids = append(ids, msgs[i].TimerID)
	}
	if q.fail != nil {
		if err := q.fail(ids); err != nil {
			return nil, err
		}
	}
	out := &sqs.SendMessageBatchOutput{}
	for i := len(in.Entries) - 1; i >= 0; i-- {
		e := in.Entries[i]
		if q.reject != nil && q.reject(msgs[i]) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{
				Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false,
			})
			continue
		}
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{
			Id: e.Id, MessageId: aws.String(fmt.Sprintf("msg-%d-%d", len(q.batches), i)),
		})
	}
	return out, nil
}

// sentMessage is one entry the queue received, decoded.
type sentMessage struct {
	Msg   FireMessage
	Delay int32
}

// sent returns every entry the queue received, sorted by timer id and then
// scheduled time.
func (q *fakeQueue) sent(t *testing.T) []sentMessage {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []sentMessage
	for _, b := range q.batches {
		for _, e := range b.Entries {
			var m FireMessage
			if err := json.Unmarshal([]byte(aws.ToString(e.MessageBody)), &m); err != nil {
				t.Fatalf("message body is not a FireMessage: %v", err)
			}
			out = append(out, sentMessage{m, e.DelaySeconds})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Msg.TimerID != out[j].Msg.TimerID {
			return out[i].Msg.TimerID < out[j].Msg.TimerID
		}
		return out[i].Msg.ScheduledAt.Before(out[j].Msg.ScheduledAt)
	})
	return out
}

func (q *fakeQueue) sentIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	for _, m := range q.sent(t) {
		ids = append(ids, m.Msg.TimerID)
	}
	return ids
}

const sweepQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/fire"

func newTestSweeper(due *fakeDueStore, q *fakeQueue, shards int, now time.Time) *Sweeper {
	return &Sweeper{
		Timers:      due,
		Queue:       q,
		QueueURL:    sweepQueueURL,
		Shards:      shards,
		Lookahead:   2 * time.Minute,
		Concurrency: 2,
		Now:         func() time.Time { return now },
		Log:         slog.New(slog.DiscardHandler),
	}
}

// sweepNow is the sweeps' clock: half a minute before minute 45.
var sweepNow = time.Date(2026, 11, 22, 10, 44, 30, 0, time.UTC)

// callbackTimer is a timer in shard with callback data naming it, next
// firing at next, on the hourly minute of next.
func callbackTimer(id, shard string, next time.Time) *Timer {
	return &Timer{
		ID:           id,
		ShardID:      shard,
		MinuteOfHour: next.Minute(),
		CallbackData: json.RawMessage(fmt.Sprintf(`{"id":%q,"n":[1,2]}`, id)),
		NextFireAt:   next,
		Version:      3,
	}
}

func TestSweepSendsEachDueTimerOnceInBatchesOfTen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		pageSize    int
		wantBatches []int
	}{
		{"pages of 7", 7, []int{7, 7, 7, 4}},
		{"one page of 25", 25, []int{10, 10, 5}},
		{"pages of 10", 10, []int{10, 10, 5}},
		{"pages of 1", 1, slices.Repeat([]int{1}, 25)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var timers []*Timer
			var wantSent []sentMessage
			var wantAdvanced []advanceCall
			for i := range 25 {
				next := time.Date(2026, 11, 22, 10, 45+i%2, 0, 0, time.UTC)
				tm := callbackTimer(fmt.Sprintf("t%02d", i), "shard0", next)
				tm.Version = int64(i + 1)
				if i%5 == 0 { // some timers call HTTP instead
					tm.CallbackData = nil
					tm.HTTP = &HTTPTarget{Method: "POST", URL: "https://example.com/" + tm.ID, Headers: map[string]string{"Authorization": "aws-secret(/callclock/token)"}}
				}
				timers = append(timers, tm)
				wantSent = append(wantSent, sentMessage{
					Msg:   FireMessage{TimerID: tm.ID, Version: tm.Version, ScheduledAt: next, CallbackData: tm.CallbackData, HTTP: tm.HTTP},
					Delay: int32(next.Sub(sweepNow) / time.Second),
				})
				wantAdvanced = append(wantAdvanced, advanceCall{tm.ID, next, next.Add(time.Hour)})
			}
			due := newFakeDueStore(tt.pageSize, timers...)
			q := &fakeQueue{}
			res, err := newTestSweeper(due, q, 1, sweepNow).Sweep(t.Context())
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			if diff := cmp.Diff(SweepResult{Shards: 1, Due: 25, Enqueued: 25, Advanced: 25}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			var sizes []int
			for _, b := range q.batches {
				sizes = append(sizes, len(b.Entries))
				if got := aws.ToString(b.QueueUrl); got != sweepQueueURL {
					t.Errorf("batch sent to %q, want %q", got, sweepQueueURL)
				}
				var entryIDs []string
				for _, e := range b.Entries {
					entryIDs = append(entryIDs, aws.ToString(e.Id))
				}
				slices.Sort(entryIDs)
				if len(slices.Compact(entryIDs)) != len(b.Entries) {
					t.Errorf("batch entry ids are not unique: %v", entryIDs)
				}
			}
			if diff := cmp.Diff(tt.wantBatches, sizes); diff != "" {
				t.Errorf("batch sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantSent, q.sent(t), rawAsString); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantAdvanced, due.advanced()); diff != "" {
				t.Errorf("advances (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSweepShards(t *testing.T) {
	t.Parallel()
	dueAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	later := time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC)
	var timers []*Timer
	add := func(shard string, nDue, nLater int) {
		for i := range nDue {
			timers = append(timers, callbackTimer(fmt.Sprintf("%s-due%d", shard, i), shard, dueAt))
		}
		for i := range nLater {
			timers = append(timers, callbackTimer(fmt.Sprintf("%s-later%d", shard, i), shard, later))
		}
	}
	add("shard0", 4, 1)
	add("shard1", 2, 0)
	add("shard2", 3, 2)
	add("shard3", 5, 0) // outside Shards=3: never swept
	due := newFakeDueStore(2, timers...)
	q := &fakeQueue{}

	res, err := newTestSweeper(due, q, 3, sweepNow).Sweep(t.Context())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Shards: 3, Due: 9, Enqueued: 9, Advanced: 9, Failed: 0}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	until := sweepNow.Add(2 * time.Minute)
	wantCalls := []dueCall{{"shard0", until}, {"shard1", until}, {"shard2", until}}
	if diff := cmp.Diff(wantCalls, due.dueCalls, cmpopts.SortSlices(func(a, b dueCall) bool { return a.Shard < b.Shard })); diff != "" {
		t.Errorf("Due calls (-want +got):\n%s", diff)
	}
	wantIDs := []string{"shard0-due0", "shard0-due1", "shard0-due2", "shard0-due3", "shard1-due0", "shard1-due1", "shard2-due0", "shard2-due1", "shard2-due2"}
	if diff := cmp.Diff(wantIDs, q.sentIDs(t)); diff != "" {
		t.Errorf("sent timers (-want +got):\n%s", diff)
	}
}

func TestSweepOnlyDueWithinLookahead(t *testing.T) {
	t.Parallel()
	until := sweepNow.Add(2 * time.Minute)
	timers := []*Timer{
		callbackTimer("past", "shard0", sweepNow.Add(-time.Minute)),
		callbackTimer("now", "shard0", sweepNow),
		callbackTimer("soon", "shard0", sweepNow.Add(30*time.Second)),
		callbackTimer("at-until", "shard0", until),
		callbackTimer("after-until", "shard0", until.Add(time.Second)),
		callbackTimer("next-hour", "shard0", sweepNow.Add(time.Hour)),
	}
	due := newFakeDueStore(100, timers...)
	q := &fakeQueue{}

	res, err := newTestSweeper(due, q, 1, sweepNow).Sweep(t.Context())
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff([]dueCall{{"shard0", until}}, due.dueCalls); diff != "" {
		t.Errorf("Due calls (-want +got):\n%s", diff)
	}
	want := []string{"at-until", "now", "past", "soon"}
	if diff := cmp.Diff(want, q.sentIDs(t)); diff != "" {
		t.Errorf("sent timers (-want +got):\n%s", diff)
	}
	var advanced []string
	for _, a := range due.advanced() {
		advanced = append(advanced, a.ID)
	}
	if diff := cmp.Diff(want, advanced); diff != "" {
		t.Errorf("advanced timers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: 4, Enqueued: 4, Advanced: 4}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestSweepDelaySeconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 43, 29, 800e6, time.UTC)
	tests := []struct {
		id   string
		at   time.Time
		want int32
	}{
		{"90.2s-ahead", time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC), 91},
		{"0.2s-ahead", time.Date(2026, 11, 22, 10, 43, 30, 0, time.UTC), 1},
		{"at-now", now, 0},
		{"past", time.Date(2026, 11, 22, 10, 40, 0, 0, time.UTC), 0},
		{"exactly-15m-ahead", now.Add(15 * time.Minute), 900},
		{"over-15m-ahead", time.Date(2026, 11, 22, 11, 0, 0, 0, time.UTC), 900},
	}
	var timers []*Timer
	want := map[string]int32{}
	for _, tt := range tests {
		timers = append(timers, callbackTimer(tt.id, "shard0", tt.at))
		want[tt.id] = tt.want
	}
	due := newFakeDueStore(100, timers...)
	q := &fakeQueue{}
	sw := newTestSweeper(due, q, 1, now)
	sw.Lookahead = 20 * time.Minute
	if _, err := sw.Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	got := map[string]int32{}
	for _, m := range q.sent(t) {
		got[m.Msg.TimerID] = m.Delay
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DelaySeconds by timer (-want +got):\n%s", diff)
	}
}

func TestDelaySeconds(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 43, 29, 800e6, time.UTC)
	tests := []struct {
		name string
		d    time.Duration // at - now
		want int32
	}{
		{"90.2s rounds up", 90*time.Second + 200*time.Millisecond, 91},
		{"whole seconds stay", 90 * time.Second, 90},
		{"1ns rounds up to 1", 1, 1},
		{"at now", 0, 0},
		{"1ns in the past", -1, 0},
		{"3h in the past", -3 * time.Hour, 0},
		{"exactly 15 minutes", 15 * time.Minute, 900},
		{"just under 15 minutes", 15*time.Minute - 1, 900},
		{"just over 15 minutes", 15*time.Minute + 1, 900},
		{"an hour", time.Hour, 900},
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

func TestSweepOverdueTimerFiresOnce(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 11, 22, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name      string
		next      time.Time
		wantDelay int32
		wantNext  time.Time
	}{
		{"three hours overdue", at(7, 15), 0, at(11, 15)},
		{"two hours overdue, minute still ahead this hour", at(8, 45), 0, at(10, 45)},
		{"one minute overdue", at(10, 29), 0, at(11, 29)},
		{"due exactly now", at(10, 30), 0, at(11, 30)},
		{"due within lookahead", at(10, 31), 60, at(11, 31)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tm := callbackTimer("t1", "shard0", tt.next)
			due := newFakeDueStore(100, tm)
			q := &fakeQueue{}
			res, err := newTestSweeper(due, q, 1, now).Sweep(t.Context())
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			wantSent := []sentMessage{{
				Msg:   FireMessage{TimerID: "t1", Version: tm.Version, ScheduledAt: tt.next, CallbackData: tm.CallbackData},
				Delay: tt.wantDelay,
			}}
			if diff := cmp.Diff(wantSent, q.sent(t), rawAsString); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]advanceCall{{"t1", tt.next, tt.wantNext}}, due.advanced()); diff != "" {
				t.Errorf("advances (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(SweepResult{Shards: 1, Due: 1, Enqueued: 1, Advanced: 1}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSweepFailedEntriesAreNotAdvanced(t *testing.T) {
	t.Parallel()
	var timers []*Timer
	for i := range 5 {
		timers = append(timers, callbackTimer(fmt.Sprintf("t%d", i), "shard0", time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)))
	}
	due := newFakeDueStore(100, timers...)
	q := &fakeQueue{reject: func(m FireMessage) bool { return m.TimerID == "t1" || m.TimerID == "t3" }}

	res, err := newTestSweeper(due, q, 1, sweepNow).Sweep(t.Context())
	if err == nil {
		t.Error("Sweep succeeded, want an error for the rejected entries")
	}
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: 5, Enqueued: 3, Advanced: 3, Failed: 2}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	var advanced []string
	for _, a := range due.advanced() {
		advanced = append(advanced, a.ID)
	}
	if diff := cmp.Diff([]string{"t0", "t2", "t4"}, advanced); diff != "" {
		t.Errorf("advanced timers (-want +got):\n%s", diff)
	}
}

func TestSweepBatchErrorStopsShard(t *testing.T) {
	t.Parallel()
	errSQS := errors.New("sqs unavailable")
	dueAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	var timers []*Timer
	for i := range 25 {
		timers = append(timers, callbackTimer(fmt.Sprintf("s0-%02d", i), "shard0", dueAt))
	}
	for i := range 3 {
		timers = append(timers, callbackTimer(fmt.Sprintf("s1-%02d", i), "shard1", dueAt))
	}
	due := newFakeDueStore(25, timers...)
	// Shard 0's second batch (s0-10..s0-19) fails as a whole.
	q := &fakeQueue{fail: func(ids []string) error {
		if slices.Contains(ids, "s0-12") {
			return errSQS
		}
		return nil
	}}

	res, err := newTestSweeper(due, q, 2, sweepNow).Sweep(t.Context())
	if !errors.Is(err, errSQS) {
		t.Errorf("Sweep error = %v, want one wrapping %v", err, errSQS)
	}
	// Failed counts the rejected batch; whether the entries after it count
	// too is not pinned here.
	if diff := cmp.Diff(SweepResult{Shards: 2, Due: 28, Enqueued: 13, Advanced: 13}, res, cmpopts.IgnoreFields(SweepResult{}, "Failed")); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if res.Failed < 10 {
		t.Errorf("result Failed = %d, want at least the 10 entries of the failed batch", res.Failed)
	}
	var shard0Batches int
	for _, b := range q.batches {
		if strings.HasPrefix(aws.ToString(b.Entries[0].MessageBody), `{"timerId":"s0-`) {
			shard0Batches++
		}
	}
	if shard0Batches != 2 {
		t.Errorf("shard0 sent %d batches, want 2 (it stops at the failed one)", shard0Batches)
	}
	var advanced []string
	for _, a := range due.advanced() {
		advanced = append(advanced, a.ID)
	}
	want := []string{"s0-00", "s0-01", "s0-02", "s0-03", "s0-04", "s0-05", "s0-06", "s0-07", "s0-08", "s0-09", "s1-00", "s1-01", "s1-02"}
	if diff := cmp.Diff(want, advanced); diff != "" {
		t.Errorf("advanced timers (-want +got):\n%s", diff)
	}
}

func TestSweepAdvanceLostToAnotherWriter(t *testing.T) {
	t.Parallel()
	dueAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	due := newFakeDueStore(100,
		callbackTimer("t0", "shard0", dueAt), callbackTimer("t1", "shard0", dueAt), callbackTimer("t2", "shard0", dueAt))
	due.advance = func(t *Timer, _ time.Time) (bool, error) { return t.ID != "t1", nil }
	q := &fakeQueue{}

	res, err := newTestSweeper(due, q, 1, sweepNow).Sweep(t.Context())
	if err != nil {
		t.Errorf("Sweep: %v, want no error when another writer wins", err)
	}
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: 3, Enqueued: 3, Advanced: 2}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestSweepAdvanceError(t *testing.T) {
	t.Parallel()
	errDB := errors.New("dynamodb unavailable")
	dueAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	due := newFakeDueStore(100, callbackTimer("t0", "shard0", dueAt))
	due.advance = func(*Timer, time.Time) (bool, error) { return false, errDB }

	res, err := newTestSweeper(due, &fakeQueue{}, 1, sweepNow).Sweep(t.Context())
	if !errors.Is(err, errDB) {
		t.Errorf("Sweep error = %v, want one wrapping %v", err, errDB)
	}
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: 1, Enqueued: 1}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// TestSweepCallbackDataByteExact checks that the fire message carries the
// callback data exactly as registered: the invoker forwards those bytes to
// the callback queue.
func TestSweepCallbackDataByteExact(t *testing.T) {
	t.Parallel()
	const data = `{"q":"a<b && c>d"}`
	tm := callbackTimer("t0", "shard0", time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC))
	tm.CallbackData = json.RawMessage(data)
	q := &fakeQueue{}
	if _, err := newTestSweeper(newFakeDueStore(100, tm), q, 1, sweepNow).Sweep(t.Context()); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff([]string{data}, callbackDataSent(t, q)); diff != "" {
		t.Errorf("timerCallbackData bytes in fire messages (-want +got):\n%s", diff)
	}
}

// callbackDataSent returns the raw timerCallbackData of every message sent.
func callbackDataSent(t *testing.T, q *fakeQueue) []string {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, b := range q.batches {
		for _, e := range b.Entries {
			var m struct {
				Data json.RawMessage `json:"timerCallbackData"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(e.MessageBody)), &m); err != nil {
				t.Fatalf("message body: %v", err)
			}
			out = append(out, string(m.Data))
		}
	}
	return out
}

func TestHourlyNext(t *testing.T) {
	t.Parallel()
	utc := func(h, m, s, ns int) time.Time { return time.Date(2026, 11, 22, h, m, s, ns, time.UTC) }
	ist := time.FixedZone("IST", 5*3600+1800)
	nyc := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name   string
		minute int
		t      time.Time
		want   time.Time
	}{
		{"minute 0, before", 0, utc(9, 59, 59, 0), utc(10, 0, 0, 0)},
		{"minute 0, on the boundary", 0, utc(10, 0, 0, 0), utc(11, 0, 0, 0)},
		{"minute 0, 1ns after", 0, utc(10, 0, 0, 1), utc(11, 0, 0, 0)},
		{"minute 59, before", 59, utc(10, 58, 59, 999999999), utc(10, 59, 0, 0)},
		{"minute 59, on the boundary", 59, utc(10, 59, 0, 0), utc(11, 59, 0, 0)},
		{"minute 59, after", 59, utc(10, 59, 30, 0), utc(11, 59, 0, 0)},
		{"minute 45, earlier in the hour", 45, utc(10, 0, 0, 0), utc(10, 45, 0, 0)},
		{"across midnight", 30, time.Date(2026, 12, 31, 23, 45, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 30, 0, 0, time.UTC)},
		{"half-hour zone", 45, time.Date(2026, 11, 22, 16, 14, 59, 0, ist), utc(10, 45, 0, 0)},
		{"half-hour zone, on the boundary", 45, time.Date(2026, 11, 22, 16, 15, 0, 0, ist), utc(11, 45, 0, 0)},
		{"negative-offset zone", 5, time.Date(2026, 11, 22, 5, 10, 0, 0, nyc), utc(11, 5, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sched, err := (&Timer{MinuteOfHour: tt.minute}).Schedule(loadZone)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := sched.Next(tt.t)
			if !ok {
				t.Fatal("Next reported no occurrence")
			}
			if !got.Equal(tt.want) {
				t.Errorf("Next(%v) = %v, want %v", tt.t, got, tt.want)
			}
			if got.Location() != time.UTC {
				t.Errorf("Next(%v) is in %v, want UTC", tt.t, got.Location())
			}
		})
	}
}

func TestShardForStableAndInRange(t *testing.T) {
	t.Parallel()
	for _, shards := range []int{1, 3, 4, 100} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			t.Parallel()
			used := map[string]bool{}
			for i := range 5000 {
				id := fmt.Sprintf("timer-%d", i)
				s := shardFor(id, shards)
				if again := shardFor(id, shards); again != s {
					t.Fatalf("shardFor(%q) = %q, then %q", id, s, again)
				}
				var n int
				if _, err := fmt.Sscanf(s, "shard%d", &n); err != nil || n < 0 || n >= shards || s != fmt.Sprintf("shard%d", n) {
					t.Fatalf("shardFor(%q, %d) = %q, want shard0..shard%d", id, shards, s, shards-1)
				}
				used[s] = true
			}
			if len(used) != shards {
				t.Errorf("5000 ids used %d of %d shards", len(used), shards)
			}
		})
	}
	// Pinned FNV-1a values: a change of hash would move every stored timer.
	pinned := []struct {
		id     string
		shards int
		want   string
	}{
		{"fee5f544-af54-4ec3-9631-32f0d8d88309", 100, "shard56"},
		{"a", 100, "shard20"},
		{"timer-1", 100, "shard44"},
	}
	for _, p := range pinned {
		if got := shardFor(p.id, p.shards); got != p.want {
			t.Errorf("shardFor(%q, %d) = %q, want %q", p.id, p.shards, got, p.want)
		}
	}
}

func TestHourlyDefaultMinute(t *testing.T) {
	t.Parallel()
	used := map[int]bool{}
	for i := range 5000 {
		id := fmt.Sprintf("timer-%d", i)
		m := defaultMinute(id)
		if m < 0 || m > 59 {
			t.Fatalf("defaultMinute(%q) = %d, want 0..59", id, m)
		}
		if again := defaultMinute(id); again != m {
			t.Fatalf("defaultMinute(%q) = %d, then %d", id, m, again)
		}
		used[m] = true
	}
	if len(used) != 60 {
		t.Errorf("5000 ids used %d of 60 minutes", len(used))
	}
	// Pinned FNV-1a values: a change would move every timer's minute.
	for id, want := range map[string]int{"fee5f544-af54-4ec3-9631-32f0d8d88309": 32, "a": 36, "timer-1": 12} {
		if got := defaultMinute(id); got != want {
			t.Errorf("defaultMinute(%q) = %d, want %d", id, got, want)
		}
	}
}
