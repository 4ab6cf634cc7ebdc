package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ---------------------------------------------------------------- the fake store

// swStore is an in-memory dueStore with the real Store's semantics (due.go):
//
//   - Link entries are items keyed by linkKey (partition: the hour and the
//     timer's part; sort key: the minute of the hour and the timer id):
//     writing a timer's link at one instant twice leaves one item, the last
//     written.
//   - Bucket answers a Query of one partition key with the sort key
//     between the range's minutes: its entries in sort-key order (minute,
//     then timer id), in pages of pageSize. Like a Query with Limit it reads
//     each page when it is asked for, starting after the last key of the
//     previous one; a full page is followed by another request, which may
//     come back empty. Entries are handed over as copies.
//   - LeaseSweep is the conditional update of the sweep's item: refused
//     while another holds an unexpired lease (leaseUntil >= now) and when
//     the same event already completed a sweep; it returns through, kept
//     across sweeps (0 before the first release with one).
//   - ReleaseSweep acts only for the lease's owner (otherwise nothing, no
//     error, as the real one swallows ConditionalCheckFailed); it sets
//     through when above 0 and records the event when completed.
//   - Slot entries (a timer whose schedule repeats within a week, see
//     PlanDue) are items keyed by slotKey, read by the same Bucket with a
//     range's Period set; Periods returns the periods in use; DeleteSlot
//     deletes a slot entry if it still has the entry's version.
//   - Missed is one transaction: when the timer still has the entry's
//     version and is not paused, the occurrence is recorded missed (unless
//     it has an outcome already), the timer's count goes up and the next
//     link is written; a deleteAfterCompletion timer whose last occurrence
//     it was is deleted instead. When the condition fails nothing is
//     written and nil is returned.
//   - PutLinks writes every link (no condition) but those the throttle
//     hook refuses, which it returns, as DynamoDB's UnprocessedItems.
//   - RaiseParts records an hour's partitions for the lease's owner only,
//     and never lowers them; LeaseSweep returns them, ReleaseSweep drops
//     those of hours before its through.
type swStore struct {
	mu       sync.Mutex
	pageSize int
	items    map[string]map[string]DueEntry // partition key → sort key → entry
	timers   map[string]*swTimer
	sweep    swSweepState
	missed   map[swOcc]time.Time // missed occurrences → when the sweep recorded them
	periods  []int               // slot periods in use
	trace    *swTrace

	// What happened, for the assertions.
	bucketCalls []BucketRange         // in call order
	pages       map[BucketRange][]int // page sizes handed over, per range
	linkCalls   [][]DueEntry          // PutLinks calls
	missedCalls []swMissedCall
	leaseCalls  []swLeaseCall
	releases    []swRelease
	slotDeletes []string // timer ids of DeleteSlot calls that deleted

	// Hooks, all optional; they run with mu held unless said otherwise.
	// bucketErr fails the request for page n (from 0) of range br.
	bucketErr func(br BucketRange, n int) error
	// putLinksErr fails a PutLinks call: nothing of it is written.
	putLinksErr func(links []DueEntry) error
	// throttle leaves a link unprocessed (throttled) by its partition key.
	throttle func(pk string) bool
	// beforePutLinks runs at the start of every PutLinks call, without mu.
	beforePutLinks func(links []DueEntry)
	// missedErr fails a Missed call: nothing of it is written.
	missedErr func(e DueEntry) error
	// leaseErr fails LeaseSweep.
	leaseErr func() error
	// periodsErr fails Periods.
	periodsErr func() error
	// onLease reports every LeaseSweep answer, without mu.
	onLease func(eventID string, granted bool)
	// onBucket reports every Bucket call, without mu.
	onBucket func(ctx context.Context, br BucketRange)
}

// swTimer is what the fake keeps of a timer: what Missed's conditions
// read and its writes change.
type swTimer struct {
	Version      int64
	Paused       bool
	MissedCount  int
	LastMissedAt int64
}

