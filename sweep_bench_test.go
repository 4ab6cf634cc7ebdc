package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Benchmark set-up: the sweeper as deployed (NewSweeper's defaults: 8 shards
// read at once, 64 workers, write batches of 25) over 16 shards, with a
// simulated AWS in which every call takes benchLatency.
const (
	benchShards  = 16
	benchLatency = 10 * time.Millisecond
	// benchPageLimit is the items of one due-index page: DynamoDB's 1 MB
	// page holds about 2,000 timer items of 400-500 bytes.
	benchPageLimit = 2000
	benchQueueURL  = "https://sqs.us-east-1.amazonaws.com/123456789012/callclock-fire"
)

// BenchmarkSweep sweeps 100,000 and 1,000,000 occurrences due within the
// same minute over a simulated AWS (see benchAWS) and reports:
//
//	s/sweep                wall time of one Sweep
//	cpu-us/occurrence      process CPU (user+sys, getrusage) per occurrence:
//	                       the sweeper's, but also the fakes' and the Go
//	                       runtime's (GC) work
//	peak-heap-MB           the largest /memory/classes/heap/objects:bytes
//	                       sampled every 10 ms (live objects and garbage not
//	                       yet swept)
//	sqs-calls/1000occ      SendMessageBatch calls per 1,000 occurrences
//	ddb-req/1000occ        Query pages, TransactWriteItems, lease and release
//	                       updates per 1,000 occurrences
//
// It fails if any occurrence is not enqueued exactly once or not advanced
// exactly once. Run it with
//
//	go test -run='^$' -bench=BenchmarkSweep -benchtime=1x -timeout=20m .
func BenchmarkSweep(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("occurrences=%d,shards=%d", n, benchShards), func(b *testing.B) {
			benchmarkSweep(b, n)
		})
	}
}

func benchmarkSweep(b *testing.B, n int) {
	fireAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	now := fireAt.Add(-30 * time.Second)
	var (
		wall, cpu                            time.Duration
		peak                                 uint64
		sqsCalls, ddbRequests, partial, reqs int64
		bodyBytes                            int64
	)
	for i := 0; i < b.N; i++ {
		sim := newBenchAWS(n, benchShards, fireAt, now)
		sw := NewSweeper(sim, sim, benchQueueURL)
		sw.Shards = benchShards
		sw.Lookahead = 2 * time.Minute
		sw.Now = func() time.Time { return now }
		sw.Log = slog.New(slog.DiscardHandler)

		runtime.GC()
		stopSampler := sampleHeap(10 * time.Millisecond)
		cpu0 := processCPU()
		start := time.Now()
		res, err := sw.Sweep(context.Background(), fmt.Sprintf("bench-%d", i))
		wall += time.Since(start)
		cpu += processCPU() - cpu0
		peak = max(peak, stopSampler())

		if err != nil {
			b.Fatalf("Sweep: %v", err)
		}
		if want := (SweepResult{Shards: benchShards, Due: n, Enqueued: n, Advanced: n}); res != want {
			b.Fatalf("Sweep result %+v, want %+v", res, want)
		}
		if err := sim.verify(); err != nil {
			b.Fatal(err)
		}
		sqsCalls += sim.sqsCalls.Load()
		partial += sim.partialBatches.Load()
		ddbRequests += sim.queries.Load() + sim.transacts.Load() + sim.leases.Load() + sim.releases.Load()
		bodyBytes += sim.bodyBytes.Load()
		reqs += sim.sqsRequests64k.Load()
	}
	occ := float64(n) * float64(b.N)
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/sweep")
	b.ReportMetric(float64(cpu.Microseconds())/occ, "cpu-us/occurrence")
	b.ReportMetric(float64(peak)/1e6, "peak-heap-MB")
	b.ReportMetric(float64(sqsCalls)*1000/occ, "sqs-calls/1000occ")
	b.ReportMetric(float64(reqs)*1000/occ, "sqs-billed-req/1000occ")
	b.ReportMetric(float64(ddbRequests)*1000/occ, "ddb-req/1000occ")
	b.ReportMetric(float64(partial)/float64(b.N), "partial-batches/sweep")
	b.ReportMetric(float64(bodyBytes)/occ, "body-bytes/occurrence")
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

// benchAWS simulates, in process, exactly the calls the sweeper makes:
// the dueStore (one Query per page, TransactWriteItems, the lease and
// release updates) and SQS SendMessageBatch. Each call sleeps latency and
// is counted.
//
// It holds no timers: occurrence i (0 <= i < n) is timer "t%07d" in shard
// i%shards, an hourly timer due at fireAt with small callback data. Due
// generates each page's timers from their indices when the page is asked
// for and keeps nothing once the page is handed over, so the heap shows
// what the sweeper itself keeps. What it does keep is two bitsets per
// check, n/4 bytes in all (250 KB for a million).
type benchAWS struct {
	n, shards  int
	pageLimit  int
	latency    time.Duration
	fireAt     time.Time
	next       time.Time // fireAt + 1 h: where every timer must move
	wantDelay  int32
	minute     int
	shardNames []string

	queries, transacts, leases, releases atomic.Int64
	sqsCalls, partialBatches, bodyBytes  atomic.Int64
	sqsRequests64k                       atomic.Int64 // billed SQS requests: one per 64 KB of payload

	enqueued, enqueuedTwice bitset
	advanced, advancedTwice bitset

	mu       sync.Mutex
	leaseMap map[string]string // shard → owner
	problem  atomic.Pointer[string]
}

func newBenchAWS(n, shards int, fireAt, now time.Time) *benchAWS {
	a := &benchAWS{
		n: n, shards: shards, pageLimit: benchPageLimit, latency: benchLatency,
		fireAt: fireAt, next: fireAt.Add(time.Hour), wantDelay: delaySeconds(fireAt, now), minute: fireAt.Minute(),
		enqueued: newBitset(n), enqueuedTwice: newBitset(n), advanced: newBitset(n), advancedTwice: newBitset(n),
		leaseMap: map[string]string{},
	}
	for s := range shards {
		a.shardNames = append(a.shardNames, fmt.Sprintf("shard%d", s))
	}
	return a
}

// fail records the first problem found; verify reports it.
func (a *benchAWS) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.problem.CompareAndSwap(nil, &msg)
}

