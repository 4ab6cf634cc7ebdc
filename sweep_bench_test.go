package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Benchmark set-up: the sweeper as deployed (NewSweeper's defaults: 16
// bucket partitions read at once, 64 workers, a 2-minute look-ahead) over
// the real Store's Bucket and PutLinks, on a simulated DynamoDB with its
// per-partition-key limits and a simulated SQS, in which every call takes
// benchLatency.
const (
	benchLatency  = 10 * time.Millisecond
	benchTable    = "callclock-bench"
	benchQueueURL = "https://sqs.us-east-1.amazonaws.com/123456789012/callclock-fire"

	// DynamoDB's limits per partition key value, per second, with no
	// adaptive capacity and no burst credit.
	benchReadUnits  = 3000
	benchWriteUnits = 1000
	// benchPageBytes is a Query page's most: 1 MB of items.
	benchPageBytes = 1 << 20
	// benchBatchWrite is BatchWriteItem's most items.
	benchBatchWrite = 25
	// benchQueryAttempts is the SDK's standard retryer's tries of a
	// throttled Query (retry.DefaultMaxAttempts), which Store.Bucket relies
	// on; a fake client is below that middleware, so benchDB does them.
	benchQueryAttempts = 3
	// benchFollowUps is how many later sweeps (a minute apart, as
	// deployed) run when the first leaves its minute unfinished, to show
	// how the sweeper recovers.
	benchFollowUps = 2
)

// BenchmarkSweep sweeps 100,000 and 1,000,000 occurrences due within the
// same minute (hourly timers, so every next link goes to the same minute
// an hour later) and reports:
//
//	s/sweep                wall time of the first sweep
//	cpu-us/occurrence      process CPU (user+sys, getrusage) per occurrence
//	                       in the first sweep: the sweeper's and the real
//	                       Store's codec (BenchmarkSweepLinkCodec), but also
//	                       the fakes' and the Go runtime's (GC) work
//	peak-heap-MB           the largest /memory/classes/heap/objects:bytes
//	                       sampled every 10 ms (the fakes hold 8 bytes per
//	                       occurrence: partition lists and send counts)
//	throttles              Query requests and BatchWriteItem items DynamoDB
//	                       refused for a key's spent budget, first sweep
//	hot-key-wcu/s          the hottest key's most write units in one second
//	                       (consumed; at most 1,000), first sweep
//	hot-key-demand-wcu/s   the same key's most write units asked for in one
//	                       second, throttled ones included, first sweep
//	sent-once/occ          the share of occurrences enqueued exactly once,
//	                       after the follow-up sweeps
//	sqs-calls/1000occ, ddb-req/1000occ, partial-batches/sweep,
//	body-bytes/occurrence  as before
//
// It fails unless the first sweep enqueues every occurrence exactly once.
// When it does not, up to benchFollowUps later sweeps run and it reports
// what they sent twice and what was never sent. Run it with
//
//	go test -run='^$' -bench=BenchmarkSweep -benchtime=1x -timeout=30m .
func BenchmarkSweep(b *testing.B) {
	for _, slots := range []bool{false, true} {
		for _, n := range []int{100_000, 1_000_000} {
			b.Run(fmt.Sprintf("%s,occurrences=%d", map[bool]string{false: "links", true: "slots"}[slots], n), func(b *testing.B) {
				benchmarkSweep(b, n, slots)
			})
		}
	}
}

// benchmarkSweep sweeps n occurrences of hourly timers due at one minute:
// handed on by links (as timers whose schedules do not repeat within a
// week are: every sweep writes each one's next link), or by slot entries
// (as Store.Put hands on an hourly timer: PlanDue, period 60; the sweep
// writes nothing per timer).
func benchmarkSweep(b *testing.B, n int, slots bool) {
	fireAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	now := fireAt.Add(-30 * time.Second)
	var (
		wall, cpu                    time.Duration
		peak                         uint64
		sqsCalls, ddbRequests, reqs  int64
		partial, bodyBytes, throttle int64
		hotW, hotDemand              float64
		once, failedSweeps           float64
	)
	// Every next link of the minute goes to one hour an hour later: at
	// 1,000 write units a second a key, the dueParts partitions it starts
	// with would take this long; the sweep raises them as it is throttled.
	if !slots {
		b.Logf("write floor over %d partition keys: %d links at %d WCU/s each: at least %.1f s",
			dueParts, n, benchWriteUnits, float64(n)/float64(dueParts*benchWriteUnits))
	}
	for i := 0; i < b.N; i++ {
		sim := newBenchDB(n, fireAt, now, slots)
		store := &benchStore{Store: &Store{DB: sim, Table: benchTable}, sim: sim}
		sw := NewSweeper(store, sim, benchQueueURL)
		sw.Log = slog.New(slog.DiscardHandler)

		runtime.GC()
		stopSampler := sampleHeap(10 * time.Millisecond)
		cpu0 := processCPU()
		start := time.Now()
		// The sweep's clock runs from now, as a real one: its sends wait for
		// their window of the second, and their delays count down.
		sim.clock = func() time.Time { return now.Add(time.Since(start)) }
		sw.Now = sim.clock
		res, err := sw.Sweep(context.Background(), fmt.Sprintf("bench-%d", i))
		wall += time.Since(start)
		cpu += processCPU() - cpu0
		peak = max(peak, stopSampler())

		first := sim.tally()
		b.Logf("first sweep: %s in %v: %+v, error %v", first, time.Since(start).Round(time.Millisecond), res, errSummary(err))
		b.Logf("first sweep: %s", sim.hotKeyReport())
		if !slots {
			sim.mu.Lock()
			b.Logf("first sweep: the next links' hour raised to %d partitions (%d RaiseParts calls)", max(dueParts, sim.raised[sim.nextHour]), sim.raises.Load())
			sim.mu.Unlock()
		}
		firstThrottles := sim.queryThrottles.Load() + sim.itemThrottles.Load()
		firstHotW, firstHotDemand := sim.hottest()
		ok := err == nil && res == (SweepResult{Minutes: int(swLastRead(now) - unixMinute(now) + 1), Due: n, Enqueued: n}) && first.once == n
		if !ok {
			failedSweeps++
			// As deployed: the next sweep a minute later reads the minute again.
			for k := 1; k <= benchFollowUps && err != nil; k++ {
				later := now.Add(time.Duration(k) * time.Minute)
				t0 := time.Now()
				sim.clock = func() time.Time { return later.Add(time.Since(t0)) }
				sw.Now = sim.clock
				res, err = sw.Sweep(context.Background(), fmt.Sprintf("bench-%d-%d", i, k))
				b.Logf("follow-up sweep %d: %s in %v: %+v, error %v", k, sim.tally(), time.Since(t0).Round(time.Millisecond), res, errSummary(err))
			}
		}
		if !ok {
			b.Logf("after the follow-ups: %s", sim.hotKeyReport())
		}
		if p := sim.problem.Load(); p != nil {
			b.Errorf("simulation: %s", *p)
		}
		end := sim.tally()
		once += float64(end.once) / float64(n)
		sqsCalls += sim.sqsCalls.Load()
		partial += sim.partialBatches.Load()
		ddbRequests += sim.queries.Load() + sim.batchWrites.Load() + sim.leases.Load() + sim.releases.Load() + sim.raises.Load()
		bodyBytes += sim.bodyBytes.Load()
		reqs += sim.sqsRequests64k.Load()
		throttle += firstThrottles
		hotW, hotDemand = max(hotW, firstHotW), max(hotDemand, firstHotDemand)
	}
	occ := float64(n) * float64(b.N)
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/sweep")
	b.ReportMetric(float64(cpu.Microseconds())/occ, "cpu-us/occurrence")
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(throttle)/float64(b.N), "throttles")
	b.ReportMetric(hotW, "hot-key-wcu/s")
	b.ReportMetric(hotDemand, "hot-key-demand-wcu/s")
	b.ReportMetric(once/float64(b.N), "sent-once/occ")
	b.ReportMetric(float64(sqsCalls)*1000/occ, "sqs-calls/1000occ")
	b.ReportMetric(float64(reqs)*1000/occ, "sqs-billed-req/1000occ")
	b.ReportMetric(float64(ddbRequests)*1000/occ, "ddb-req/1000occ")
	b.ReportMetric(float64(partial)/float64(b.N), "partial-batches/sweep")
	b.ReportMetric(float64(bodyBytes)/occ, "body-bytes/occurrence")
	// The figures, also when the benchmark fails (its result line is not printed then).
	b.Logf("figures: %.1f s/sweep, %.2f cpu-us/occurrence, %.0f peak-heap-MB, %.0f throttles in the first sweep, hottest key %.0f WCU/s (asked for %.0f), %.4f sent once after the follow-ups",
		wall.Seconds()/float64(b.N), float64(cpu.Microseconds())/occ, float64(peak)/1e6, float64(throttle)/float64(b.N), hotW, hotDemand, once/float64(b.N))
	if failedSweeps > 0 {
		b.Errorf("%v of %d first sweeps did not enqueue every occurrence exactly once (see the log above)", failedSweeps, b.N)
	}
}

