package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// dueStore is what the sweeper needs from the timer table.
type dueStore interface {
	Due(ctx context.Context, shard string, until time.Time, page func([]*Timer) error) error
	Advance(ctx context.Context, steps []Step) ([]StepOutcome, error)
	Lease(ctx context.Context, shard, owner, eventID string, now time.Time, ttl time.Duration) (bool, error)
	Release(ctx context.Context, shard, owner, eventID string, completed bool, now time.Time) error
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
	// chunkSize is how many due timers one worker takes at a time: five
	// full SQS batches, and whole write batches of 25 or 50.
	chunkSize = 50
)

// Sweeper finds the occurrences due within Lookahead and sends one fire
// message for each, delayed so that it becomes visible at its second. It
// moves a timer to its next occurrence only after SQS accepted the
// message, with a write conditional on the occurrence and version it read,
// so a sweep that fails half way loses nothing (the next sweep sends what
// this one did not) and two sweeps never move one timer twice. Each shard
// is leased to one sweep at a time, so overlapping sweeps and a scheduled
// event delivered twice do not send an occurrence twice.
type Sweeper struct {
	Timers   dueStore
	Queue    batchSender
	QueueURL string
	// Shards is the number of shards to sweep. Default 1.
	Shards int
	// Lookahead is how far ahead of now occurrences are sent. It must cover
	// the sweep interval plus the scheduler's start delay, and stays within
	// SQS's 15-minute delay. Default 2 minutes.
	Lookahead time.Duration
	// ShardConcurrency bounds the shards read at once. Default 8.
	ShardConcurrency int
	// Workers bounds the chunks of 50 due timers being sent and written at
	// once, across all shards. Default 64.
	Workers int
	// WriteBatch is the number of timers advanced in one conditional
	// batch write. Default 25, at most 100.
	WriteBatch int
	// LeaseTTL is how long a shard stays leased to a sweep that died
	// without releasing it. Default 90 seconds, beyond a sweep's 60.
	LeaseTTL time.Duration
	// MaxAttempts bounds the tries of one SQS batch. Default 5.
	MaxAttempts int
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
	return &Sweeper{Timers: timers, Queue: queue, QueueURL: queueURL, Shards: 1,
		Lookahead: 2 * time.Minute, ShardConcurrency: 8, Workers: 64, WriteBatch: 25,
		LeaseTTL: 90 * time.Second, MaxAttempts: 5,
		Now: time.Now, Log: slog.Default(), Zones: (&zoneCache{}).Load}
}

// SweepResult summarises one sweep.
type SweepResult struct {
	Shards    int `json:"shards"`
	Skipped   int `json:"skipped"`   // shards another sweep holds, or that this event already swept
	Due       int `json:"due"`       // timers found due
	Enqueued  int `json:"enqueued"`  // fire messages SQS accepted
	Missed    int `json:"missed"`    // occurrences later than their catch-up window, skipped
	Advanced  int `json:"advanced"`  // timers moved to their next occurrence
	Conflicts int `json:"conflicts"` // timers changed by someone else meanwhile, left to them
	Failed    int `json:"failed"`    // occurrences left for the next sweep
}

func (r *SweepResult) add(o SweepResult) {
	r.Skipped += o.Skipped
	r.Due += o.Due
	r.Enqueued += o.Enqueued
	r.Missed += o.Missed
	r.Advanced += o.Advanced
	r.Conflicts += o.Conflicts
	r.Failed += o.Failed
}

// sweepRun is the state of one sweep shared by its readers and workers.
type sweepRun struct {
	s       *Sweeper
	eventID string
	now     time.Time
	until   time.Time
	zones   func(string) (*time.Location, error)
	work    chan chunk
	// schedules caches parsed schedules for this sweep: a million timers
	// share few expressions, and parsing is most of a sweep's CPU.
	schedules      sync.Map // scheduleKey -> Schedule
	schedulesCount atomic.Int64

	mu       sync.Mutex
	res      SweepResult
	firstErr error
}

// scheduleKey is everything a timer's Schedule depends on.
type scheduleKey struct {
	expr, zone         string
	anchor, start, end int64
}

// maxCachedSchedules bounds a sweep's schedule cache: rate timers without
// startAt each have their own anchor.
const maxCachedSchedules = 10000

// schedule returns t's schedule, parsed once per sweep.
func (r *sweepRun) schedule(t *Timer) (Schedule, error) {
	k := scheduleKey{expr: t.Expression(), zone: t.Timezone}
	if strings.HasPrefix(k.expr, "rate(") {
		k.anchor = t.Anchor.UnixNano()
	}
	if t.StartAt != nil {
		k.start = t.StartAt.UnixNano()
	}
	if t.EndAt != nil {
		k.end = t.EndAt.UnixNano()
	}
	if s, ok := r.schedules.Load(k); ok {
		return s.(Schedule), nil
	}
	s, err := t.Schedule(r.zones)
	if err == nil && r.schedulesCount.Add(1) <= maxCachedSchedules {
		r.schedules.Store(k, s)
	}
	return s, err
}

