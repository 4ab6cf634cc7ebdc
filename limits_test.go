package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// ---------------------------------------------------------------- arithmetic

// TestSlotArithmetic: a slot starts where firstSlot finds it, slots run
// in order, and no UTC second holds more than the rate's slots.
func TestSlotArithmetic(t *testing.T) {
	t.Parallel()
	for _, p := range []int{1, 2, 3, 7, 10, 250} {
		base := firstSlot(1_700_000_000_123, p)
		perSec := map[int64]int{}
		prev := int64(-1)
		for k := base; k < base+int64(5*p); k++ {
			s := slotStart(k, p)
			if s <= prev {
				t.Fatalf("p=%d: slot %d starts at %d, not after slot %d's %d", p, k, s, k-1, prev)
			}
			if got := firstSlot(s, p); got != k {
				t.Errorf("p=%d: firstSlot(start of slot %d) = %d", p, k, got)
			}
			if got := firstSlot(s-1, p); got != k {
				t.Errorf("p=%d: firstSlot(1 ms before slot %d) = %d", p, k, got)
			}
			if off := s % 1000; off >= slotSpan {
				t.Errorf("p=%d: slot %d starts %d ms into its second, past the span of %d", p, k, off, slotSpan)
			}
			perSec[s/1000]++
			prev = s
		}
		for sec, n := range perSec {
			if n > p {
				t.Errorf("p=%d: second %d holds %d slots", p, sec, n)
			}
		}
	}
}

// TestParseRetryAfter: seconds or an HTTP date, bounded by SQS's 12 hours;
// anything else is no pause.
func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"120", 120 * time.Second},
		{" 5 ", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"", 0},
		{"soon", 0},
		{"1.5", 0},
		{"999999999", 12 * time.Hour},
		{"Tue, 01 Dec 2026 10:01:30 GMT", 90 * time.Second},
		{"Tuesday, 01-Dec-26 10:00:10 GMT", 10 * time.Second},
		{"Tue, 01 Dec 2026 09:59:00 GMT", 0},
		{"Fri, 01 Jan 2027 10:00:00 GMT", 12 * time.Hour},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestLimitValidate: the bounds, each error naming its field.
func TestLimitValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		l    Limit
		want string
	}{
		{Limit{Key: "billing-api", PerSecond: 2, InFlight: 5}, ""},
		{Limit{Key: "api.example.com:8443", InFlight: 1}, ""},
		{Limit{Key: "x", PerSecond: MaxPerSecond}, ""},
		{Limit{Key: "x", PerSecond: MaxPerSecond + 1}, "perSecond"},
		{Limit{Key: "x", InFlight: MaxInFlight + 1}, "inFlight"},
		{Limit{Key: "x"}, "perSecond, inFlight or both"},
		{Limit{Key: "a#b", PerSecond: 1}, "key"},
		{Limit{Key: strings.Repeat("k", 129), PerSecond: 1}, "key"},
	} {
		err := tc.l.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %q", tc.l, err, tc.want)
		}
	}
	if err := (&HTTPTarget{URL: "https://example.com/", LimitKey: "bad key"}).Validate(DefaultSecretPrefix); err == nil || !strings.Contains(err.Error(), "http.limitKey") {
		t.Errorf("a bad limitKey: %v, want an error naming http.limitKey", err)
	}
}

// ---------------------------------------------------------------- the harness

// ltEnv is invokers on fakes: the timers' claims in store, the limits in
// dest, the fire queue q, the target, all on the wall clock.
type ltEnv struct {
	t      *testing.T
	store  *igStore
	dest   *ltDest
	q      *fakeFireQueue
	target *ltTarget
	log    *syncBuffer
	dlq    *sqsSender
}

// newLtEnv returns an ltEnv with limits ls and a target whose calls take hold.
func newLtEnv(t *testing.T, hold time.Duration, ls ...Limit) *ltEnv {
	e := &ltEnv{t: t, store: newIGStore(), q: &fakeFireQueue{now: time.Now, Visibility: 5 * time.Second},
		log: &syncBuffer{}, dlq: &sqsSender{}}
	e.dest = newLtDest(time.Now, e.store, ls...)
	e.target = newLtTarget(t, time.Now, hold)
	return e
}

