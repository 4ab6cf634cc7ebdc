package main

// Destination limits: calls per second and calls in flight for the timers
// that name a destination (http.limitKey), held across every invoker
// execution by the destination's state item (limits_store.go), with the
// occurrences over the limit waiting their turn in SQS. README.md,
// "Destination limits", states the semantics; this file is the invoker's
// side and the slot arithmetic.

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limit bounds the calls to one destination: the timers whose
// http.limitKey is Key.
type Limit struct {
	Key string `json:"key"`
	// PerSecond is the calls per UTC second, 1-MaxPerSecond; 0: no rate.
	PerSecond int `json:"perSecond,omitempty"`
	// InFlight is the calls at once, 1-MaxInFlight; 0: no bound.
	InFlight  int       `json:"inFlight,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Bounds of a limit. MaxPerSecond: every call of a rate-limited
// destination writes its state item once for its slot and twice more for
// an in-flight lease, and DynamoDB admits about 1,000 writes a second on
// one item; 250 leaves room for re-slots and Retry-After blocks.
// MaxInFlight: each lease is an attribute of the state item, which stays
// small (under 1 KB, one write unit) with 100 of them.
const (
	MaxPerSecond = 250
	MaxInFlight  = 100
)

// limitKeyPattern is a destination's key: a host name fits, and so does
// any name a user chooses (billing-api); no '#', so it cannot collide.
var limitKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// validateLimitKey checks key, named field in the error.
func validateLimitKey(field, key string) error {
	if !limitKeyPattern.MatchString(key) {
		return Errorf(EINVALID, "%s must be 1-128 characters of A-Z a-z 0-9 . _ : -", field)
	}
	return nil
}

// Validate checks l's bounds; a limit bounds something.
func (l *Limit) Validate() error {
	if err := validateLimitKey("key", l.Key); err != nil {
		return err
	}
	if l.PerSecond < 0 || l.PerSecond > MaxPerSecond {
		return Errorf(EINVALID, "perSecond must be from 1 to %d", MaxPerSecond)
	}
	if l.InFlight < 0 || l.InFlight > MaxInFlight {
		return Errorf(EINVALID, "inFlight must be from 1 to %d", MaxInFlight)
	}
	if l.PerSecond == 0 && l.InFlight == 0 {
		return Errorf(EINVALID, "a limit needs perSecond, inFlight or both")
	}
	return nil
}

// ---------------------------------------------------------------- slots

// Slots divide the first 900 ms of each UTC second (slotSpan) into
// PerSecond equal parts: slot k of a rate p starts in second k/p, at
// (k%p)/p of the span. The destination's counter hands them out in the
// order occurrences ask, and a call is made only from its slot's start to
// the end of its second, less slotEndMargin. Slots schedule the calls, in
// order; the count of each second's calls (CountCall) holds the rate: no
// UTC second holds more than p calls, even as the target's clock sees
// them, however late a message comes back from the queue.

// slotEndMargin is how long before the end of its slot's second a call
// may still start: time for it to reach its target within that second.
const slotEndMargin = 100 * time.Millisecond

// slotSpan is the part of each second slots start in, in milliseconds.
const slotSpan = int64(time.Second-slotEndMargin) / int64(time.Millisecond)

// slotStart is the instant of slot k at rate p, in Unix milliseconds.
func slotStart(k int64, p int) int64 {
	return k/int64(p)*1000 + k%int64(p)*slotSpan/int64(p)
}

// firstSlot is the first slot at rate p that starts at or after ms.
func firstSlot(ms int64, p int) int64 {
	sec, off := ms/1000, ms%1000
	j := (off*int64(p) + slotSpan - 1) / slotSpan
	return sec*int64(p) + min(j, int64(p))
}

// ---------------------------------------------------------------- Retry-After

// maxRetryAfter bounds a Retry-After: SQS keeps a message invisible for
// at most 12 hours.
const maxRetryAfter = 12 * time.Hour

// retryAfterError is a delivery failure whose answer (429 or 503) asked
// for a pause: Retry-After, in seconds or as an HTTP date.
type retryAfterError struct {
	error
	after time.Duration
}

// Unwrap returns the failure itself.
func (e *retryAfterError) Unwrap() error { return e.error }

// parseRetryAfter reads a Retry-After value at now: delay-seconds or an
// HTTP date, bounded by maxRetryAfter; 0 when absent, malformed or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}

// withRetryAfter wraps err, the failure of a call answered with resp, when
// the status is 429 or 503 and Retry-After asks for a pause.
func withRetryAfter(err error, resp *http.Response, now time.Time) error {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return err
	}
	if d := parseRetryAfter(resp.Header.Get("Retry-After"), now); d > 0 {
		return &retryAfterError{err, d}
	}
	return err
}

// keepRetryAfter gives redacted, the text of orig made safe, orig's pause.
func keepRetryAfter(redacted, orig error) error {
	var ra *retryAfterError
	if redacted == orig || !errors.As(orig, &ra) {
		return redacted
	}
	return &retryAfterError{redacted, ra.after}
}

// retryAfterOf is the pause err asks for, 0 for none.
func retryAfterOf(err error) time.Duration {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.after
	}
	return 0
}

// ---------------------------------------------------------------- the invoker's side

// destinationStore is what the limiter needs from the table: the
// destination's state item, and the limit's marks on an occurrence item.
type destinationStore interface {
	Destination(ctx context.Context, key string) (DestState, error)
	TakeSlot(ctx context.Context, key string, view DestState, now time.Time) (int64, DestState, error)
	CountCall(ctx context.Context, key string, perSecond int, sec int64) (bool, error)
	AcquireLease(ctx context.Context, key string, view DestState, now, until time.Time) (int, DestState, error)
	ReleaseLease(ctx context.Context, key string, lease int, until time.Time) error
	BlockDestination(ctx context.Context, key string, view DestState, until time.Time) error
	DeferOccurrence(ctx context.Context, o Occurrence, c Claimant, w LimitWait) error
	LimitWaited(ctx context.Context, o Occurrence) (LimitWait, error)
}

// DestState is a destination's state item: the limit's copy, the next
// free slot, the block a Retry-After set, the in-flight leases.
type DestState struct {
	// Exists is false when the destination has no limit.
	Exists    bool
	PerSecond int
	InFlight  int
	// Next is the next free slot, counted at rate NextRate.
	Next, NextRate int64
	// BlockedUntil (Unix ms) holds every call until then.
	BlockedUntil int64
	// Leases are the in-flight leases by index, each its expiry (Unix ms).
	Leases map[int]int64
}

// LimitWait is what an occurrence's item remembers of its waits for a
// limit, from one receive of its message to the next.
type LimitWait struct {
	Key string
	// Slot is the slot's start (Unix ms), kept while it waits; 0: none.
	Slot int64
	// Waits counts the receives the limit sent back to the queue: they
	// are not attempts.
	Waits int
	// Since is when the attempt Attempt first waited (Unix ms).
	Since   int64
	Attempt int
}

// errLimited leaves a message in the queue until its turn.
var errLimited = errors.New("waiting for the destination's limit")

// errNoLimit is a destination without a limit.
var errNoLimit = errors.New("no limit for this destination")

// limitHold is what a delivery holds of its destination's limit.
type limitHold struct {
	key   string
	lease int // -1: none
	until time.Time
	// since is when this attempt began to wait for the limit; zero if it
	// did not.
	since time.Time
	// retryAfter is the pause the target asked for, if any.
	retryAfter time.Duration
}

// limitTally counts a batch's limited messages per destination.
type limitTally struct {
	mu      sync.Mutex
	waiting map[string]int
	calls   map[string]int
	waited  map[string][]float64
}

// add counts one message of destination key.
func (t *limitTally) add(key string, waiting, call bool, waitedMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiting == nil {
		t.waiting, t.calls, t.waited = map[string]int{}, map[string]int{}, map[string][]float64{}
	}
	if waiting {
		t.waiting[key]++
	}
	if call {
		t.calls[key]++
		t.waited[key] = append(t.waited[key], float64(waitedMs))
	}
}

// emit writes one record per destination: LimitWaiting (sent back to
// wait), LimitedCalls (the achieved rate, summed per second) and
// LimitedMs (each call's wait).
func (t *limitTally) emit(m *Metrics) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := map[string]bool{}
	for k := range t.waiting {
		keys[k] = true
	}
	for k := range t.calls {
		keys[k] = true
	}
	for k := range keys {
		m.Emit("Destination", k, count("LimitWaiting", t.waiting[k]), count("LimitedCalls", t.calls[k]),
			Metric{Name: "LimitedMs", Unit: "Milliseconds", Values: t.waited[k]})
	}
}

// limitKey is the destination msg names, "" for none.
func (m *FireMessage) limitKey() string {
	if m.HTTP == nil {
		return ""
	}
	return m.HTTP.LimitKey
}

// limit holds d to its destination's limit, before its call. It reports
// done when the message goes back to the queue to wait its turn (with the
// error handle returns). It also takes the receives spent waiting out of
// d's attempt, so that waiting never uses up retries.
func (run *batchRun) limit(ctx context.Context, d *delivery) (bool, error) {
	inv, key := run.inv, d.msg.limitKey()
	if key == "" || inv.Limits == nil || inv.Timers == nil {
		return false, nil
	}
	var w LimitWait
	if receiveCount(d.rec) > 1 {
		got, err := inv.Limits.LimitWaited(ctx, d.msg.occurrence())
		if err != nil {
			inv.Log.WarnContext(ctx, "limit waits not read; the receive counts as an attempt", append(d.attrs, "error", err.Error())...)
		}
		w = got
		d.attempt = max(1, d.attempt-w.Waits)
	}
	if d.attempt > d.retry.MaxAttempts+1 {
		return false, nil // exhausted: handle dead-letters it
	}
	view, err := inv.destination(ctx, key)
	if err != nil {
		// Fail closed: a destination that may have a limit is not called
		// without it; the message waits a second and tries again.
		inv.Log.WarnContext(ctx, "destination state not read; waits a second", append(d.attrs, "limitKey", key, "error", err.Error())...)
		return run.waitInQueue(ctx, d, w.forAttempt(key, d.attempt, inv.now()), time.Second)
	}
	if !view.Exists {
		return false, nil
	}
	return run.admitLimited(ctx, d, key, view, w)
}

// admitLimited takes d's slot (or keeps the one it waited for), and, when
// its turn is near, waits for it here, takes a place in the current
// second and an in-flight lease; otherwise it sends the message back to
// the queue until its turn.
func (run *batchRun) admitLimited(ctx context.Context, d *delivery, key string, view DestState, w LimitWait) (bool, error) {
	inv := run.inv
	now := inv.now()
	w = w.forAttempt(key, d.attempt, now)
	if view.PerSecond > 0 && w.Slot == 0 {
		var err error
		view, err = run.takeSlot(ctx, d, key, view, &w, now)
		switch {
		case errors.Is(err, errNoLimit):
			return false, nil // deleted meanwhile
		case err != nil:
			return run.waitInQueue(ctx, d, w, time.Second)
		}
	}
	callAt := time.UnixMilli(max(w.Slot, view.BlockedUntil, now.UnixMilli()))
	if view.BlockedUntil > w.Slot {
		w.Slot = 0 // the block outlasts the slot: a new one after it
	}
	if callAt.Sub(now) > inv.MaxEarly {
		return run.waitInQueue(ctx, d, w, callAt.Sub(now))
	}
	if err := inv.wait(ctx, callAt); err != nil {
		return true, err
	}
	hold := limitHold{key: key, lease: -1}
	if w.Waits > 0 || callAt.After(now) {
		hold.since = time.UnixMilli(w.Since)
	}
	if view.PerSecond > 0 && !run.takeSecond(ctx, d, key, view.PerSecond) {
		w.Slot = 0 // a second full of others late like it: a new slot
		return run.waitInQueue(ctx, d, w, time.Second)
	}
	if view.InFlight > 0 {
		wait, held := run.takeLease(ctx, d, key, view, &hold)
		if !held {
			w.Slot = 0
			return run.waitInQueue(ctx, d, w, wait)
		}
	}
	d.limit = &hold
	return false, nil
}

// forAttempt is w for attempt of the destination key at now: what an
// earlier attempt (or another destination) left is dropped, but the count
// of waits, which is never an attempt.
func (w LimitWait) forAttempt(key string, attempt int, now time.Time) LimitWait {
	if w.Key != key || w.Attempt != attempt {
		w = LimitWait{Key: key, Waits: w.Waits, Attempt: attempt}
	}
	if w.Since == 0 {
		w.Since = now.UnixMilli()
	}
	return w
}

// takeSlot gives w the destination's next free slot, and returns the
// state it saw; errNoLimit when the limit is gone. A failure of the table
// (a throttled item) is logged: the message then waits, failing closed.
func (run *batchRun) takeSlot(ctx context.Context, d *delivery, key string, view DestState, w *LimitWait, now time.Time) (DestState, error) {
	inv := run.inv
	k, v, err := inv.Limits.TakeSlot(ctx, key, view, now)
	if err != nil {
		if !errors.Is(err, errNoLimit) {
			inv.Log.WarnContext(ctx, "slot not taken; waits a second", append(d.attrs, "limitKey", key, "error", err.Error())...)
		}
		return view, err
	}
	w.Slot = slotStart(k, v.PerSecond)
	inv.limitViews.put(key, v, now)
	return v, nil
}

// secondTries bounds the seconds takeSecond tries, holding the message.
const secondTries = 2

// takeSecond takes a place for d's call in the current UTC second's count
// (or the next one's, waiting for it here, when the current second is
// full or ends within slotEndMargin): the count, not the slot, holds the
// rate, so that a message that came back late still calls in a second
// with room. It reports false when none had room, or the count failed.
func (run *batchRun) takeSecond(ctx context.Context, d *delivery, key string, p int) bool {
	inv := run.inv
	for try := 0; try <= secondTries; try++ {
		now := inv.now()
		sec := now.Unix()
		next := time.Unix(sec+1, 0)
		if next.Sub(now) > slotEndMargin {
			ok, err := inv.Limits.CountCall(ctx, key, p, sec)
			if err != nil {
				inv.Log.WarnContext(ctx, "second not counted; waits a second", append(d.attrs, "limitKey", key, "error", err.Error())...)
				return false
			}
			if ok {
				return true
			}
		}
		if try == secondTries || sleepCtx(ctx, next.Sub(now)) != nil {
			return false
		}
	}
	return false
}

// takeLease takes an in-flight lease of key for d's call into hold. When
// none is free (or the table failed) it reports false, with how long to
// wait in the queue: a second, or until the destination's block ends.
func (run *batchRun) takeLease(ctx context.Context, d *delivery, key string, view DestState, hold *limitHold) (time.Duration, bool) {
	inv := run.inv
	until := inv.leaseUntil(ctx)
	lease, v, err := inv.Limits.AcquireLease(ctx, key, view, inv.now(), until)
	switch {
	case errors.Is(err, errNoLimit):
	case err != nil:
		inv.Log.WarnContext(ctx, "lease not taken; waits a second", append(d.attrs, "limitKey", key, "error", err.Error())...)
		return time.Second, false
	case lease < 0:
		wait := time.Second
		if v.BlockedUntil > inv.now().UnixMilli() {
			wait = time.UnixMilli(v.BlockedUntil).Sub(inv.now())
		}
		return wait, false
	default:
		hold.lease, hold.until = lease, until
	}
	return 0, true
}

// waitInQueue sends d back to the queue for wait, remembering its slot and
// counting the receive as a wait, not an attempt.
func (run *batchRun) waitInQueue(ctx context.Context, d *delivery, w LimitWait, wait time.Duration) (bool, error) {
	inv := run.inv
	w.Waits++
	if err := inv.Limits.DeferOccurrence(ctx, d.msg.occurrence(), d.claimant, w); err != nil {
		// Unrecorded, the receive would count as an attempt: release the
		// claim and let the queue's visibility timeout bring it back.
		inv.Log.WarnContext(ctx, "limit wait not recorded", append(d.attrs, "limitKey", w.Key, "error", err.Error())...)
		inv.release(ctx, &d.msg, d.claimant)
		return true, errLimited
	}
	// The message comes back at most a second before its turn (SQS counts
	// whole seconds); the invoker holds it the rest of the way.
	secs := min(max(1, int64(wait/time.Second)), int64(maxRetryAfter/time.Second))
	inv.Log.InfoContext(ctx, "waiting for the destination's limit", append(d.attrs, "limitKey", w.Key, "waitSeconds", secs)...)
	run.limits.add(w.Key, true, false, 0)
	inv.delayRetry(ctx, d.rec, time.Duration(secs)*time.Second)
	return true, errLimited
}

// settleLimit ends d's hold on its destination once its call has
// answered (err): it releases the in-flight lease, and a Retry-After
// blocks the destination for that long. It returns how long the limit
// delayed the attempt, for its outcome (limitedMs). A Retry-After is kept
// on d for the retry's delay, limit or not.
func (run *batchRun) settleLimit(ctx context.Context, d *delivery, fire LastFire, err error) int64 {
	inv := run.inv
	after := retryAfterOf(err)
	d.retryAfter = after
	h := d.limit
	if h == nil {
		return 0
	}
	if h.lease >= 0 {
		if err := inv.Limits.ReleaseLease(ctx, h.key, h.lease, h.until); err != nil {
			inv.Log.WarnContext(ctx, "lease not released; it ends at the function's deadline", append(d.attrs, "limitKey", h.key, "error", err.Error())...)
		}
	}
	if after > 0 {
		until := inv.now().Add(after)
		view, _ := inv.destination(ctx, h.key)
		if err := inv.Limits.BlockDestination(ctx, h.key, view, until); err != nil && !errors.Is(err, errNoLimit) {
			inv.Log.WarnContext(ctx, "destination not blocked", append(d.attrs, "limitKey", h.key, "error", err.Error())...)
		}
		inv.Log.InfoContext(ctx, "destination asked for a pause", append(d.attrs, "limitKey", h.key, "retryAfterSeconds", int(after/time.Second))...)
	}
	var waited int64
	if !h.since.IsZero() {
		waited = max(0, fire.AttemptedAt.Sub(h.since).Milliseconds())
	}
	run.limits.add(h.key, false, true, waited)
	return waited
}

// retryDelayOf is the delay before d's retry after its failed attempt:
// the usual backoff, or longer when the target asked (Retry-After).
func (d *delivery) retryDelayOf(attempt int) time.Duration {
	return max(retryDelay(attempt), d.retryAfter)
}

// limitCache keeps each destination's state, as last seen, for limitTTL:
// the limit itself (perSecond, inFlight) changes rarely, and a change
// reaches every invoker within that time; the counters are always read
// and written on the item itself.
type limitCache struct {
	mu    sync.Mutex
	views map[string]cachedView
}

type cachedView struct {
	view DestState
	at   time.Time
}

// limitTTL is how long a destination's limit is taken from limitCache.
const limitTTL = 10 * time.Second

// get is key's cached view, if fresh at now.
func (c *limitCache) get(key string, now time.Time) (DestState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.views[key]
	if !ok || now.Sub(v.at) >= limitTTL || now.Before(v.at) {
		return DestState{}, false
	}
	return v.view, true
}

// put caches key's view at now.
func (c *limitCache) put(key string, v DestState, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.views == nil {
		c.views = map[string]cachedView{}
	}
	c.views[key] = cachedView{v, now}
}

// destination is key's state: as last seen, within limitTTL, or read.
func (inv *Invoker) destination(ctx context.Context, key string) (DestState, error) {
	now := inv.now()
	if v, ok := inv.limitViews.get(key, now); ok {
		return v, nil
	}
	v, err := inv.Limits.Destination(ctx, key)
	if err != nil {
		return v, err
	}
	inv.limitViews.put(key, v, now)
	return v, nil
}