// missed reports whether t's occurrence is later than its catch-up window.
func (r *sweepRun) missed(t *Timer) bool {
	return r.now.Sub(t.NextFireAt) > time.Duration(catchUp(t))*time.Second
}

// chunk is up to chunkSize due timers of one shard, and how to report back.
type chunk struct {
	timers []*Timer
	done   func(SweepResult, error)
}

func (r *sweepRun) record(res SweepResult, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.add(res)
	if err != nil && r.firstErr == nil {
		r.firstErr = err
	}
}

// Sweep sweeps every shard once for the scheduled event eventID (empty:
// a fresh one). It returns an error when any shard could not be swept
// completely; what was sent stays sent, and the next sweep does the rest.
func (s *Sweeper) Sweep(ctx context.Context, eventID string) (SweepResult, error) {
	if eventID == "" {
		eventID = newID()
	}
	lookahead := min(s.Lookahead, maxDelay)
	run := &sweepRun{s: s, eventID: eventID, now: s.Now(), zones: s.Zones, work: make(chan chunk, max(1, s.Workers))}
	run.until = run.now.Add(lookahead)
	run.res.Shards = s.Shards
	if run.zones == nil {
		run.zones = loadZone
	}
	var workers sync.WaitGroup
	for range max(1, s.Workers) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for c := range run.work {
				c.done(run.process(ctx, c.timers))
			}
		}()
	}
	var readers sync.WaitGroup
	slots := make(chan struct{}, max(1, s.ShardConcurrency))
	for i := range s.Shards {
		readers.Add(1)
		slots <- struct{}{}
		go func(shard string) {
			defer func() { <-slots; readers.Done() }()
			run.sweepShard(ctx, shard)
		}(fmt.Sprintf("shard%d", i))
	}
	readers.Wait()
	close(run.work)
	workers.Wait()
	res, err := run.res, run.firstErr
	s.Log.InfoContext(ctx, "sweep", "eventId", eventID, "shards", res.Shards, "skipped", res.Skipped, "due", res.Due,
		"enqueued", res.Enqueued, "missed", res.Missed, "advanced", res.Advanced, "conflicts", res.Conflicts,
		"failed", res.Failed, "until", run.until.UTC().Format(time.RFC3339), "durationMs", s.Now().Sub(run.now).Milliseconds())
	if err == nil && res.Failed > 0 {
		err = fmt.Errorf("%d occurrences were not enqueued or not advanced; the next sweep retries them", res.Failed)
	}
	completed := 0
	if err == nil {
		completed = 1 // the alarm on a stalled sweeper watches this
	}
	s.Metrics.Emit("Part", "sweeper", count("SweepCompleted", completed), count("Due", res.Due),
		count("Enqueued", res.Enqueued), count("Missed", res.Missed), count("SweepFailures", res.Failed),
		count("ShardsSkipped", res.Skipped),
		Metric{Name: "SweepDuration", Unit: "Milliseconds", Values: []float64{float64(s.Now().Sub(run.now).Milliseconds())}})
	return res, err
}

// sweepShard leases one shard, streams its due timers page by page into
// chunks for the workers, and releases the lease once every chunk is done.
func (r *sweepRun) sweepShard(ctx context.Context, shard string) {
	owner := newID()
	ok, err := r.s.Timers.Lease(ctx, shard, owner, r.eventID, r.now, r.s.LeaseTTL)
	if err != nil || !ok {
		r.record(SweepResult{Skipped: 1}, err)
		return
	}
	var (
		pending sync.WaitGroup
		mu      sync.Mutex
		failed  bool
		// Timers past their catch-up window are sent nowhere; keeping them
		// out of the send chunks keeps every SQS batch but the last full.
		sendBuf, missedBuf []*Timer
	)
	done := func(res SweepResult, err error) {
		r.record(res, err)
		if err != nil || res.Failed > 0 {
			mu.Lock()
			failed = true
			mu.Unlock()
		}
		pending.Done()
	}
	flush := func(buf *[]*Timer) {
		pending.Add(1)
		r.work <- chunk{timers: *buf, done: done}
		*buf = nil
	}
	due := 0
	err = r.s.Timers.Due(ctx, shard, r.until, func(page []*Timer) error {
		due += len(page)
		for _, t := range page {
			buf := &sendBuf
			if r.missed(t) {
				buf = &missedBuf
			}
			if *buf == nil {
				*buf = make([]*Timer, 0, chunkSize)
			}
			*buf = append(*buf, t)
			if len(*buf) == chunkSize {
				flush(buf)
			}
		}
		return ctx.Err()
	})
	for _, buf := range []*[]*Timer{&sendBuf, &missedBuf} {
		if len(*buf) > 0 {
			flush(buf)
		}
	}
	pending.Wait()
	r.record(SweepResult{Due: due}, err)
	completed := err == nil && !failed
	if err := r.s.Timers.Release(context.WithoutCancel(ctx), shard, owner, r.eventID, completed, r.s.Now()); err != nil {
		r.record(SweepResult{}, err) // the lease expires by itself
	}
}