// swSweepState is the fake's sweep item (LeaseSweep, RaiseParts,
// ReleaseSweep).
type swSweepState struct {
	Owner       string
	UntilMs     int64 // 0: no leaseUntil attribute
	LastEventID string
	Through     int64
	CompletedAt time.Time
	Parts       map[int64]int // raised hours
	Raises      []string      // RaiseParts calls, "hour:parts" (refused ones too)
}

// swMissedCall is one Missed call, and what it did.
type swMissedCall struct {
	ID      string
	At      time.Time
	SweptAt time.Time
	Next    time.Time // zero: no next link
	Last    bool      // the timer's last occurrence
	Applied bool      // false: the timer's condition failed, nothing written
	Deleted bool
}

// swLeaseCall is one LeaseSweep call and its answer.
type swLeaseCall struct {
	EventID string
	Granted bool
	Through int64
}

// swRelease is one ReleaseSweep call.
type swRelease struct {
	EventID   string
	Through   int64
	Completed bool
	Owned     bool // whether the caller still held the lease
}

// newSwStore is an empty swStore whose Bucket pages hold pageSize entries.
func newSwStore(pageSize int) *swStore {
	return &swStore{pageSize: pageSize, items: map[string]map[string]DueEntry{}, timers: map[string]*swTimer{},
		missed: map[swOcc]time.Time{}, pages: map[BucketRange][]int{}}
}

// swKeyOf is the partition and sort key of an item key.
func swKeyOf(k map[string]dbtypes.AttributeValue) (pk, sk string) {
	return k[attrPK].(*dbtypes.AttributeValueMemberS).Value, k[attrSK].(*dbtypes.AttributeValueMemberS).Value
}

// putRaw stores e under the key of its timer's link in minute, whatever
// its instant says. Callers hold mu.
func (f *swStore) putRaw(minute int64, e DueEntry) { f.putKey(linkKey(minute, e.TimerID, e.Parts), e) }

// putKey stores e under k. Callers hold mu.
func (f *swStore) putKey(k map[string]dbtypes.AttributeValue, e DueEntry) {
	pk, sk := swKeyOf(k)
	m := f.items[pk]
	if m == nil {
		m = map[string]DueEntry{}
		f.items[pk] = m
	}
	m[sk] = e
}

// link stores e where the real store puts it.
func (f *swStore) link(es ...DueEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range es {
		f.putRaw(e.At/60, e)
	}
}

// unlink deletes timer id's link in minute.
func (f *swStore) unlink(minute int64, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk, sk := swKeyOf(linkKey(minute, id, 0))
	delete(f.items[pk], sk)
}

// slot stores timer t's slot entries, written at now, as Store.Put does
// (slotItem), and adds their periods to those in use.
func (f *swStore) slot(t *Timer, now time.Time, slots ...DueSlot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sl := range slots {
		e := dueEntryOf(t, time.Time{}, now)
		e.Period, e.Slot = sl.Period, sl.Slot
		f.putKey(slotKey(sl, t.ID), e)
		if !slices.Contains(f.periods, sl.Period) {
			f.periods = append(f.periods, sl.Period)
			slices.Sort(f.periods)
		}
	}
}

// addTimer registers timer t (for Missed's conditions) and links its
// occurrence at, written at writtenAt, as if an earlier writer had handed
// it on: the entry the sweep will find.
func (f *swStore) addTimer(t *Timer, at, writtenAt time.Time) DueEntry {
	f.mu.Lock()
	f.timers[t.ID] = &swTimer{Version: t.Version, Paused: t.PausedAt != nil}
	f.mu.Unlock()
	e := dueEntryOf(t, at, writtenAt)
	f.link(e)
	return e
}

