package main

// The limiter's test doubles: a destinationStore with the real Store's
// semantics (ltDest, held to them by TestLimitStoreContract) and
// DynamoDB's per-item write limit, and a target that records its calls
// (ltTarget). Helpers here are prefixed "lt". The fire queue is
// fakeFireQueue (fire_queue_fake_test.go).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// ltWritesPerSecond is DynamoDB's write limit on one item (one key): about
// 1,000 write units a second, whatever the table's capacity.
const ltWritesPerSecond = 1000

// errLtThrottled is the fake's answer over that limit, as DynamoDB
// throttles a hot key.
var errLtThrottled = errors.New("ThrottlingException: throughput exceeds the current capacity for one or more keys")

// ltDest is an in-memory destinationStore. Each call is atomic, as the
// Store's conditional writes make them; a write over ltWritesPerSecond on
// one item within a second of its clock is refused, as DynamoDB refuses
// it. It counts every read and write, per item.
type ltDest struct {
	mu     sync.Mutex
	now    func() time.Time
	items  map[string]*DestState
	waits  map[string]LimitWait
	claims *igStore
	// writes are the write times per item key ("dest:<key>", "occ:<occ>").
	writes  map[string][]time.Time
	reads   map[string]int
	seconds map[string]int // calls counted per "second:<key>#<unix s>"
	// writeLimit is the writes a second one item takes; 0:
	// ltWritesPerSecond.
	writeLimit int
}

// newLtDest returns an ltDest with limits ls, releasing claims in claims.
func newLtDest(now func() time.Time, claims *igStore, ls ...Limit) *ltDest {
	d := &ltDest{now: now, items: map[string]*DestState{}, waits: map[string]LimitWait{}, claims: claims,
		writes: map[string][]time.Time{}, reads: map[string]int{}}
	for _, l := range ls {
		d.items[l.Key] = &DestState{Exists: true, PerSecond: l.PerSecond, InFlight: l.InFlight, Leases: map[int]int64{}}
	}
	return d
}

// write counts a write on item, refused over the per-item limit.
func (d *ltDest) write(item string) error {
	now := d.now()
	w := d.writes[item]
	n := 0
	for _, t := range w {
		if now.Sub(t) < time.Second {
			n++
		}
	}
	limit := d.writeLimit
	if limit == 0 {
		limit = ltWritesPerSecond
	}
	if n >= limit {
		return errLtThrottled
	}
	d.writes[item] = append(w, now)
	return nil
}

// view is a copy of key's state.
func (d *ltDest) view(key string) DestState {
	it, ok := d.items[key]
	if !ok {
		return DestState{Leases: map[int]int64{}}
	}
	v := *it
	v.Leases = map[int]int64{}
	for i, x := range it.Leases {
		v.Leases[i] = x
	}
	return v
}

func (d *ltDest) Destination(_ context.Context, key string) (DestState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads["dest:"+key]++
	return d.view(key), nil
}

func (d *ltDest) TakeSlot(_ context.Context, key string, _ DestState, now time.Time) (int64, DestState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	it, ok := d.items[key]
	if !ok || it.PerSecond == 0 {
		return 0, d.view(key), errNoLimit
	}
	if err := d.write("dest:" + key); err != nil {
		return 0, d.view(key), err
	}
	p := it.PerSecond
	nowIdx := firstSlot(now.UnixMilli(), p)
	if it.NextRate == int64(p) && it.Next >= nowIdx {
		it.Next++
		return it.Next - 1, d.view(key), nil
	}
	base := nowIdx
	if it.NextRate > 0 {
		base = max(base, firstSlot(slotStart(it.Next, int(it.NextRate)), p))
	}
	it.Next, it.NextRate = base+1, int64(p)
	return base, d.view(key), nil
}

func (d *ltDest) AcquireLease(_ context.Context, key string, _ DestState, now, until time.Time) (int, DestState, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	it, ok := d.items[key]
	if !ok || it.InFlight == 0 {
		return -1, d.view(key), errNoLimit
	}
	nowMs := now.UnixMilli()
	if it.BlockedUntil > nowMs {
		return -1, d.view(key), nil
	}
	for i := 0; i < it.InFlight; i++ {
		if it.Leases[i] < nowMs {
			if err := d.write("dest:" + key); err != nil {
				return -1, d.view(key), err
			}
			it.Leases[i] = until.UnixMilli()
			return i, d.view(key), nil
		}
	}
	return -1, d.view(key), nil
}

