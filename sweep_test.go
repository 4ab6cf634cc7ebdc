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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ---------------------------------------------------------------- the fake store

// swStore is an in-memory dueStore with the real Store's semantics:
//
//   - Due returns the timers of a shard whose nextFireAt (Unix seconds) is at
//     or before until, ordered by (nextFireAt, id) as the byShardDue index
//     is, in pages of pageSize. Like a DynamoDB Query with Limit it reads each
//     page when it is asked for, starting after the last key of the previous
//     one, so it sees writes made meanwhile; a full page is followed by
//     another request, which may come back empty. Timers are handed over as
//     copies, as the real store decodes fresh ones.
//   - Advance applies each step only when the stored timer still has the
//     step's nextFireAt and version (otherwise StepConflict), deletes a
//     completed deleteAfterCompletion timer, removes nextFireAt when no
//     occurrence is left, and records a missed one.
//   - Lease/Release are the conditional updates of the lease item: a lease
//     is refused while another holds it (until its ttl passes) and when the
//     same event already completed the shard; Release only acts for the
//     current owner and records the event when the sweep completed.
type swStore struct {
	mu       sync.Mutex
	pageSize int
	timers   map[string]*Timer
	leases   map[string]*swLease

	// What happened, for the assertions.
	dueCalls   []swDueCall
	pages      map[string][]int // page sizes handed over, per shard
	writes     []int            // sizes of Advance calls
	applied    []swApplied      // steps applied, in order
	conflicts  []string         // ids of steps that conflicted
	notWritten []string         // ids of steps that came back StepFailed
	leaseCalls []swLeaseCall
	releases   []swRelease

	// Hooks, all optional.
	// beforeAdvance runs at the start of every Advance call, with mu held:
	// it may change f.timers to simulate another writer.
	beforeAdvance func(f *swStore, steps []Step)
	// failStep makes a step StepFailed (throttled after the store's retries).
	failStep func(st Step) bool
	// advanceErr fails a whole Advance call: with every outcome StepFailed
	// as the real store does, or with no outcomes when nilOutcomes is set.
	advanceErr  func(steps []Step) error
	nilOutcomes bool
	// dueErr fails the request for page number n (from 0) of shard.
	dueErr func(shard string, n int) error
	// leaseErr fails Lease for shard.
	leaseErr func(shard string) error
	// onLease reports every Lease answer.
	onLease func(shard, eventID string, granted bool)
}

type swLease struct {
	owner       string
	untilMs     int64 // 0: no leaseUntil attribute
	lastEventID string
	completedAt time.Time
}

type swDueCall struct {
	Shard string
	Until time.Time
}

type swApplied struct {
	ID         string
	From, Next time.Time
	Missed     bool
	Deleted    bool
}

type swLeaseCall struct {
	Shard, EventID string
	Granted        bool
}

type swRelease struct {
	Shard, EventID string
	Completed      bool
	Owned          bool // whether the caller still held the lease
}

func newSwStore(pageSize int, timers ...*Timer) *swStore {
	f := &swStore{pageSize: pageSize, timers: map[string]*Timer{}, leases: map[string]*swLease{}, pages: map[string][]int{}}
	f.put(timers...)
	return f
}

func (f *swStore) put(timers ...*Timer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range timers {
		c := *t
		f.timers[t.ID] = &c
	}
}

// get returns a copy of the stored timer.
func (f *swStore) get(id string) (Timer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.timers[id]
	if !ok {
		return Timer{}, false
	}
	return *t, true
}

// dueKeyAfter reports whether t sorts after the index key (at, id).
func dueKeyAfter(t *Timer, at int64, id string) bool {
	if n := t.NextFireAt.Unix(); n != at {
		return n > at
	}
	return t.ID > id
}

func (f *swStore) Due(ctx context.Context, shard string, until time.Time, page func([]*Timer) error) error {
	f.mu.Lock()
	f.dueCalls = append(f.dueCalls, swDueCall{shard, until})
	f.mu.Unlock()
	var (
		lastAt  int64
		lastID  string
		started bool
	)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.mu.Lock()
		if f.dueErr != nil {
			if err := f.dueErr(shard, n); err != nil {
				f.mu.Unlock()
				return fmt.Errorf("query due timers in %s: %w", shard, err)
			}
		}
		var items []*Timer
		for _, t := range f.timers {
			if t.ShardID != shard || t.NextFireAt.IsZero() || t.NextFireAt.Unix() > until.Unix() {
				continue
			}
			if started && !dueKeyAfter(t, lastAt, lastID) {
				continue
			}
			c := *t
			items = append(items, &c)
		}
		f.mu.Unlock()
		sort.Slice(items, func(i, j int) bool {
			a, b := items[i], items[j]
			if a.NextFireAt.Unix() != b.NextFireAt.Unix() {
				return a.NextFireAt.Unix() < b.NextFireAt.Unix()
			}
			return a.ID < b.ID
		})
		more := len(items) >= f.pageSize // DynamoDB returns a LastEvaluatedKey when Limit is reached
		if more {
			items = items[:f.pageSize]
		}
		f.mu.Lock()
		f.pages[shard] = append(f.pages[shard], len(items))
		f.mu.Unlock()
		if err := page(items); err != nil {
			return err
		}
		if !more {
			return nil
		}
		last := items[len(items)-1]
		lastAt, lastID, started = last.NextFireAt.Unix(), last.ID, true
	}
}

func (f *swStore) Advance(_ context.Context, steps []Step) ([]StepOutcome, error) {
	if len(steps) > maxTransactItems {
		return nil, fmt.Errorf("advance: %d steps; at most %d per call", len(steps), maxTransactItems)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, len(steps))
	if f.beforeAdvance != nil {
		f.beforeAdvance(f, steps)
	}
	out := make([]StepOutcome, len(steps))
	if f.advanceErr != nil {
		if err := f.advanceErr(steps); err != nil {
			for i, st := range steps {
				out[i] = StepFailed
				f.notWritten = append(f.notWritten, st.Timer.ID)
			}
			if f.nilOutcomes {
				return nil, err
			}
			return out, fmt.Errorf("advance %d timers: %w", len(steps), err)
		}
	}
	for i, st := range steps {
		if f.failStep != nil && f.failStep(st) {
			out[i] = StepFailed
			f.notWritten = append(f.notWritten, st.Timer.ID)
			continue
		}
		cur, ok := f.timers[st.Timer.ID]
		if !ok || cur.NextFireAt.IsZero() || cur.NextFireAt.Unix() != st.Timer.NextFireAt.Unix() || cur.Version != st.Timer.Version {
			out[i] = StepConflict
			f.conflicts = append(f.conflicts, st.Timer.ID)
			continue
		}
		a := swApplied{ID: cur.ID, From: cur.NextFireAt, Next: st.Next, Missed: st.Missed}
		if st.Next.IsZero() && cur.DeleteAfterCompletion && st.Missed {
			delete(f.timers, cur.ID)
			a.Deleted = true
		} else {
			n := *cur
			n.NextFireAt = st.Next // zero: the attribute is removed
			if st.Missed {
				n.MissedCount++
				old := cur.NextFireAt
				n.LastMissedAt = &old
			}
			f.timers[cur.ID] = &n
		}
		f.applied = append(f.applied, a)
		out[i] = StepApplied
	}
	return out, nil
}

func (f *swStore) Lease(_ context.Context, shard, owner, eventID string, now time.Time, ttl time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leaseErr != nil {
		if err := f.leaseErr(shard); err != nil {
			return false, fmt.Errorf("lease %s: %w", shard, err)
		}
	}
	l := f.leases[shard]
	if l == nil {
		l = &swLease{}
		f.leases[shard] = l
	}
	granted := (l.untilMs == 0 || l.untilMs < now.UnixMilli()) && (l.lastEventID == "" || l.lastEventID != eventID)
	if granted {
		l.owner, l.untilMs = owner, now.Add(ttl).UnixMilli()
	}
	f.leaseCalls = append(f.leaseCalls, swLeaseCall{shard, eventID, granted})
	if f.onLease != nil {
		f.onLease(shard, eventID, granted)
	}
	return granted, nil
}

func (f *swStore) Release(_ context.Context, shard, owner, eventID string, completed bool, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.leases[shard]
	owned := l != nil && l.owner == owner
	f.releases = append(f.releases, swRelease{shard, eventID, completed, owned})
	if !owned {
		return nil // the lease expired and another sweep took it
	}
	l.owner, l.untilMs = "", 0
	if completed {
		l.lastEventID, l.completedAt = eventID, now
	}
	return nil
}

// appliedSorted returns the applied steps sorted by timer id, then From.
func (f *swStore) appliedSorted() []swApplied {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := slices.Clone(f.applied)
	swSortApplied(a)
	return a
}

func (f *swStore) appliedIDs() []string {
	var ids []string
	for _, a := range f.appliedSorted() {
		ids = append(ids, a.ID)
	}
	return ids
}

func (f *swStore) releaseLog() []swRelease {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := slices.Clone(f.releases)
	sort.SliceStable(r, func(i, j int) bool { return r[i].Shard < r[j].Shard })
	return r
}