// create is the API's PUT of t at now (Store.Put, handOnItems): the
// timer is registered, its occurrences within shortNotice are returned
// for the API to send itself, and it is handed on: by slot entries when
// its schedule repeats within a week (PlanDue), or else by the link of
// the first occurrence beyond short notice; after the sweep's state is
// started (startSweep: through set to now's minute unless set).
func (f *swStore) create(tb testing.TB, t *Timer, now time.Time) []time.Time {
	direct, _ := f.createHow(tb, t, now)
	return direct
}

// createHow is create, also returning the slots it wrote (none: a link
// or nothing).
func (f *swStore) createHow(tb testing.TB, t *Timer, now time.Time) ([]time.Time, []DueSlot) {
	tb.Helper()
	sched, err := t.Schedule(loadZone)
	if err != nil {
		tb.Fatalf("schedule of %s: %v", t.ID, err)
	}
	f.mu.Lock()
	f.timers[t.ID] = &swTimer{Version: t.Version}
	f.mu.Unlock()
	direct, link := handOn(dueEntryOf(t, time.Time{}, now), sched, now.Add(-time.Nanosecond), now)
	var slots []DueSlot
	if s, ok := PlanDue(sched, now); ok && link != nil {
		slots, link = s, nil
	}
	if link != nil || len(slots) > 0 {
		f.mu.Lock()
		if f.sweep.Through == 0 {
			f.sweep.Through = unixMinute(now)
		}
		f.mu.Unlock()
	}
	f.slot(t, now, slots...)
	if link != nil {
		f.link(*link)
	}
	return direct, slots
}

// setTimer changes the fake's record of timer id (replace: a new version;
// pause; delete with nil).
func (f *swStore) setTimer(id string, t *swTimer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t == nil {
		delete(f.timers, id)
		return
	}
	c := *t
	f.timers[id] = &c
}

// timer returns the fake's record of timer id, and whether it has one.
func (f *swStore) timer(id string) (swTimer, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.timers[id]
	if !ok {
		return swTimer{}, false
	}
	return *t, true
}

// linksOf returns every link entry (not slot entries) of timer id, by
// instant.
func (f *swStore) linksOf(id string) []DueEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []DueEntry
	for _, m := range f.items {
		for _, e := range m {
			if e.TimerID == id && e.Period == 0 {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b DueEntry) int { return int(a.At - b.At) })
	return out
}

// linkInstants returns, per timer, the instants of its links (not its
// slot entries).
func (f *swStore) linkInstants() map[string][]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]time.Time{}
	for _, m := range f.items {
		for _, e := range m {
			if e.Period == 0 {
				out[e.TimerID] = append(out[e.TimerID], e.occurrence())
			}
		}
	}
	for _, v := range out {
		slices.SortFunc(v, time.Time.Compare)
	}
	return out
}

// linksWritten returns the links of every PutLinks call, sorted by timer
// id then instant, repeats included.
func (f *swStore) linksWritten() []DueEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []DueEntry
	for _, c := range f.linkCalls {
		out = append(out, c...)
	}
	swSortEntries(out)
	return out
}

// linkCallSizes returns how many links each PutLinks call wrote, sorted.
func (f *swStore) linkCallSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sortedSizes(f.linkCalls, func(c []DueEntry) int { return len(c) })
}

// state returns the sweep item as it is.
func (f *swStore) state() swSweepState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sweep
}

// setThrough sets the first minute not yet swept, as an earlier sweep
// would have.
func (f *swStore) setThrough(m int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweep.Through = m
}

// bucketCallsSorted returns the ranges Bucket was asked for, sorted
// (the readers run at once).
func (f *swStore) bucketCallsSorted() []BucketRange {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := slices.Clone(f.bucketCalls)
	swSortRanges(c)
	return c
}

// swSortRanges sorts ranges by hour, partition and first minute.
func swSortRanges(r []BucketRange) {
	slices.SortFunc(r, func(a, b BucketRange) int {
		if a.Hour != b.Hour {
			return int(a.Hour - b.Hour)
		}
		if a.Part != b.Part {
			return a.Part - b.Part
		}
		return a.From - b.From
	})
}