// errSummary is err's first line, shortened: a failed sweep joins one
// error per failed chunk.
func errSummary(err error) string {
	if err == nil {
		return "none"
	}
	s := err.Error()
	lines := strings.Count(s, "\n") + 1
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return fmt.Sprintf("%q (%d errors)", s, lines)
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sampleHeap samples the bytes in heap objects every interval until the
// returned function is called, which returns the largest sample.
func sampleHeap(interval time.Duration) (stop func() uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	read := func() {
		metrics.Read(samples)
		if samples[0].Value.Kind() == metrics.KindUint64 {
			peak = max(peak, samples[0].Value.Uint64())
		}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			read()
			select {
			case <-done:
				read()
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak
	}
}

// ---------------------------------------------------------------- the simulated AWS

// benchStore is the dueStore the benchmark sweeps: the real Store's
// Bucket and PutLinks (its codec and its retries of unprocessed writes)
// over benchDB, and an in-memory lease (as swStore's) that takes a call.
type benchStore struct {
	*Store
	sim *benchDB
}

func (s *benchStore) LeaseSweep(_ context.Context, owner, _ string, _ time.Time, _ time.Duration) (SweepState, bool, error) {
	a := s.sim
	a.leases.Add(1)
	time.Sleep(a.latency)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leaseOwner != "" {
		return SweepState{}, false, nil
	}
	a.leaseOwner = owner
	return SweepState{Through: a.through, Parts: maps.Clone(a.raised)}, true, nil
}

// RaiseParts is the conditional update of the sweep's item: the lease's
// owner only, never lower.
func (s *benchStore) RaiseParts(_ context.Context, owner string, hour int64, parts int) (int, error) {
	a := s.sim
	a.raises.Add(1)
	time.Sleep(a.latency)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leaseOwner != owner {
		return 0, errLeaseLost
	}
	if a.raised[hour] >= parts {
		return a.raised[hour], nil
	}
	if parts > maxDueParts || parts&(parts-1) != 0 {
		a.fail("raised hour %d to %d partitions", hour, parts)
	}
	a.raised[hour] = parts
	return parts, nil
}

func (s *benchStore) ReleaseSweep(_ context.Context, owner, _ string, through int64, _ bool, _ time.Time, drop []int64) error {
	a := s.sim
	a.releases.Add(1)
	time.Sleep(a.latency)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leaseOwner != owner {
		a.fail("release by %s, held by %q", owner, a.leaseOwner)
	}
	a.leaseOwner = ""
	if through > 0 {
		a.through = through
		for _, h := range drop {
			delete(a.raised, h)
		}
	}
	return nil
}

func (s *benchStore) Missed(_ context.Context, e DueEntry, _ time.Time, _ *DueEntry, _ bool) error {
	s.sim.fail("%s recorded missed", e.TimerID)
	return nil
}

// Periods is the consistent read of the periods in use: the hour's, when
// the benchmark's timers are slotted.
func (s *benchStore) Periods(context.Context) ([]int, error) {
	s.sim.gets.Add(1)
	time.Sleep(s.sim.latency)
	if s.sim.slots {
		return []int{benchPeriod}, nil
	}
	return nil, nil
}

func (s *benchStore) DeleteSlot(_ context.Context, e DueEntry) error {
	s.sim.fail("slot of %s deleted", e.TimerID)
	return nil
}

// benchDB simulates, in process, the DynamoDB calls Store.Bucket and
// Store.PutLinks make (Query, BatchWriteItem) with DynamoDB's limits per
// partition key value, and the SQS SendMessageBatch of the sweeper. Each
// call sleeps latency and is counted.
//
// It holds no entries: occurrence i (0 <= i < n) is hourly timer
// benchTimerID(i), due at fireAt, linked an hour before, in partition
// partOf(id) of fireAt's minute. Query generates a page's items when the
// page is asked for; what it keeps is each partition's list of
// occurrence indices and a send and a link count per occurrence.
//
// Limits: a key's reads and writes are counted per wall-clock second;
// a Query whose read units (0.5 per 4 KB of the page's items, eventually
// consistent) do not fit in what is left of its key's 3,000 for this
// second is refused with *types.ProvisionedThroughputExceededException
// (and retried as the SDK's standard retryer would, benchQueryAttempts
// tries in all); a BatchWriteItem item whose write units (1 per KB) do
// not fit in its key's 1,000 is returned in UnprocessedItems, which
// Store.PutLinks retries. No adaptive capacity, no burst credit.
type benchDB struct {
	n int
	// slots: the timers are handed on by slot entries (period benchPeriod),
	// not links.
	slots   bool
	latency time.Duration
	fireAt  time.Time
	minute  int64
	// nextHour is the hour of every next link, fireAt + 1 h; nextAt its
	// "at".
	nextHour int64
	nextAt   string
	// clock is the sweep's clock: a message's DelaySeconds is its instant
	// less the clock when it is sent, rounded down.
	clock     func() time.Time
	parts     [dueParts][]int32 // occurrence indices of each partition, in id order
	itemBytes int               // the size of one entry's item, as DynamoDB counts it

	queries, batchWrites, leases, releases, gets, raises atomic.Int64
	queryThrottles, itemThrottles                        atomic.Int64
	sqsCalls, partialBatches, bodyBytes                  atomic.Int64
	sqsRequests64k                                       atomic.Int64 // billed SQS requests: one per 64 KB of payload

	sent, linked []atomic.Int32 // per occurrence
	// linkParts is the partitions each occurrence's next link was last
	// written with, which its fire message must name.
	linkParts []atomic.Int32

	mu         sync.Mutex
	leaseOwner string
	through    int64
	raised     map[int64]int // the sweep item's raised hours
	keys       map[string]*benchKey
	problem    atomic.Pointer[string]
}

// benchKey is one partition key's consumption.
type benchKey struct {
	sec         int64   // the wall-clock second counted
	read, write float64 // units consumed in sec
	demand      float64 // write units asked for in sec, throttled included
	// The most in any second.
	peakRead, peakWrite, peakDemand float64
	totalWrite                      float64
}

// benchPeriod is an hourly timer's slot period.
const benchPeriod = 60

func newBenchDB(n int, fireAt, now time.Time, slots bool) *benchDB {
	a := &benchDB{n: n, slots: slots, latency: benchLatency, fireAt: fireAt, minute: unixMinute(fireAt),
		nextAt: strconv.FormatInt(fireAt.Add(time.Hour).Unix(), 10), nextHour: fireAt.Add(time.Hour).Unix() / 3600,
		sent: make([]atomic.Int32, n), linked: make([]atomic.Int32, n), linkParts: make([]atomic.Int32, n),
		keys: map[string]*benchKey{}, raised: map[int64]int{}}
	for i := range n {
		p := partOf(benchTimerID(i))
		a.parts[p] = append(a.parts[p], int32(i))
	}
	a.itemBytes = benchItemSize(a.item(0))
	a.clock = func() time.Time { return now }
	return a
}

// benchTimerID is "t" and i in seven digits.
func benchTimerID(i int) string {
	var buf [16]byte
	b := append(buf[:0], 't')
	s := strconv.AppendInt(buf[8:8], int64(i), 10)
	for range 7 - len(s) {
		b = append(b, '0')
	}
	return string(append(b, s...))
}

func benchIndex(id string) (int, bool) {
	if len(id) < 2 || id[0] != 't' {
		return 0, false
	}
	i, err := strconv.Atoi(id[1:])
	return i, err == nil
}

// timer is occurrence i's timer.
func (a *benchDB) timer(i int) *Timer {
	return &Timer{ID: benchTimerID(i), MinuteOfHour: a.fireAt.Minute(), CatchUpSeconds: DefaultCatchUpSeconds, Version: 1}
}

// slot is every timer's slot entry's slot.
func (a *benchDB) slot() DueSlot {
	return DueSlot{Period: benchPeriod, Slot: int(a.minute % benchPeriod)}
}

// entry is occurrence i's entry, as its writer wrote it: its link,
// written an hour before, or its slot entry, written a day before.
func (a *benchDB) entry(i int) DueEntry {
	if a.slots {
		e := dueEntryOf(a.timer(i), time.Time{}, a.fireAt.Add(-24*time.Hour))
		e.Period, e.Slot = a.slot().Period, a.slot().Slot
		return e
	}
	return dueEntryOf(a.timer(i), a.fireAt, a.fireAt.Add(-time.Hour))
}

// item is occurrence i's item, built by hand (linkItem's reflection would
// be the fake's cost); TestSweepBenchItem checks it is linkItem's.
func (a *benchDB) item(i int) map[string]dbtypes.AttributeValue {
	e := a.entry(i)
	n := func(v int64) *dbtypes.AttributeValueMemberN {
		return &dbtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	if a.slots {
		key := slotKey(a.slot(), e.TimerID)
		return map[string]dbtypes.AttributeValue{
			attrPK: key[attrPK],
			attrSK: key[attrSK],
			"tid":  &dbtypes.AttributeValueMemberS{Value: e.TimerID},
			"at":   n(e.At),
			"v":    n(e.Version),
			"w":    n(e.WrittenAt),
			"x":    &dbtypes.AttributeValueMemberS{Value: e.Expr},
			"c":    n(int64(e.CatchUp)),
			"p":    n(int64(e.Period)),
			"q":    n(int64(e.Slot)),
		}
	}
	key := linkKey(a.minute, e.TimerID, 0)
	return map[string]dbtypes.AttributeValue{
		attrPK:      key[attrPK],
		attrSK:      key[attrSK],
		"tid":       &dbtypes.AttributeValueMemberS{Value: e.TimerID},
		"at":        n(e.At),
		"v":         n(e.Version),
		"w":         n(e.WrittenAt),
		"x":         &dbtypes.AttributeValueMemberS{Value: e.Expr},
		"c":         n(int64(e.CatchUp)),
		"expiresAt": n(e.occurrence().Add(linkTTL).Unix()),
	}
}

// benchItemSize is an item's size as DynamoDB bills it: each attribute's
// name plus its value (a string's bytes; a number's significant digits,
// two to a byte, plus one; 1 for a boolean).
func benchItemSize(item map[string]dbtypes.AttributeValue) int {
	size := 0
	for name, v := range item {
		size += len(name)
		switch v := v.(type) {
		case *dbtypes.AttributeValueMemberS:
			size += len(v.Value)
		case *dbtypes.AttributeValueMemberN:
			digits := len(strings.Trim(strings.TrimLeft(v.Value, "-"), "0"))
			size += (digits+1)/2 + 1
		case *dbtypes.AttributeValueMemberBOOL:
			size++
		default:
			size += 8
		}
	}
	return size
}

// fail records the first problem found.
func (a *benchDB) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.problem.CompareAndSwap(nil, &msg)
}

// take consumes units of key's budget for this second (read or write)
// and reports whether they fitted. demand counts write units asked for.
func (a *benchDB) take(key string, units float64, write bool) bool {
	sec := time.Now().Unix()
	a.mu.Lock()
	defer a.mu.Unlock()
	k := a.keys[key]
	if k == nil {
		k = &benchKey{sec: sec}
		a.keys[key] = k
	}
	if k.sec != sec {
		k.sec, k.read, k.write, k.demand = sec, 0, 0, 0
	}
	limit, used := float64(benchReadUnits), &k.read
	if write {
		limit, used = benchWriteUnits, &k.write
		k.demand += units
		k.peakDemand = max(k.peakDemand, k.demand)
	}
	if *used+units > limit {
		return false
	}
	*used += units
	if write {
		k.peakWrite = max(k.peakWrite, k.write)
		k.totalWrite += units
	} else {
		k.peakRead = max(k.peakRead, k.read)
	}
	return true
}

// hottest returns the hottest key's (by write units) peak consumed and
// asked-for write units per second.
func (a *benchDB) hottest() (write, demand float64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var hot *benchKey
	for _, k := range a.keys {
		if hot == nil || k.totalWrite > hot.totalWrite {
			hot = k
		}
	}
	if hot == nil {
		return 0, 0
	}
	return hot.peakWrite, hot.peakDemand
}

// hotKeyReport describes the hottest keys' load per second and the throttles.
func (a *benchDB) hotKeyReport() string {
	a.mu.Lock()
	type row struct {
		key string
		k   benchKey
	}
	var rows []row
	for key, k := range a.keys {
		rows = append(rows, row{key, *k})
	}
	a.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].k.totalWrite != rows[j].k.totalWrite {
			return rows[i].k.totalWrite > rows[j].k.totalWrite
		}
		return rows[i].k.peakRead > rows[j].k.peakRead
	})
	var hotRead row
	for _, r := range rows {
		if r.k.peakRead > hotRead.k.peakRead {
			hotRead = r
		}
	}
	s := fmt.Sprintf("throttled: %d Query requests, %d BatchWriteItem items (%d BatchWriteItem calls, %d Query calls); keys used: %d",
		a.queryThrottles.Load(), a.itemThrottles.Load(), a.batchWrites.Load(), a.queries.Load(), len(rows))
	if len(rows) > 0 {
		h := rows[0]
		s += fmt.Sprintf("; hottest key %s: at most %.0f WCU/s consumed (limit %d), %.0f WCU/s asked for, %.0f WCU in all",
			h.key, h.k.peakWrite, benchWriteUnits, h.k.peakDemand, h.k.totalWrite)
	}
	if hotRead.key != "" {
		s += fmt.Sprintf("; hottest read key %s: at most %.1f RCU/s (limit %d)", hotRead.key, hotRead.k.peakRead, benchReadUnits)
	}
	return s
}

