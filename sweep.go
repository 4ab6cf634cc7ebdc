package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// dueStore is what the sweeper needs from the timer table.
type dueStore interface {
	LeaseSweep(ctx context.Context, owner, eventID string, now time.Time, ttl time.Duration) (SweepState, bool, error)
	RaiseParts(ctx context.Context, owner string, hour int64, parts int) (int, error)
	ReleaseSweep(ctx context.Context, owner, eventID string, through int64, completed bool, now time.Time, drop []int64) error
	Bucket(ctx context.Context, r BucketRange, page func([]DueEntry) error) error
	Missed(ctx context.Context, e DueEntry, sweptAt time.Time, next *DueEntry, last bool) error
	PutLinks(ctx context.Context, links []DueEntry) ([]DueEntry, error)
	Periods(ctx context.Context) ([]int, error)
	DeleteSlot(ctx context.Context, e DueEntry) error
}

// batchSender is the one SQS call the sweeper makes.
type batchSender interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQS's limits, and the work a sweep hands out.
const (
	// maxDelay is SQS's longest DelaySeconds.
	maxDelay = 15 * time.Minute
	// sqsBatch is SQS's most entries in one SendMessageBatch.
	sqsBatch = 10
	// chunkSize is how many due entries one worker takes at a time: five
	// full SQS batches.
	chunkSize = 50
)

// Sweeper reads the minute buckets and slot entries that come within
// Lookahead (see due.go) and sends one fire message for each occurrence
// found there, delayed so that it becomes visible at its second. A linked
// timer's next link is written before its message is sent (slotted timers
// need none). The sweep as a whole is leased to one sweep at a time and records
// the first minute it has not read, so overlapping sweeps and a scheduled
// event delivered twice read no bucket twice; a sweep that fails half way
// leaves its minutes to the next one, which sends them again (the
// invoker's claim drops the copies).
type Sweeper struct {
	Timers   dueStore
	Queue    batchSender
	QueueURL string
	// Lookahead is how far ahead of now the minute buckets are read (each
	// once wholly within it). It must cover the sweep interval, the
	// scheduler's start delay and a minute, and stay within shortNotice.
	// Default 3 minutes.
	Lookahead time.Duration
	// Concurrency bounds the bucket partitions read at once. Default 16.
	Concurrency int
	// Workers bounds the chunks of 50 entries being sent at once. Default 64.
	Workers int
	// LeaseTTL is how long the sweep stays leased to a sweep that died
	// without releasing it. Default 90 seconds, beyond a sweep's 60.
	LeaseTTL time.Duration
	// MaxBacklog is how far back a sweep after an outage reads: as long as a
	// link is kept (linkTTL), so that every timer is handed on however long
	// the outage (read by the hour, 35 days are some 13,000 queries).
	// Default linkTTL.
	MaxBacklog time.Duration
	// MaxAttempts bounds the tries of one SQS batch. Default 5.
	MaxAttempts int
	// AlignUpTo is how many occurrences a sweep may have found (its
	// completed chunks' Due) and still send each batch within the send
	// window (sendWindowFrom), so that its messages arrive at most 0.3 s
	// early instead of up to a second. Waiting for the window costs a
	// batch up to 0.75 s: nothing to a sweep of thousands, but a sweep of a
	// million keeps its throughput (64 workers, 5 batches each in flight)
	// only if it does not wait, so beyond this many it sends at once.
	// Negative: never wait. Default 100,000.
	AlignUpTo int
	// Sleep waits d, or until ctx is done (then it returns ctx's error): the
	// wait for the send window goes through it. Default (and nil)
	// sleepCtx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Log receives one summary line per sweep. Default slog.Default().
	Log *slog.Logger
	// Zones loads time zones by name. Default: a cache over loadZone.
	Zones func(name string) (*time.Location, error)
	// Metrics receives one record per sweep. Nil: none.
	Metrics *Metrics
}