// missedLog returns the Missed calls by timer id and instant.
func (f *swStore) missedLog() []swMissedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := slices.Clone(f.missedCalls)
	slices.SortFunc(m, func(a, b swMissedCall) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return a.At.Compare(b.At)
	})
	return m
}

// releaseLog returns the ReleaseSweep calls in call order.
func (f *swStore) releaseLog() []swRelease {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.releases)
}

// Bucket is Store.Bucket over the fake's items (see swStore).
func (f *swStore) Bucket(ctx context.Context, br BucketRange, page func([]DueEntry) error) error {
	f.mu.Lock()
	f.bucketCalls = append(f.bucketCalls, br)
	onBucket := f.onBucket
	f.mu.Unlock()
	if onBucket != nil {
		onBucket(ctx, br)
	}
	key := fmt.Sprintf("%s%d#%d", pkDue, br.Hour, br.Part)
	if br.Period > 0 {
		key = fmt.Sprintf("%s%d#%d#%d", pkSlot, br.Period, br.Hour, br.Part)
	}
	from, to := fmt.Sprintf("%02d#", br.From), fmt.Sprintf("%02d#~", br.To)
	type kv struct {
		sk string
		e  DueEntry
	}
	var (
		lastSK  string
		started bool
	)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.mu.Lock()
		if f.bucketErr != nil {
			if err := f.bucketErr(br, n); err != nil {
				f.mu.Unlock()
				return fmt.Errorf("read bucket %s: %w", key, err)
			}
		}
		var items []kv
		for sk, e := range f.items[key] {
			if sk < from || sk > to || (started && sk <= lastSK) {
				continue
			}
			items = append(items, kv{sk, e})
		}
		f.mu.Unlock()
		slices.SortFunc(items, func(a, b kv) int { return strings.Compare(a.sk, b.sk) })
		more := len(items) >= f.pageSize // DynamoDB returns a LastEvaluatedKey when Limit is reached
		if more {
			items = items[:f.pageSize]
		}
		entries := make([]DueEntry, len(items))
		for i, it := range items {
			entries[i] = it.e
		}
		f.mu.Lock()
		f.pages[br] = append(f.pages[br], len(entries))
		f.mu.Unlock()
		if err := page(entries); err != nil {
			return err
		}
		if !more {
			return nil
		}
		lastSK, started = items[len(items)-1].sk, true
	}
}

// PutLinks is Store.PutLinks: every link written but those throttle
// refuses, which it returns.
func (f *swStore) PutLinks(_ context.Context, links []DueEntry) ([]DueEntry, error) {
	if f.beforePutLinks != nil {
		f.beforePutLinks(links)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.putLinksErr != nil {
		if err := f.putLinksErr(links); err != nil {
			return nil, fmt.Errorf("link next occurrences: %w", err)
		}
	}
	var written, left []DueEntry
	for _, e := range links {
		if pk, _ := swKeyOf(linkKey(e.At/60, e.TimerID, e.Parts)); f.throttle != nil && f.throttle(pk) {
			left = append(left, e)
			continue
		}
		written = append(written, e)
		f.putRaw(e.At/60, e)
		f.trace.add("link " + e.TimerID)
	}
	if len(written) > 0 {
		f.linkCalls = append(f.linkCalls, written)
	}
	return left, nil
}

// RaiseParts is Store.RaiseParts: for the lease's owner only, never
// lower.
func (f *swStore) RaiseParts(_ context.Context, owner string, hour int64, parts int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &f.sweep
	s.Raises = append(s.Raises, fmt.Sprintf("%d:%d", hour, parts))
	if s.Owner != owner || owner == "" {
		return 0, errLeaseLost
	}
	if s.Parts[hour] >= parts {
		return s.Parts[hour], nil
	}
	if s.Parts == nil {
		s.Parts = map[int64]int{}
	}
	s.Parts[hour] = parts
	return parts, nil
}

// Missed is Store.Missed: one transaction, conditional on the timer's
// version and its not being paused.
func (f *swStore) Missed(_ context.Context, e DueEntry, sweptAt time.Time, next *DueEntry, last bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.missedErr != nil {
		if err := f.missedErr(e); err != nil {
			return fmt.Errorf("record the missed occurrence of %s: %w", e.TimerID, err)
		}
	}
	c := swMissedCall{ID: e.TimerID, At: e.occurrence(), SweptAt: sweptAt, Last: last}
	if next != nil {
		c.Next = next.occurrence()
	}
	t, ok := f.timers[e.TimerID]
	if ok && t.Version == e.Version && !t.Paused {
		c.Applied = true
		o := swOcc{e.TimerID, e.occurrence()}
		if _, had := f.missed[o]; !had {
			f.missed[o] = sweptAt
		}
		if last && e.DeleteAfter {
			delete(f.timers, e.TimerID)
			c.Deleted = true
		} else {
			t.MissedCount++
			t.LastMissedAt = e.At
		}
		if next != nil {
			f.putRaw(next.At/60, *next)
			f.trace.add("link " + next.TimerID)
		}
	}
	f.missedCalls = append(f.missedCalls, c)
	return nil
}

// Periods is Store.Periods: the slot periods in use, sorted.
func (f *swStore) Periods(context.Context) ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.periodsErr != nil {
		if err := f.periodsErr(); err != nil {
			return nil, fmt.Errorf("read the slot periods: %w", err)
		}
	}
	return slices.Clone(f.periods), nil
}

