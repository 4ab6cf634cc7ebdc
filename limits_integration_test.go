package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// limitTarget records the calls of one destination: when each arrived,
// for which timer, and the most at once.
type limitTarget struct {
	*httptest.Server
	mu            sync.Mutex
	at            map[string][]time.Time
	running, most int
}

func newLimitTarget(t *testing.T, hold time.Duration) *limitTarget {
	lt := &limitTarget{at: map[string][]time.Time{}}
	lt.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lt.mu.Lock()
		lt.at[r.Header.Get("X-Callclock-Timer-Id")] = append(lt.at[r.Header.Get("X-Callclock-Timer-Id")], time.Now())
		lt.running++
		lt.most = max(lt.most, lt.running)
		lt.mu.Unlock()
		time.Sleep(hold)
		lt.mu.Lock()
		lt.running--
		lt.mu.Unlock()
	}))
	t.Cleanup(lt.Close)
	return lt
}

// calls is the number of calls, and the calls per UTC second.
func (lt *limitTarget) calls() (int, map[int64]int) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	n, per := 0, map[int64]int{}
	for _, ts := range lt.at {
		for _, at := range ts {
			n++
			per[at.Unix()]++
		}
	}
	return n, per
}

// TestIntegrationLimits is the test on the local stack: a limit
// of 2 per second holds with 50 timers due at once, across four invoker
// executions consuming the fire queue concurrently (each an Invoker of
// its own, as Lambda runs them): every occurrence is delivered once, no
// second has more than 2 calls at the target, and the history shows the
// waits. Beside them, a limit of one call in flight holds for a slow
// target. The real API, invoker and Store run on moto_server.
func TestIntegrationLimits(t *testing.T) {
	clients, cfg := motoStack(t, 0)
	cfg.Shards, cfg.AllowPrivateTargets = 2, true
	quiet := slog.New(slog.NewJSONHandler(io.Discard, nil))
	router := newRouter(cfg, clients, quiet)
	api := router.API.(*API)
	call := func(method, path, body string) (int, string) {
		resp := api.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: body})
		return resp.StatusCode, resp.Body
	}
	if code, body := call("PUT", "/limits/rate-dest", `{"perSecond":2}`); code != 201 {
		t.Fatalf("PUT the rate limit: %d %s", code, body)
	}
	if code, body := call("PUT", "/limits/slow-dest", `{"inFlight":1}`); code != 201 {
		t.Fatalf("PUT the in-flight limit: %d %s", code, body)
	}
	rate, slow := newLimitTarget(t, 0), newLimitTarget(t, 700*time.Millisecond)
	due := time.Now().UTC().Truncate(time.Second).Add(12 * time.Second)
	put := func(id, url, key string) {
		body := fmt.Sprintf(`{"schedule":"rate(1 hour)","startAt":"%s","retry":{"maxAttempts":0,"maxAgeSeconds":600},"http":{"url":"%s/%s","limitKey":"%s"}}`,
			due.Format(time.RFC3339), url, id, key)
		if code, resp := call("PUT", "/periodic/"+id, body); code != 201 {
			t.Fatalf("PUT %s: %d %s", id, code, resp)
		}
	}
	for i := 0; i < 50; i++ {
		put(fmt.Sprintf("rate-%02d", i), rate.URL, "rate-dest")
	}
	for i := 0; i < 4; i++ {
		put(fmt.Sprintf("slow-%d", i), slow.URL, "slow-dest")
	}
	if time.Now().After(due.Add(-time.Second)) {
		t.Fatalf("the PUTs took until %s, past the timers' instant %s", time.Now().UTC(), due)
	}

	metrics := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		inv := newRouter(cfg, clients, quiet).Invoker.(*Invoker)
		inv.Metrics = NewMetrics(metrics)
		wg.Add(1)
		go func() {
			defer wg.Done()
			pollInvoker(ctx, t, clients.SQS, cfg.FireQueueURL, inv, func() bool {
				n, _ := rate.calls()
				m, _ := slow.calls()
				return n >= 50 && m >= 4
			})
		}()
	}
	wg.Wait()

	n, per := rate.calls()
	if n != 50 {
		t.Fatalf("the rate-limited target had %d calls, want 50", n)
	}
	for id, ts := range rate.at {
		if len(ts) != 1 {
			t.Errorf("%s called %d times", id, len(ts))
		}
	}
	var secs []int64
	for s, c := range per {
		secs = append(secs, s)
		if c > 2 {
			t.Errorf("second %s: %d calls, over the limit of 2", time.Unix(s, 0).UTC().Format(time.TimeOnly), c)
		}
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	span := secs[len(secs)-1] - secs[0] + 1
	t.Logf("achieved rate: %d calls over %d seconds, %.2f a second, against a limit of 2; seconds: %v",
		n, span, float64(n)/float64(span), per)
	if m, _ := slow.calls(); m != 4 || slow.most != 1 {
		t.Errorf("the slow target: %d calls, at most %d at once; want 4, 1", m, slow.most)
	}

	limited, maxLimited := 0, int64(0)
	for i := 0; i < 50; i++ {
		code, body := call("GET", fmt.Sprintf("/periodic/rate-%02d/history", i), "")
		var h struct{ History []LastFire }
		if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || len(h.History) != 1 {
			t.Fatalf("history of rate-%02d: %d %s", i, code, body)
		}
		f := h.History[0]
		if f.Outcome != OutcomeDelivered || f.Attempt != 1 {
			t.Errorf("rate-%02d: %s at attempt %d, want delivered at 1", i, f.Outcome, f.Attempt)
		}
		if f.LimitedMs > 0 {
			limited++
			maxLimited = max(maxLimited, f.LimitedMs)
		}
	}
	if limited < 40 || maxLimited < 20_000 {
		t.Errorf("%d histories show a wait for the limit, the longest %d ms; want at least 40, and one over 20 s", limited, maxLimited)
	}
	t.Logf("%d of 50 occurrences waited for the limit, up to %d ms", limited, maxLimited)
	checkLimitMetrics(t, metrics.String())
}