// NewSweeper returns a Sweeper with the defaults above.
func NewSweeper(timers dueStore, queue batchSender, queueURL string) *Sweeper {
	return &Sweeper{Timers: timers, Queue: queue, QueueURL: queueURL,
		Lookahead: defaultLookahead, Concurrency: 16, Workers: 64, LeaseTTL: 90 * time.Second,
		MaxBacklog: linkTTL, MaxAttempts: 5, AlignUpTo: defaultAlignUpTo, Sleep: sleepCtx,
		Now: time.Now, Log: slog.Default(), Zones: (&zoneCache{}).Load}
}

// SweepResult summarises one sweep.
type SweepResult struct {
	Minutes  int `json:"minutes"`  // minute buckets read
	Skipped  int `json:"skipped"`  // 1 when another sweep holds the lease, or this event was swept already
	Due      int `json:"due"`      // occurrences found
	Enqueued int `json:"enqueued"` // fire messages SQS accepted
	Missed   int `json:"missed"`   // occurrences later than their catch-up window, recorded and skipped
	Failed   int `json:"failed"`   // occurrences left for the next sweep
}

// add adds o's counts to r: a chunk's to its sweep's.
func (r *SweepResult) add(o SweepResult) {
	r.Minutes += o.Minutes
	r.Skipped += o.Skipped
	r.Due += o.Due
	r.Enqueued += o.Enqueued
	r.Missed += o.Missed
	r.Failed += o.Failed
}

// sweepRun is the state of one sweep shared by its readers and workers.
type sweepRun struct {
	s     *Sweeper
	now   time.Time
	until time.Time
	// slotFirst and last are the minutes whose slot occurrences this sweep
	// sends: slot entries are static, so occurrences older than the
	// longest catch-up window are not looked for (a link is always read,
	// whatever its age, since its timer goes on from it).
	slotFirst, last int64
	zones           func(string) (*time.Location, error)
	work            chan chunk
	// schedules caches parsed schedules for this sweep: a million timers
	// share few expressions, and parsing is most of a sweep's CPU.
	schedules      sync.Map // scheduleKey -> Schedule
	schedulesCount atomic.Int64

	// owner is the sweep's lease's; parts are the hours' raised
	// partitions (see SweepState), which only raise changes, under partsMu.
	owner   string
	partsMu sync.Mutex
	parts   map[int64]int

	mu       sync.Mutex
	res      SweepResult
	firstErr error
	// failedFrom is the first minute with an occurrence not sent (or not
	// read), from which the next sweep reads again; 0 when none.
	failedFrom int64
}

// scheduleKey is everything a timer's Schedule depends on.
type scheduleKey struct {
	expr, zone         string
	anchor, start, end int64
}

// maxCachedSchedules bounds a sweep's schedule cache: rate timers without
// startAt each have their own anchor.
const maxCachedSchedules = 10000

// schedule returns e's timer's schedule, parsed once per sweep.
func (r *sweepRun) schedule(e DueEntry) (Schedule, error) {
	k := scheduleKey{expr: e.Expr, zone: e.Zone, anchor: e.Anchor, start: e.Start, end: e.End}
	if s, ok := r.schedules.Load(k); ok {
		return s.(Schedule), nil
	}
	s, err := e.timer().Schedule(r.zones)
	if err == nil && r.schedulesCount.Add(1) <= maxCachedSchedules {
		r.schedules.Store(k, s)
	}
	return s, err
}

// chunk is up to chunkSize entries of one bucket range, and how to report
// back.
type chunk struct {
	br      BucketRange
	entries []DueEntry
	done    func(SweepResult, error)
}

// record adds a chunk's result; a failure in minute holds the next sweep
// back to that minute.
func (r *sweepRun) record(minute int64, res SweepResult, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.add(res)
	if err != nil && r.firstErr == nil {
		r.firstErr = err
	}
	if (err != nil || res.Failed > 0) && (r.failedFrom == 0 || minute < r.failedFrom) {
		r.failedFrom = minute
	}
}

