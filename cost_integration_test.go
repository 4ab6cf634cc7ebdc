package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/middleware"
)

// The three functions of the stack, as the ledger names them.
const (
	fnAPI     = "api"
	fnSweeper = "sweeper"
	fnInvoker = "invoker"
)

var costFunctions = []string{fnAPI, fnSweeper, fnInvoker}

// costPart is one function's SDK clients, with the recorder under them
// and the SDK's own count of its attempts.
type costPart struct {
	fn       string
	clients  awsClients
	rec      *recorder
	attempts *attemptCounter
}

// newCostPart builds SDK clients for fn whose every request goes through a
// recorder of its own, then through localClient as the local stack's do
// (DynamoDB one request at a time).
func newCostPart(t *testing.T, endpoint, fn string, ledger *costLedger, errs chan error) *costPart {
	t.Helper()
	p := &costPart{fn: fn, attempts: &attemptCounter{}}
	p.rec = &recorder{fn: fn, ledger: ledger, errs: errs}
	count := func(st *middleware.Stack) error {
		// After the retry middleware of the finalize step: once per attempt.
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("costAttempts",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				p.attempts.n.Add(1)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithBaseEndpoint(endpoint),
		config.WithAPIOptions([]func(*middleware.Stack) error{count}),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return testCreds, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	// The recorder goes under the SDK's own HTTP client (which keeps what
	// LoadDefaultConfig configured, such as a CA bundle).
	p.rec.next = cfg.HTTPClient
	if p.rec.next == nil {
		p.rec.next = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = p.rec
	c := awsClients{DynamoDB: dynamodb.NewFromConfig(cfg), SQS: sqs.NewFromConfig(cfg), SSM: ssm.NewFromConfig(cfg)}
	p.clients = c.forLocalEndpoint()
	return p
}

// costClock is the fake clock every part reads.
type costClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *costClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *costClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Before(c.now) {
		panic(fmt.Sprintf("the cost clock goes back from %s to %s", c.now, t))
	}
	c.now = t
}

// costKind is one kind of timer: the PUT body's target part.
type costKind struct {
	name string
	body func(id, target string) string // the JSON fields besides the schedule
}

var costKinds = []costKind{
	{"http", func(id, target string) string {
		return `"http":{"url":"` + target + `/t/` + id + `"}`
	}},
	{"callback", func(id, target string) string {
		return `"timerCallbackData":{"timer":"` + id + `","note":"callback data of about the size a user sends"}`
	}},
	{"grouped", func(id, target string) string {
		return `"group":"cost-group","http":{"url":"` + target + `/t/` + id + `"}`
	}},
	{"secrets", func(id, target string) string {
		return `"http":{"url":"` + target + `/t/` + id + `","headers":{"Authorization":"Bearer aws-secret(/callclock/cost/token)"}}`
	}},
	{"signed", func(id, target string) string {
		return `"http":{"url":"` + target + `/t/` + id + `?at=callclock(scheduled-time)","signing":{"secret":"aws-secret(/callclock/cost/signing-key)"}}`
	}},
	{"limited", func(id, target string) string { // the limit costLimit, set up before the timers
		return `"http":{"url":"` + target + `/t/` + id + `","limitKey":"cost-dest"}`
	}},
	{"notify", func(id, target string) string {
		return `"http":{"url":"` + target + `/t/` + id + `"},"notify":{"webhook":"` + target + `/notify/` + id + `","onSuccess":true}`
	}},
	// Issue 14's controls: the run lease of overlap (its two writes), and
	// pauseAfterFailures, which costs a delivered occurrence nothing.
	{"overlap", func(id, target string) string {
		return `"overlap":"skip","http":{"url":"` + target + `/t/` + id + `"}`
	}},
	{"selfpause", func(id, target string) string {
		return `"pauseAfterFailures":3,"http":{"url":"` + target + `/t/` + id + `"}`
	}},
	{"spread", func(id, target string) string {
		return `"spreadSeconds":` + strconv.Itoa(costSpread["spread"]) + `,"http":{"url":"` + target + `/t/` + id + `"}`
	}},
}

// costSpread is the spread window of a kind (spread.go): its firings are
// drained at their planned instants, as SQS would hand them out. 20 s, so
// that a planned instant stays before the next step of the fake clock
// (the empty sweep 20 s after a firing). Its messages are never capped
// here (the sweep runs at the instant, the delay is the offset): a capped
// one's extra calls are counted by TestSpreadSweepToDelivery.
var costSpread = map[string]int{"spread": 20}

// costSchedules are the schedules each kind runs on: one that repeats
// within a week, one that does not, and a one-shot.
var costSchedules = []struct{ name, class string }{
	{"rate(1 minute)", "weekly"},
	{"cron(0 9 1 * ? *)", "monthly"},
	{"at", "once"},
}

// costDeliveries counts what the targets received: HTTP calls and
// notifications by path and scheduled instant, callback messages by timer
// and instant.
type costDeliveries struct {
	mu     sync.Mutex
	got    map[string]int // "id scheduledAt" -> deliveries
	notify map[string]int // id -> notifications
}

func (d *costDeliveries) add(key string) { d.mu.Lock(); d.got[key]++; d.mu.Unlock() }
func (d *costDeliveries) count(key string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got[key]
}

// TestIntegrationCost runs timers of every kind (http, callback, grouped,
// with secrets, signed, with notify) on rate(1 minute), a monthly cron and at(),
// through the real API, sweeper and invoker on moto_server, each function
// on SDK clients of its own with a recorder under them, and prices every
// DynamoDB, SQS and SSM request per firing (see cost_test.go for the
// rules). The clock is fake and the sweeper's look-ahead 30 s, so that
// every fire message's delay is 0 s on moto's real clock and a firing is
// swept once, at its instant. It asserts only what holds for any table
// layout: every occurrence delivered exactly once, every request the SDK
// attempted seen by a recorder, every write priced. The figures are
// logged; with COST_UPDATE=1 they replace BENCHMARKS.md's cost table.
// CALLCLOCK_COST_TARGETS=1 also fails when a firing costs more than issue
// 11's write-unit targets.
func TestIntegrationCost(t *testing.T) {
	provClients, provCfg := motoStack(t, 0)
	ctx := context.Background()
	endpoint := aws.ToString(provClients.DynamoDB.Options().BaseEndpoint)
	cfg, err := configFromEnv(func(string) string { return "" }) // the deployed defaults: shards, secret cache
	if err != nil {
		t.Fatal(err)
	}
	cfg.Table, cfg.FireQueueURL, cfg.CallbackQueueURL, cfg.DeadLetterQueueURL =
		provCfg.Table, provCfg.FireQueueURL, provCfg.CallbackQueueURL, provCfg.DeadLetterQueueURL
	cfg.AllowPrivateTargets = true // the targets are httptest servers on loopback
	queueRoles.Store(cfg.FireQueueURL, "fire")
	queueRoles.Store(cfg.CallbackQueueURL, "callback")
	queueRoles.Store(cfg.DeadLetterQueueURL, "fire-dlq")

	ledger := newCostLedger(endpoint)
	ledger.zeroDelays = true
	errs := make(chan error, 16)
	parts := map[string]*costPart{}
	for _, fn := range costFunctions {
		parts[fn] = newCostPart(t, endpoint, fn, ledger, errs)
	}
	// The raw reads need an Authorization header moto accepts; any signed
	// request gives one.
	if _, err := parts[fnAPI].clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &cfg.Table}); err != nil {
		t.Fatal(err)
	}
	schema, err := ledger.schema(cfg.Table)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("table %s: key %v; indexes: %s", cfg.Table, schema.Table.Keys, describeIndexes(schema))

	clock := &costClock{now: time.Date(2027, 1, 4, 8, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	api := newRouter(cfg, parts[fnAPI].clients, quiet).API.(*API)
	api.Now = clock.Now
	sw := newRouter(cfg, parts[fnSweeper].clients, quiet).Sweeper.(*Sweeper)
	sw.Now, sw.Metrics = clock.Now, nil
	// Only the occurrences due at the sweep's instant, the start of their
	// minute: the one minute bucket wholly within a minute's look-ahead.
	// Their delay is 0 s, which moto would hold in real time. Each
	// occurrence is still swept once.
	sw.Lookahead = time.Minute
	inv := newRouter(cfg, parts[fnInvoker].clients, quiet).Invoker.(*Invoker)
	inv.Now, inv.Metrics = clock.Now, nil
	probe := newRouter(cfg, provClients, quiet).API.(*API) // unrecorded: the test's own reads
	probe.Now = clock.Now
	putSecret(t, provClients, "/callclock/cost/token", "cost-s3cr3t")
	putSecret(t, provClients, "/callclock/cost/signing-key", "cost-signing-k3y")
	// The limited kind's destination: a rate and an in-flight bound, so
	// that a firing pays for both (unrecorded: set once, not per firing).
	if resp := probe.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut, Path: "/limits/cost-dest",
		Body: `{"perSecond":10,"inFlight":5}`}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT /limits/cost-dest: %d %s", resp.StatusCode, resp.Body)
	}

	deliveries := &costDeliveries{got: map[string]int{}, notify: map[string]int{}}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if id, ok := strings.CutPrefix(r.URL.Path, "/notify/"); ok {
			deliveries.mu.Lock()
			deliveries.notify[id]++
			deliveries.mu.Unlock()
			return
		}
		deliveries.add(strings.TrimPrefix(r.URL.Path, "/t/") + " " + r.Header.Get("X-Callclock-Scheduled-At"))
	}))
	defer target.Close()

	handle := func(stage, method, path, body string) (int, string) {
		ledger.setLabel(stage)
		start, raw0 := time.Now(), ledger.rawNanos.Load()
		resp := api.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: body})
		ledger.add(call{Fn: fnAPI, Service: "lambda", Op: "Invoke", Synthetic: true, Invocations: 1,
			Seconds: ledger.since(start, raw0)})
		return resp.StatusCode, resp.Body
	}
	nextFire := func(id string) time.Time {
		resp := probe.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic/" + id})
		var doc struct{ NextFireAt *time.Time }
		json.Unmarshal([]byte(resp.Body), &doc)
		if doc.NextFireAt == nil {
			return time.Time{}
		}
		return *doc.NextFireAt
	}

	// drain hands the fire queue's messages to the invoker, as Lambda's
	// event source would, in batches of at most 10, until every expected
	// delivery arrived (or a deadline). The poller's ReceiveMessage and
	// DeleteMessageBatch are priced from the count of messages, as the
	// event source mapping makes them; the test's own polls are not.
	drain := func(stage string, expect []string) (delivered []string) {
		t.Helper()
		ledger.setLabel(stage)
		deliveries.mu.Lock()
		before := map[string]int{}
		for k, v := range deliveries.got {
			before[k] = v
		}
		deliveries.mu.Unlock()
		defer func() {
			deliveries.mu.Lock()
			for k, v := range deliveries.got {
				if before[k] == 0 && v > 0 {
					delivered = append(delivered, k)
				}
			}
			deliveries.mu.Unlock()
		}()
		done := func() bool {
			for _, k := range expect {
				if deliveries.count(k) == 0 {
					return false
				}
			}
			return true
		}
		deadline := time.Now().Add(15 * time.Second)
		for first := true; first || !done() && time.Now().Before(deadline); first = false {
			out, err := provClients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &cfg.FireQueueURL,
				MaxNumberOfMessages: 10, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Messages) > 0 {
				ev := events.SQSEvent{}
				payload := 0
				for _, m := range out.Messages {
					attrs := map[string]string{}
					for k, v := range m.Attributes {
						attrs[k] = v
					}
					ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId),
						ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), Attributes: attrs,
						EventSource: "aws:sqs"})
					payload += len(aws.ToString(m.Body))
				}
				n := float64(len(out.Messages))
				share := max(n/10, float64(payload)/65536)
				ledger.add(call{Fn: fnInvoker, Service: "sqs", Op: "ReceiveMessage(fire, event source)", Synthetic: true, ExactSQS: 1, ScaleSQS: share})
				start, raw0 := time.Now(), ledger.rawNanos.Load()
				resp := inv.Invoke(ctx, ev)
				secs := ledger.since(start, raw0)
				ledger.add(call{Fn: fnInvoker, Service: "lambda", Op: "Invoke", Synthetic: true, Invocations: n / 10,
					Seconds: n * secs / 10})
				del := settledEntries(out.Messages, resp)
				if len(del) > 0 {
					ledger.add(call{Fn: fnInvoker, Service: "sqs", Op: "DeleteMessageBatch(fire, event source)", Synthetic: true, ExactSQS: 1, ScaleSQS: share})
					if _, err := provClients.SQS.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &cfg.FireQueueURL, Entries: del}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Callback deliveries: the user's Lambda reads them; the test
			// only counts them.
			cb, err := provClients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &cfg.CallbackQueueURL,
				MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range cb.Messages {
				a := m.MessageAttributes
				deliveries.add(aws.ToString(a["TimerId"].StringValue) + " " + aws.ToString(a["ScheduledAt"].StringValue))
				provClients.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &cfg.CallbackQueueURL, ReceiptHandle: m.ReceiptHandle})
			}
			if len(out.Messages) == 0 && len(cb.Messages) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if !done() {
			t.Errorf("%s: not every expected delivery arrived within 15 s: want %v", stage, expect)
		}
		return delivered
	}
	sweep := func(stage string) {
		t.Helper()
		// Steady state: the sweeps before this one ran, a minute apart, and
		// read up to this minute, so this one reads only its own minutes, not the weeks the clock
		// jumped (an outage's backlog). Unrecorded: the test's own write.
		m := strconv.FormatInt(unixMinute(clock.Now()), 10)
		if _, err := provClients.DynamoDB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &cfg.Table, Key: sweepKey(),
			UpdateExpression:          aws.String("SET through = :m"),
			ConditionExpression:       aws.String("attribute_not_exists(through) OR through < :m"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":m": &ddbtypes.AttributeValueMemberN{Value: m}},
		}); err != nil && !strings.Contains(err.Error(), "ConditionalCheckFailed") {
			t.Fatal(err)
		}
		ledger.setLabel(stage)
		start, raw0 := time.Now(), ledger.rawNanos.Load()
		if _, err := sw.Sweep(ctx, ""); err != nil {
			t.Errorf("%s: sweep: %v", stage, err)
		}
		ledger.add(call{Fn: fnSweeper, Service: "lambda", Op: "Invoke", Synthetic: true, Invocations: 1,
			Seconds: ledger.since(start, raw0)})
	}

	var expected []string // every "id instant" that must be delivered exactly once
	runs := map[string]*costRun{}
	for _, kind := range costKinds {
		for _, sched := range costSchedules {
			prefix := kind.name + "/" + sched.class
			run := &costRun{kind: kind.name, schedule: sched.name, class: sched.class}
			runs[prefix] = run
			t0 := clock.Now().Truncate(time.Minute).Add(2 * time.Minute)
			clock.set(t0)
			type occurrence struct {
				ids []string
				at  time.Time
			}
			var ids []string
			var firings []occurrence
			switch sched.class {
			case "once":
				for i := 1; i <= 3; i++ {
					id := fmt.Sprintf("%s-at-%d", kind.name, i)
					// Well beyond the sweeper's look-ahead, so that no
					// short-notice path enqueues it at the PUT with a delay
					// moto would hold in real time.
					at := t0.Add(time.Duration(10*i) * time.Minute)
					ids = append(ids, id)
					firings = append(firings, occurrence{[]string{id}, at})
				}
			default:
				ids = []string{kind.name + "-" + sched.class}
			}
			for i, id := range ids {
				expr := sched.name
				if sched.class == "once" {
					expr = "at(" + firings[i].at.Format("2006-01-02T15:04:05") + ")"
				}
				body := `{"schedule":"` + expr + `",` + kind.body(id, target.URL) + `}`
				if code, resp := handle(prefix+"/put", http.MethodPut, "/periodic/"+id, body); code != http.StatusCreated {
					t.Fatalf("PUT %s: %d %s", id, code, resp)
				}
				run.puts++
			}
			if code, resp := handle(prefix+"/get", http.MethodGet, "/periodic/"+ids[0], ""); code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", ids[0], code, resp)
			}
			run.gets++
			// A PUT may enqueue an occurrence itself (one due now): deliver
			// what it sent. Those occurrences count as expected, and their
			// delivery in no figure.
			expected = append(expected, drain(prefix+"/put-delivery", nil)...)

			if sched.class != "once" {
				// Past the occurrences the PUT sent itself (short notice):
				// from here on they are the sweeper's.
				clock.set(clock.Now().Add(shortNotice + time.Minute))
				// 1 firing to warm up (the first one writes what later ones
				// update), then 3 in steady state.
				at := nextFire(ids[0])
				for i := 0; i < 4; i++ {
					if at.IsZero() {
						t.Fatalf("%s: no next occurrence after %d firings", prefix, i)
					}
					firings = append(firings, occurrence{ids, at})
					clock.set(at)
					stage := prefix + "/steady"
					if i == 0 {
						stage = prefix + "/warmup"
					}
					sweep(stage)
					clock.set(at.Add(spreadOffset(ids[0], costSpread[kind.name]))) // its planned instant
					key := ids[0] + " " + at.UTC().Format(time.RFC3339)
					expected = append(expected, key)
					drain(stage, []string{key})
					if stage == prefix+"/steady" {
						run.firings++
						run.sweeps++
					}
					if i == 0 {
						// A sweep with nothing due, in the same state: the
						// per-sweep overhead, left out of the per-firing figures.
						clock.set(at.Add(20 * time.Second))
						sweep(prefix + "/empty")
					}
					clock.set(maxTime(clock.Now(), at.Add(time.Second))) // past the firing second: nextFireAt is the next one
					at = nextFire(ids[0])
				}
			} else {
				for i, f := range firings {
					clock.set(f.at)
					sweep(prefix + "/steady")
					clock.set(f.at.Add(spreadOffset(f.ids[0], costSpread[kind.name]))) // its planned instant
					key := f.ids[0] + " " + f.at.UTC().Format(time.RFC3339)
					expected = append(expected, key)
					drain(prefix+"/steady", []string{key})
					run.firings++
					run.sweeps++
					if i == 0 {
						clock.set(f.at.Add(20 * time.Second))
						sweep(prefix + "/empty")
					}
				}
			}
			if sched.class == "weekly" {
				// A manual fire: the API's enqueue and the delivery.
				clock.set(clock.Now().Add(25 * time.Second))
				now := clock.Now()
				if code, resp := handle(prefix+"/manual", http.MethodPost, "/periodic/"+ids[0]+"/fire", ""); code != http.StatusAccepted {
					t.Fatalf("POST %s/fire: %d %s", ids[0], code, resp)
				}
				key := ids[0] + " " + now.UTC().Format(time.RFC3339)
				expected = append(expected, key)
				drain(prefix+"/manual", []string{key})
				run.manuals++
			}
			for _, id := range ids {
				if code, resp := handle(prefix+"/delete", http.MethodDelete, "/periodic/"+id, ""); code != http.StatusOK {
					t.Fatalf("DELETE %s: %d %s", id, code, resp)
				}
				run.deletes++
			}
		}
	}

	// Every occurrence delivered exactly once, and nothing else delivered.
	deliveries.mu.Lock()
	want := map[string]int{}
	for _, k := range expected {
		want[k] = 1
	}
	for k, n := range deliveries.got {
		if want[k] != n {
			t.Errorf("%s delivered %d times, want %d", k, n, want[k])
		}
	}
	for k := range want {
		if deliveries.got[k] == 0 {
			t.Errorf("%s never delivered", k)
		}
	}
	for _, id := range []string{"notify-weekly", "notify-monthly"} {
		if deliveries.notify[id] == 0 {
			t.Errorf("%s: no notification reached the webhook", id)
		}
	}
	deliveries.mu.Unlock()
	// The recorder saw every attempt the SDK made, and priced every write.
	for _, fn := range costFunctions {
		p := parts[fn]
		if seen, tried := p.rec.seen.Load(), p.attempts.n.Load(); seen != tried {
			t.Errorf("%s: the recorder saw %d requests, the SDK made %d attempts", fn, seen, tried)
		}
	}
	close(errs)
	for err := range errs {
		t.Errorf("pricing: %v", err)
	}
	if t.Failed() {
		return
	}

	if n := ledger.delayed.Load(); n > 0 {
		t.Logf("%d messages were sent with a delay (counted from the fake clock), dropped so that moto does not hold them in real time", n)
	}
	mem, err := templateMemory("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rep := buildCostReport(ledger.snapshot(), runs, mem, dueParts, describeIndexes(schema))
	for _, line := range strings.Split(rep.text(), "\n") {
		t.Log(line)
	}
	if os.Getenv("COST_UPDATE") == "1" || *costUpdate {
		if err := rep.updateBenchmarks("BENCHMARKS.md"); err != nil {
			t.Fatal(err)
		}
		t.Log("BENCHMARKS.md's cost table rewritten")
	}
	if os.Getenv("CALLCLOCK_COST_TARGETS") == "1" {
		for _, key := range rep.order {
			r := rep.rows[key]
			limit := 3.0
			if r.class == "weekly" {
				limit = 2
			}
			if r.kind == "overlap" {
				limit += 2 // the run lease's take and end, which the README prices
			}
			if w := r.total.wcu(); w > limit+1e-9 {
				t.Errorf("%s on %s: %.2f write units per firing, above issue 11's target of %.0f", r.kind, r.schedule, w, limit)
			}
		}
	}
}

