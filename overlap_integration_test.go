package main

// The overlap policies and the self-pause on moto_server: the run lease's
// contract (ovStore held to Store), and the local stack delivering
// occurrences a second apart to a 3 s target, and pausing a timer that
// keeps failing.

import (
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// leaseContractStore is what the run lease's contract calls.
type leaseContractStore interface {
	runLeaseStore
	claimStore
}

// leaseOp is one call of the contract, at contractAt plus sec seconds,
// and what came of it, in words.
type leaseOp func(ctx context.Context, s leaseContractStore, id string) string

// leaseAt is contractAt plus sec seconds.
func leaseAt(sec int) time.Time { return contractAt.Add(time.Duration(sec) * time.Second) }

// describeLease says who holds and waits for l.
func describeLease(l RunLease) string {
	s := "held by " + l.Holder
	if l.Waiter != "" {
		s += ", waiter " + l.Waiter
	}
	return s
}

// acquire takes the lease for occ at sec, until sec+dur.
func acquire(occ string, sec, dur int) leaseOp {
	return func(ctx context.Context, s leaseContractStore, id string) string {
		l, ok, err := s.AcquireRun(ctx, id, occ, leaseAt(sec), leaseAt(sec+dur))
		switch {
		case err != nil:
			return "error: " + err.Error()
		case ok:
			return "acquired"
		}
		return describeLease(l)
	}
}

// waitOn makes occ the waiter at sec, due back at sec+dur, receipt "r"+occ.
func waitOn(occ string, sec, dur int) leaseOp {
	return func(ctx context.Context, s leaseContractStore, id string) string {
		l, ok, err := s.WaitRun(ctx, id, occ, "r"+occ, leaseAt(sec), leaseAt(sec+dur))
		switch {
		case err != nil:
			return "error: " + err.Error()
		case ok:
			return "waiting"
		}
		return describeLease(l)
	}
}

// end ends occ's hold at sec.
func end(occ string, sec int) leaseOp {
	return func(ctx context.Context, s leaseContractStore, id string) string {
		receipt, err := s.EndRun(ctx, id, occ, leaseAt(sec))
		switch {
		case err != nil:
			return "error: " + err.Error()
		case receipt != "":
			return "woke " + receipt
		}
		return "ended"
	}
}

// occOp is a call on the occurrence at contractAt.
func occOp(f func(ctx context.Context, s leaseContractStore, o Occurrence) string) leaseOp {
	return func(ctx context.Context, s leaseContractStore, id string) string {
		return f(ctx, s, Occurrence{TimerID: id, At: contractAt})
	}
}

// leaseClaimBy claims the occurrence for msgID's receive token.
func leaseClaimBy(msgID, token string) leaseOp {
	return occOp(func(ctx context.Context, s leaseContractStore, o Occurrence) string {
		r, err := s.Claim(ctx, o, Claimant{MessageID: msgID, Token: token}, contractNow, contractLease)
		if err != nil {
			return contractResult(err)
		}
		return map[ClaimResult]string{Claimed: "claimed", ClaimDuplicate: "duplicate", ClaimInProgress: "in progress"}[r]
	})
}

// leaseContractCases are the run lease's contract, each on a timer of its own.
var leaseContractCases = []struct {
	name  string
	steps []leaseOp
	want  []string
}{
	{"one waits, the next is refused, the end hands on and wakes",
		[]leaseOp{acquire("A", 0, 35), acquire("B", 1, 35), acquire("A", 2, 35), waitOn("B", 1, 40), waitOn("C", 2, 40),
			waitOn("B", 2, 40), end("A", 3), acquire("C", 4, 35), acquire("B", 4, 35), end("B", 5), acquire("C", 6, 35), end("C", 7)},
		[]string{"acquired", "held by A", "acquired", "waiting", "held by A, waiter B",
			"waiting", "woke rB", "held by B", "acquired", "ended", "acquired", "ended"}},
	{"a crashed holder's lease expires; its late end leaves the next alone",
		[]leaseOp{acquire("D", 0, 10), acquire("E", 10, 35), acquire("E", 11, 35), end("D", 12), acquire("F", 12, 35), end("X", 13)},
		[]string{"acquired", "held by D", "acquired", "ended", "held by E", "ended"}},
	{"an overdue waiter counts as none",
		[]leaseOp{acquire("G", 0, 100), waitOn("H", 1, 20), waitOn("I", 22, 20), end("G", 23)},
		[]string{"acquired", "waiting", "waiting", "woke rI"}},
	{"a waiter that took the expired lease itself counts as none",
		[]leaseOp{acquire("L", 0, 10), waitOn("M", 1, 300), acquire("M", 11, 35), waitOn("N", 12, 40), end("M", 13), acquire("N", 14, 35)},
		[]string{"acquired", "waiting", "acquired", "waiting", "woke rN", "acquired"}},
	{"no waiting on a free lease, nor on one's own",
		[]leaseOp{waitOn("P", 0, 40), acquire("P", 0, 35), waitOn("P", 1, 40)},
		[]string{"held by ", "acquired", "held by P"}},
	{"a skipped outcome settles the occurrence",
		[]leaseOp{leaseClaimBy("m-1", "t-1"), occOp(func(ctx context.Context, s leaseContractStore, o Occurrence) string {
			return contractResult(s.Record(ctx, o, LastFire{ScheduledAt: o.At, AttemptedAt: contractNow, Attempt: 1, Outcome: OutcomeSkipped}, false, contractNow))
		}), leaseClaimBy("m-2", "t-2"), leaseClaimBy("m-1", "t-3")},
		[]string{"claimed", "ok", "duplicate", "duplicate"}},
	{"a wait releases the claim and is counted",
		[]leaseOp{leaseClaimBy("m-1", "t-1"), leaseClaimBy("m-1", "t-2"), occOp(func(ctx context.Context, s leaseContractStore, o Occurrence) string {
			return contractResult(s.ReleaseToWait(ctx, o, Claimant{MessageID: "m-1", Token: "t-1"}))
		}), leaseClaimBy("m-1", "t-3"), occOp(func(ctx context.Context, s leaseContractStore, o Occurrence) string {
			n, err := s.Waits(ctx, o)
			return fmt.Sprint(n, " ", contractResult(err))
		})},
		[]string{"claimed", "in progress", "ok", "claimed", "1 ok"}},
}

// TestIntegrationRunLeaseContract runs the run lease's contract on
// ovStore and on Store on moto_server.
func TestIntegrationRunLeaseContract(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) leaseContractStore{
		"ovStore": func(*testing.T) leaseContractStore { return newOVStore() },
		"Store":   func(t *testing.T) leaseContractStore { return motoStore(t) },
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			for i, tc := range leaseContractCases {
				id := fmt.Sprintf("lease-%02d", i)
				var got []string
				for _, op := range tc.steps {
					got = append(got, op(context.Background(), s, id))
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", tc.name, diff)
				}
			}
		})
	}
}