// timers adds n timers named prefix-NN calling the target under key, with
// retry, and enqueues one occurrence of each, the i-th at at(i).
func (e *ltEnv) timers(prefix, key string, n int, retry RetryPolicy, at func(i int) time.Time) {
	e.store.mu.Lock()
	defer e.store.mu.Unlock()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s-%02d", prefix, i)
		e.store.timers[id] = Timer{ID: id, Version: 1, Retry: retry,
			HTTP: &HTTPTarget{Method: http.MethodGet, URL: e.target.URL + "/" + id, LimitKey: key}}
		body, _ := marshalJSON(FireMessage{TimerID: id, Version: 1, ScheduledAt: at(i)})
		e.q.send("m-"+id, string(body), at(i))
	}
}

// invoker is one invoker execution's Invoker on the env's fakes.
func (e *ltEnv) invoker() *Invoker {
	inv := testInvoker(nil, e.dlq, e.log)
	inv.Timers, inv.Limits, inv.Visibility = e.store, e.dest, e.q
	inv.FireQueueURL, inv.DeadLetterQueueURL = igFireQueueURL, igDLQURL
	inv.MaxEarly = time.Second
	return inv
}

// run polls the queue with n invokers at once, batches of batch, until it
// is empty or within.
func (e *ltEnv) run(n, batch int, within time.Duration) {
	deadline := time.Now().Add(within)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(inv *Invoker) {
			defer wg.Done()
			for e.q.left() > 0 && time.Now().Before(deadline) {
				recs := e.q.receive(batch)
				if len(recs) == 0 {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp := inv.Invoke(ctx, events.SQSEvent{Records: recs})
				cancel()
				e.q.settle(recs, resp)
			}
		}(e.invoker())
	}
	wg.Wait()
	if left := e.q.left(); left > 0 {
		e.t.Fatalf("%d messages left in the queue after %v", left, within)
	}
}

// delivered is the recorded delivered outcomes by timer id.
func (e *ltEnv) delivered() map[string]LastFire {
	m := map[string]LastFire{}
	for _, f := range e.store.Fires() {
		if f.Fire.Outcome == OutcomeDelivered {
			m[f.TimerID] = f.Fire
		}
	}
	return m
}

// callsByTimer counts the target's calls per timer.
func callsByTimer(calls []ltCall) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		m[c.timerID]++
	}
	return m
}

// onceEach is n timers named prefix-NN, one call each.
func onceEach(prefix string, n int) map[string]int {
	m := map[string]int{}
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("%s-%02d", prefix, i)] = 1
	}
	return m
}

// ---------------------------------------------------------------- the limiter

// TestLimitRateAcrossInvokers: 30 occurrences due at once, three invoker
// executions taking batches of 10 at once: each is delivered once, no UTC
// second has more than the limit's 10 calls, the waits are recorded as
// limitedMs, not as attempts, and the metrics name the destination.
func TestLimitRateAcrossInvokers(t *testing.T) {
	t.Parallel()
	e := newLtEnv(t, 0, Limit{Key: "billing-api", PerSecond: 10, InFlight: 10})
	at := time.Now().Add(100 * time.Millisecond)
	e.timers("r", "billing-api", 30, RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 600}, func(int) time.Time { return at })
	e.run(3, 10, 20*time.Second)

	calls := e.target.Calls()
	if diff := cmp.Diff(onceEach("r", 30), callsByTimer(calls)); diff != "" {
		t.Errorf("calls per timer (-want +got):\n%s", diff)
	}
	for sec, n := range perSecond(calls) {
		if n > 10 {
			t.Errorf("second %s: %d calls, over the limit of 10", time.Unix(sec, 0).UTC().Format(time.TimeOnly), n)
		}
	}
	limited := 0
	for id, f := range e.delivered() {
		if f.Attempt != 1 {
			t.Errorf("%s: attempt %d, want 1: waiting for the limit is no attempt", id, f.Attempt)
		}
		if f.LimitedMs > 0 {
			limited++
		}
	}
	if limited < 15 { // 30 at 10 a second: at least the last 20 wait
		t.Errorf("%d outcomes record limitedMs, want at least 15", limited)
	}
	if got := len(e.dlq.To(igDLQURL)); got != 0 {
		t.Errorf("%d dead letters, want none", got)
	}
	// The writes the state item takes per call bound the highest rate one
	// item admits: MaxPerSecond must fit DynamoDB's per-key limit.
	perCall := float64(e.dest.destWrites("billing-api")) / float64(len(calls))
	if perCall*MaxPerSecond > ltWritesPerSecond {
		t.Errorf("%.2f state writes per call: MaxPerSecond %d would need %.0f a second on one item", perCall, MaxPerSecond, perCall*MaxPerSecond)
	}
	t.Logf("%d calls over %d seconds; %.2f state writes per call", len(calls), len(perSecond(calls)), perCall)
}