// lastEvents returns each leased shard's lastEventId, marked when held.
func (f *swStore) lastEvents() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]string{}
	for shard, l := range f.leases {
		m[shard] = l.lastEventID
		if l.owner != "" {
			m[shard] += " (held)"
		}
	}
	return m
}

// ---------------------------------------------------------------- the fake SQS

// swFate is what the fake queue does with one entry.
type swFate int

const (
	swAccept      swFate = iota
	swTransient          // Failed, SenderFault false: SQS's own trouble
	swSenderFault        // Failed, SenderFault true: the message is wrong
	swNoAnswer           // in neither Successful nor Failed
)

// swOcc is one occurrence: a timer and the instant it fires.
type swOcc struct {
	TimerID     string
	ScheduledAt time.Time
}

func (o swOcc) String() string { return o.TimerID + "@" + o.ScheduledAt.UTC().Format(time.RFC3339) }

// swSent is one entry SQS accepted, decoded.
type swSent struct {
	Msg   FireMessage
	Delay int32
}

// swQueue is a batchSender that records every SendMessageBatchInput and
// answers with the successful entries in reverse order (SQS promises no
// order). It checks each call against SQS's rules and decodes every body
// strictly as a FireMessage.
type swQueue struct {
	mu       sync.Mutex
	calls    []*sqs.SendMessageBatchInput
	accepted []swSent
	attempts map[swOcc]int // entries received per occurrence, failed calls included
	problems []string      // broken SQS rules

	// before runs before each call is answered, outside the lock: it may
	// block, or fail the whole call. call counts from 1; msgs are the
	// call's entries, decoded.
	before func(ctx context.Context, call int, msgs []FireMessage) error
	// fate decides each entry; attempt counts earlier receipts of the same
	// occurrence. Nil accepts everything.
	fate func(m FireMessage, attempt int) swFate
}

func (q *swQueue) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	cp := *in
	cp.Entries = slices.Clone(in.Entries)
	q.calls = append(q.calls, &cp)
	call := len(q.calls)
	if got := aws.ToString(in.QueueUrl); got != swQueueURL {
		q.problems = append(q.problems, fmt.Sprintf("call %d: QueueUrl %q", call, got))
	}
	if n := len(in.Entries); n < 1 || n > sqsBatch {
		q.problems = append(q.problems, fmt.Sprintf("call %d: %d entries (SQS takes 1-10)", call, n))
	}
	if q.attempts == nil {
		q.attempts = map[swOcc]int{}
	}
	ids := map[string]bool{}
	msgs := make([]FireMessage, len(in.Entries))
	attempts := make([]int, len(in.Entries)) // earlier receipts of each entry's occurrence
	for i, e := range in.Entries {
		if id := aws.ToString(e.Id); ids[id] || id == "" {
			q.problems = append(q.problems, fmt.Sprintf("call %d: entry id %q empty or repeated", call, id))
		} else {
			ids[id] = true
		}
		if e.DelaySeconds < 0 || e.DelaySeconds > 900 {
			q.problems = append(q.problems, fmt.Sprintf("call %d: DelaySeconds %d", call, e.DelaySeconds))
		}
		dec := json.NewDecoder(strings.NewReader(aws.ToString(e.MessageBody)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&msgs[i]); err != nil {
			q.problems = append(q.problems, fmt.Sprintf("call %d: body is not a FireMessage: %v", call, err))
			q.mu.Unlock()
			return nil, fmt.Errorf("fake SQS: undecodable body: %w", err)
		}
		o := swOcc{msgs[i].TimerID, msgs[i].ScheduledAt.UTC()}
		attempts[i] = q.attempts[o]
		q.attempts[o]++
	}
	q.mu.Unlock()

	if q.before != nil {
		if err := q.before(ctx, call, msgs); err != nil {
			return nil, err
		}
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	for i := len(in.Entries) - 1; i >= 0; i-- {
		e, m := in.Entries[i], msgs[i]
		fate := swAccept
		if q.fate != nil {
			fate = q.fate(m, attempts[i])
		}
		switch fate {
		case swAccept:
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{
				Id: e.Id, MessageId: aws.String(fmt.Sprintf("msg-%d-%d", call, i)),
			})
			q.accepted = append(q.accepted, swSent{m, e.DelaySeconds})
		case swTransient:
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{
				Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again"), SenderFault: false,
			})
		case swSenderFault:
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{
				Id: e.Id, Code: aws.String("InvalidParameterValue"), Message: aws.String("bad message"), SenderFault: true,
			})
		case swNoAnswer:
		}
	}
	return out, nil
}

// acceptedSorted returns the accepted entries by timer id, then instant.
func (q *swQueue) acceptedSorted() []swSent {
	q.mu.Lock()
	defer q.mu.Unlock()
	a := slices.Clone(q.accepted)
	swSortSent(a)
	return a
}

// acceptedOccs returns the accepted occurrences, sorted, repeats included.
func (q *swQueue) acceptedOccs() []swOcc {
	var occs []swOcc
	for _, s := range q.acceptedSorted() {
		occs = append(occs, swOcc{s.Msg.TimerID, s.Msg.ScheduledAt.UTC()})
	}
	return occs
}

func (q *swQueue) acceptedIDs() []string {
	var ids []string
	for _, s := range q.acceptedSorted() {
		ids = append(ids, s.Msg.TimerID)
	}
	return ids
}

// callSizes returns the number of entries of each call, in call order.
func (q *swQueue) callSizes() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	var n []int
	for _, c := range q.calls {
		n = append(n, len(c.Entries))
	}
	return n
}

func (q *swQueue) callCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.calls)
}

// check fails t for every SQS rule a call broke.
func (q *swQueue) check(t *testing.T) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.problems {
		t.Errorf("SendMessageBatch: %s", p)
	}
}

// ---------------------------------------------------------------- helpers

const swQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/callclock-fire"

// swNow is the sweeps' clock: half a minute before minute 45.
var swNow = time.Date(2026, 11, 22, 10, 44, 30, 0, time.UTC)

// swAt is an instant on swNow's day, UTC.
func swAt(h, m, s int) time.Time { return time.Date(2026, 11, 22, h, m, s, 0, time.UTC) }

// swRawJSON shows json.RawMessage values as text in diffs.
var swRawJSON = cmp.Transformer("swRawJSON", func(r json.RawMessage) string { return string(r) })

// swHourly is a seed-style timer: every hour at the minute of next, UTC.
func swHourly(id, shard string, next time.Time) *Timer {
	return &Timer{
		ID:             id,
		ShardID:        shard,
		MinuteOfHour:   next.Minute(),
		CatchUpSeconds: DefaultCatchUpSeconds,
		CallbackData:   json.RawMessage(fmt.Sprintf(`{"id":%q,"n":[1,2]}`, id)),
		NextFireAt:     next,
		Version:        3,
	}
}

// swExpr is a timer with a schedule expression in zone tz.
func swExpr(id, shard, expr, tz string, next time.Time) *Timer {
	t := swHourly(id, shard, next)
	t.ScheduleExpr, t.Timezone = expr, tz
	return t
}

// swWant is the fire message of a timer's next occurrence.
func swWant(t *Timer, delay int32) swSent {
	return swSent{Msg: FireMessage{TimerID: t.ID, Version: t.Version, ScheduledAt: t.NextFireAt, CallbackData: t.CallbackData, HTTP: t.HTTP}, Delay: delay}
}

func swSortSent(s []swSent) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Msg.TimerID != s[j].Msg.TimerID {
			return s[i].Msg.TimerID < s[j].Msg.TimerID
		}
		return s[i].Msg.ScheduledAt.Before(s[j].Msg.ScheduledAt)
	})
}

func swSortApplied(a []swApplied) {
	sort.SliceStable(a, func(i, j int) bool {
		if a[i].ID != a[j].ID {
			return a[i].ID < a[j].ID
		}
		return a[i].From.Before(a[j].From)
	})
}

func swSortOccs(o []swOcc) {
	slices.SortFunc(o, func(a, b swOcc) int {
		if c := strings.Compare(a.TimerID, b.TimerID); c != 0 {
			return c
		}
		return a.ScheduledAt.Compare(b.ScheduledAt)
	})
}

// newSwSweeper is a Sweeper with the defaults, a fixed clock, no logs and
// MaxAttempts 3 (so that a batch's retries back off for at most 150 ms).
func newSwSweeper(store dueStore, q batchSender, shards int, now time.Time) *Sweeper {
	s := NewSweeper(store, q, swQueueURL)
	s.Shards = shards
	s.Now = func() time.Time { return now }
	s.Log = slog.New(slog.DiscardHandler)
	s.MaxAttempts = 3
	return s
}

// ---------------------------------------------------------------- 1. paging, chunks, batches