// process sends the occurrences of one chunk and advances its timers: the
// ones sent, and the ones skipped for being later than their catch-up
// window.
func (r *sweepRun) process(ctx context.Context, timers []*Timer) (SweepResult, error) {
	var res SweepResult
	steps := make([]Step, 0, len(timers))
	entries := make([]types.SendMessageBatchRequestEntry, 0, len(timers))
	nexts := make([]time.Time, len(timers))
	for i, t := range timers {
		sched, err := r.schedule(t)
		if err != nil {
			// The API validated it; a zone that vanished from tzdata could
			// still get here. Leave the timer as it is and say so.
			res.Failed++
			r.s.Log.ErrorContext(ctx, "timer schedule unusable", "timerId", t.ID, "error", err.Error())
			continue
		}
		// A late sweep fires an overdue timer once and moves it past now,
		// rather than once for every occurrence it missed.
		nexts[i], _ = sched.Next(maxTime(t.NextFireAt, r.now))
		if r.missed(t) {
			res.Missed++
			r.s.Log.WarnContext(ctx, "occurrence missed", "timerId", t.ID, "scheduledAt", t.NextFireAt.UTC().Format(time.RFC3339),
				"latenessMs", r.now.Sub(t.NextFireAt).Milliseconds(), "catchUpSeconds", catchUp(t))
			steps = append(steps, Step{Timer: t, Next: nexts[i], Missed: true, SweptAt: r.now})
			continue
		}
		body, err := marshalJSON(FireMessage{
			TimerID:      t.ID,
			Version:      t.Version,
			ScheduledAt:  t.NextFireAt,
			CallbackData: t.CallbackData,
			HTTP:         t.HTTP,
			Retry:        retryOf(t),
			Notify:       t.Notify,
			Deployment:   t.Deployment,
			Final:        nexts[i].IsZero() && t.DeleteAfterCompletion,
		})
		if err != nil {
			res.Failed++
			r.s.Log.ErrorContext(ctx, "fire message unencodable", "timerId", t.ID, "error", err.Error())
			continue
		}
		entries = append(entries, types.SendMessageBatchRequestEntry{
			Id:          aws.String(strconv.Itoa(i)),
			MessageBody: aws.String(string(body)),
		})
	}
	// A chunk's SQS batches go out at once: one round trip, not five.
	var (
		errs []error
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	for len(entries) > 0 {
		n := min(sqsBatch, len(entries))
		batch := entries[:n]
		entries = entries[n:]
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, failed, err := r.send(ctx, batch, timers)
			mu.Lock()
			defer mu.Unlock()
			res.Enqueued += len(sent)
			res.Failed += failed
			errs = append(errs, err)
			for _, i := range sent {
				steps = append(steps, Step{Timer: timers[i], Next: nexts[i]})
			}
		}()
	}
	wg.Wait()
	// A missed step writes its history too: two items of a transaction.
	batch := min(max(1, r.s.WriteBatch), maxTransactItems/2)
	for len(steps) > 0 {
		n := min(batch, len(steps))
		outcomes, err := r.s.Timers.Advance(ctx, steps[:n])
		errs = append(errs, err)
		for j, o := range outcomes {
			switch o {
			case StepApplied:
				res.Advanced++
			case StepConflict:
				res.Conflicts++
			default:
				// Its message is sent but the timer did not move: the next
				// sweep sends it again, and the receiver drops the repeat.
				res.Failed++
				r.s.Log.WarnContext(ctx, "timer not advanced", "timerId", steps[j].Timer.ID)
			}
		}
		if outcomes == nil {
			res.Failed += n
		}
		steps = steps[n:]
	}
	return res, errors.Join(errs...)
}

// send sends one batch of at most 10 entries, retrying with backoff what
// SQS failed for its own reasons (throttling, a passing fault). An entry's
// id is its index in timers. It returns the indices SQS accepted and how
// many entries it gave up on.
func (r *sweepRun) send(ctx context.Context, entries []types.SendMessageBatchRequestEntry, timers []*Timer) (sent []int, failed int, err error) {
	for attempt := 0; len(entries) > 0 && attempt < max(1, r.s.MaxAttempts); attempt++ {
		if attempt > 0 && sleepCtx(ctx, backoff(attempt-1)) != nil {
			break
		}
		// SQS counts a delay from when it takes the message, so each try
		// counts it from now, not from when the sweep began.
		now := r.s.Now()
		for j := range entries {
			i, _ := strconv.Atoi(aws.ToString(entries[j].Id))
			entries[j].DelaySeconds = delaySeconds(timers[i].NextFireAt, now)
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

// retryOf is the retry policy a fire message carries: none (the
// defaults) for a timer stored before it had one.
func retryOf(t *Timer) *RetryPolicy {
	if t.Retry == (RetryPolicy{}) {
		return nil
	}
	return &t.Retry
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
// rest, so a message is never late for rounding. Never negative, at most
// SQS's limit.
func delaySeconds(at, now time.Time) int32 {
	d := at.Sub(now)
	if d <= 0 {
		return 0
	}
	return int32(min(d, maxDelay) / time.Second)
}