// DeleteSlot is Store.DeleteSlot: only a slot entry of e's version goes.
func (f *swStore) DeleteSlot(_ context.Context, e DueEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk, sk := swKeyOf(slotKey(DueSlot{Period: e.Period, Slot: e.Slot}, e.TimerID))
	if cur, ok := f.items[pk][sk]; ok && cur.Version == e.Version {
		delete(f.items[pk], sk)
		f.slotDeletes = append(f.slotDeletes, e.TimerID)
	}
	return nil
}

// LeaseSweep is Store.LeaseSweep: refused while another lease is
// unexpired and for an event already swept.
func (f *swStore) LeaseSweep(_ context.Context, owner, eventID string, now time.Time, ttl time.Duration) (SweepState, bool, error) {
	f.mu.Lock()
	if f.leaseErr != nil {
		if err := f.leaseErr(); err != nil {
			f.mu.Unlock()
			return SweepState{}, false, fmt.Errorf("lease the sweep: %w", err)
		}
	}
	s := &f.sweep
	granted := (s.UntilMs == 0 || s.UntilMs < now.UnixMilli()) && (s.LastEventID == "" || s.LastEventID != eventID)
	if granted {
		s.Owner, s.UntilMs = owner, now.Add(ttl).UnixMilli()
	}
	through, parts := s.Through, maps.Clone(s.Parts)
	if !granted {
		through, parts = 0, nil // a failed condition returns no attributes
	}
	f.leaseCalls = append(f.leaseCalls, swLeaseCall{eventID, granted, through})
	onLease := f.onLease
	f.mu.Unlock()
	if onLease != nil {
		onLease(eventID, granted)
	}
	return SweepState{Through: through, Parts: parts}, granted, nil
}

// ReleaseSweep is Store.ReleaseSweep: only the lease's owner releases.
func (f *swStore) ReleaseSweep(_ context.Context, owner, eventID string, through int64, completed bool, now time.Time, drop []int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &f.sweep
	owned := s.Owner == owner && owner != ""
	f.releases = append(f.releases, swRelease{eventID, through, completed, owned})
	if !owned {
		return nil // the lease expired and another sweep took it
	}
	if through > 0 {
		s.Through = through
		for _, h := range drop {
			if h < through/60 {
				delete(s.Parts, h)
			}
		}
	}
	if completed {
		s.LastEventID, s.CompletedAt = eventID, now
	}
	s.Owner, s.UntilMs = "", 0
	return nil
}

