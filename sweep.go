package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// dueStore is what the sweeper needs from the timer table.
type dueStore interface {
	Due(ctx context.Context, shard string, until time.Time, page func([]*Timer) error) error
	Advance(ctx context.Context, t *Timer, next time.Time) (bool, error)
}

// batchSender is the one SQS call the sweeper makes.
type batchSender interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// maxDelay is SQS's longest DelaySeconds.
const maxDelay = 15 * time.Minute

// Sweeper finds the timers due within Lookahead and sends one fire message
// per occurrence, delayed so that it becomes visible at its second. A timer
// is advanced to its next occurrence only after its message was accepted,
// so a sweep that fails half way loses nothing: the next sweep sends what
// this one did not.
type Sweeper struct {
	Timers   dueStore
	Queue    batchSender
	QueueURL string
	// Shards is the number of shards to sweep. Default 1.
	Shards int
	// Lookahead is how far ahead of now occurrences are sent. It must cover
	// the sweep interval plus the scheduler's start delay, and stay within
	// SQS's 15-minute delay. Default 2 minutes.
	Lookahead time.Duration
	// Concurrency bounds the shards swept at once. Default 8.
	Concurrency int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Log receives one summary line per sweep. Default slog.Default().
	Log *slog.Logger
	// Zones loads time zones by name. Default: a cache over loadZone.
	Zones func(name string) (*time.Location, error)
}

// NewSweeper returns a Sweeper with the defaults above.
func NewSweeper(timers dueStore, queue batchSender, queueURL string) *Sweeper {
	return &Sweeper{Timers: timers, Queue: queue, QueueURL: queueURL, Shards: 1,
		Lookahead: 2 * time.Minute, Concurrency: 8, Now: time.Now, Log: slog.Default(), Zones: (&zoneCache{}).Load}
}

// SweepResult summarises one sweep.
type SweepResult struct {
	Shards   int `json:"shards"`
	Due      int `json:"due"`      // timers found due
	Enqueued int `json:"enqueued"` // fire messages SQS accepted
	Advanced int `json:"advanced"` // timers moved to their next occurrence
	Failed   int `json:"failed"`   // occurrences SQS refused; with a failed call, the rest of that shard also waits for the next sweep
}

func (r *SweepResult) add(o SweepResult) {
	r.Due += o.Due
	r.Enqueued += o.Enqueued
	r.Advanced += o.Advanced
	r.Failed += o.Failed
}

// Sweep sweeps every shard once. It returns an error when any shard could
// not be swept completely; what was sent stays sent.
func (s *Sweeper) Sweep(ctx context.Context) (SweepResult, error) {
	start := s.Now()
	until := start.Add(s.Lookahead)
	res := SweepResult{Shards: s.Shards}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		slots    = make(chan struct{}, max(1, s.Concurrency))
	)
	for i := range s.Shards {
		wg.Add(1)
		slots <- struct{}{}
		go func(shard string) {
			defer func() { <-slots; wg.Done() }()
			r, err := s.sweepShard(ctx, shard, until)
			mu.Lock()
			defer mu.Unlock()
			res.add(r)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}(fmt.Sprintf("shard%d", i))
	}
	wg.Wait()
	s.Log.InfoContext(ctx, "sweep", "shards", res.Shards, "due", res.Due, "enqueued", res.Enqueued,
		"advanced", res.Advanced, "failed", res.Failed, "until", until.UTC().Format(time.RFC3339),
		"durationMs", s.Now().Sub(start).Milliseconds())
	if firstErr == nil && res.Failed > 0 {
		firstErr = fmt.Errorf("%d occurrences were not enqueued; the next sweep retries them", res.Failed)
	}
	return res, firstErr
}

func (s *Sweeper) sweepShard(ctx context.Context, shard string, until time.Time) (SweepResult, error) {
	var res SweepResult
	err := s.Timers.Due(ctx, shard, until, func(page []*Timer) error {
		res.Due += len(page)
		for len(page) > 0 {
			n := min(10, len(page))
			r, err := s.fire(ctx, page[:n])
			res.add(r)
			if err != nil {
				return err
			}
			page = page[n:]
		}
		return nil
	})
	return res, err
}

// fire sends one batch of at most 10 occurrences and advances the timers
// whose messages SQS accepted.
func (s *Sweeper) fire(ctx context.Context, timers []*Timer) (SweepResult, error) {
	var res SweepResult
	now := s.Now()
	entries := make([]types.SendMessageBatchRequestEntry, 0, len(timers))
	nexts := make([]time.Time, len(timers))
	zones := s.Zones
	if zones == nil {
		zones = loadZone
	}
	for i, t := range timers {
		sched, err := t.Schedule(zones)
		if err != nil {
			// The API validated it; a zone that vanished from tzdata could
			// still get here. Leave the timer as it is and say so.
			res.Failed++
			s.Log.ErrorContext(ctx, "timer schedule unusable", "timerId", t.ID, "error", err.Error())
			continue
		}
		// A late sweep fires an overdue timer once and moves it past now,
		// rather than once for every occurrence it missed.
		nexts[i], _ = sched.Next(maxTime(t.NextFireAt, now))
		body, err := marshalJSON(FireMessage{
			TimerID:      t.ID,
			Version:      t.Version,
			ScheduledAt:  t.NextFireAt,
			CallbackData: t.CallbackData,
			HTTP:         t.HTTP,
		})
		if err != nil {
			return res, fmt.Errorf("encode fire message for %s: %w", t.ID, err)
		}
		entries = append(entries, types.SendMessageBatchRequestEntry{
			Id:           aws.String(strconv.Itoa(i)),
			MessageBody:  aws.String(string(body)),
			DelaySeconds: delaySeconds(t.NextFireAt, now),
		})
	}
	if len(entries) == 0 {
		return res, nil
	}
	out, err := s.Queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &s.QueueURL, Entries: entries})
	if err != nil {
		res.Failed += len(entries)
		return res, fmt.Errorf("send fire messages: %w", err)
	}
	for _, f := range out.Failed {
		res.Failed++
		s.Log.WarnContext(ctx, "fire message rejected", "entry", aws.ToString(f.Id), "code", aws.ToString(f.Code),
			"message", aws.ToString(f.Message))
	}
	for _, ok := range out.Successful {
		i, err := strconv.Atoi(aws.ToString(ok.Id))
		if err != nil || i < 0 || i >= len(timers) {
			return res, fmt.Errorf("SQS answered for unknown batch entry %q", aws.ToString(ok.Id))
		}
		res.Enqueued++
		advanced, err := s.Timers.Advance(ctx, timers[i], nexts[i])
		if err != nil {
			return res, err
		}
		if advanced {
			res.Advanced++
		}
	}
	return res, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// delaySeconds is how long SQS should hold a message so that it becomes
// visible at its scheduled second: rounded up, never negative, at most
// SQS's limit.
func delaySeconds(at, now time.Time) int32 {
	d := at.Sub(now)
	if d <= 0 {
		return 0
	}
	d = min(d, maxDelay)
	return int32((d + time.Second - 1) / time.Second)
}