// benchTally counts occurrences by how often they were enqueued.
type benchTally struct{ once, twice, more, never, linked int }

func (t benchTally) String() string {
	return fmt.Sprintf("%d enqueued once, %d twice, %d more, %d never; %d linked", t.once, t.twice, t.more, t.never, t.linked)
}

func (a *benchDB) tally() benchTally {
	var t benchTally
	for i := range a.sent {
		switch a.sent[i].Load() {
		case 0:
			t.never++
		case 1:
			t.once++
		case 2:
			t.twice++
		default:
			t.more++
		}
		if a.linked[i].Load() > 0 {
			t.linked++
		}
	}
	return t
}

// throttled is the error DynamoDB answers a throttled Query with.
func throttled(key string) error {
	return &dbtypes.ProvisionedThroughputExceededException{Message: aws.String("The level of configured provisioned throughput for the table was exceeded (key " + key + ")")}
}

// benchS is a string attribute's value.
func benchS(v dbtypes.AttributeValue) string {
	if s, ok := v.(*dbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func (a *benchDB) Query(ctx context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	vals := in.ExpressionAttributeValues
	key, skFrom, skTo := benchS(vals[":pk"]), benchS(vals[":from"]), benchS(vals[":to"])
	if aws.ToString(in.KeyConditionExpression) != "pk = :pk AND sk BETWEEN :from AND :to" {
		a.fail("Query %q", aws.ToString(in.KeyConditionExpression))
	}
	// Every entry's sort key is the minute of the hour (of the slot), "#"
	// and its id.
	period, hour, slot := 0, a.minute/60, a.minute%60
	if a.slots {
		period, hour, slot = benchPeriod, int64(a.slot().Slot/60), int64(a.slot().Slot%60)
	}
	mine := fmt.Sprintf("%02d#", slot)
	var idx []int32
	if per, h, p, ok := benchParseKey(key); !ok {
		a.fail("Query of %q", key)
	} else if per == period && h == hour && skFrom <= mine && mine+"~" <= skTo {
		idx = a.parts[p]
	}
	from := 0
	if sk := benchS(in.ExclusiveStartKey[attrSK]); sk != "" {
		_, id, _ := strings.Cut(sk, "#")
		last, _ := benchIndex(id)
		from = sort.Search(len(idx), func(j int) bool { return int(idx[j]) > last })
	}
	count := min(len(idx)-from, benchPageBytes/a.itemBytes)
	if in.Limit != nil {
		count = min(count, int(*in.Limit))
	}
	units := math.Ceil(float64(max(1, count*a.itemBytes))/4096) * 0.5
	for attempt := 0; ; attempt++ {
		a.queries.Add(1)
		time.Sleep(a.latency)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if a.take(key, units, false) {
			break
		}
		a.queryThrottles.Add(1)
		if attempt+1 >= benchQueryAttempts {
			return nil, fmt.Errorf("operation error DynamoDB: Query, exceeded maximum number of attempts, %d: %w", benchQueryAttempts, throttled(key))
		}
		// The standard retryer's backoff: up to 2^attempt s, jittered.
		time.Sleep(time.Duration(rand.Float64() * float64(time.Second<<(attempt+1))))
	}
	out := &dynamodb.QueryOutput{Items: make([]map[string]dbtypes.AttributeValue, count), ConsumedCapacity: &dbtypes.ConsumedCapacity{CapacityUnits: aws.Float64(units)}}
	for j := range count {
		out.Items[j] = a.item(int(idx[from+j]))
	}
	out.Count = int32(count)
	// A full page comes with a LastEvaluatedKey, even when nothing follows.
	if count > 0 && (count == benchPageBytes/a.itemBytes || (in.Limit != nil && count == int(*in.Limit))) {
		out.LastEvaluatedKey = map[string]dbtypes.AttributeValue{attrPK: &dbtypes.AttributeValueMemberS{Value: key}, attrSK: out.Items[count-1][attrSK]}
	}
	return out, nil
}

// benchParseKey splits a bucket partition's key (pkDue hour#part, or
// pkSlot period#hour#part) into its period (0: links), hour and part.
func benchParseKey(key string) (int, int64, int, bool) {
	period, rest := 0, ""
	if r, ok := strings.CutPrefix(key, pkSlot); ok {
		p, r2, ok2 := strings.Cut(r, "#")
		n, err := strconv.Atoi(p)
		if !ok2 || err != nil || n <= 0 {
			return 0, 0, 0, false
		}
		period, rest = n, r2
	} else if r, ok := strings.CutPrefix(key, pkDue); ok {
		rest = r
	} else {
		return 0, 0, 0, false
	}
	h, p, ok := strings.Cut(rest, "#")
	hour, err1 := strconv.ParseInt(h, 10, 64)
	part, err2 := strconv.Atoi(p)
	return period, hour, part, ok && err1 == nil && err2 == nil && part >= 0 && part < maxDueParts
}

func (a *benchDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	a.batchWrites.Add(1)
	time.Sleep(a.latency)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a.slots {
		a.fail("BatchWriteItem while sweeping slots: a slotted timer's firing writes nothing")
	}
	reqs := in.RequestItems[benchTable]
	if len(in.RequestItems) != 1 || len(reqs) < 1 || len(reqs) > benchBatchWrite {
		a.fail("BatchWriteItem with %d tables, %d items", len(in.RequestItems), len(reqs))
		return nil, errors.New("bench: invalid BatchWriteItem")
	}
	var unprocessed []dbtypes.WriteRequest
	for _, r := range reqs {
		if r.PutRequest == nil {
			a.fail("BatchWriteItem with a delete")
			continue
		}
		item := r.PutRequest.Item
		pk, sk, id := benchS(item[attrPK]), benchS(item[attrSK]), benchS(item["tid"])
		at, _ := item["at"].(*dbtypes.AttributeValueMemberN)
		if pk == "" || sk == "" || id == "" || at == nil {
			a.fail("link item without pk, sk, tid or at: %v", item)
			continue
		}
		i, ok := benchIndex(id)
		parts := dueParts
		if n, ok := item["n"].(*dbtypes.AttributeValueMemberN); ok {
			parts, _ = strconv.Atoi(n.Value)
		}
		if !ok || i >= a.n || at.Value != a.nextAt || sk != fmt.Sprintf("%02d#%s", a.minute%60, id) ||
			pk != pkDue+strconv.FormatInt(a.nextHour, 10)+"#"+strconv.Itoa(partIn(id, parts)) {
			a.fail("unexpected link %s at %s under %s, %s", id, at.Value, pk, sk)
			continue
		}
		// The invariant that keeps every link found: none is written into
		// a partition the sweep's item does not name.
		a.mu.Lock()
		recorded := max(dueParts, a.raised[a.nextHour])
		a.mu.Unlock()
		if parts > recorded {
			a.fail("link %s written into %d partitions, %d recorded", id, parts, recorded)
		}
		units := math.Ceil(float64(benchItemSize(item)) / 1024)
		if !a.take(pk, units, true) {
			a.itemThrottles.Add(1)
			unprocessed = append(unprocessed, r)
			continue
		}
		a.linked[i].Add(1)
		a.linkParts[i].Store(int32(parts))
	}
	out := &dynamodb.BatchWriteItemOutput{}
	if len(unprocessed) > 0 {
		out.UnprocessedItems = map[string][]dbtypes.WriteRequest{benchTable: unprocessed}
	}
	return out, nil
}

// refuse fails the run for a call the sweep never makes.
func (a *benchDB) refuse(op string) error {
	a.fail("%s", op)
	return errors.New("bench: " + op)
}

// The rest of dynamoAPI: the sweep makes none of these calls.
func (a *benchDB) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, a.refuse("GetItem")
}

func (a *benchDB) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, a.refuse("UpdateItem")
}