// ---------------------------------------------------------------- a trace

// swTrace is the order in which links were written and messages accepted,
// across both fakes. A nil trace records nothing.
type swTrace struct {
	mu  sync.Mutex
	ops []string
}

// add records op; a nil trace records nothing.
func (t *swTrace) add(op string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ops = append(t.ops, op)
}

// list returns the operations recorded, in order.
func (t *swTrace) list() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.ops)
}

// ---------------------------------------------------------------- the fake SQS

// swFate is what the fake queue does with one entry.
type swFate int

// The fates of an entry: accepted, failed for SQS's reasons or ours, or
// not answered.
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

// swSent is one entry SQS accepted, decoded, and when (by the queue's
// clock) it was accepted.
type swSent struct {
	Msg    FireMessage
	Delay  int32
	SentAt time.Time
}

// swIgnoreSentAt leaves SentAt out of comparisons of swSent.
var swIgnoreSentAt = cmpopts.IgnoreFields(swSent{}, "SentAt")

// swQueue is a batchSender with SQS's limits: it records every call,
// checks it against SQS's rules (1-10 entries, unique non-empty ids,
// DelaySeconds 0-900, the queue URL), decodes every body strictly as a
// FireMessage, and answers with the successful entries in reverse order
// (SQS promises no order).
type swQueue struct {
	mu       sync.Mutex
	calls    []*sqs.SendMessageBatchInput
	accepted []swSent
	attempts map[swOcc]int // entries received per occurrence, failed calls included
	problems []string      // broken SQS rules
	trace    *swTrace
	// now stamps accepted entries. Nil: the zero time.
	now func() time.Time

	// before runs before each call is answered, outside the lock: it may
	// block, or fail the whole call. call counts from 1; msgs are the
	// call's entries, decoded.
	before func(ctx context.Context, call int, msgs []FireMessage) error
	// fate decides each entry; attempt counts earlier receipts of the same
	// occurrence. Nil accepts everything.
	fate func(m FireMessage, attempt int) swFate
}

// SendMessageBatch is SQS's: each entry meets its fate (see swQueue).
func (q *swQueue) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q.mu.Lock()
	cp := *in
	cp.Entries = slices.Clone(in.Entries)
	q.calls = append(q.calls, &cp)
	call := len(q.calls)
	if got := aws.ToString(in.QueueUrl); got != swQueueURL {
		q.problems = append(q.problems, fmt.Sprintf("call %d: QueueUrl %q", call, got))
	}
	if broken := sqsBatchRules(in); len(broken) > 0 {
		for _, r := range broken {
			q.problems = append(q.problems, fmt.Sprintf("call %d: %s", call, r.Problem))
		}
		q.mu.Unlock()
		return nil, fmt.Errorf("fake SQS: %w", broken[0].Err)
	}
	if q.attempts == nil {
		q.attempts = map[swOcc]int{}
	}
	msgs := make([]FireMessage, len(in.Entries))
	attempts := make([]int, len(in.Entries)) // earlier receipts of each entry's occurrence
	for i, e := range in.Entries {
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
		msgs[i].ScheduledAt = msgs[i].ScheduledAt.UTC() // a zone's offset may come with it: the instant is what counts
		o := swOcc{msgs[i].TimerID, msgs[i].ScheduledAt}
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
	var at time.Time
	if q.now != nil {
		at = q.now()
	}
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
			q.accepted = append(q.accepted, swSent{m, e.DelaySeconds, at})
			q.trace.add("send " + m.TimerID)
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

// acceptedIDs returns the timer ids of the accepted messages, in
// acceptedSorted's order.
func (q *swQueue) acceptedIDs() []string {
	var ids []string
	for _, s := range q.acceptedSorted() {
		ids = append(ids, s.Msg.TimerID)
	}
	return ids
}

// acceptedCount is how many entries SQS accepted so far.
func (q *swQueue) acceptedCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.accepted)
}