// TestLimitRateWithLateReturns: messages that come back from the queue
// late, past their slot, still keep every UTC second within the limit:
// the second's count, not the slot, holds the rate.
func TestLimitRateWithLateReturns(t *testing.T) {
	t.Parallel()
	e := newLtEnv(t, 0, Limit{Key: "late", PerSecond: 5})
	e.q.Late, e.q.LateN = 2300*time.Millisecond, 8
	now := time.Now()
	e.timers("l", "late", 25, RetryPolicy{}, func(int) time.Time { return now })
	e.run(4, 10, 30*time.Second)
	calls := e.target.Calls()
	if diff := cmp.Diff(onceEach("l", 25), callsByTimer(calls)); diff != "" {
		t.Errorf("calls per timer (-want +got):\n%s", diff)
	}
	for sec, n := range perSecond(calls) {
		if n > 5 {
			t.Errorf("second %d: %d calls, over 5", sec, n)
		}
	}
	t.Logf("calls per second: %v; %d sent back to wait", perSecond(calls), len(e.log.WithMsg(t, "waiting for the destination's limit")))
}

// TestLimitOrderOfInstants: occurrences arriving in the order of their
// instants faster than the limit admits are called in that order, while
// the later ones wait in the queue.
func TestLimitOrderOfInstants(t *testing.T) {
	t.Parallel()
	e := newLtEnv(t, 0, Limit{Key: "slow.example.com", PerSecond: 4})
	start := time.Now().Add(100 * time.Millisecond)
	e.timers("o", "slow.example.com", 12, RetryPolicy{}, func(i int) time.Time { return start.Add(time.Duration(i) * 60 * time.Millisecond) })
	// As many invokers as messages: each is received as it is due.
	e.run(12, 1, 20*time.Second)

	calls := e.target.Calls()
	var got []string
	for _, c := range calls {
		got = append(got, c.timerID)
	}
	want := make([]string, 12)
	for i := range want {
		want[i] = fmt.Sprintf("o-%02d", i)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the order of the calls (-instants +calls):\n%s", diff)
	}
	for sec, n := range perSecond(calls) {
		if n > 4 {
			t.Errorf("second %d: %d calls, over 4", sec, n)
		}
	}
	if n := len(e.log.WithMsg(t, "waiting for the destination's limit")); n == 0 {
		t.Error("no occurrence waited in the queue")
	}
}

// TestLimitInFlight: with one call in flight allowed, a slow target never
// has two at once, across invokers; a crashed call's lease (never
// released) holds the destination only until its deadline; and the waits
// use up none of a timer's retries (it has none).
func TestLimitInFlight(t *testing.T) {
	t.Parallel()
	e := newLtEnv(t, 150*time.Millisecond, Limit{Key: "one-at-a-time", InFlight: 1})
	crashEnds := time.Now().Add(700 * time.Millisecond)
	if lease, _, err := e.dest.AcquireLease(context.Background(), "one-at-a-time", DestState{}, time.Now(), crashEnds); err != nil || lease != 0 {
		t.Fatalf("the crashed call's lease: %d, %v", lease, err)
	}
	e.timers("f", "one-at-a-time", 6, RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 600}, func(int) time.Time { return time.Now() })
	e.run(3, 6, 30*time.Second)

	calls := e.target.Calls()
	if diff := cmp.Diff(onceEach("f", 6), callsByTimer(calls)); diff != "" {
		t.Errorf("calls per timer (-want +got):\n%s", diff)
	}
	if most := e.target.Most(); most != 1 {
		t.Errorf("the target had %d calls at once, want 1", most)
	}
	if len(calls) > 0 && calls[0].at.Before(crashEnds) {
		t.Errorf("the first call came %v before the crashed call's lease ended", crashEnds.Sub(calls[0].at))
	}
	for id, f := range e.delivered() {
		if f.Attempt != 1 {
			t.Errorf("%s: attempt %d, want 1", id, f.Attempt)
		}
	}
	if got := len(e.dlq.To(igDLQURL)); got != 0 {
		t.Errorf("%d dead letters, want none", got)
	}
}