// TestSweepPagesChunksAndBatches sweeps one shard read in small pages and
// checks the whole pipeline: every due timer is sent once with the right
// message and delay, in SQS batches of 10 of which only the shard's very
// last may be partial, and advanced to its next hourly occurrence in write
// batches of 25.
func TestSweepPagesChunksAndBatches(t *testing.T) {
	t.Parallel()
	var pages17 []int
	for range 17 {
		pages17 = append(pages17, 7)
	}
	tests := []struct {
		name        string
		n, pageSize int
		wantPages   []int
		// wantBatches are the entries of each SendMessageBatch call, sorted:
		// full batches of 10 and, at most, one partial batch per shard.
		wantBatches []int
		wantWrites  []int // entries of each Advance call, sorted
	}{
		{"25 timers in pages of 7", 25, 7, []int{7, 7, 7, 4}, []int{5, 10, 10}, []int{25}},
		{"21 timers in pages of 7, then an empty page", 21, 7, []int{7, 7, 7, 0}, []int{1, 10, 10}, []int{21}},
		{"1 timer", 1, 7, []int{1}, []int{1}, []int{1}},
		{"123 timers in pages of 7: chunks of 50, 50 and 23", 123, 7, append(pages17, 4),
			[]int{3, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, []int{23, 25, 25, 25, 25}},
		{"100 timers in one page: two full chunks", 100, 1000, []int{100},
			[]int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, []int{25, 25, 25, 25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				timers      []*Timer
				wantSent    []swSent
				wantApplied []swApplied
			)
			delays := map[int]int32{44: 0, 45: 30, 46: 90} // 10:44 is 30 s overdue
			for i := range tt.n {
				next := swAt(10, 44+i%3, 0)
				tm := swHourly(fmt.Sprintf("t%03d", i), "shard0", next)
				tm.Version = int64(i%4 + 1)
				if i%5 == 0 { // some call HTTP targets instead
					tm.CallbackData = nil
					tm.HTTP = &HTTPTarget{Method: "POST", URL: "https://example.com/" + tm.ID,
						Headers: map[string]string{"Authorization": "aws-secret(/callclock/token)"}, Body: `{"a":"<&>"}`}
				}
				timers = append(timers, tm)
				wantSent = append(wantSent, swWant(tm, delays[next.Minute()]))
				wantApplied = append(wantApplied, swApplied{ID: tm.ID, From: next, Next: next.Add(time.Hour)})
			}
			store := newSwStore(tt.pageSize, timers...)
			q := &swQueue{}
			res, err := newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1")
			if err != nil {
				t.Fatalf("Sweep: %v", err)
			}
			q.check(t)
			if diff := cmp.Diff(SweepResult{Shards: 1, Due: tt.n, Enqueued: tt.n, Advanced: tt.n}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string][]int{"shard0": tt.wantPages}, store.pages); diff != "" {
				t.Errorf("due pages (-want +got):\n%s", diff)
			}
			sizes := q.callSizes()
			slices.Sort(sizes)
			if diff := cmp.Diff(tt.wantBatches, sizes); diff != "" {
				t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantSent, q.acceptedSorted(), swRawJSON); diff != "" {
				t.Errorf("messages enqueued (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantApplied, store.appliedSorted()); diff != "" {
				t.Errorf("advances (-want +got):\n%s", diff)
			}
			writes := slices.Clone(store.writes)
			slices.Sort(writes)
			if diff := cmp.Diff(tt.wantWrites, writes); diff != "" {
				t.Errorf("Advance call sizes (-want +got):\n%s", diff)
			}
			for _, tm := range timers {
				if got, _ := store.get(tm.ID); !got.NextFireAt.Equal(tm.NextFireAt.Add(time.Hour)) {
					t.Errorf("%s stored with next %v, want %v", tm.ID, got.NextFireAt, tm.NextFireAt.Add(time.Hour))
				}
			}
			if diff := cmp.Diff([]swRelease{{"shard0", "ev-1", true, true}}, store.releaseLog()); diff != "" {
				t.Errorf("releases (-want +got):\n%s", diff)
			}
		})
	}
}

// ---------------------------------------------------------------- 2. shards