// acceptedSince returns the entries accepted after the first n, in order.
func (q *swQueue) acceptedSince(n int) []swSent {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.accepted[n:])
}

// callSizes returns the number of entries of each call, sorted.
func (q *swQueue) callSizes() []int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return sortedSizes(q.calls, func(c *sqs.SendMessageBatchInput) int { return len(c.Entries) })
}

// callCount returns how many SendMessageBatch calls were made.
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

// swQueueURL is the fire queue the fake sweeper sends to.
const swQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/callclock-fire"

// swNow is the sweeps' clock: half a minute before minute 45.
var swNow = time.Date(2026, 11, 22, 10, 44, 30, 0, time.UTC)

// swAt is an instant on swNow's day, UTC.
func swAt(h, m, s int) time.Time { return time.Date(2026, 11, 22, h, m, s, 0, time.UTC) }

// swMinute is the bucket of instant t.
func swMinute(t time.Time) int64 { return unixMinute(t) }

// swClock is a settable clock, safe for concurrent use.
type swClock struct{ ns atomic.Int64 }

// newSwClock is a clock at t; Now, Set and Advance read and move it.
func newSwClock(t time.Time) *swClock      { c := &swClock{}; c.Set(t); return c }
func (c *swClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *swClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *swClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// swTimerOf is a timer with schedule expr in zone tz, version 3 and the
// default catch-up window.
func swTimerOf(id, expr, tz string) *Timer {
	return &Timer{ID: id, ScheduleExpr: expr, Timezone: tz, CatchUpSeconds: DefaultCatchUpSeconds, Version: 3}
}

// swHourly is a Periodic Timer API timer: every hour at minute, UTC.
func swHourly(id string, minute int) *Timer {
	return &Timer{ID: id, MinuteOfHour: minute, CatchUpSeconds: DefaultCatchUpSeconds, Version: 3}
}

// swLinked is the entry of t's occurrence at, written well before it (an
// hour): the sweeper's to send.
func swLinked(t *Timer, at time.Time) DueEntry { return dueEntryOf(t, at, at.Add(-time.Hour)) }

// swIDsInPart returns n timer ids, prefix followed by a number, that all
// fall in bucket partition part, in sort order.
func swIDsInPart(prefix string, part, n int) []string {
	var ids []string
	for i := 0; len(ids) < n; i++ {
		if id := fmt.Sprintf("%s%05d", prefix, i); partOf(id) == part {
			ids = append(ids, id)
		}
	}
	return ids
}

// swMsg is the fire message of occurrence at of entry e: the minimal
// message, with the link the entry was handed on to (zero: none).
func swMsg(e DueEntry, at time.Time, nextLink time.Time, final bool) FireMessage {
	m := FireMessage{TimerID: e.TimerID, Version: e.Version, ScheduledAt: at, Final: final}
	if !nextLink.IsZero() {
		m.NextLinkAt = nextLink.Unix()
	}
	return m
}

// swSortSent sorts messages by timer id and instant.
func swSortSent(s []swSent) {
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].Msg.TimerID != s[j].Msg.TimerID {
			return s[i].Msg.TimerID < s[j].Msg.TimerID
		}
		return s[i].Msg.ScheduledAt.Before(s[j].Msg.ScheduledAt)
	})
}

// swSortOccs sorts occurrences by timer id and instant.
func swSortOccs(o []swOcc) {
	slices.SortFunc(o, func(a, b swOcc) int {
		if c := strings.Compare(a.TimerID, b.TimerID); c != 0 {
			return c
		}
		return a.ScheduledAt.Compare(b.ScheduledAt)
	})
}

// swSortEntries sorts entries by timer id and instant.
func swSortEntries(e []DueEntry) {
	slices.SortFunc(e, func(a, b DueEntry) int {
		if c := strings.Compare(a.TimerID, b.TimerID); c != 0 {
			return c
		}
		return int(a.At - b.At)
	})
}