// TestLimitRetryAfterBlocks: a 429 with Retry-After blocks the
// destination for every invoker: no call reaches it before the pause
// ends, the answered occurrence's retry waits at least that long, and it
// spends one attempt.
func TestLimitRetryAfterBlocks(t *testing.T) {
	t.Parallel()
	e := newLtEnv(t, 0, Limit{Key: "busy", PerSecond: 20})
	e.target.answer = func(n int, w http.ResponseWriter) int {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	}
	now := time.Now()
	e.timers("b", "busy", 1, RetryPolicy{MaxAttempts: 1, MaxAgeSeconds: 600}, func(int) time.Time { return now })
	// Due after the 429, while the destination is blocked.
	e.timers("c", "busy", 3, RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 600}, func(int) time.Time { return now.Add(300 * time.Millisecond) })
	e.run(2, 4, 20*time.Second)

	calls := e.target.Calls()
	if len(calls) != 5 || calls[0].timerID != "b-00" {
		t.Fatalf("%d calls, want 5, the first b-00's: %v", len(calls), calls)
	}
	for _, c := range calls[1:] {
		if c.at.Sub(calls[0].at) < 2*time.Second-50*time.Millisecond {
			t.Errorf("%s called %v after the 429 asked for 2 s", c.timerID, c.at.Sub(calls[0].at))
		}
	}
	if f := e.delivered()["b-00"]; f.Attempt != 2 {
		t.Errorf("the answered timer delivered at attempt %d, want 2", f.Attempt)
	}
}

// TestRetryAfterWithoutLimit: a timer with no limit still waits as long
// as a 429 or 503 asks before its retry (seconds or an HTTP date), and
// never less than its backoff; a Retry-After on another status, or one
// that cannot be read, leaves the backoff alone.
func TestRetryAfterWithoutLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter func(now time.Time) string
		lo, hi     int32
	}{
		{"429 seconds", http.StatusTooManyRequests, func(time.Time) string { return "120" }, 120, 120},
		{"503 date", http.StatusServiceUnavailable, func(now time.Time) string {
			return now.Add(300 * time.Second).UTC().Format(http.TimeFormat)
		}, 299, 300},
		{"429 shorter than the backoff", http.StatusTooManyRequests, func(time.Time) string { return "1" }, 1, 2},
		{"500 ignores it", http.StatusInternalServerError, func(time.Time) string { return "120" }, 1, 2},
		{"429 unreadable", http.StatusTooManyRequests, func(time.Time) string { return "later" }, 1, 2},
		{"429 capped at 12 hours", http.StatusTooManyRequests, func(time.Time) string { return "100000" }, 43200, 43200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newLtTarget(t, time.Now, 0)
			srv.answer = func(_ int, w http.ResponseWriter) int {
				w.Header().Set("Retry-After", tc.retryAfter(time.Now()))
				return tc.status
			}
			e := newIGEnv(t, nil, igTimer("t-1", 1))
			e.inv.Now = time.Now
			msg := httpFire("t-1", http.MethodGet, srv.URL+"/hook")
			msg.ScheduledAt = time.Now()
			if got := e.invoke(igRecord(t, "m-1", 1, msg)); len(got) != 1 {
				t.Fatalf("failures %v, want the message", got)
			}
			calls := e.vis.Calls()
			if len(calls) != 1 || calls[0].Timeout < tc.lo || calls[0].Timeout > tc.hi {
				t.Errorf("visibility calls %+v, want one of %d-%d s", calls, tc.lo, tc.hi)
			}
		})
	}
}