// pollInvoker hands the fire queue's messages to inv in batches of up to
// 10, as Lambda's event source does for one execution, deleting those the
// batch settled, until done or ctx ends.
func pollInvoker(ctx context.Context, t *testing.T, q *sqs.Client, queueURL string, inv *Invoker, done func() bool) {
	for ctx.Err() == nil && !done() {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queueURL, MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"All"}})
		if err != nil || len(out.Messages) == 0 {
			continue
		}
		ev := events.SQSEvent{}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
				Body: aws.ToString(m.Body), Attributes: m.Attributes, EventSource: "aws:sqs"})
		}
		fnCtx, cancel := context.WithTimeout(ctx, 150*time.Second) // the invoker's Lambda timeout
		resp := inv.Invoke(fnCtx, ev)
		cancel()
		if del := settledEntries(out.Messages, resp); len(del) > 0 {
			if _, err := q.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: &queueURL, Entries: del}); err != nil {
				t.Errorf("delete: %v", err)
			}
		}
	}
}

// checkLimitMetrics: the invokers' EMF records name each destination, with
// its waiting count and its calls.
func checkLimitMetrics(t *testing.T, out string) {
	t.Helper()
	waiting, calls := map[string]float64{}, map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.NewDecoder(bytes.NewReader([]byte(line))).Decode(&rec); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		d, ok := rec["Destination"].(string)
		if !ok {
			continue
		}
		w, _ := rec["LimitWaiting"].(float64)
		c, _ := rec["LimitedCalls"].(float64)
		waiting[d] += w
		calls[d] += c
	}
	if calls["rate-dest"] != 50 || calls["slow-dest"] != 4 || waiting["rate-dest"] == 0 {
		t.Errorf("the metrics: calls %v, waiting %v; want 50 and 4 calls, and rate-dest waiting", calls, waiting)
	}
	t.Logf("metrics: LimitedCalls %v, LimitWaiting (sent back to the queue) %v", calls, waiting)
}