// ovSpan is one call a local-stack target saw.
type ovSpan struct {
	path       string
	start, end time.Time
}

// ovTarget is an HTTP target on 127.0.0.1 whose /slow calls take 3 s and
// whose /broken calls answer 503 at once, recording each call.
type ovTarget struct {
	*httptest.Server
	mu    sync.Mutex
	spans []ovSpan
}

func newOVTarget(t *testing.T) *ovTarget {
	ot := &ovTarget{}
	ot.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		start := time.Now()
		if strings.HasPrefix(r.URL.Path, "/slow/") {
			time.Sleep(3 * time.Second)
		}
		ot.mu.Lock()
		ot.spans = append(ot.spans, ovSpan{r.URL.Path, start, time.Now()})
		ot.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/broken/") {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(ot.Close)
	return ot
}

// Spans returns the calls to path, by start.
func (ot *ovTarget) Spans(path string) []ovSpan {
	ot.mu.Lock()
	defer ot.mu.Unlock()
	var out []ovSpan
	for _, s := range ot.spans {
		if s.path == path {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// ovLocal is the local stack on moto_server: its API's URL and what
// sends fire messages as the sweeper does.
type ovLocal struct {
	api     string
	clients awsClients
	cfg     Config
	log     *syncBuffer
}

func startOVLocal(t *testing.T) *ovLocal {
	t.Helper()
	clients, cfg := motoStack(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.AllowPrivateTargets = true
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	api, _ := startLocal(t, ctx, newRouter(cfg, clients, log), cfg, clients, log)
	return &ovLocal{api: api, clients: clients, cfg: cfg, log: logs}
}

// put PUTs timer id with body, which must create it.
func (l *ovLocal) put(t *testing.T, id, body string) {
	t.Helper()
	if code, resp := signedDo(t, testCreds, "PUT", l.api+"/periodic/"+id, body); code != 201 {
		t.Fatalf("PUT %s: %d %s", id, code, resp)
	}
}

// sendOccurrences sends the sweeper's fire messages of timer id's
// occurrences at each of ats (version 1), each with the delay the
// sweeper gives it: its instant minus now, in whole seconds.
func (l *ovLocal) sendOccurrences(t *testing.T, id string, ats ...time.Time) {
	t.Helper()
	for _, at := range ats {
		body, _ := marshalJSON(newFireMessage(id, 1, at))
		delay := max(0, int32(time.Until(at)/time.Second))
		if _, err := l.clients.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &l.cfg.FireQueueURL,
			MessageBody: aws.String(string(body)), DelaySeconds: delay}); err != nil {
			t.Fatal(err)
		}
	}
}

// history is timer id's history, oldest first.
func (l *ovLocal) history(t *testing.T, id string) []LastFire {
	t.Helper()
	var doc struct{ History []LastFire }
	if code, body := signedDo(t, testCreds, "GET", l.api+"/periodic/"+id+"/history", ""); code != 200 || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("GET history of %s: %d %s", id, code, body)
	}
	sort.Slice(doc.History, func(i, j int) bool { return doc.History[i].ScheduledAt.Before(doc.History[j].ScheduledAt) })
	return doc.History
}

// TestIntegrationOverlap: a 3 s target with skip, and another with
// queue-one, each given 12 occurrences a second apart (the sweeper's fire
// messages, delayed to their instants and taken by the local stack's
// concurrent invocations), are called about once per 3 s, never two calls
// at once; every other occurrence is recorded as skipped.
func TestIntegrationOverlap(t *testing.T) {
	t.Parallel()
	l := startOVLocal(t)
	target := newOVTarget(t)
	const n = 12
	// A callback timer cannot have a policy, and nothing of it is stored.
	code, body := signedDo(t, testCreds, "PUT", l.api+"/periodic/ov-callback", `{"timerCallbackData":{},"overlap":"skip"}`)
	if code != 400 || !strings.Contains(body, "overlap skip needs an http target") {
		t.Errorf("PUT a callback timer with overlap skip: %d %s, want 400 naming overlap", code, body)
	}
	if code, _ := signedDo(t, testCreds, "GET", l.api+"/periodic/ov-callback", ""); code != 404 {
		t.Errorf("GET the refused timer: %d, want 404", code)
	}
	for _, p := range []string{OverlapSkip, OverlapQueueOne} {
		l.put(t, "ov-"+p, `{"schedule":"rate(1 day)","startAt":"2099-01-01T00:00:00Z","overlap":"`+p+`",`+
			`"http":{"url":"`+target.URL+`/slow/`+p+`","timeoutSeconds":10}}`)
	}
	first := time.Now().Truncate(time.Second).Add(3 * time.Second)
	var ats []time.Time
	for i := range n {
		ats = append(ats, first.Add(time.Duration(i)*time.Second))
	}
	for _, p := range []string{OverlapSkip, OverlapQueueOne} {
		l.sendOccurrences(t, "ov-"+p, ats...)
	}
	for _, p := range []string{OverlapSkip, OverlapQueueOne} {
		t.Run(p, func(t *testing.T) {
			var h []LastFire
			waitFor(t, "every occurrence's outcome", 60*time.Second, func() bool {
				h = l.history(t, "ov-"+p)
				return len(h) == n && !anyRetrying(h)
			})
			got := map[string]int{}
			for _, f := range h {
				got[f.Outcome]++
			}
			spans := target.Spans("/slow/" + p)
			for i := 1; i < len(spans); i++ {
				if spans[i].start.Before(spans[i-1].end) {
					t.Errorf("call %d started %s before call %d ended", i, spans[i-1].end.Sub(spans[i].start), i-1)
				}
			}
			waited := strings.Count(l.log.String(), `"msg":"waiting for the previous call to end","timerId":"ov-`+p+`"`)
			t.Logf("overlap %s, a 3 s target, %d occurrences 1 s apart: %d calls, %d skipped, %d waited", p, n, len(spans), got[OutcomeSkipped], waited)
			if (p == OverlapSkip) != (waited == 0) {
				t.Errorf("%d occurrences waited: want none with skip, some with queue-one", waited)
			}
			if got[OutcomeDelivered] != len(spans) || got[OutcomeDelivered]+got[OutcomeSkipped] != n {
				t.Errorf("outcomes %v with %d calls, want each occurrence delivered (one call) or skipped", got, len(spans))
			}
			// 12 s of occurrences with 3 s calls: about 4 calls (5 for
			// queue-one, whose last waiter runs after the last occurrence).
			if len(spans) < 3 || len(spans) > 6 {
				t.Errorf("%d calls, want about one per 3 s (3-6)", len(spans))
			}
		})
	}
}

// anyRetrying reports whether an occurrence of h has no final outcome yet.
func anyRetrying(h []LastFire) bool {
	for _, f := range h {
		if f.Outcome == OutcomeRetrying {
			return true
		}
	}
	return false
}

// TestIntegrationSelfPause: a timer whose target always fails, with
// pauseAfterFailures 2 and no retries, ends paused after two occurrences,
// with the reason, which GET shows; resumed, it runs again.
func TestIntegrationSelfPause(t *testing.T) {
	t.Parallel()
	l := startOVLocal(t)
	target := newOVTarget(t)
	l.put(t, "sp", `{"schedule":"rate(1 day)","startAt":"2099-01-01T00:00:00Z","pauseAfterFailures":2,`+
		`"retry":{"maxAttempts":0,"maxAgeSeconds":60},"http":{"url":"`+target.URL+`/broken/sp"}}`)
	at := time.Now().Truncate(time.Second).Add(2 * time.Second)
	l.sendOccurrences(t, "sp", at, at.Add(time.Second))
	var doc struct {
		State, PauseReason string
		PauseAfterFailures int
	}
	get := func() {
		_, body := signedDo(t, testCreds, "GET", l.api+"/periodic/sp", "")
		doc.State, doc.PauseReason, doc.PauseAfterFailures = "", "", 0
		json.Unmarshal([]byte(body), &doc)
	}
	waitFor(t, "the timer to pause itself", 30*time.Second, func() bool { get(); return doc.State == StatePaused })
	want := "paused after 2 consecutive failed occurrences: GET " + target.URL + "/broken/sp: status 503"
	if doc.PauseReason != want || doc.PauseAfterFailures != 2 {
		t.Errorf("GET: pauseReason %q, pauseAfterFailures %d; want %q, 2", doc.PauseReason, doc.PauseAfterFailures, want)
	}
	if code, body := signedDo(t, testCreds, "POST", l.api+"/periodic/sp/resume", ""); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
	get()
	if doc.State != StateActive || doc.PauseReason != "" {
		t.Fatalf("after resume: %+v, want active", doc)
	}
	next := time.Now().Truncate(time.Second).Add(2 * time.Second)
	l.sendOccurrences(t, "sp", next)
	waitFor(t, "the resumed timer's call", 30*time.Second, func() bool { return len(target.Spans("/broken/sp")) == 3 })
	waitFor(t, "its outcome", 10*time.Second, func() bool { return len(l.history(t, "sp")) == 3 })
	get()
	if doc.State != StateActive {
		t.Errorf("after one failure since the resume: state %s (%s), want active: the resume clears the count", doc.State, doc.PauseReason)
	}
}