// TestSweepShards sweeps three shards, each read in several pages, next to
// a fourth shard the sweep is not configured for and timers beyond the
// lookahead.
func TestSweepShards(t *testing.T) {
	t.Parallel()
	until := swNow.Add(2 * time.Minute)
	var (
		timers  []*Timer
		wantDue []swOcc
	)
	add := func(shard string, nDue int, later ...time.Time) {
		for i := range nDue {
			next := swAt(10, 44+i%3, 0)
			tm := swHourly(fmt.Sprintf("%s-due%d", shard, i), shard, next)
			timers = append(timers, tm)
			if shard != "shard3" {
				wantDue = append(wantDue, swOcc{tm.ID, next})
			}
		}
		for i, at := range later {
			tm := swExpr(fmt.Sprintf("%s-later%d", shard, i), shard, "rate(1 minute)", "", at)
			tm.Anchor = at
			timers = append(timers, tm)
		}
	}
	add("shard0", 8, until.Add(time.Second), swAt(11, 0, 0))
	add("shard1", 4)
	add("shard2", 7, swAt(10, 47, 0), swAt(12, 0, 0), until.Add(time.Second))
	add("shard3", 5) // outside Shards=3: never swept
	// A timer exactly at the lookahead's end is due.
	edge := swExpr("shard1-at-until", "shard1", "rate(1 minute)", "", until)
	edge.Anchor = until
	timers = append(timers, edge)
	wantDue = append(wantDue, swOcc{edge.ID, until})
	swSortOccs(wantDue)

	store := newSwStore(3, timers...)
	q := &swQueue{}
	res, err := newSwSweeper(store, q, 3, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	q.check(t)
	n := len(wantDue)
	if diff := cmp.Diff(SweepResult{Shards: 3, Due: n, Enqueued: n, Advanced: n}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	wantCalls := []swDueCall{{"shard0", until}, {"shard1", until}, {"shard2", until}}
	if diff := cmp.Diff(wantCalls, store.dueCalls, cmpopts.SortSlices(func(a, b swDueCall) bool { return a.Shard < b.Shard })); diff != "" {
		t.Errorf("Due calls (-want +got):\n%s", diff)
	}
	for _, shard := range []string{"shard0", "shard1", "shard2"} {
		if len(store.pages[shard]) < 2 {
			t.Errorf("%s was read in %d page(s), want several", shard, len(store.pages[shard]))
		}
	}
	if diff := cmp.Diff(wantDue, q.acceptedOccs()); diff != "" {
		t.Errorf("occurrences enqueued (-want +got):\n%s", diff)
	}
	var wantIDs []string
	for _, o := range wantDue {
		wantIDs = append(wantIDs, o.TimerID)
	}
	if diff := cmp.Diff(wantIDs, store.appliedIDs()); diff != "" {
		t.Errorf("timers advanced (-want +got):\n%s", diff)
	}
	for _, tm := range timers {
		if strings.Contains(tm.ID, "-later") || strings.HasPrefix(tm.ID, "shard3") {
			if got, _ := store.get(tm.ID); !got.NextFireAt.Equal(tm.NextFireAt) {
				t.Errorf("%s (not due or not swept) moved from %v to %v", tm.ID, tm.NextFireAt, got.NextFireAt)
			}
		}
	}
	if diff := cmp.Diff(map[string]string{"shard0": "ev-1", "shard1": "ev-1", "shard2": "ev-1"}, store.lastEvents()); diff != "" {
		t.Errorf("leases after the sweep (-want +got):\n%s", diff)
	}
}

// ---------------------------------------------------------------- 3. overlapping sweeps

type swSweepKey struct{}

// TestSweepOverlappingSweeps runs two sweeps at once on one store: every
// occurrence is enqueued once in total and no timer is advanced twice.
func TestSweepOverlappingSweeps(t *testing.T) {
	t.Parallel()
	mkTimers := func(shards, perShard int) ([]*Timer, []swOcc) {
		var timers []*Timer
		var occs []swOcc
		for s := range shards {
			for i := range perShard {
				tm := swHourly(fmt.Sprintf("s%d-%02d", s, i), fmt.Sprintf("shard%d", s), swAt(10, 44+i%3, 0))
				timers = append(timers, tm)
				occs = append(occs, swOcc{tm.ID, tm.NextFireAt})
			}
		}
		swSortOccs(occs)
		return timers, occs
	}

	t.Run("the second sweep finds every shard held", func(t *testing.T) {
		t.Parallel()
		timers, want := mkTimers(3, 12)
		store := newSwStore(5, timers...)
		gate := make(chan struct{})
		var openGate sync.Once
		t.Cleanup(func() { openGate.Do(func() { close(gate) }) })
		firstSend := make(chan struct{})
		var firstOnce sync.Once
		// The first sweep's sends wait until the second sweep is over.
		q := &swQueue{before: func(ctx context.Context, call int, _ []FireMessage) error {
			if ctx.Value(swSweepKey{}) != 1 {
				return nil
			}
			firstOnce.Do(func() { close(firstSend) })
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		leased := make(chan string, 16)
		store.onLease = func(shard, eventID string, granted bool) {
			if granted && eventID == "ev-1" {
				leased <- shard
			}
		}
		var (
			res1 SweepResult
			err1 error
			done = make(chan struct{})
		)
		go func() {
			defer close(done)
			res1, err1 = newSwSweeper(store, q, 3, swNow).Sweep(context.WithValue(t.Context(), swSweepKey{}, 1), "ev-1")
		}()
		timeout := time.After(30 * time.Second) // a guard against hanging, not a timing assertion
		for held := 0; held < 3; held++ {
			select {
			case <-leased:
			case <-timeout:
				t.Fatalf("the first sweep leased %d of 3 shards", held)
			}
		}
		select {
		case <-firstSend:
		case <-timeout:
			t.Fatal("the first sweep never sent")
		}

		res2, err2 := newSwSweeper(store, q, 3, swNow.Add(10*time.Second)).Sweep(t.Context(), "ev-2")
		if err2 != nil {
			t.Errorf("second sweep: %v", err2)
		}
		if diff := cmp.Diff(SweepResult{Shards: 3, Skipped: 3}, res2); diff != "" {
			t.Errorf("second sweep's result (-want +got):\n%s", diff)
		}
		if n := len(q.acceptedSorted()); n != 0 {
			t.Errorf("%d messages accepted while the first sweep was held, want 0", n)
		}
		openGate.Do(func() { close(gate) })
		<-done
		if err1 != nil {
			t.Errorf("first sweep: %v", err1)
		}
		if diff := cmp.Diff(SweepResult{Shards: 3, Due: 36, Enqueued: 36, Advanced: 36}, res1); diff != "" {
			t.Errorf("first sweep's result (-want +got):\n%s", diff)
		}
		q.check(t)
		if diff := cmp.Diff(want, q.acceptedOccs()); diff != "" {
			t.Errorf("occurrences enqueued in total (-want +got):\n%s", diff)
		}
		var wantIDs []string
		for _, o := range want {
			wantIDs = append(wantIDs, o.TimerID)
		}
		if diff := cmp.Diff(wantIDs, store.appliedIDs()); diff != "" {
			t.Errorf("advances in total (-want +got):\n%s", diff)
		}
		if len(store.conflicts) != 0 {
			t.Errorf("conflicts: %v", store.conflicts)
		}
		// Only the first sweep read the shards.
		for _, c := range store.dueCalls {
			if !c.Until.Equal(swNow.Add(2 * time.Minute)) {
				t.Errorf("Due read by the second sweep: %+v", c)
			}
		}
	})

	t.Run("racing sweeps", func(t *testing.T) {
		t.Parallel()
		for round := range 25 {
			timers, want := mkTimers(4, 30)
			store := newSwStore(4, timers...)
			q := &swQueue{}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				res   [2]SweepResult
				errs  [2]error
			)
			for k := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sw := newSwSweeper(store, q, 4, swNow.Add(time.Duration(k)*time.Second))
					sw.Workers = 2
					<-start
					res[k], errs[k] = sw.Sweep(t.Context(), fmt.Sprintf("ev-%d-%d", round, k))
				}()
			}
			close(start)
			wg.Wait()
			for k := range 2 {
				if errs[k] != nil {
					t.Fatalf("round %d sweep %d: %v", round, k, errs[k])
				}
				if res[k].Failed != 0 || res[k].Conflicts != 0 || res[k].Missed != 0 {
					t.Fatalf("round %d sweep %d: %+v", round, k, res[k])
				}
			}
			if got := res[0].Enqueued + res[1].Enqueued; got != len(want) {
				t.Errorf("round %d: enqueued %d+%d, want %d in total", round, res[0].Enqueued, res[1].Enqueued, len(want))
			}
			if got := res[0].Advanced + res[1].Advanced; got != len(want) {
				t.Errorf("round %d: advanced %d+%d, want %d in total", round, res[0].Advanced, res[1].Advanced, len(want))
			}
			if swept := 8 - res[0].Skipped - res[1].Skipped; swept < 4 {
				t.Errorf("round %d: only %d shard sweeps for 4 shards: %+v", round, swept, res)
			}
			if diff := cmp.Diff(want, q.acceptedOccs()); diff != "" {
				t.Fatalf("round %d: occurrences enqueued (-want +got):\n%s", round, diff)
			}
			if got := len(store.appliedIDs()); got != len(want) {
				t.Fatalf("round %d: %d advances, want %d", round, got, len(want))
			}
		}
	})
}

// ---------------------------------------------------------------- 4. an event delivered twice

// TestSweepSameEventTwice delivers one scheduled event twice: the repeat
// sweeps nothing, even though timers became due in between; the next
// event sweeps normally.
func TestSweepSameEventTwice(t *testing.T) {
	t.Parallel()
	var timers []*Timer
	for i := range 6 {
		timers = append(timers, swHourly(fmt.Sprintf("a%d", i), fmt.Sprintf("shard%d", i%2), swAt(10, 45, 0)))
	}
	store := newSwStore(4, timers...)
	q := &swQueue{}
	sw := newSwSweeper(store, q, 2, swNow)

	res, err := sw.Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("first delivery: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Shards: 2, Due: 6, Enqueued: 6, Advanced: 6}, res); diff != "" {
		t.Errorf("first delivery (-want +got):\n%s", diff)
	}
	// Timers created meanwhile, due now.
	store.put(swHourly("late0", "shard0", swAt(10, 46, 0)), swHourly("late1", "shard1", swAt(10, 46, 0)))
	calls, dueCalls := q.callCount(), len(store.dueCalls)

	res, err = sw.Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Errorf("repeated delivery: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Shards: 2, Skipped: 2}, res); diff != "" {
		t.Errorf("repeated delivery (-want +got):\n%s", diff)
	}
	if q.callCount() != calls || len(store.dueCalls) != dueCalls {
		t.Errorf("the repeated delivery read or sent: %d SQS calls, %d Due calls after %d, %d", q.callCount(), len(store.dueCalls), calls, dueCalls)
	}

	res, err = sw.Sweep(t.Context(), "ev-2")
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Shards: 2, Due: 2, Enqueued: 2, Advanced: 2}, res); diff != "" {
		t.Errorf("next event (-want +got):\n%s", diff)
	}
	wantIDs := []string{"a0", "a1", "a2", "a3", "a4", "a5", "late0", "late1"}
	if diff := cmp.Diff(wantIDs, q.acceptedIDs()); diff != "" {
		t.Errorf("timers enqueued (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantIDs, store.appliedIDs()); diff != "" {
		t.Errorf("timers advanced (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"shard0": "ev-2", "shard1": "ev-2"}, store.lastEvents()); diff != "" {
		t.Errorf("leases (-want +got):\n%s", diff)
	}
}

// TestSweepLeaseOfDeadSweep: a sweep that died holding a shard keeps it
// until its lease expires; the other shards are swept meanwhile.
func TestSweepLeaseOfDeadSweep(t *testing.T) {
	t.Parallel()
	s0 := swExpr("s0", "shard0", "rate(1 minute)", "", swAt(10, 45, 0))
	s1 := swExpr("s1", "shard1", "rate(1 minute)", "", swAt(10, 45, 0))
	s0.Anchor, s1.Anchor = swAt(10, 0, 0), swAt(10, 0, 0)
	store := newSwStore(10, s0, s1)
	// The dead sweep leased shard0 30 s ago for 90 s.
	if ok, _ := store.Lease(t.Context(), "shard0", "dead", "ev-0", swNow.Add(-30*time.Second), 90*time.Second); !ok {
		t.Fatal("setup: lease refused")
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, 2, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Shards: 2, Skipped: 1, Due: 1, Enqueued: 1, Advanced: 1}, res); diff != "" {
		t.Errorf("sweep while shard0 is held (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"s1"}, q.acceptedIDs()); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
	// 61 s later the dead sweep's lease has expired.
	res, err = newSwSweeper(store, q, 2, swNow.Add(61*time.Second)).Sweep(t.Context(), "ev-2")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	// s1's next occurrence (10:46) is due by now as well.
	if diff := cmp.Diff(SweepResult{Shards: 2, Due: 2, Enqueued: 2, Advanced: 2}, res); diff != "" {
		t.Errorf("sweep after the lease expired (-want +got):\n%s", diff)
	}
	want := []swOcc{{"s0", swAt(10, 45, 0)}, {"s1", swAt(10, 45, 0)}, {"s1", swAt(10, 46, 0)}}
	if diff := cmp.Diff(want, q.acceptedOccs()); diff != "" {
		t.Errorf("enqueued (-want +got):\n%s", diff)
	}
}

// ---------------------------------------------------------------- 5. a sweep that dies half way

// TestSweepDiesHalfWay: SQS accepts the first batches and then fails every
// call. Exactly the accepted timers are advanced, the shard is released
// as not completed, and the next sweep (the same event retried, or the
// next one) enqueues exactly the rest.
func TestSweepDiesHalfWay(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, retryEvent string }{
		{"the same event retried", "ev-1"},
		{"the next event", "ev-2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			errSQS := errors.New("sqs unavailable")
			var (
				timers []*Timer
				all    []swOcc
			)
			for i := range 120 { // chunks of 50, 50, 20: 12 batches
				tm := swHourly(fmt.Sprintf("t%03d", i), "shard0", swAt(10, 45+i%2, 0))
				timers = append(timers, tm)
				all = append(all, swOcc{tm.ID, tm.NextFireAt})
			}
			store := newSwStore(30, timers...)
			var mu sync.Mutex
			healthy := false
			const acceptFirst = 4
			q := &swQueue{before: func(_ context.Context, call int, _ []FireMessage) error {
				mu.Lock()
				defer mu.Unlock()
				if healthy || call <= acceptFirst {
					return nil
				}
				return errSQS
			}}
			sw := newSwSweeper(store, q, 1, swNow)
			sw.MaxAttempts = 2
			res, err := sw.Sweep(t.Context(), "ev-1")
			if !errors.Is(err, errSQS) {
				t.Errorf("Sweep error = %v, want one wrapping %v", err, errSQS)
			}
			q.check(t)
			first := q.acceptedOccs()
			if len(first) != acceptFirst*sqsBatch {
				t.Fatalf("%d occurrences accepted, want the %d of the first %d batches", len(first), acceptFirst*sqsBatch, acceptFirst)
			}
			if diff := cmp.Diff(SweepResult{Shards: 1, Due: 120, Enqueued: 40, Advanced: 40, Failed: 80}, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			var firstIDs []string
			for _, o := range first {
				firstIDs = append(firstIDs, o.TimerID)
			}
			if diff := cmp.Diff(firstIDs, store.appliedIDs()); diff != "" {
				t.Errorf("timers advanced (-want accepted +got advanced):\n%s", diff)
			}
			if diff := cmp.Diff([]swRelease{{"shard0", "ev-1", false, true}}, store.releaseLog()); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"shard0": ""}, store.lastEvents()); diff != "" {
				t.Errorf("lease after the failed sweep (-want +got):\n%s", diff)
			}

			mu.Lock()
			healthy = true
			mu.Unlock()
			res, err = newSwSweeper(store, q, 1, swNow.Add(20*time.Second)).Sweep(t.Context(), tt.retryEvent)
			if err != nil {
				t.Fatalf("second sweep: %v", err)
			}
			if diff := cmp.Diff(SweepResult{Shards: 1, Due: 80, Enqueued: 80, Advanced: 80}, res); diff != "" {
				t.Errorf("second sweep's result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(all, q.acceptedOccs()); diff != "" {
				t.Errorf("occurrences enqueued over both sweeps (-want +got):\n%s", diff)
			}
			if got := len(store.appliedIDs()); got != 120 {
				t.Errorf("%d advances over both sweeps, want 120", got)
			}
			if len(store.conflicts) != 0 {
				t.Errorf("conflicts: %v", store.conflicts)
			}
		})
	}
}