// swRanges is what a sweep of minutes first..last queries: each
// partition of each hour once, for the minutes of that hour, sorted.
func swRanges(first, last int64) []BucketRange {
	var out []BucketRange
	for m := first; m <= last; m++ {
		if m == first || m%60 == 0 {
			for p := range dueParts {
				out = append(out, BucketRange{Hour: m / 60, Part: p, From: int(m % 60), To: int(min(last, m/60*60+59) % 60)})
			}
		}
	}
	swSortRanges(out)
	return out
}

// swRangeOf is the range of swRanges(first, last) that holds timer id's
// link in minute.
func swRangeOf(first, last, minute int64, id string) BucketRange {
	for _, r := range swRanges(first, last) {
		if r.Hour == minute/60 && r.Part == partOf(id) {
			return r
		}
	}
	panic("no range")
}

// newSwSweeper is a Sweeper with the defaults, a fixed clock, no logs,
// MaxAttempts 3 (so that a batch's retries back off for at most 150 ms)
// and a Sleep that returns at once: the clock is fixed, or moved by the
// test, so waiting for the send window would only take real time, and
// leave the delays as they are (sweep_window_test.go tests the wait).
func newSwSweeper(store dueStore, q batchSender, now time.Time) *Sweeper {
	s := NewSweeper(store, q, swQueueURL)
	s.Now = func() time.Time { return now }
	s.Log = slog.New(slog.DiscardHandler)
	s.MaxAttempts = 3
	s.Sleep = swNoWait
	return s
}

// swNoWait is a Sleep for a fake clock: it returns at once.
func swNoWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// The minutes of a sweep at swNow (see sweep_test.go).
var (
	swM44 = swMinute(swAt(10, 44, 0))
	swM45 = swMinute(swAt(10, 45, 0))
	// swLast is the last minute a sweep at swNow reads.
	swLast = swLastRead(swNow)
	// swFirstMinutes is how many minutes a first sweep at swNow reads.
	swFirstMinutes = int(swLast - swM44 + 1)
	// swHorizon is how far a sweep at swNow sends occurrences itself.
	swHorizon = swNow.Add(shortNotice)
)

// swLastRead is the last minute a sweep at now reads: the last wholly
// within its look-ahead.
func swLastRead(now time.Time) int64 {
	return now.Add(min(defaultLookahead, shortNotice)).Unix()/60 - 1
}

// swMinuteTime is the first instant of minute m.
func swMinuteTime(m int64) time.Time { return time.Unix(m*60, 0).UTC() }

// swMinutes returns the whole minutes in (from, to], plus offset: what a
// minutely schedule at that second of the minute has there.
func swMinutes(from, to time.Time, offset time.Duration) []time.Time {
	var out []time.Time
	for at := from.Add(-offset).Truncate(time.Minute).Add(time.Minute); !at.Add(offset).After(to); at = at.Add(time.Minute) {
		out = append(out, at.Add(offset))
	}
	return out
}

// swAfter is the first whole minute, plus offset, after t.
func swAfter(t time.Time, offset time.Duration) time.Time {
	return t.Add(-offset).Truncate(time.Minute).Add(time.Minute + offset)
}

// swLogRecords decodes JSON log lines.
func swLogRecords(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	return logLines(t, buf.String())
}

// swOnTime reports a message that does not become visible within the
// second before its instant (SentAt + DelaySeconds).
func swOnTime(s swSent) error {
	at := s.Msg.ScheduledAt
	if visible := s.SentAt.Add(time.Duration(s.Delay) * time.Second); visible.After(at) || !visible.After(at.Add(-time.Second)) {
		return fmt.Errorf("%s@%s sent at %s with DelaySeconds %d: visible at %s", s.Msg.TimerID, at.Format(time.TimeOnly),
			s.SentAt.Format(time.TimeOnly), s.Delay, visible.Format(time.TimeOnly))
	}
	return nil
}