// Sweep reads every minute bucket from the first one not yet read to the
// last one wholly within Lookahead, for the scheduled event eventID
// (empty: a fresh one). It returns an error when any could not be swept
// completely; what was sent stays sent, and the next sweep does the rest.
func (s *Sweeper) Sweep(ctx context.Context, eventID string) (SweepResult, error) {
	if eventID == "" {
		eventID = newID()
	}
	now := s.Now()
	run := &sweepRun{s: s, now: now, until: now.Add(min(s.Lookahead, shortNotice)), zones: s.Zones,
		work: make(chan chunk, max(1, s.Workers))}
	if run.zones == nil {
		run.zones = loadZone
	}
	state, ok, err := run.lease(ctx, eventID)
	if err != nil || !ok {
		res := SweepResult{Skipped: 1}
		s.Log.InfoContext(ctx, "sweep", "eventId", eventID, "skipped", 1)
		s.Metrics.Emit("Part", "sweeper", count("SweepCompleted", boolCount(err == nil)), count("SweepsSkipped", 1))
		return res, err
	}
	first := s.firstMinute(ctx, eventID, state.Through, now)
	last := run.until.Unix()/60 - 1 // the last minute wholly within the look-ahead
	run.res.Minutes = int(max(0, last-first+1))
	run.slotFirst, run.last = max(first, unixMinute(now.Add(-MaxCatchUpSeconds*time.Second))), last
	run.sweepRanges(ctx, run.ranges(ctx, first, state.Parts))
	res, err := run.release(ctx, eventID, first)
	s.report(ctx, eventID, res, err, first, last, now)
	return res, err
}

// lease takes the sweep's lease for eventID under a fresh owner, and the
// hours' raised partitions it records, which this run then keeps.
func (r *sweepRun) lease(ctx context.Context, eventID string) (SweepState, bool, error) {
	r.owner = newID()
	state, ok, err := r.s.Timers.LeaseSweep(ctx, r.owner, eventID, r.now, r.s.LeaseTTL)
	r.parts = maps.Clone(state.Parts)
	if r.parts == nil {
		r.parts = map[int64]int{}
	}
	return state, ok, err
}

// firstMinute is the first minute a sweep at now reads, through being the
// first one not yet read (0: none ever was). A first sweep reads from now
// on, since a timer's first occurrences until then are the API's to send;
// after an outage it reads no further back than MaxBacklog.
func (s *Sweeper) firstMinute(ctx context.Context, eventID string, through int64, now time.Time) int64 {
	first := max(through, unixMinute(now.Add(-s.MaxBacklog)))
	if through == 0 {
		first = unixMinute(now)
	} else if through < first {
		// Links older than MaxBacklog may be gone (linkTTL): their timers
		// wait for a PUT. Rare enough to need a person.
		s.Log.ErrorContext(ctx, "sweep gap longer than links are kept; linked timers may need a PUT",
			"eventId", eventID, "lastSwept", time.Unix(through*60, 0).UTC().Format(time.RFC3339),
			"readFrom", time.Unix(first*60, 0).UTC().Format(time.RFC3339))
	}
	return first
}

// ranges plans what the sweep reads from first: the link partitions of
// its minutes (over each hour's raised partitions), and the slots of its
// minutes for every period in use. Without the periods it still reads the
// links, and the failure holds the next sweep back to first.
func (r *sweepRun) ranges(ctx context.Context, first int64, parts map[int64]int) []BucketRange {
	ranges := bucketRanges(first, r.last, parts)
	periods, err := r.s.Timers.Periods(ctx)
	if err != nil {
		r.record(first, SweepResult{}, err)
	}
	for _, p := range periods {
		ranges = append(ranges, slotRanges(p, r.slotFirst, r.last)...)
	}
	return ranges
}