// ---------------------------------------------------------------- 6. SQS entry failures

// TestSweepRetriesSQSFailures: entries SQS fails for its own reasons (or
// does not answer) are sent again until MaxAttempts; entries it refuses as
// the sender's fault are given up at once, counted Failed, not advanced.
func TestSweepRetriesSQSFailures(t *testing.T) {
	t.Parallel()
	errCall := errors.New("connection reset")
	in := func(id string, ids ...string) bool { return slices.Contains(ids, id) }
	tests := []struct {
		name string
		fate func(m FireMessage, attempt int) swFate
		// failCall fails a whole call, given its entries and how often
		// each was received before.
		failCall func(msgs []FireMessage, attempts map[string]int) bool
		// wantCalls are the entries of each call, sorted.
		wantCalls []int
		// wantAttempts are the receipts per timer, where not 1.
		wantAttempts map[string]int
		wantFailed   []string
		wantErr      error
	}{
		{
			name: "transient failures are retried",
			fate: func(m FireMessage, attempt int) swFate {
				if attempt == 0 && in(m.TimerID, "t01", "t05", "t10") {
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 2, 2, 10},
			wantAttempts: map[string]int{"t01": 2, "t05": 2, "t10": 2},
		},
		{
			name: "an unanswered entry is retried",
			fate: func(m FireMessage, attempt int) swFate {
				if attempt == 0 && m.TimerID == "t04" {
					return swNoAnswer
				}
				return swAccept
			},
			wantCalls:    []int{1, 2, 10},
			wantAttempts: map[string]int{"t04": 2},
		},
		{
			name: "a failed call is retried",
			failCall: func(msgs []FireMessage, attempts map[string]int) bool {
				return msgs[0].TimerID == "t00" && attempts["t00"] == 0
			},
			wantCalls:    []int{2, 10, 10},
			wantAttempts: map[string]int{"t00": 2, "t01": 2, "t02": 2, "t03": 2, "t04": 2, "t05": 2, "t06": 2, "t07": 2, "t08": 2, "t09": 2},
		},
		{
			name: "sender faults are not retried",
			fate: func(m FireMessage, attempt int) swFate {
				if in(m.TimerID, "t03", "t11") {
					return swSenderFault
				}
				return swAccept
			},
			wantCalls:  []int{2, 10},
			wantFailed: []string{"t03", "t11"},
		},
		{
			name: "transient failures and a sender fault in one batch",
			fate: func(m FireMessage, attempt int) swFate {
				switch {
				case m.TimerID == "t02":
					return swSenderFault
				case attempt < 2 && m.TimerID == "t06":
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 1, 2, 10},
			wantAttempts: map[string]int{"t06": 3},
			wantFailed:   []string{"t02"},
		},
		{
			name: "a transient failure on every attempt gives up after MaxAttempts",
			fate: func(m FireMessage, attempt int) swFate {
				if m.TimerID == "t07" {
					return swTransient
				}
				return swAccept
			},
			wantCalls:    []int{1, 1, 2, 10},
			wantAttempts: map[string]int{"t07": 3},
			wantFailed:   []string{"t07"},
		},
		{
			name: "a call failing on every attempt gives up after MaxAttempts",
			failCall: func(msgs []FireMessage, _ map[string]int) bool {
				return msgs[0].TimerID == "t10" || msgs[0].TimerID == "t11"
			},
			wantCalls:    []int{2, 2, 2, 10},
			wantAttempts: map[string]int{"t10": 3, "t11": 3},
			wantFailed:   []string{"t10", "t11"},
			wantErr:      errCall,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var timers []*Timer
			for i := range 12 { // one chunk: batches t00-t09 and t10-t11
				timers = append(timers, swHourly(fmt.Sprintf("t%02d", i), "shard0", swAt(10, 45, 0)))
			}
			store := newSwStore(100, timers...)
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
			res, err := newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1")
			q.check(t)
			sizes := q.callSizes()
			slices.Sort(sizes)
			if diff := cmp.Diff(tt.wantCalls, sizes); diff != "" {
				t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
			}
			wantAttempts := map[swOcc]int{}
			var wantIDs []string
			for _, tm := range timers {
				n := 1
				if a, ok := tt.wantAttempts[tm.ID]; ok {
					n = a
				}
				wantAttempts[swOcc{tm.ID, tm.NextFireAt}] = n
				if !slices.Contains(tt.wantFailed, tm.ID) {
					wantIDs = append(wantIDs, tm.ID)
				}
			}
			if diff := cmp.Diff(wantAttempts, q.attempts); diff != "" {
				t.Errorf("sends per occurrence (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantIDs, q.acceptedIDs()); diff != "" {
				t.Errorf("timers enqueued (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantIDs, store.appliedIDs()); diff != "" {
				t.Errorf("timers advanced (-want +got):\n%s", diff)
			}
			nf := len(tt.wantFailed)
			if diff := cmp.Diff(SweepResult{Shards: 1, Due: 12, Enqueued: 12 - nf, Advanced: 12 - nf, Failed: nf}, res); diff != "" {
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
			if diff := cmp.Diff([]swRelease{{"shard0", "ev-1", nf == 0, true}}, store.releaseLog()); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
		})
	}
}

// ---------------------------------------------------------------- 7. a late sweep

// TestSweepAfterGap is the first sweep after ten minutes without one:
// each overdue timer fires once, for its original occurrence, at once, and
// moves to its first occurrence after now; it is not fired once for every
// occurrence it missed.
func TestSweepAfterGap(t *testing.T) {
	t.Parallel()
	now := swNow // 10:44:30; the last sweep ran at 10:34:30
	rate5 := swExpr("rate-5m", "shard0", "rate(5 minutes)", "", swAt(10, 37, 0))
	rate5.Anchor = swAt(10, 2, 0)
	tests := []struct {
		timer     *Timer
		wantDelay int32
		wantNext  time.Time
	}{
		{swHourly("hourly-35", "shard0", swAt(10, 35, 0)), 0, swAt(11, 35, 0)},
		{swHourly("hourly-40", "shard0", swAt(10, 40, 0)), 0, swAt(11, 40, 0)},
		{swHourly("hourly-44", "shard0", swAt(10, 44, 0)), 0, swAt(11, 44, 0)},
		{swHourly("hourly-45", "shard0", swAt(10, 45, 0)), 30, swAt(11, 45, 0)}, // not late
		{swExpr("minutely-35", "shard0", "cron(* * * * ? *)", "", swAt(10, 35, 0)), 0, swAt(10, 45, 0)},
		{swExpr("minutely-43", "shard0", "cron(* * * * ? *)", "", swAt(10, 43, 0)), 0, swAt(10, 45, 0)},
		{swExpr("minutely-44", "shard0", "cron(* * * * ? *)", "", swAt(10, 44, 0)), 0, swAt(10, 45, 0)},
		{swExpr("minutely-kolkata", "shard0", "cron(* * * * ? *)", "Asia/Kolkata", swAt(10, 36, 0)), 0, swAt(10, 45, 0)},
		{swExpr("quarter-kolkata", "shard0", "cron(0/15 * * * ? *)", "Asia/Kolkata", swAt(10, 30, 0)), 0, swAt(10, 45, 0)},
		{rate5, 0, swAt(10, 47, 0)},
		{swExpr("daily-1035", "shard0", "cron(35 10 * * ? *)", "", swAt(10, 35, 0)), 0, time.Date(2026, 11, 23, 10, 35, 0, 0, time.UTC)},
	}
	var (
		timers      []*Timer
		wantSent    []swSent
		wantApplied []swApplied
	)
	for _, tt := range tests {
		timers = append(timers, tt.timer)
		wantSent = append(wantSent, swWant(tt.timer, tt.wantDelay))
		wantApplied = append(wantApplied, swApplied{ID: tt.timer.ID, From: tt.timer.NextFireAt, Next: tt.wantNext})
	}
	swSortSent(wantSent)
	swSortApplied(wantApplied)
	store := newSwStore(4, timers...)
	q := &swQueue{}
	res, err := newSwSweeper(store, q, 1, now).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	q.check(t)
	n := len(tests)
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: n, Enqueued: n, Advanced: n}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSent, q.acceptedSorted(), swRawJSON); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantApplied, store.appliedSorted()); diff != "" {
		t.Errorf("advances (-want +got):\n%s", diff)
	}
}

// TestSweepSuccessiveSweeps runs a sweep every minute for two hours:
// every occurrence up to the last sweep's interval is enqueued exactly
// once and becomes visible within the second before its instant.
func TestSweepSuccessiveSweeps(t *testing.T) {
	t.Parallel()
	start := swNow // 10:44:30
	rate5 := swExpr("rate-5m", "shard1", "rate(5 minutes)", "", swAt(10, 47, 0))
	rate5.Anchor = swAt(10, 2, 0)
	timers := []struct {
		timer  *Timer
		period time.Duration
	}{
		{swExpr("minutely", "shard0", "cron(* * * * ? *)", "", swAt(10, 45, 0)), time.Minute},
		{swHourly("hourly-00", "shard1", swAt(11, 0, 0)), time.Hour},
		{rate5, 5 * time.Minute},
		{swExpr("quarter-kolkata", "shard0", "cron(0/15 * * * ? *)", "Asia/Kolkata", swAt(10, 45, 0)), 15 * time.Minute},
		{swExpr("daily-1130", "shard1", "cron(30 11 * * ? *)", "Europe/London", swAt(11, 30, 0)), 24 * time.Hour},
	}
	store := newSwStore(3)
	for _, tm := range timers {
		store.put(tm.timer)
	}
	q := &swQueue{}
	clock := newTestClock(start)
	sw := newSwSweeper(store, q, 2, start)
	sw.Now = clock.Now
	const sweeps = 120
	var late []string // messages not visible within the second before their instant
	for k := range sweeps {
		now := start.Add(time.Duration(k) * time.Minute)
		clock.Set(now)
		q.mu.Lock()
		before := len(q.accepted)
		q.mu.Unlock()
		res, err := sw.Sweep(t.Context(), fmt.Sprintf("ev-%d", k))
		if err != nil || res.Failed+res.Conflicts+res.Missed+res.Skipped > 0 {
			t.Fatalf("sweep %d at %v: %+v, %v", k, now, res, err)
		}
		q.mu.Lock()
		for _, s := range q.accepted[before:] {
			at := s.Msg.ScheduledAt
			if visible := now.Add(time.Duration(s.Delay) * time.Second); visible.After(at) || !visible.After(at.Add(-time.Second)) {
				late = append(late, fmt.Sprintf("%s at %v: sent at %v with delay %d", s.Msg.TimerID, at, now, s.Delay))
			}
		}
		q.mu.Unlock()
	}
	q.check(t)
	if len(late) > 0 {
		t.Errorf("messages not visible within the second before their instant:\n%s", strings.Join(late, "\n"))
	}
	lastNow := start.Add((sweeps - 1) * time.Minute)
	var want, got []swOcc
	seen := map[swOcc]int{}
	for _, o := range q.acceptedOccs() {
		seen[o]++
		if seen[o] == 2 {
			t.Errorf("%v enqueued more than once", o)
		}
		if o.ScheduledAt.After(lastNow.Add(2 * time.Minute)) {
			t.Errorf("%v enqueued beyond the last sweep's lookahead", o)
		}
		// Beyond lastNow+1m, whether an occurrence was sent depends on how
		// many a timer has within the lookahead: one per sweep.
		if !o.ScheduledAt.After(lastNow.Add(time.Minute)) {
			got = append(got, o)
		}
	}
	for _, tm := range timers {
		for at := tm.timer.NextFireAt; !at.After(lastNow.Add(time.Minute)); at = at.Add(tm.period) {
			want = append(want, swOcc{tm.timer.ID, at})
		}
	}
	swSortOccs(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("occurrences up to %v enqueued (-want +got):\n%s", lastNow.Add(time.Minute), diff)
	}
}

// ---------------------------------------------------------------- 8. catch-up window

// TestSweepCatchUp: an occurrence later than its timer's catch-up window
// is not sent but skipped: the timer moves past now and counts it missed.
// One within the window (the bound included) is sent.
func TestSweepCatchUp(t *testing.T) {
	t.Parallel()
	minutely := func(id string, catchUp int, next time.Time) *Timer {
		tm := swExpr(id, "shard0", "cron(* * * * ? *)", "", next)
		tm.CatchUpSeconds = catchUp
		return tm
	}
	hourly := func(id string, catchUp int, next time.Time) *Timer {
		tm := swHourly(id, "shard0", next)
		tm.CatchUpSeconds = catchUp
		return tm
	}
	once := swExpr("once-missed", "shard0", "at(2026-11-22T08:00:00)", "", swAt(8, 0, 0))
	once.DeleteAfterCompletion = true
	tests := []struct {
		timer    *Timer
		sent     bool
		wantNext time.Time
	}{
		{hourly("hourly-2h-late", 3600, swAt(8, 44, 0)), false, swAt(11, 44, 0)},
		{minutely("minutely-150s-late-window-60", 60, swAt(10, 42, 0)), false, swAt(10, 45, 0)},
		{hourly("hourly-59m-late", 3600, swAt(9, 45, 0)), true, swAt(10, 45, 0)},
		{minutely("minutely-90s-late-window-90", 90, swAt(10, 43, 0)), true, swAt(10, 45, 0)},
		{minutely("minutely-90s-late-window-89", 89, swAt(10, 43, 0)), false, swAt(10, 45, 0)},
		{hourly("old-timer-29m-late", 0, swAt(10, 15, 0)), true, swAt(11, 15, 0)}, // 0: stored before the window existed
		{hourly("old-timer-64m-late", 0, swAt(9, 40, 0)), false, swAt(11, 40, 0)},
		{hourly("day-window-22h-late", 86400, time.Date(2026, 11, 21, 12, 30, 0, 0, time.UTC)), true, swAt(11, 30, 0)},
		{once, false, time.Time{}},
	}
	var (
		timers      []*Timer
		wantSent    []swSent
		wantApplied []swApplied
		missed      int
	)
	for _, tt := range tests {
		timers = append(timers, tt.timer)
		if tt.sent {
			wantSent = append(wantSent, swWant(tt.timer, 0))
		} else {
			missed++
		}
		wantApplied = append(wantApplied, swApplied{ID: tt.timer.ID, From: tt.timer.NextFireAt, Next: tt.wantNext,
			Missed: !tt.sent, Deleted: tt.timer == once})
	}
	swSortSent(wantSent)
	swSortApplied(wantApplied)
	store := newSwStore(100, timers...)
	q := &swQueue{}
	res, err := newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	q.check(t)
	n := len(tests)
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: n, Enqueued: n - missed, Missed: missed, Advanced: n}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSent, q.acceptedSorted(), swRawJSON); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantApplied, store.appliedSorted()); diff != "" {
		t.Errorf("advances (-want +got):\n%s", diff)
	}
	for _, tt := range tests {
		got, ok := store.get(tt.timer.ID)
		if tt.timer == once {
			if ok {
				t.Errorf("%s: kept, want deleted after its missed last occurrence", once.ID)
			}
			continue
		}
		wantCount, wantLast := 0, (*time.Time)(nil)
		if !tt.sent {
			wantCount, wantLast = 1, &tt.timer.NextFireAt
		}
		if got.MissedCount != wantCount || !cmp.Equal(wantLast, got.LastMissedAt) || !got.NextFireAt.Equal(tt.wantNext) {
			t.Errorf("%s stored: next %v, missed %d, last missed %v; want %v, %d, %v", tt.timer.ID,
				got.NextFireAt, got.MissedCount, got.LastMissedAt, tt.wantNext, wantCount, wantLast)
		}
	}
}