// TestLimitFreeForOthers: a timer that names no destination (HTTP or
// callback) makes no call for limits at all; one naming a destination
// without a limit reads its state once, then from the cache.
func TestLimitFreeForOthers(t *testing.T) {
	t.Parallel()
	e := newLtEnv(t, 0, Limit{Key: "other", PerSecond: 1})
	now := time.Now()
	e.timers("plain", "", 3, RetryPolicy{}, func(int) time.Time { return now })
	e.run(1, 10, 10*time.Second)
	if ops := e.dest.ops(); len(ops) != 0 {
		t.Errorf("timers without limitKey cost limit calls: %v", ops)
	}
	e.timers("nolimit", "unlimited-dest", 3, RetryPolicy{}, func(int) time.Time { return now })
	e.run(1, 1, 10*time.Second) // one at a time: the first read fills the cache

	if diff := cmp.Diff(map[string]int{"dest:unlimited-dest": 1}, e.dest.ops()); diff != "" {
		t.Errorf("a destination without a limit: calls (-want +got):\n%s", diff)
	}
	if got := len(e.target.Calls()); got != 6 {
		t.Errorf("%d calls, want 6", got)
	}
}

// TestLimitMetrics: one EMF record per destination of a batch, with the
// Destination dimension, its waiting count, its calls and their waits;
// none for a batch without limited messages.
func TestLimitMetrics(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	m := &Metrics{W: &buf, Now: func() time.Time { return time.UnixMilli(1_700_000_000_000) }}
	var none limitTally
	none.emit(m)
	if buf.Len() != 0 {
		t.Fatalf("a batch without limited messages wrote %q", buf.String())
	}
	var tally limitTally
	tally.add("billing-api", true, false, 0)
	tally.add("billing-api", true, false, 0)
	tally.add("billing-api", false, true, 1500)
	tally.emit(m)
	want := `{"Destination":"billing-api","LimitWaiting":2,"LimitedCalls":1,"LimitedMs":1500,"_aws":{"CloudWatchMetrics":[{"Dimensions":[["Destination"]],` +
		`"Metrics":[{"Name":"LimitWaiting","Unit":"Count"},{"Name":"LimitedCalls","Unit":"Count"},{"Name":"LimitedMs","Unit":"Milliseconds"}],"Namespace":"callclock"}],"Timestamp":1700000000000}}`
	if diff := cmp.Diff(want, strings.TrimSpace(buf.String())); diff != "" {
		t.Errorf("the record (-want +got):\n%s", diff)
	}
}

// TestLimitThrottledStateFailsClosed: when the destination's state item
// is throttled (DynamoDB's per-key limit, here made small), the limiter
// does not call without its limit: the messages it could not admit wait
// in the queue and are delivered later, each once, within the limit.
func TestLimitThrottledStateFailsClosed(t *testing.T) {
	t.Parallel()
	e := newLtEnv(t, 0, Limit{Key: "hot", PerSecond: 50})
	e.dest.writeLimit = 6
	now := time.Now()
	e.timers("h", "hot", 20, RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 600}, func(int) time.Time { return now })
	e.run(2, 10, 30*time.Second)
	calls := e.target.Calls()
	if diff := cmp.Diff(onceEach("h", 20), callsByTimer(calls)); diff != "" {
		t.Errorf("calls per timer (-want +got):\n%s", diff)
	}
	if n := len(e.log.WithMsg(t, "slot not taken; waits a second")); n == 0 {
		t.Error("no slot was refused by the throttled item")
	}
	for sec, n := range perSecond(calls) { // each call took one of the item's 6 writes a second
		if n > 6 {
			t.Errorf("second %d: %d calls, more than the throttled item admitted slots", sec, n)
		}
	}
	if got := len(e.dlq.To(igDLQURL)); got != 0 {
		t.Errorf("%d dead letters, want none: waiting is no attempt", got)
	}
}
