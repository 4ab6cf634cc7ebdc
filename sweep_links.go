package main

import (
	"context"
	"fmt"
	"time"
)

// This file is how timers are handed on: handOn, the next link of a
// timer for whoever writes it (the API, the sweeper), and the sweeper's
// writes of its chunks' next links, with the raise of an hour's
// partitions when DynamoDB throttles them (see README.md's "Partitions
// follow the load").

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