// sweepRanges reads ranges, at most Concurrency at once, into chunks that
// Workers workers process, and returns when every chunk is done.
func (r *sweepRun) sweepRanges(ctx context.Context, ranges []BucketRange) {
	var workers sync.WaitGroup
	for range max(1, r.s.Workers) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for c := range r.work {
				c.done(r.process(ctx, c.br, c.entries))
			}
		}()
	}
	var readers sync.WaitGroup
	slots := make(chan struct{}, max(1, r.s.Concurrency))
	for _, br := range ranges {
		readers.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; readers.Done() }()
			r.sweepBucket(ctx, br)
		}()
	}
	readers.Wait()
	close(r.work)
	workers.Wait()
}

// release hands the lease back with the first minute the next sweep reads
// (this sweep's first failure, or past its last minute, never before
// first) and the raised hours now behind it, and returns the sweep's
// result and error. A release that fails is the sweep's error too: the
// lease expires by itself, and the next sweep reads these minutes again.
func (r *sweepRun) release(ctx context.Context, eventID string, first int64) (SweepResult, error) {
	res, err := r.res, r.firstErr
	next := r.last + 1
	if r.failedFrom != 0 {
		next = r.failedFrom
	}
	if err == nil && res.Failed > 0 {
		err = fmt.Errorf("%d occurrences were not enqueued; the next sweep sends them", res.Failed)
	}
	var drop []int64 // the raised hours now behind the sweep
	r.partsMu.Lock()
	for h := range r.parts {
		if h < max(next, first)/60 {
			drop = append(drop, h)
		}
	}
	r.partsMu.Unlock()
	slices.Sort(drop)
	if rerr := r.s.Timers.ReleaseSweep(context.WithoutCancel(ctx), r.owner, eventID, max(next, first), err == nil, r.s.Now(), drop); rerr != nil && err == nil {
		err = rerr // the lease expires by itself; the next sweep reads these minutes again
	}
	return res, err
}

// report writes a sweep's summary line and its metrics: the alarm on a
// stalled sweeper watches SweepCompleted.
func (s *Sweeper) report(ctx context.Context, eventID string, res SweepResult, err error, first, last int64, start time.Time) {
	s.Log.InfoContext(ctx, "sweep", "eventId", eventID, "minutes", res.Minutes, "due", res.Due,
		"enqueued", res.Enqueued, "missed", res.Missed, "failed", res.Failed,
		"from", time.Unix(first*60, 0).UTC().Format(time.RFC3339), "until", time.Unix((last+1)*60, 0).UTC().Format(time.RFC3339),
		"durationMs", s.Now().Sub(start).Milliseconds())
	s.Metrics.Emit("Part", "sweeper", count("SweepCompleted", boolCount(err == nil)), count("Due", res.Due),
		count("Enqueued", res.Enqueued), count("Missed", res.Missed), count("SweepFailures", res.Failed),
		count("SweepsSkipped", 0),
		Metric{Name: "SweepDuration", Unit: "Milliseconds", Values: []float64{float64(s.Now().Sub(start).Milliseconds())}})
}