// ---------------------------------------------------------------- 9. Advance outcomes

// TestSweepAdvanceOutcomes: a timer changed between Due and Advance is a
// conflict the other writer wins, not an error; a step not written, or an
// Advance call failing, is Failed and makes the sweep fail.
func TestSweepAdvanceOutcomes(t *testing.T) {
	t.Parallel()
	errDB := errors.New("dynamodb unavailable")
	replacedNext := swAt(12, 0, 0)
	tests := []struct {
		name          string
		writeBatch    int
		beforeAdvance func(f *swStore, steps []Step)
		failStep      func(st Step) bool
		advanceErr    func(steps []Step) error
		nilOutcomes   bool
		wantApplied   []string // nil: every step neither failed nor conflicting
		wantRes       SweepResult
		wantErr       error // nil: any error when wantRes.Failed > 0, else none
	}{
		{
			name: "changed meanwhile: replaced, deleted, advanced by another sweep",
			beforeAdvance: func(f *swStore, _ []Step) {
				if t1, ok := f.timers["t1"]; ok && t1.Version == 3 {
					r := *t1 // replaced through the API
					r.Version, r.NextFireAt = 4, replacedNext
					f.timers["t1"] = &r
					delete(f.timers, "t2")
					a := *f.timers["t3"]
					a.NextFireAt = a.NextFireAt.Add(time.Hour)
					f.timers["t3"] = &a
				}
			},
			wantApplied: []string{"t0", "t4", "t5"},
			wantRes:     SweepResult{Shards: 1, Due: 6, Enqueued: 6, Advanced: 3, Conflicts: 3},
		},
		{
			name:        "a step not written",
			failStep:    func(st Step) bool { return st.Timer.ID == "t4" },
			wantApplied: []string{"t0", "t1", "t2", "t3", "t5"},
			wantRes:     SweepResult{Shards: 1, Due: 6, Enqueued: 6, Advanced: 5, Failed: 1},
		},
		{
			name:       "Advance fails with every outcome StepFailed",
			advanceErr: func([]Step) error { return errDB },
			wantRes:    SweepResult{Shards: 1, Due: 6, Enqueued: 6, Failed: 6},
			wantErr:    errDB,
		},
		{
			name:        "Advance fails without outcomes",
			advanceErr:  func([]Step) error { return errDB },
			nilOutcomes: true,
			wantRes:     SweepResult{Shards: 1, Due: 6, Enqueued: 6, Failed: 6},
			wantErr:     errDB,
		},
		{
			name:       "the second of two Advance calls fails",
			writeBatch: 4,
			advanceErr: func(steps []Step) error {
				if len(steps) == 2 {
					return errDB
				}
				return nil
			},
			wantRes: SweepResult{Shards: 1, Due: 6, Enqueued: 6, Advanced: 4, Failed: 2},
			wantErr: errDB,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var timers []*Timer
			for i := range 6 {
				timers = append(timers, swHourly(fmt.Sprintf("t%d", i), "shard0", swAt(10, 45, 0)))
			}
			store := newSwStore(100, timers...)
			store.beforeAdvance, store.failStep, store.advanceErr, store.nilOutcomes = tt.beforeAdvance, tt.failStep, tt.advanceErr, tt.nilOutcomes
			q := &swQueue{}
			sw := newSwSweeper(store, q, 1, swNow)
			if tt.writeBatch > 0 {
				sw.WriteBatch = tt.writeBatch
			}
			res, err := sw.Sweep(t.Context(), "ev-1")
			if diff := cmp.Diff(tt.wantRes, res); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Sweep error = %v, want one wrapping %v", err, tt.wantErr)
			case tt.wantRes.Failed > 0 && err == nil:
				t.Error("Sweep succeeded, want an error")
			case tt.wantRes.Failed == 0 && err != nil:
				t.Errorf("Sweep: %v, want no error for conflicts", err)
			}
			if got := len(q.acceptedSorted()); got != 6 {
				t.Errorf("%d messages enqueued, want 6", got)
			}
			// Each step is applied, conflicting or not written, never two.
			var notWritten, others []string
			for i := range 6 {
				if id := fmt.Sprintf("t%d", i); slices.Contains(store.notWritten, id) {
					notWritten = append(notWritten, id)
				} else if !slices.Contains(store.conflicts, id) {
					others = append(others, id)
				}
			}
			if len(notWritten) != tt.wantRes.Failed || len(store.notWritten) != tt.wantRes.Failed {
				t.Errorf("steps not written: %v, want %d", store.notWritten, tt.wantRes.Failed)
			}
			wantApplied := tt.wantApplied
			if wantApplied == nil {
				wantApplied = others
			}
			if diff := cmp.Diff(wantApplied, store.appliedIDs(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("timers advanced (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]swRelease{{"shard0", "ev-1", tt.wantRes.Failed == 0, true}}, store.releaseLog()); diff != "" {
				t.Errorf("release (-want +got):\n%s", diff)
			}
			if tt.beforeAdvance != nil {
				if got, _ := store.get("t1"); got.Version != 4 || !got.NextFireAt.Equal(replacedNext) {
					t.Errorf("the replaced timer was changed by the sweep: %+v", got)
				}
				if _, ok := store.get("t2"); ok {
					t.Error("the deleted timer came back")
				}
			}
		})
	}
}