func (a *benchDB) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return nil, a.refuse("DeleteItem")
}

func (a *benchDB) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, a.refuse("PutItem")
}

func (a *benchDB) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, a.refuse("Scan")
}

func (a *benchDB) TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	return nil, a.refuse("TransactWriteItems")
}

const benchBodyPrefix = `{"timerId":"`

func (a *benchDB) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	a.sqsCalls.Add(1)
	time.Sleep(a.latency)
	if len(in.Entries) < 1 || len(in.Entries) > sqsBatch || aws.ToString(in.QueueUrl) != benchQueueURL {
		a.fail("SendMessageBatch with %d entries to %s", len(in.Entries), aws.ToString(in.QueueUrl))
		return nil, errors.New("bench: invalid batch")
	}
	if len(in.Entries) < sqsBatch {
		a.partialBatches.Add(1)
	}
	out := &sqs.SendMessageBatchOutput{Successful: make([]types.SendMessageBatchResultEntry, 0, len(in.Entries))}
	size := 0
	for k := len(in.Entries) - 1; k >= 0; k-- { // answered in reverse order
		e := in.Entries[k]
		body := aws.ToString(e.MessageBody)
		size += len(body)
		// The timer id is the body's first field; decode the whole body of
		// one message in a thousand.
		rest, ok := strings.CutPrefix(body, benchBodyPrefix)
		end := strings.IndexByte(rest, '"')
		if !ok || end < 0 {
			a.fail("unexpected body %q", body)
			continue
		}
		i, ok := benchIndex(rest[:end])
		if !ok || i >= a.n {
			a.fail("unexpected timer id in %q", body)
			continue
		}
		if i%1000 == 0 {
			var m FireMessage
			want := FireMessage{TimerID: rest[:end], Version: 1, ScheduledAt: a.fireAt, NextLinkAt: a.fireAt.Add(time.Hour).Unix()}
			if a.slots {
				want.NextLinkAt = 0
			} else if p := int(a.linkParts[i].Load()); p != dueParts {
				want.NextLinkParts = p
			}
			if err := json.Unmarshal([]byte(body), &m); err != nil || !cmp.Equal(want, m) {
				a.fail("message %q decodes to %+v, %v; want %+v", body, m, err, want)
			}
		}
		// Computed by the sweeper just before the call: the second may have
		// turned since.
		if want := delaySeconds(a.fireAt, a.clock()); e.DelaySeconds != want && e.DelaySeconds != want+1 {
			a.fail("%s: DelaySeconds %d, want %d", rest[:end], e.DelaySeconds, want)
		}
		a.sent[i].Add(1)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
	}
	a.bodyBytes.Add(int64(size))
	a.sqsRequests64k.Add(int64(max(1, (size+64*1024-1)/(64*1024))))
	return out, nil
}