func (a *benchAWS) verify() error {
	if p := a.problem.Load(); p != nil {
		return errors.New(*p)
	}
	for _, c := range []struct {
		what        string
		once, twice bitset
	}{{"enqueued", a.enqueued, a.enqueuedTwice}, {"advanced", a.advanced, a.advancedTwice}} {
		if got := c.once.count(); got != a.n {
			return fmt.Errorf("%d of %d occurrences %s", got, a.n, c.what)
		}
		if dup := c.twice.count(); dup != 0 {
			return fmt.Errorf("%d occurrences %s more than once", dup, c.what)
		}
	}
	return nil
}

// timerID is "t" and i in seven digits.
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

// timer builds occurrence i as the real store would decode it.
func (a *benchAWS) timer(i int) *Timer {
	return &Timer{
		ID:             benchTimerID(i),
		ShardID:        a.shardNames[i%a.shards],
		MinuteOfHour:   a.minute,
		CatchUpSeconds: DefaultCatchUpSeconds,
		CallbackData:   json.RawMessage(`{"order":` + strconv.Itoa(i) + `,"kind":"bench"}`),
		NextFireAt:     a.fireAt,
		CreatedAt:      a.fireAt.Add(-24 * time.Hour),
		UpdatedAt:      a.fireAt.Add(-24 * time.Hour),
		Version:        1,
	}
}

func (a *benchAWS) Due(ctx context.Context, shard string, until time.Time, page func([]*Timer) error) error {
	s, err := strconv.Atoi(strings.TrimPrefix(shard, "shard"))
	if err != nil || s < 0 || s >= a.shards {
		return fmt.Errorf("bench: no shard %q", shard)
	}
	count := 0 // occurrences s, s+shards, ... below n
	if s < a.n {
		count = (a.n-1-s)/a.shards + 1
	}
	if a.fireAt.After(until) {
		count = 0
	}
	for k := 0; ; {
		a.queries.Add(1)
		time.Sleep(a.latency)
		if err := ctx.Err(); err != nil {
			return err
		}
		m := min(a.pageLimit, count-k)
		timers := make([]*Timer, m)
		for j := range m {
			timers[j] = a.timer(s + (k+j)*a.shards)
		}
		k += m
		if err := page(timers); err != nil {
			return err
		}
		// A full page comes with a LastEvaluatedKey: one more request.
		if m < a.pageLimit {
			return nil
		}
	}
}