// ---------------------------------------------------------------- 10. one-off timers

// TestSweepCompletedTimers: a timer with no occurrence left after the one
// sent is advanced with a zero Next and kept without a next occurrence.
// When it asked for deleteAfterCompletion its message is marked final, for
// the invoker to delete it once delivered: deleted now, the invoker would
// drop the occurrence as stale.
func TestSweepCompletedTimers(t *testing.T) {
	t.Parallel()
	deleteAfter := func(tm *Timer) *Timer { tm.DeleteAfterCompletion = true; return tm }
	endsAt := swAt(11, 0, 0)
	bounded := deleteAfter(swExpr("cron-ending", "shard0", "cron(45 * * * ? *)", "", swAt(10, 45, 0)))
	bounded.EndAt = &endsAt
	tests := []struct {
		timer     *Timer
		wantDelay int32
		final     bool
	}{
		{deleteAfter(swExpr("at-delete", "shard0", "at(2026-11-22T10:45:00)", "", swAt(10, 45, 0))), 30, true},
		{swExpr("at-keep", "shard0", "at(2026-11-22T10:46:00)", "", swAt(10, 46, 0)), 90, false},
		{deleteAfter(swExpr("at-berlin", "shard0", "at(2026-11-22T11:45:00)", "Europe/Berlin", swAt(10, 45, 0))), 30, true},
		{deleteAfter(swExpr("at-overdue", "shard0", "at(2026-11-22T10:40:00)", "", swAt(10, 40, 0))), 0, true},
		{bounded, 30, true},
	}
	var (
		timers      []*Timer
		wantSent    []swSent
		wantApplied []swApplied
	)
	for _, tt := range tests {
		timers = append(timers, tt.timer)
		sent := swWant(tt.timer, tt.wantDelay)
		sent.Msg.Final = tt.final
		wantSent = append(wantSent, sent)
		wantApplied = append(wantApplied, swApplied{ID: tt.timer.ID, From: tt.timer.NextFireAt})
	}
	swSortSent(wantSent)
	swSortApplied(wantApplied)
	store := newSwStore(2, timers...)
	q := &swQueue{}
	res, err := newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	n := len(tests)
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: n, Enqueued: n, Advanced: n}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSent, q.acceptedSorted(), swRawJSON); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantApplied, store.appliedSorted()); diff != "" {
		t.Errorf("advances (-want +got):\n%s", diff)
	}
	for _, tt := range tests {
		if got, ok := store.get(tt.timer.ID); !ok || !got.NextFireAt.IsZero() {
			t.Errorf("%s: stored %v (next %v), want kept with no next occurrence", tt.timer.ID, ok, got.NextFireAt)
		}
	}
	// Nothing is due any more, however far ahead a sweep looks.
	later := newSwSweeper(store, q, 1, swNow.Add(time.Hour))
	later.Lookahead = 15 * time.Minute
	if res, err := later.Sweep(t.Context(), "ev-2"); err != nil || res.Due != 0 {
		t.Errorf("a later sweep: %+v, %v; want nothing due", res, err)
	}
}

// ---------------------------------------------------------------- 11. delaySeconds

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

// ---------------------------------------------------------------- more failure paths