// boolCount is 1 for true: the alarm on a stalled sweeper watches
// SweepCompleted.
func boolCount(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sweepBucket streams one bucket partition's entries page by page into
// chunks for the workers and waits until every chunk is done.
func (r *sweepRun) sweepBucket(ctx context.Context, br BucketRange) {
	var pending sync.WaitGroup
	// A chunk holds the links of one minute, on time or late beyond their
	// catch-up window (those send little or nothing: apart, they leave
	// the others' SQS batches full), so that a failure holds the next
	// sweep back to its own minute only.
	var (
		bufs       [2][]DueEntry
		lastMinute = br.Hour*60 + int64(br.From)
	)
	flush := func(k int) {
		if len(bufs[k]) == 0 {
			return
		}
		pending.Add(1)
		minute := bufs[k][0].At / 60
		r.work <- chunk{br: br, entries: bufs[k], done: func(res SweepResult, err error) {
			r.record(minute, res, err)
			pending.Done()
		}}
		bufs[k] = nil
	}
	err := r.s.Timers.Bucket(ctx, br, func(page []DueEntry) error {
		for _, e := range page {
			k := 0
			if e.Period == 0 {
				if m := e.At/60 - br.Hour*60; m < int64(br.From) || m > int64(br.To) || !e.sweepersOwn() {
					continue // not this range's (a stray item), or its writer's to send
				}
				if m := e.At / 60; m != lastMinute {
					flush(0)
					flush(1)
					lastMinute = m
				}
				if r.now.Sub(e.planned(e.occurrence())) > time.Duration(e.CatchUp)*time.Second {
					k = 1
				}
			}
			if bufs[k] == nil {
				bufs[k] = make([]DueEntry, 0, chunkSize)
			}
			bufs[k] = append(bufs[k], e)
			if len(bufs[k]) == chunkSize {
				flush(k)
			}
		}
		return ctx.Err()
	})
	flush(0)
	flush(1)
	pending.Wait()
	if err != nil {
		// Links come in order of their minute: what was not read is of the
		// last minute read or later.
		r.record(lastMinute, SweepResult{}, err)
	}
}

// chunkWork is what processing one chunk gathers: its result so far, its
// errors, the fire messages to send and the next links to write first.
type chunkWork struct {
	res   SweepResult
	errs  []error
	sends []fireSend
	links []*DueEntry
}

// process handles the entries of one chunk: each occurrence is sent, or
// recorded as missed when it is later than its catch-up window, and its
// timer is handed on: the next link written (in one batch for the chunk)
// before any message is sent, so that a sweep that fails half way never
// leaves a timer without its next link.
func (r *sweepRun) process(ctx context.Context, br BucketRange, entries []DueEntry) (SweepResult, error) {
	var w chunkWork
	for _, e := range entries {
		r.processEntry(ctx, br, e, &w)
	}
	if len(w.links) > 0 {
		if err := r.putLinks(ctx, w.links); err != nil {
			// No message goes out without its timer's next link: the next
			// sweep reads this minute again.
			return SweepResult{Due: w.res.Due, Failed: w.res.Due}, errors.Join(append(w.errs, err)...)
		}
	}
	r.sendAll(ctx, r.messages(ctx, w.sends, &w.res), &w)
	return w.res, errors.Join(w.errs...)
}

// processEntry classifies one entry of br: a stray item or one its writer
// sends is skipped, an entry whose schedule is unusable is left for the
// next sweep, and the rest are handled as the slot or link they are.
func (r *sweepRun) processEntry(ctx context.Context, br BucketRange, e DueEntry, w *chunkWork) {
	if m := e.At/60 - br.Hour*60; e.Period == 0 && (m < int64(br.From) || m > int64(br.To) || !e.sweepersOwn()) {
		return // not this range's (a stray item), or its writer's to send
	}
	if e.Period != br.Period {
		return // a stray item
	}
	sched, err := r.schedule(e)
	if err != nil {
		// The API validated it; a zone that vanished from tzdata could
		// still get here. Leave it and say so.
		if e.Period == 0 {
			w.res.Due++ // a link's occurrence was found, and is left for the next sweep
		}
		w.res.Failed++
		r.s.Log.ErrorContext(ctx, "timer schedule unusable", "timerId", e.TimerID, "error", err.Error())
		return
	}
	if e.Period > 0 {
		r.processSlot(ctx, e, sched, w)
		return
	}
	r.processLink(ctx, e, sched, w)
}

// processLink handles a link: its occurrence is sent with the ones within
// shortNotice after it, and its timer handed on to its next link, or,
// later than its catch-up window, recorded as missed with the next link
// in the same write.
func (r *sweepRun) processLink(ctx context.Context, e DueEntry, sched Schedule, w *chunkWork) {
	w.res.Due++
	at := e.occurrence()
	if late := r.now.Sub(e.planned(at)); late > time.Duration(e.CatchUp)*time.Second {
		r.missLink(ctx, e, sched, at, late, w)
		return
	}
	direct, link := handOn(e, sched, maxTime(at, r.now), r.now)
	if link != nil {
		r.partition(link)
		w.links = append(w.links, link)
	}
	for _, d := range append([]time.Time{at}, direct...) {
		w.sends = append(w.sends, fireSend{e: e, at: d, link: link, final: link == nil && d.Equal(lastOf(at, direct)) && e.DeleteAfter})
	}
}

// missLink records a link's occurrence at, late by late, as missed, and
// sends the ones within shortNotice of now.
func (r *sweepRun) missLink(ctx context.Context, e DueEntry, sched Schedule, at time.Time, late time.Duration, w *chunkWork) {
	// A late sweep moves an overdue timer past now rather than
	// through every occurrence it missed.
	direct, link := handOn(e, sched, maxTime(at, r.now), r.now)
	r.partition(link)
	r.s.Log.WarnContext(ctx, "occurrence missed", "timerId", e.TimerID, "scheduledAt", at.Format(time.RFC3339),
		"latenessMs", late.Milliseconds(), "catchUpSeconds", e.CatchUp)
	if err := r.s.Timers.Missed(ctx, e, r.now, link, link == nil && len(direct) == 0); err != nil {
		w.res.Failed++
		w.errs = append(w.errs, err)
		return
	}
	w.res.Missed++
	for i, d := range direct {
		w.sends = append(w.sends, fireSend{e: e, at: d, link: link, final: link == nil && i == len(direct)-1 && e.DeleteAfter})
	}
}

// messages builds the SQS entries of sends, each with its index in sends
// as its id; a message that cannot be encoded fails in res.
func (r *sweepRun) messages(ctx context.Context, sends []fireSend, res *SweepResult) []types.SendMessageBatchRequestEntry {
	batch := make([]types.SendMessageBatchRequestEntry, 0, len(sends))
	for i, f := range sends {
		m := newFireMessage(f.e.TimerID, f.e.Version, f.at)
		m.Final = f.final
		if f.e.Spread > 0 {
			spreadMessage(&m, f.e.Spread, r.s.Now())
		}
		if f.link != nil {
			m.NextLinkAt, m.NextLinkParts = f.link.At, f.link.Parts
		}
		body, err := marshalJSON(m)
		if err != nil {
			res.Failed++
			r.s.Log.ErrorContext(ctx, "fire message unencodable", "timerId", f.e.TimerID, "error", err.Error())
			continue
		}
		batch = append(batch, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))})
	}
	return batch
}