// describeIndexes says what DescribeTable told of the indexes.
func describeIndexes(s *tableSchema) string {
	var parts []string
	for _, ix := range s.Indexes {
		parts = append(parts, fmt.Sprintf("%s %v %s", ix.Name, ix.Keys, ix.Projection))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// TestIntegrationCostRecorder checks the recorder's pricing on moto_server
// against writes whose units the AWS rules give by hand, on a table of its
// own with a KEYS_ONLY index and a sparse ALL one.
func TestIntegrationCostRecorder(t *testing.T) {
	endpoint := needMoto(t)
	ctx := context.Background()
	table := uniqueNames(t).Table
	plain := motoClients(t, endpoint)
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	n := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberN{Value: v} }
	_, err := plain.DynamoDB.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: &table, BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: "S"},
			{AttributeName: aws.String("shard"), AttributeType: "S"}, {AttributeName: aws.String("at"), AttributeType: "N"},
			{AttributeName: aws.String("group"), AttributeType: "S"}},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: "HASH"}},
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{
			{IndexName: aws.String("due"), KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("shard"), KeyType: "HASH"},
				{AttributeName: aws.String("at"), KeyType: "RANGE"}}, Projection: &ddbtypes.Projection{ProjectionType: "KEYS_ONLY"}},
			{IndexName: aws.String("byGroup"), KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("group"), KeyType: "HASH"}},
				Projection: &ddbtypes.Projection{ProjectionType: "ALL"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	ledger := newCostLedger(endpoint)
	errs := make(chan error, 16)
	p := newCostPart(t, endpoint, "test", ledger, errs)
	db := p.clients.DynamoDB
	big := strings.Repeat("x", 1500)
	update := func(id, expr string, vals map[string]ddbtypes.AttributeValue) error {
		names := map[string]string{}
		for k, v := range map[string]string{"#g": "group", "#at": "at"} {
			if strings.Contains(expr, k) {
				names[k] = v
			}
		}
		if len(names) == 0 {
			names = nil
		}
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &table, Key: map[string]ddbtypes.AttributeValue{"id": s(id)},
			UpdateExpression: &expr, ExpressionAttributeValues: vals, ExpressionAttributeNames: names})
		return err
	}
	steps := []struct {
		what string
		do   func() error
		wcu  map[string]float64
		rcu  float64
	}{
		{"a new item, in the KEYS_ONLY index only", func() error {
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]ddbtypes.AttributeValue{
				"id": s("a"), "shard": s("s0"), "at": n("100"), "x": s("1")}})
			return err
		}, map[string]float64{"": 1, "due": 1}, 0},
		{"its index key moved: a delete and a put there", func() error {
			return update("a", "SET #at = :v", map[string]ddbtypes.AttributeValue{":v": n("160")})
		}, map[string]float64{"": 1, "due": 2}, 0},
		{"an attribute KEYS_ONLY does not project", func() error {
			return update("a", "SET x = :v", map[string]ddbtypes.AttributeValue{":v": s("2")})
		}, map[string]float64{"": 1}, 0},
		{"into the sparse ALL index", func() error {
			return update("a", "SET #g = :v", map[string]ddbtypes.AttributeValue{":v": s("G")})
		}, map[string]float64{"": 1, "byGroup": 1}, 0},
		{"any attribute, under ALL", func() error {
			return update("a", "SET x = :v", map[string]ddbtypes.AttributeValue{":v": s("3")})
		}, map[string]float64{"": 1, "byGroup": 1}, 0},
		{"a failed condition still costs the table's unit", func() error {
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: map[string]ddbtypes.AttributeValue{"id": s("a")},
				ConditionExpression: aws.String("attribute_not_exists(id)")})
			if err == nil {
				return fmt.Errorf("the condition held")
			}
			return nil
		}, map[string]float64{"": 1}, 0},
		{"a transaction: 2 units per KB, the index writes once", func() error {
			_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
				{Update: &ddbtypes.Update{TableName: &table, Key: map[string]ddbtypes.AttributeValue{"id": s("a")},
					UpdateExpression: aws.String("SET #at = :v"), ExpressionAttributeNames: map[string]string{"#at": "at"},
					ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": n("220")}}},
				{Put: &ddbtypes.Put{TableName: &table, Item: map[string]ddbtypes.AttributeValue{"id": s("b"), "shard": s("s0"), "at": n("5"), "x": s(big)}}},
			}})
			return err
		}, map[string]float64{"": 2 + 4, "due": 2 + 1, "byGroup": 1}, 0},
		{"a batch: the 1.5 KB delete 2, the put 1", func() error {
			_, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: {
				{DeleteRequest: &ddbtypes.DeleteRequest{Key: map[string]ddbtypes.AttributeValue{"id": s("b")}}},
				{PutRequest: &ddbtypes.PutRequest{Item: map[string]ddbtypes.AttributeValue{"id": s("c"), "shard": s("s1"), "at": n("7")}}},
			}}})
			return err
		}, map[string]float64{"": 3, "due": 2}, 0},
		{"a strongly consistent read of 1 KB", func() error {
			_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: map[string]ddbtypes.AttributeValue{"id": s("a")}, ConsistentRead: aws.Bool(true)})
			return err
		}, nil, 1},
		{"an eventually consistent read of nothing", func() error {
			_, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: map[string]ddbtypes.AttributeValue{"id": s("none")}})
			return err
		}, nil, 0.5},
		{"a query on an index, filtered: the items before the filter", func() error {
			_, err := db.Query(ctx, &dynamodb.QueryInput{TableName: &table, IndexName: aws.String("due"),
				KeyConditionExpression: aws.String("shard = :s"), FilterExpression: aws.String("#at > :big"),
				ExpressionAttributeNames:  map[string]string{"#at": "at"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":s": s("s0"), ":big": n("1000")}})
			return err
		}, nil, float64(itemSize(avItem{"id": av{"S": "a"}, "shard": av{"S": "s0"}, "at": av{"N": "220"}})) / 4096 / 2},
		{"a delete: the item's size, and out of both indexes", func() error {
			_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table, Key: map[string]ddbtypes.AttributeValue{"id": s("a")}})
			return err
		}, map[string]float64{"": 1, "due": 1, "byGroup": 1}, 0},
	}
	for _, st := range steps {
		ledger.setLabel(st.what)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
	}
	got := map[string]tally{}
	for _, c := range ledger.snapshot() {
		tl, ok := got[c.Label]
		if !ok {
			tl = newTally()
		}
		tl.add(c)
		got[c.Label] = tl
	}
	for _, st := range steps {
		g := got[st.what]
		w := map[string]float64{}
		for k, v := range g.wcuBy {
			if v != 0 {
				w[k] = v
			}
		}
		if st.wcu == nil {
			st.wcu = map[string]float64{}
		}
		if fmt.Sprint(w) != fmt.Sprint(st.wcu) {
			t.Errorf("%s: write units %v, want %v", st.what, w, st.wcu)
		}
		if math.Abs(g.scaleRCU-st.rcu) > 1e-9 {
			t.Errorf("%s: read units %v, want %v", st.what, g.scaleRCU, st.rcu)
		}
	}
	if seen, tried := p.rec.seen.Load(), p.attempts.n.Load(); seen != tried || seen < int64(len(steps)) {
		t.Errorf("the recorder saw %d requests, the SDK made %d attempts", seen, tried)
	}
	close(errs)
	for err := range errs {
		t.Errorf("pricing: %v", err)
	}
}