// TestSweepReadAndLeaseFailures: a failing page query, a failing lease and
// an unusable schedule each fail the sweep without losing or repeating
// anything, and leave the shard to be swept again.
func TestSweepReadAndLeaseFailures(t *testing.T) {
	t.Parallel()
	errDB := errors.New("dynamodb unavailable")

	t.Run("a page query fails", func(t *testing.T) {
		t.Parallel()
		var timers []*Timer
		for i := range 9 {
			timers = append(timers, swHourly(fmt.Sprintf("t%d", i), "shard0", swAt(10, 45, 0)))
		}
		store := newSwStore(4, timers...)
		store.dueErr = func(shard string, n int) error {
			if n == 1 {
				return errDB
			}
			return nil
		}
		q := &swQueue{}
		res, err := newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1")
		if !errors.Is(err, errDB) {
			t.Errorf("Sweep error = %v, want one wrapping %v", err, errDB)
		}
		// The first page is sent and advanced; the rest waits.
		if diff := cmp.Diff(SweepResult{Shards: 1, Due: 4, Enqueued: 4, Advanced: 4}, res); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
		want := []string{"t0", "t1", "t2", "t3"}
		if diff := cmp.Diff(want, q.acceptedIDs()); diff != "" {
			t.Errorf("enqueued (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, store.appliedIDs()); diff != "" {
			t.Errorf("advanced (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]swRelease{{"shard0", "ev-1", false, true}}, store.releaseLog()); diff != "" {
			t.Errorf("release (-want +got):\n%s", diff)
		}
		store.mu.Lock()
		store.dueErr = nil
		store.mu.Unlock()
		res, err = newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1") // the same event, retried
		if err != nil || res.Enqueued != 5 || len(q.acceptedIDs()) != 9 {
			t.Errorf("retried sweep: %+v, %v, %d enqueued in all; want the other 5", res, err, len(q.acceptedIDs()))
		}
	})

	t.Run("a lease fails", func(t *testing.T) {
		t.Parallel()
		store := newSwStore(4, swHourly("a", "shard0", swAt(10, 45, 0)), swHourly("b", "shard1", swAt(10, 45, 0)))
		store.leaseErr = func(shard string) error {
			if shard == "shard0" {
				return errDB
			}
			return nil
		}
		q := &swQueue{}
		res, err := newSwSweeper(store, q, 2, swNow).Sweep(t.Context(), "ev-1")
		if !errors.Is(err, errDB) {
			t.Errorf("Sweep error = %v, want one wrapping %v", err, errDB)
		}
		if diff := cmp.Diff(SweepResult{Shards: 2, Skipped: 1, Due: 1, Enqueued: 1, Advanced: 1}, res); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"b"}, q.acceptedIDs()); diff != "" {
			t.Errorf("enqueued (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]swDueCall{{"shard1", swNow.Add(2 * time.Minute)}}, store.dueCalls); diff != "" {
			t.Errorf("Due calls (-want +got):\n%s", diff)
		}
	})

	t.Run("an unusable schedule", func(t *testing.T) {
		t.Parallel()
		bad := swExpr("bad-zone", "shard0", "cron(45 * * * ? *)", "Mars/Olympus_Mons", swAt(10, 45, 0))
		store := newSwStore(4, bad, swHourly("good", "shard0", swAt(10, 45, 0)))
		q := &swQueue{}
		res, err := newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1")
		if err == nil {
			t.Error("Sweep succeeded, want an error for the unusable schedule")
		}
		if diff := cmp.Diff(SweepResult{Shards: 1, Due: 2, Enqueued: 1, Advanced: 1, Failed: 1}, res); diff != "" {
			t.Errorf("result (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"good"}, q.acceptedIDs()); diff != "" {
			t.Errorf("enqueued (-want +got):\n%s", diff)
		}
		if got, _ := store.get("bad-zone"); !got.NextFireAt.Equal(swAt(10, 45, 0)) {
			t.Errorf("the unusable timer moved to %v", got.NextFireAt)
		}
		if diff := cmp.Diff([]swRelease{{"shard0", "ev-1", false, true}}, store.releaseLog()); diff != "" {
			t.Errorf("release (-want +got):\n%s", diff)
		}
	})
}

// ---------------------------------------------------------------- regressions

// TestSweepDelayCountsFromTheSend: a message must become visible at its
// instant however long the sweep has been running when it is sent. SQS
// counts DelaySeconds from when it receives the message, so the sweeper
// computes every delay when it sends, not from the sweep's start.
func TestSweepDelayCountsFromTheSend(t *testing.T) {
	t.Parallel()
	checkDelayCountsFromTheSend(t)
}

func checkDelayCountsFromTheSend(t *testing.T) {
	// Three chunks of 50, one worker: each chunk is sent after the one
	// before it has been written, and each write takes 7 s of sweep time,
	// so the later chunks are sent 7 and 14 s into the sweep.
	var timers []*Timer
	for i := range 3 * chunkSize {
		timers = append(timers, swHourly(fmt.Sprintf("t%03d", i), "shard0", swAt(10, 46, 0)))
	}
	store := newSwStore(1000, timers...)
	clock := newTestClock(swNow)
	store.beforeAdvance = func(*swStore, []Step) { clock.Add(7 * time.Second) }
	var mu sync.Mutex
	sentAt := map[int]time.Time{} // call → instant SQS received it
	q := &swQueue{before: func(_ context.Context, call int, _ []FireMessage) error {
		mu.Lock()
		defer mu.Unlock()
		sentAt[call] = clock.Now()
		return nil
	}}
	sw := newSwSweeper(store, q, 1, swNow)
	sw.Now = clock.Now
	sw.Workers = 1
	if _, err := sw.Sweep(t.Context(), "ev-1"); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if last := sentAt[len(sentAt)]; last.Sub(swNow) < 14*time.Second {
		t.Fatalf("the last call was sent %v into the sweep; the test needs it 14 s in", last.Sub(swNow))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, c := range q.calls {
		for _, e := range c.Entries {
			visible := sentAt[i+1].Add(time.Duration(e.DelaySeconds) * time.Second)
			if at := swAt(10, 46, 0); visible.After(at) || !visible.After(at.Add(-time.Second)) {
				t.Errorf("call %d sent at %v with DelaySeconds %d: visible at %v, want within the second before %v",
					i+1, sentAt[i+1].Format(time.TimeOnly), e.DelaySeconds, visible.Format(time.TimeOnly), at.Format(time.TimeOnly))
				break // one line per call
			}
		}
	}
}

// TestSweepFullBatchesAroundMissedTimers: only the last SQS batch of a
// shard may be partial, also when some of its due timers are skipped as
// missed: missed timers go into chunks of their own.
func TestSweepFullBatchesAroundMissedTimers(t *testing.T) {
	t.Parallel()
	checkFullBatchesAroundMissedTimers(t)
}

func checkFullBatchesAroundMissedTimers(t *testing.T) {
	// In due order: 45 sent, 5 missed, 45 sent, 5 missed, so that each
	// chunk of 50 holds 45 timers to send. The sent ones are within the
	// default catch-up window; the missed ones have a 60 s window.
	var timers []*Timer
	for g, at := range []time.Time{swAt(10, 0, 0), swAt(10, 1, 0), swAt(10, 2, 0), swAt(10, 3, 0)} {
		missed := g%2 == 1
		n := 45
		if missed {
			n = 5
		}
		for i := range n {
			tm := swHourly(fmt.Sprintf("g%d-%02d", g, i), "shard0", at)
			if missed {
				tm.CatchUpSeconds = 60
			}
			timers = append(timers, tm)
		}
	}
	store := newSwStore(100, timers...)
	q := &swQueue{}
	res, err := newSwSweeper(store, q, 1, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if diff := cmp.Diff(SweepResult{Shards: 1, Due: 100, Enqueued: 90, Missed: 10, Advanced: 100}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// 90 messages: nine full batches.
	if diff := cmp.Diff([]int{10, 10, 10, 10, 10, 10, 10, 10, 10}, q.callSizes()); diff != "" {
		t.Errorf("SendMessageBatch sizes (-want +got):\n%s", diff)
	}
}

// swDynamo is a dynamoAPI whose TransactWriteItems answers with transact.
type swDynamo struct {
	dynamoAPI
	transact func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error)
}

func (d swDynamo) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return d.transact(in)
}

// TestSweepStoreAdvanceCancelledWhileBackingOff: Store.Advance must not
// report a step as applied that it never wrote, as when the context ends
// while it waits to retry throttled steps (the sweep's deadline). Found
// while writing these tests; store.go has since been fixed.
func TestSweepStoreAdvanceCancelledWhileBackingOff(t *testing.T) {
	t.Parallel()
	checkStoreAdvanceCancelled(t)
}

func checkStoreAdvanceCancelled(t *testing.T) {
	db := swDynamo{transact: func(in *dynamodb.TransactWriteItemsInput) (*dynamodb.TransactWriteItemsOutput, error) {
		reasons := make([]dbtypes.CancellationReason, len(in.TransactItems))
		for i := range reasons {
			reasons[i].Code = aws.String("None")
		}
		reasons[0].Code = aws.String("ThrottlingError")
		reasons[1].Code = aws.String("ConditionalCheckFailed")
		return nil, &dbtypes.TransactionCanceledException{Message: aws.String("cancelled"), CancellationReasons: reasons}
	}}
	s := NewStore(db, "timers")
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // the sweep's deadline passed
	var steps []Step
	for i := range 3 {
		steps = append(steps, Step{Timer: swHourly(fmt.Sprintf("t%d", i), "shard0", swAt(10, 45, 0)), Next: swAt(11, 45, 0)})
	}
	out, err := s.Advance(ctx, steps)
	if err == nil {
		t.Error("Advance succeeded with a cancelled context")
	}
	if diff := cmp.Diff([]StepOutcome{StepFailed, StepConflict, StepFailed}, out); diff != "" {
		t.Errorf("outcomes of steps never written (-want +got):\n%s", diff)
	}
}