// sendAll sends batch, the messages of w.sends, in SQS batches all at
// once (a chunk's batches cost one round trip, not five), and adds what
// they sent and failed to w.
func (r *sweepRun) sendAll(ctx context.Context, batch []types.SendMessageBatchRequestEntry, w *chunkWork) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for len(batch) > 0 {
		n := min(sqsBatch, len(batch))
		b := batch[:n]
		batch = batch[n:]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, failed, err := r.send(ctx, b, w.sends)
			mu.Lock()
			defer mu.Unlock()
			w.res.Enqueued += len(sent)
			w.res.Failed += failed
			w.errs = append(w.errs, err)
		}()
	}
	wg.Wait()
}

// fireSend is one fire message a chunk sends: entry e's occurrence at,
// with the link e was handed on to.
type fireSend struct {
	e     DueEntry
	at    time.Time
	link  *DueEntry
	final bool
}

// deliverAt is when f's message is to become visible: its occurrence's
// planned instant (spread.go), its instant for a timer without spread.
func (f fireSend) deliverAt() time.Time { return f.e.planned(f.at) }

// lastOf is the last of at and direct.
func lastOf(at time.Time, direct []time.Time) time.Time {
	if len(direct) > 0 {
		return direct[len(direct)-1]
	}
	return at
}

// maxTime is the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
