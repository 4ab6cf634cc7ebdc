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

const (
	// maxDelay is SQS's longest DelaySeconds.
	maxDelay = 15 * time.Minute
	// sqsBatch is SQS's most entries in one SendMessageBatch.
	sqsBatch = 10
	// chunkSize is how many due entries one worker takes at a time: five
	// full SQS batches.
	chunkSize = 50
)

// The send window. Occurrence instants are whole seconds and an SQS delay
// is whole seconds too (delaySeconds rounds it down), so a message sent
// at k+f (k a wall-clock second, 0 <= f < 1) becomes visible 1-f before
// its instant, and the invoker holds it until then: paid Lambda time. Sent
// at once, a message may be visible up to a second early; sent within
// [k+sendWindowFrom, k+sendWindowTo) it is visible between 50 ms and
// 300 ms early (sendWindowHold), and the invoker's hold is at most that.
const (
	// sendWindowFrom is where in a second the window opens: 0.70 s, so
	// that a message is visible at most 0.30 s before its instant.
	sendWindowFrom = 700 * time.Millisecond
	// sendWindowTo is where it closes: 0.95 s, so that a message is
	// visible at least 50 ms before its instant: room for the request's
	// way to SQS, which counts the delay from when it takes the message.
	sendWindowTo = 950 * time.Millisecond
	// sendWindowHold is the longest a message sent within the window is
	// visible before its instant: how long the invoker holds it at most.
	sendWindowHold = time.Second - sendWindowFrom
	// alignMinLead is how far off a batch's earliest occurrence must be for
	// the batch to wait for the window: the wait is up to 0.75 s, and an
	// occurrence sooner than this is sent at once (precision first).
	alignMinLead = 2 * time.Second
	// defaultAlignUpTo is Sweeper.AlignUpTo's default.
	defaultAlignUpTo = 100000
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
	owner := newID()
	state, ok, err := s.Timers.LeaseSweep(ctx, owner, eventID, now, s.LeaseTTL)
	through := state.Through
	run.owner, run.parts = owner, maps.Clone(state.Parts)
	if run.parts == nil {
		run.parts = map[int64]int{}
	}
	if err != nil || !ok {
		res := SweepResult{Skipped: 1}
		s.Log.InfoContext(ctx, "sweep", "eventId", eventID, "skipped", 1)
		s.Metrics.Emit("Part", "sweeper", count("SweepCompleted", boolCount(err == nil)), count("SweepsSkipped", 1))
		return res, err
	}
	// From the first minute not yet read; a first sweep, from now on (a
	// timer's first occurrences until then are the API's to send), and
	// after an outage no further back than MaxBacklog.
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
	last := run.until.Unix()/60 - 1 // the last minute wholly within the look-ahead
	var workers sync.WaitGroup
	for range max(1, s.Workers) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for c := range run.work {
				c.done(run.process(ctx, c.br, c.entries))
			}
		}()
	}
	var readers sync.WaitGroup
	slots := make(chan struct{}, max(1, s.Concurrency))
	run.res.Minutes = int(max(0, last-first+1))
	run.slotFirst, run.last = max(first, unixMinute(now.Add(-MaxCatchUpSeconds*time.Second))), last
	ranges := bucketRanges(first, last, state.Parts)
	periods, err := s.Timers.Periods(ctx)
	if err != nil {
		run.record(first, SweepResult{}, err)
	}
	for _, p := range periods {
		ranges = append(ranges, slotRanges(p, run.slotFirst, last)...)
	}
	for _, br := range ranges {
		readers.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; readers.Done() }()
			run.sweepBucket(ctx, br)
		}()
	}
	readers.Wait()
	close(run.work)
	workers.Wait()
	res, err := run.res, run.firstErr
	next := last + 1
	if run.failedFrom != 0 {
		next = run.failedFrom
	}
	if err == nil && res.Failed > 0 {
		err = fmt.Errorf("%d occurrences were not enqueued; the next sweep sends them", res.Failed)
	}
	var drop []int64 // the raised hours now behind the sweep
	run.partsMu.Lock()
	for h := range run.parts {
		if h < max(next, first)/60 {
			drop = append(drop, h)
		}
	}
	run.partsMu.Unlock()
	slices.Sort(drop)
	if rerr := s.Timers.ReleaseSweep(context.WithoutCancel(ctx), owner, eventID, max(next, first), err == nil, s.Now(), drop); rerr != nil && err == nil {
		err = rerr // the lease expires by itself; the next sweep reads these minutes again
	}
	s.Log.InfoContext(ctx, "sweep", "eventId", eventID, "minutes", res.Minutes, "due", res.Due,
		"enqueued", res.Enqueued, "missed", res.Missed, "failed", res.Failed,
		"from", time.Unix(first*60, 0).UTC().Format(time.RFC3339), "until", time.Unix((last+1)*60, 0).UTC().Format(time.RFC3339),
		"durationMs", s.Now().Sub(now).Milliseconds())
	s.Metrics.Emit("Part", "sweeper", count("SweepCompleted", boolCount(err == nil)), count("Due", res.Due),
		count("Enqueued", res.Enqueued), count("Missed", res.Missed), count("SweepFailures", res.Failed),
		count("SweepsSkipped", 0),
		Metric{Name: "SweepDuration", Unit: "Milliseconds", Values: []float64{float64(s.Now().Sub(now).Milliseconds())}})
	return res, err
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
				if r.now.Sub(e.occurrence()) > time.Duration(e.CatchUp)*time.Second {
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

// handOn is how a timer goes on after from, for whoever writes its links
// at now (the API, the sweeper): the occurrences within shortNotice of
// now, which the writer sends itself (a link to them could come after the
// sweep read their bucket), and the link, modelled on e, of the first one
// beyond (nil when none is left).
func handOn(e DueEntry, sched Schedule, from, now time.Time) (direct []time.Time, link *DueEntry) {
	horizon := now.Add(shortNotice)
	for at := from; ; {
		next, ok := sched.Next(at)
		if !ok {
			return direct, nil
		}
		if next.After(horizon) {
			l := e
			l.At, l.WrittenAt = next.Unix(), now.Unix()
			return direct, &l
		}
		direct = append(direct, next)
		at = next
	}
}

// process handles the entries of one chunk: each occurrence is sent, or
// recorded as missed when it is later than its catch-up window, and its
// timer is handed on: the next link written (in one batch for the chunk)
// before any message is sent, so that a sweep that fails half way never
// leaves a timer without its next link.
func (r *sweepRun) process(ctx context.Context, br BucketRange, entries []DueEntry) (SweepResult, error) {
	var (
		res   SweepResult
		errs  []error
		sends []fireSend
		links []*DueEntry
	)
	for _, e := range entries {
		if m := e.At/60 - br.Hour*60; e.Period == 0 && (m < int64(br.From) || m > int64(br.To) || !e.sweepersOwn()) {
			continue // not this range's (a stray item), or its writer's to send
		}
		if e.Period != br.Period {
			continue // a stray item
		}
		sched, err := r.schedule(e)
		if err != nil {
			// The API validated it; a zone that vanished from tzdata could
			// still get here. Leave it and say so.
			if e.Period == 0 {
				res.Due++ // a link's occurrence was found, and is left for the next sweep
			}
			res.Failed++
			r.s.Log.ErrorContext(ctx, "timer schedule unusable", "timerId", e.TimerID, "error", err.Error())
			continue
		}
		if e.Period > 0 {
			sends = r.processSlot(ctx, e, sched, &res, &errs, sends)
			continue
		}
		res.Due++
		at := e.occurrence()
		if late := r.now.Sub(at); late > time.Duration(e.CatchUp)*time.Second {
			// A late sweep moves an overdue timer past now rather than
			// through every occurrence it missed.
			direct, link := handOn(e, sched, maxTime(at, r.now), r.now)
			r.partition(link)
			r.s.Log.WarnContext(ctx, "occurrence missed", "timerId", e.TimerID, "scheduledAt", at.Format(time.RFC3339),
				"latenessMs", late.Milliseconds(), "catchUpSeconds", e.CatchUp)
			if err := r.s.Timers.Missed(ctx, e, r.now, link, link == nil && len(direct) == 0); err != nil {
				res.Failed++
				errs = append(errs, err)
				continue
			}
			res.Missed++
			for i, d := range direct {
				sends = append(sends, fireSend{e: e, at: d, link: link, final: link == nil && i == len(direct)-1 && e.DeleteAfter})
			}
			continue
		}
		direct, link := handOn(e, sched, maxTime(at, r.now), r.now)
		if link != nil {
			r.partition(link)
			links = append(links, link)
		}
		for _, d := range append([]time.Time{at}, direct...) {
			sends = append(sends, fireSend{e: e, at: d, link: link, final: link == nil && d.Equal(lastOf(at, direct)) && e.DeleteAfter})
		}
	}
	if len(links) > 0 {
		if err := r.putLinks(ctx, links); err != nil {
			// No message goes out without its timer's next link: the next
			// sweep reads this minute again.
			return SweepResult{Due: res.Due, Failed: res.Due}, errors.Join(append(errs, err)...)
		}
	}
	batch := make([]types.SendMessageBatchRequestEntry, 0, len(sends))
	for i, f := range sends {
		m := FireMessage{TimerID: f.e.TimerID, Version: f.e.Version, ScheduledAt: f.at, Final: f.final}
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
	// A chunk's SQS batches go out at once: one round trip, not five.
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
			sent, failed, err := r.send(ctx, b, sends)
			mu.Lock()
			defer mu.Unlock()
			res.Enqueued += len(sent)
			res.Failed += failed
			errs = append(errs, err)
		}()
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// partition gives link, when not nil, its hour's partitions as this sweep
// knows them.
func (r *sweepRun) partition(link *DueEntry) {
	if link == nil {
		return
	}
	r.partsMu.Lock()
	defer r.partsMu.Unlock()
	link.Parts = 0
	if n := r.parts[link.At/3600]; n > dueParts {
		link.Parts = n
	}
}

// maxLinkAttempts bounds the tries of one chunk's links.
const maxLinkAttempts = 10

// putLinks writes links, the next links of one chunk. What DynamoDB
// throttles is written again, into more partitions: the throttled links'
// hour is raised to twice the partitions they were written with (once,
// by whichever chunk is first), and every link of that hour written from
// then on is spread over the new ones. So the partitions follow the load
// a sweep writes, with no setting to guess; a raise that cannot be had
// (the lease lost, or maxDueParts reached) backs off instead. Each link's
// Parts is the one it was written with, which its fire message names.
func (r *sweepRun) putLinks(ctx context.Context, links []*DueEntry) error {
	pending := links
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt >= maxLinkAttempts {
			return fmt.Errorf("link next occurrences: %d writes still throttled after %d tries", len(pending), attempt)
		}
		batch := make([]DueEntry, len(pending))
		for i, l := range pending {
			batch[i] = *l
		}
		left, err := r.s.Timers.PutLinks(ctx, batch)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		type linkOf struct {
			id string
			at int64
		}
		throttled := make(map[linkOf]bool, len(left))
		for _, e := range left {
			throttled[linkOf{e.TimerID, e.At}] = true
		}
		again := pending[:0:0]
		for _, l := range pending {
			if throttled[linkOf{l.TimerID, l.At}] {
				again = append(again, l)
			}
		}
		if !r.raise(ctx, left) {
			if err := sleepCtx(ctx, backoff(min(attempt, 6))); err != nil {
				return err
			}
		}
		for _, l := range again {
			r.partition(l)
		}
		pending = again
	}
	return nil
}

// raise raises the partitions of the hours of throttled, links written
// with the partitions their Parts says: to twice those, unless another
// chunk raised the hour since. It reports whether any hour has more
// partitions now than those links were written with.
func (r *sweepRun) raise(ctx context.Context, throttled []DueEntry) bool {
	r.partsMu.Lock()
	defer r.partsMu.Unlock()
	more := false
	seen := map[int64]bool{}
	for _, e := range throttled {
		h := e.At / 3600
		if seen[h] {
			continue
		}
		cur := partsOr(r.parts[h])
		if cur > partsOr(e.Parts) {
			more = true // raised by another chunk since
			continue
		}
		if cur > dueParts && partIn(e.TimerID, cur) < cur/2 {
			// A partition the hour had before its last raise may still be
			// full of the writes from before it: only a throttled new one
			// says that the raised count is not enough.
			continue
		}
		seen[h] = true
		want := min(2*cur, maxDueParts)
		if want <= cur {
			continue
		}
		// Under partsMu: a sweep's chunks wait for one raise of an hour,
		// not race to raise it again.
		got, err := r.s.Timers.RaiseParts(ctx, r.owner, h, want)
		if err != nil {
			r.s.Log.WarnContext(ctx, "bucket partitions not raised", "hour", time.Unix(h*3600, 0).UTC().Format(time.RFC3339),
				"partitions", cur, "error", err.Error())
			continue
		}
		r.parts[h] = got
		r.s.Log.InfoContext(ctx, "bucket partitions raised", "hour", time.Unix(h*3600, 0).UTC().Format(time.RFC3339),
			"from", cur, "to", got)
		more = true
	}
	return more
}

// processSlot handles a slot entry: its timer's occurrences in this
// sweep's minutes that fall in its slot. Of the ones already past (a sweep
// after an outage), only the timer's first is handled, sent or recorded as
// missed, as a link's would be; the others are skipped. A slot whose timer
// has no occurrence left is deleted, once.
func (r *sweepRun) processSlot(ctx context.Context, e DueEntry, sched Schedule, res *SweepResult, errs *[]error, sends []fireSend) []fireSend {
	period, slot := int64(e.Period), int64(e.Slot)
	mine := func(x time.Time) bool {
		m := x.Unix() / 60
		return m%period == slot && m >= r.slotFirst && m <= r.last
	}
	own := time.Unix(e.WrittenAt, 0).Add(shortNotice) // the occurrences up to it were its writer's
	x, ok := sched.Next(maxTime(time.Unix(r.slotFirst*60, 0).Add(-time.Nanosecond), own))
	if _, left := sched.Next(r.now.Add(-time.Nanosecond)); !left {
		if err := r.s.Timers.DeleteSlot(ctx, e); err != nil {
			*errs = append(*errs, err)
		}
		if !ok || !x.Before(r.now) {
			return sends
		}
	}
	final := func(x time.Time) bool {
		_, more := sched.Next(x)
		return e.DeleteAfter && !more
	}
	if ok && x.Before(r.now) {
		if mine(x) {
			res.Due++
			if late := r.now.Sub(x); late > time.Duration(e.CatchUp)*time.Second {
				m := e
				m.At = x.Unix()
				r.s.Log.WarnContext(ctx, "occurrence missed", "timerId", e.TimerID, "scheduledAt", x.UTC().Format(time.RFC3339),
					"latenessMs", late.Milliseconds(), "catchUpSeconds", e.CatchUp)
				if err := r.s.Timers.Missed(ctx, m, r.now, nil, final(x)); err != nil {
					res.Failed++
					*errs = append(*errs, err)
				} else {
					res.Missed++
				}
			} else {
				sends = append(sends, fireSend{e: e, at: x, final: final(x)})
			}
		}
		x, ok = sched.Next(r.now.Add(-time.Nanosecond))
	}
	end := time.Unix((r.last+1)*60, 0)
	for ; ok && x.Before(end); x, ok = sched.Next(x) {
		if mine(x) && x.After(own) {
			res.Due++
			sends = append(sends, fireSend{e: e, at: x, final: final(x)})
		}
	}
	return sends
}

// fireSend is one fire message a chunk sends: entry e's occurrence at,
// with the link e was handed on to.
type fireSend struct {
	e     DueEntry
	at    time.Time
	link  *DueEntry
	final bool
}

// lastOf is the last of at and direct.
func lastOf(at time.Time, direct []time.Time) time.Time {
	if len(direct) > 0 {
		return direct[len(direct)-1]
	}
	return at
}

// send sends one batch of at most 10 entries, retrying with backoff what
// SQS failed for its own reasons (throttling, a passing fault). Each try
// first waits for the send window when it should (see alignWait). An
// entry's id is its index in sends. It returns the indices SQS accepted
// and how many entries it gave up on.
func (r *sweepRun) send(ctx context.Context, entries []types.SendMessageBatchRequestEntry, sends []fireSend) (sent []int, failed int, err error) {
	for attempt := 0; len(entries) > 0 && attempt < max(1, r.s.MaxAttempts); attempt++ {
		if attempt > 0 && sleepCtx(ctx, backoff(attempt-1)) != nil {
			break
		}
		if werr := r.waitWindow(ctx, entries, sends); werr != nil {
			err = fmt.Errorf("send fire messages: waiting for the send window: %w", werr)
			break
		}
		// SQS counts a delay from when it takes the message, so each try
		// counts it from now, not from when the sweep began.
		now := r.s.Now()
		for j := range entries {
			i, _ := strconv.Atoi(aws.ToString(entries[j].Id))
			entries[j].DelaySeconds = delaySeconds(sends[i].at, now)
		}
		out, callErr := r.s.Queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &r.s.QueueURL, Entries: entries})
		if callErr != nil {
			err = fmt.Errorf("send fire messages: %w", callErr)
			continue
		}
		left := make(map[string]types.SendMessageBatchRequestEntry, len(entries))
		for _, e := range entries {
			left[aws.ToString(e.Id)] = e
		}
		for _, ok := range out.Successful {
			id := aws.ToString(ok.Id)
			if _, known := left[id]; !known {
				continue // not ours, or reported twice
			}
			i, _ := strconv.Atoi(id)
			sent = append(sent, i)
			delete(left, id)
		}
		for _, f := range out.Failed {
			if _, known := left[aws.ToString(f.Id)]; known && f.SenderFault {
				// Our message is wrong: retrying will not help.
				delete(left, aws.ToString(f.Id))
				failed++
				err = fmt.Errorf("SQS refused a fire message: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
				r.s.Log.ErrorContext(ctx, "fire message refused", "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
			}
		}
		entries = entries[:0:0]
		for _, e := range left { // failed for SQS's reasons, or not answered: again
			entries = append(entries, e)
		}
		if len(entries) > 0 {
			err = fmt.Errorf("SQS failed %d fire messages", len(entries))
		}
	}
	if len(entries) == 0 && failed == 0 {
		err = nil // retries succeeded
	}
	return sent, failed + len(entries), err
}

// waitWindow waits, through Sleep, for the next send window when a batch
// should wait for it: while the sweep has found at most AlignUpTo
// occurrences, and when the batch's earliest occurrence is at least
// alignMinLead after now. The caller computes its delays from the clock
// after the wait.
func (r *sweepRun) waitWindow(ctx context.Context, entries []types.SendMessageBatchRequestEntry, sends []fireSend) error {
	if r.s.AlignUpTo < 0 {
		return nil
	}
	r.mu.Lock()
	found := r.res.Due
	r.mu.Unlock()
	if found > r.s.AlignUpTo {
		return nil
	}
	now := r.s.Now()
	for j := range entries {
		i, _ := strconv.Atoi(aws.ToString(entries[j].Id))
		if sends[i].at.Sub(now) < alignMinLead {
			return nil
		}
	}
	d := alignWait(now)
	if d <= 0 {
		return nil
	}
	sleep := r.s.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return sleep(ctx, d)
}

// alignWait is how long from now until the send window is open: 0 within
// it, else until sendWindowFrom of this second or of the next one (at most
// 0.75 s).
func alignWait(now time.Time) time.Duration {
	f := time.Duration(now.Nanosecond()) // where in its second now is
	switch {
	case f < sendWindowFrom:
		return sendWindowFrom - f
	case f < sendWindowTo:
		return 0
	default:
		return time.Second - f + sendWindowFrom
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// catchUp is a timer's catch-up window in seconds; timers stored before
// the window existed get the default.
func catchUp(t *Timer) int {
	if t.CatchUpSeconds <= 0 {
		return DefaultCatchUpSeconds
	}
	return t.CatchUpSeconds
}

// delaySeconds is how long SQS should hold a message so that it becomes
// visible at its scheduled second, rounded down: the invoker waits out the
// rest, so a message is never late for rounding. Sent within the send
// window (sendWindowFrom), the rest is 50-300 ms; sent at once, up to a
// second. Never negative, at most SQS's limit.
func delaySeconds(at, now time.Time) int32 {
	d := at.Sub(now)
	if d <= 0 {
		return 0
	}
	return int32(min(d, maxDelay) / time.Second)
}