// TestSweepBenchItem checks that the benchmark's hand-built items, links
// and slot entries, are those the real codec writes and reads, and their
// billed size.
func TestSweepBenchItem(t *testing.T) {
	t.Parallel()
	fireAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	for _, slots := range []bool{false, true} {
		a := newBenchDB(20, fireAt, fireAt.Add(-30*time.Second), slots)
		for _, i := range []int{0, 7, 19} {
			want, err := linkItem(a.entry(i))
			if slots {
				want, err = slotItem(a.timer(i), a.slot(), fireAt.Add(-24*time.Hour))
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, a.item(i), cmpopts.IgnoreUnexported(dbtypes.AttributeValueMemberS{}, dbtypes.AttributeValueMemberN{})); diff != "" {
				t.Errorf("slots %v: item %d (-real +bench):\n%s", slots, i, diff)
			}
		}
		if a.itemBytes < 60 || a.itemBytes > 200 {
			t.Errorf("slots %v: an entry's item is %d bytes; the page and unit sums assume about 80", slots, a.itemBytes)
		}
		// The real Store's queries read and decode the entries.
		store := &Store{DB: a, Table: benchTable}
		var got []DueEntry
		for p := range dueParts {
			br := BucketRange{Hour: a.minute / 60, Part: p, From: int(a.minute%60) - 1, To: int(a.minute%60) + 1}
			if slots {
				br = BucketRange{Period: benchPeriod, Hour: int64(a.slot().Slot / 60), Part: p, From: a.slot().Slot%60 - 1, To: a.slot().Slot%60 + 1}
			}
			if err := store.Bucket(t.Context(), br, func(page []DueEntry) error {
				got = append(got, page...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != 20 {
			t.Fatalf("slots %v: %d entries read, want 20", slots, len(got))
		}
		for _, e := range got {
			i, _ := benchIndex(e.TimerID)
			if diff := cmp.Diff(a.entry(i), e); diff != "" {
				t.Errorf("slots %v: entry %d (-want +got):\n%s", slots, i, diff)
			}
		}
	}
}

// BenchmarkSweepLinkCodec measures the real Store's codec work per
// occurrence inside BenchmarkSweep's CPU figure: decoding a bucket item
// into a DueEntry (Store.Bucket) and encoding the next link (linkItem, in
// Store.PutLinks), for an entry like the benchmark's. The SDK's own HTTP
// and JSON work is not included.
func BenchmarkSweepLinkCodec(b *testing.B) {
	fireAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	a := newBenchDB(1, fireAt, fireAt, false)
	item := a.item(0)
	const items = 10_000
	start := time.Now()
	for b.Loop() {
		for range items {
			var e DueEntry
			if err := attributevalue.UnmarshalMap(item, &e); err != nil {
				b.Fatal(err)
			}
			e.At += 3600
			if _, err := linkItem(e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*items), "ns/entry")
}