func (a *benchAWS) Advance(_ context.Context, steps []Step) ([]StepOutcome, error) {
	a.transacts.Add(1)
	time.Sleep(a.latency)
	if len(steps) > maxTransactItems {
		return nil, fmt.Errorf("advance: %d steps; at most %d per call", len(steps), maxTransactItems)
	}
	out := make([]StepOutcome, len(steps))
	for j, st := range steps {
		i, ok := benchIndex(st.Timer.ID)
		if !ok || i >= a.n || st.Missed || !st.Timer.NextFireAt.Equal(a.fireAt) || !st.Next.Equal(a.next) || st.Timer.Version != 1 {
			a.fail("bad step %+v (timer %s at %v)", st, st.Timer.ID, st.Timer.NextFireAt)
			out[j] = StepConflict
			continue
		}
		a.advanced.mark(i, a.advancedTwice)
		out[j] = StepApplied
	}
	return out, nil
}

func (a *benchAWS) Lease(_ context.Context, shard, owner, _ string, _ time.Time, _ time.Duration) (bool, error) {
	a.leases.Add(1)
	time.Sleep(a.latency)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leaseMap[shard] != "" {
		return false, nil
	}
	a.leaseMap[shard] = owner
	return true, nil
}

func (a *benchAWS) Release(_ context.Context, shard, owner, _ string, completed bool, _ time.Time) error {
	a.releases.Add(1)
	time.Sleep(a.latency)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leaseMap[shard] != owner {
		a.fail("release of %s by %s, held by %q", shard, owner, a.leaseMap[shard])
	}
	if !completed {
		a.fail("%s released as not completed", shard)
	}
	delete(a.leaseMap, shard)
	return nil
}

const benchBodyPrefix = `{"timerId":"`

func (a *benchAWS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
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
			if err := json.Unmarshal([]byte(body), &m); err != nil || !m.ScheduledAt.Equal(a.fireAt) || m.Version != 1 ||
				string(m.CallbackData) != `{"order":`+strconv.Itoa(i)+`,"kind":"bench"}` {
				a.fail("message %q decodes to %+v, %v", body, m, err)
			}
		}
		if e.DelaySeconds != a.wantDelay {
			a.fail("%s: DelaySeconds %d, want %d", rest[:end], e.DelaySeconds, a.wantDelay)
		}
		a.enqueued.mark(i, a.enqueuedTwice)
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: e.Id})
	}
	a.bodyBytes.Add(int64(size))
	a.sqsRequests64k.Add(int64(max(1, (size+64*1024-1)/(64*1024))))
	return out, nil
}

// bitset is a fixed set of small integers, safe for concurrent marking.
type bitset []atomic.Uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

// mark adds i, or adds it to dup when it was already there.
func (s bitset) mark(i int, dup bitset) {
	bit := uint64(1) << (i % 64)
	if s[i/64].Or(bit)&bit != 0 {
		dup[i/64].Or(bit)
	}
}

func (s bitset) count() int {
	n := 0
	for i := range s {
		n += bits.OnesCount64(s[i].Load())
	}
	return n
}

// BenchmarkSweepDueDecode measures what BenchmarkSweep leaves out of the
// real Store.Due: decoding a DynamoDB item into a Timer (fromItem), for a
// timer like the benchmark's. The SDK's own HTTP and JSON work is not
// included either.
func BenchmarkSweepDueDecode(b *testing.B) {
	fireAt := time.Date(2026, 11, 22, 10, 45, 0, 0, time.UTC)
	sim := newBenchAWS(1, 1, fireAt, fireAt)
	av, err := attributevalue.MarshalMap(toItem(sim.timer(123456)))
	if err != nil {
		b.Fatal(err)
	}
	const items = 10_000
	start := time.Now()
	for b.Loop() {
		for range items {
			if _, err := fromItem(av); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*items), "ns/item")
}