func (d *ltDest) ReleaseLease(_ context.Context, key string, i int, until time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.write("dest:" + key); err != nil {
		return err
	}
	if it, ok := d.items[key]; ok && it.Leases[i] == until.UnixMilli() {
		delete(it.Leases, i)
	}
	return nil
}

func (d *ltDest) BlockDestination(_ context.Context, key string, _ DestState, until time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	it, ok := d.items[key]
	if !ok {
		return nil
	}
	if err := d.write("dest:" + key); err != nil {
		return err
	}
	b := until.UnixMilli()
	if it.BlockedUntil >= b {
		return nil
	}
	it.BlockedUntil = b
	if it.PerSecond > 0 {
		if idx := firstSlot(b, it.PerSecond); it.NextRate != int64(it.PerSecond) || it.Next < idx {
			it.Next, it.NextRate = idx, int64(it.PerSecond)
		}
	}
	return nil
}

// CountCall counts a call in second sec's own item, up to perSecond.
func (d *ltDest) CountCall(_ context.Context, key string, perSecond int, sec int64) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	item := fmt.Sprintf("second:%s#%d", key, sec)
	if err := d.write(item); err != nil {
		return false, err
	}
	if d.seconds == nil {
		d.seconds = map[string]int{}
	}
	if d.seconds[item] >= perSecond {
		return false, nil
	}
	d.seconds[item]++
	return true, nil
}

// DeferOccurrence records w and ends the claim, for its holder only.
func (d *ltDest) DeferOccurrence(ctx context.Context, o Occurrence, c Claimant, w LimitWait) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.write("occ:" + igKey(o)); err != nil {
		return err
	}
	d.claims.mu.Lock()
	held := d.claims.claims[igKey(o)].Token == c.Token
	d.claims.mu.Unlock()
	if !held { // the Store's condition on the claim's token
		return fmt.Errorf("record the limit wait of %s: ConditionalCheckFailedException", o)
	}
	d.waits[igKey(o)] = w
	return d.claims.ReleaseClaim(ctx, o, c)
}

func (d *ltDest) LimitWaited(_ context.Context, o Occurrence) (LimitWait, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads["occ:"+igKey(o)]++
	return d.waits[igKey(o)], nil
}

// destWrites is the number of writes on key's state item.
func (d *ltDest) destWrites(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.writes["dest:"+key])
}

// ops is every read and write, per item.
func (d *ltDest) ops() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := map[string]int{}
	for k, w := range d.writes {
		m[k] += len(w)
	}
	for k, n := range d.reads {
		m[k] += n
	}
	return m
}

// ---------------------------------------------------------------- the target

// ltCall is one call a target received.
type ltCall struct {
	at          time.Time
	timerID     string
	scheduledAt string
}

// ltTarget is an HTTP target that records its calls and the most calls
// it had at once; each call takes hold, and answers answer's status (and
// headers), 200 by default.
type ltTarget struct {
	*httptest.Server
	mu            sync.Mutex
	calls         []ltCall
	running, most int
	hold          time.Duration
	answer        func(n int, w http.ResponseWriter) int
	now           func() time.Time
}

// newLtTarget starts a target whose calls take hold.
func newLtTarget(t *testing.T, now func() time.Time, hold time.Duration) *ltTarget {
	lt := &ltTarget{hold: hold, now: now}
	lt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lt.mu.Lock()
		lt.calls = append(lt.calls, ltCall{at: lt.now(), timerID: r.Header.Get("X-Callclock-Timer-Id"), scheduledAt: r.Header.Get("X-Callclock-Scheduled-At")})
		n := len(lt.calls)
		lt.running++
		lt.most = max(lt.most, lt.running)
		answer := lt.answer
		lt.mu.Unlock()
		time.Sleep(lt.hold)
		status := http.StatusOK
		if answer != nil {
			status = answer(n, w)
		}
		lt.mu.Lock()
		lt.running--
		lt.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(lt.Close)
	return lt
}

// Calls returns the calls so far, in the order they arrived.
func (lt *ltTarget) Calls() []ltCall {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return slices.Clone(lt.calls)
}

// Most is the most calls the target had at once.
func (lt *ltTarget) Most() int {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.most
}

// perSecond counts calls by UTC second.
func perSecond(calls []ltCall) map[int64]int {
	m := map[int64]int{}
	for _, c := range calls {
		m[c.at.Unix()]++
	}
	return m
}
