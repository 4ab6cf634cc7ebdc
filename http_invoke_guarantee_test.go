package main

// Tests of the invoker's guarantees: one delivery per occurrence (claims),
// bounded retries ending on the dead-letter queue, notifications, the
// secret cache, the refusal of unsafe targets, and one log line per
// outcome. Helpers here are prefixed "ig" so as not to meet others'.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/google/go-cmp/cmp"
)

// igAt is the instant of httpFire's occurrences.
var igAt = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

const (
	igFireQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/callclock-fire"
	igDLQURL       = "https://sqs.eu-west-1.amazonaws.com/123456789012/callclock-fire-dlq"
	igScheduledAt  = "2025-03-01T09:00:00Z"
)

// ---------------------------------------------------------------- fakes

// igClaim is the claim item of one occurrence.
type igClaim struct {
	MessageID    string
	Settled      bool
	DeadLettered bool
	// Leased: claimed by MessageID, whose attempt has not ended (no
	// Record or Release since).
	Leased bool
}

// igFire is one Record call.
type igFire struct {
	TimerID string
	Fire    LastFire
}

// igStore is a claimStore with the real Store's semantics: per occurrence
// (timerId, scheduledAt, by hand or not) the first message id wins; the
// same message id may claim again until the occurrence is settled, once
// its earlier attempt ended (a claim while it runs is in progress); Get
// returns the current timer or an ENOTFOUND error. It records every call.
type igStore struct {
	// beforeClaim, when set, runs at each Claim outside the lock.
	beforeClaim func()

	mu         sync.Mutex
	timers     map[string]Timer
	claims     map[string]igClaim
	claimErr   error
	getErr     error
	claimed    []string // "occurrence by messageId", one per Claim call
	settled    []string // occurrences
	fires      []igFire
	duplicates []string // Duplicate calls: occurrences
	// linksDeleted are the DeleteLink calls: "id@unix pParts vVersion".
	linksDeleted []string
	deletes      []string // DeleteCompleted calls
}

func newIGStore(timers ...Timer) *igStore {
	s := &igStore{timers: map[string]Timer{}, claims: map[string]igClaim{}}
	for _, t := range timers {
		s.timers[t.ID] = t
	}
	return s
}

func igOccurrence(id string, at time.Time) string {
	return id + "@" + at.UTC().Format(time.RFC3339Nano)
}

// igKey is o's key in igStore: a fire by hand as "id/manual@instant".
func igKey(o Occurrence) string {
	if o.Manual {
		return igOccurrence(o.TimerID+"/manual", o.At)
	}
	return igOccurrence(o.TimerID, o.At)
}

func (s *igStore) Claim(_ context.Context, o Occurrence, who Claimant, _, _ time.Time) (ClaimResult, error) {
	msgID, replay := who.MessageID, who.Replay
	if s.beforeClaim != nil {
		s.beforeClaim()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := igKey(o)
	s.claimed = append(s.claimed, key+" by "+msgID)
	if s.claimErr != nil {
		return ClaimDuplicate, s.claimErr
	}
	c, ok := s.claims[key]
	switch {
	case !ok:
		s.claims[key] = igClaim{MessageID: msgID, Leased: true}
		return Claimed, nil
	case c.MessageID == msgID && !c.Settled && c.Leased:
		return ClaimInProgress, nil
	case c.MessageID == msgID && !c.Settled:
		c.Leased = true
		s.claims[key] = c
		return Claimed, nil
	case replay && c.DeadLettered && !c.Settled && !c.Leased: // as Store.Claim: a replay takes over a dead letter
		s.claims[key] = igClaim{MessageID: msgID, Leased: true}
		return Claimed, nil
	}
	return ClaimDuplicate, nil
}

// Record records f as Store.Record does: it ends the lease, settles a
// delivery and marks a dead letter.
func (s *igStore) Record(_ context.Context, o Occurrence, f LastFire, deadLettered bool, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := igKey(o)
	c := s.claims[key]
	if c.Settled && f.Outcome != OutcomeDelivered {
		return nil
	}
	c.Leased = false
	if f.Outcome == OutcomeDelivered {
		c.Settled = true
		s.settled = append(s.settled, key)
	}
	if deadLettered {
		c.DeadLettered = true
	}
	s.claims[key] = c
	s.fires = append(s.fires, igFire{TimerID: o.TimerID, Fire: f})
	return nil
}

// ReleaseClaim ends the lease of msgID's claim, as Store.ReleaseClaim does.
func (s *igStore) ReleaseClaim(_ context.Context, o Occurrence, who Claimant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[igKey(o)]; ok && c.MessageID == who.MessageID {
		c.Leased = false
		s.claims[igKey(o)] = c
	}
	return nil
}

// DeleteLink records the end of a stale timer's chain.
func (s *igStore) DeleteLink(_ context.Context, id string, at int64, parts int, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linksDeleted = append(s.linksDeleted, fmt.Sprintf("%s@%d p%d v%d", id, at, parts, version))
	return nil
}

func (s *igStore) Duplicate(_ context.Context, o Occurrence, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.duplicates = append(s.duplicates, igKey(o))
	return nil
}

func (s *igStore) Get(_ context.Context, id string) (*Timer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.getErr != nil {
		return nil, s.getErr
	}
	t, ok := s.timers[id]
	if !ok {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	return &t, nil
}

// DeleteCompleted deletes the timer as the store does: only at its version
// and while it has no next occurrence.
func (s *igStore) DeleteCompleted(_ context.Context, id string, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes = append(s.deletes, id)
	if t, ok := s.timers[id]; ok && t.Version == version && t.NextFireAt.IsZero() {
		delete(s.timers, id)
	}
	return nil
}

func (s *igStore) setClaim(key string, c igClaim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims[key] = c
}

func (s *igStore) setGetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.getErr = err
}

func (s *igStore) Claimed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.claimed)
}

func (s *igStore) Settled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.settled)
}

func (s *igStore) Fires() []igFire {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.fires)
}

// igVisibilityCall is one ChangeMessageVisibility call.
type igVisibilityCall struct {
	QueueURL, ReceiptHandle string
	Timeout                 int32
}

// igVisibility is a visibilityChanger that records its calls.
type igVisibility struct {
	mu    sync.Mutex
	calls []igVisibilityCall
}

func (v *igVisibility) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, igVisibilityCall{QueueURL: aws.ToString(in.QueueUrl), ReceiptHandle: aws.ToString(in.ReceiptHandle), Timeout: in.VisibilityTimeout})
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (v *igVisibility) Calls() []igVisibilityCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.calls)
}

// igSent is one SendMessage call.
type igSent struct {
	QueueURL, Body string
	Attributes     map[string]string // name -> "DataType:value"
}

// igSender is a messageSender (callback and dead-letter queues) that
// records every call and fails those to a queue listed in errs.
type igSender struct {
	mu   sync.Mutex
	errs map[string]error
	sent []igSent
}

func (s *igSender) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	m := igSent{QueueURL: aws.ToString(in.QueueUrl), Body: aws.ToString(in.MessageBody), Attributes: map[string]string{}}
	for k, v := range in.MessageAttributes {
		m.Attributes[k] = aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	if err := s.errs[m.QueueURL]; err != nil {
		return nil, err
	}
	return &sqs.SendMessageOutput{MessageId: aws.String("sqs-" + strconv.Itoa(len(s.sent)))}, nil
}

func (s *igSender) To(queueURL string) []igSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []igSent
	for _, m := range s.sent {
		if m.QueueURL == queueURL {
			out = append(out, m)
		}
	}
	return out
}

func (s *igSender) All() []igSent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// igLog is a concurrency-safe buffer for a slog JSON handler.
type igLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *igLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *igLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Lines decodes every log line.
func (l *igLog) Lines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, s := range strings.Split(l.String(), "\n") {
		if strings.TrimSpace(s) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, s)
		}
		lines = append(lines, m)
	}
	return lines
}

// WithMsg returns the lines whose msg is msg.
func (l *igLog) WithMsg(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range l.Lines(t) {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// ---------------------------------------------------------------- set-up

// igEnv is an invoker wired to fakes: claims in store, retries delayed on
// vis, callback and dead-letter messages to send, the log in log, and the
// time from clock (5 s after igAt, so that MaxEarly never sleeps).
type igEnv struct {
	inv   *Invoker
	clock *testClock
	store *igStore
	vis   *igVisibility
	send  *igSender
	log   *igLog
}

func newIGEnv(t *testing.T, secrets parameterGetter, timers ...Timer) *igEnv {
	e := &igEnv{
		clock: newTestClock(igAt.Add(5 * time.Second)),
		store: newIGStore(timers...),
		vis:   &igVisibility{},
		send:  &igSender{},
		log:   &igLog{},
	}
	e.inv = testInvoker(secrets, e.send, e.log)
	e.inv.Now = e.clock.Now
	e.inv.Timers = e.store
	e.inv.Visibility = e.vis
	e.inv.FireQueueURL = igFireQueueURL
	e.inv.DeadLetterQueueURL = igDLQURL
	return e
}

// invoke runs one batch and returns its failed message ids, sorted.
func (e *igEnv) invoke(recs ...events.SQSMessage) []string {
	return failures(e.inv.Invoke(context.Background(), events.SQSEvent{Records: recs}))
}

// igRecord is the SQS record of m as handed out for the attempt-th time.
func igRecord(t *testing.T, msgID string, attempt int, m FireMessage) events.SQSMessage {
	t.Helper()
	rec := fire(t, msgID, m)
	rec.ReceiptHandle = fmt.Sprintf("rh-%s-%d", msgID, attempt)
	rec.Attributes = map[string]string{"ApproximateReceiveCount": strconv.Itoa(attempt)}
	return rec
}

func igTimer(id string, version int64) Timer { return Timer{ID: id, Version: version} }

// igStatuses answers the n-th request with codes[n], repeating the last.
func igStatuses(codes ...int) func(http.ResponseWriter, *http.Request) int {
	var n atomic.Int64
	return func(http.ResponseWriter, *http.Request) int {
		return codes[min(int(n.Add(1))-1, len(codes)-1)]
	}
}

// igClosedURL is an http URL on 127.0.0.1 where nothing listens.
func igClosedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/hook"
}

func igPtr[T any](v T) *T { return &v }

// igRetryBounds is the range retryDelay(attempt) must fall in: d/2 to d,
// d = min(2 s * 2^(attempt-1), 5 min).
func igRetryBounds(attempt int) (lo, hi time.Duration) {
	d := 2 * time.Second
	for i := 1; i < attempt && d < 5*time.Minute; i++ {
		d *= 2
	}
	d = min(d, 5*time.Minute)
	return d / 2, d
}

// igDeadLetter is the dead-letter message of rec's timer t-1: rec's fire
// message, marked as a replay for a redrive.
func igDeadLetter(rec events.SQSMessage, reason string, attempts int) igSent {
	var msg FireMessage
	if err := json.Unmarshal([]byte(rec.Body), &msg); err != nil {
		panic(err)
	}
	msg.Replay = true
	body, _ := marshalJSON(msg)
	return igSent{QueueURL: igDLQURL, Body: string(body), Attributes: map[string]string{
		"Reason":            "String:" + reason,
		"Attempts":          "Number:" + strconv.Itoa(attempts),
		"TimerId":           "String:t-1",
		"ScheduledAt":       "String:" + igScheduledAt,
		"OriginalMessageId": "String:" + rec.MessageId,
	}}
}

// ---------------------------------------------------------------- claims

func TestClaimFirstDeliveryDeliversOnceAndSettles(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	start := e.clock.Now()
	tg := newTarget(t, func(http.ResponseWriter, *http.Request) int {
		e.clock.Add(250 * time.Millisecond) // the call's latency, on the injected clock
		return http.StatusAccepted
	})
	rec := igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook"))

	if diff := cmp.Diff([]string{}, e.invoke(rec)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
	occ := igOccurrence("t-1", igAt)
	if diff := cmp.Diff([]string{occ + " by m-1"}, e.store.Claimed()); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{occ}, e.store.Settled()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	want := []igFire{{TimerID: "t-1", Fire: LastFire{ScheduledAt: igAt, AttemptedAt: start, Attempt: 1,
		Outcome: OutcomeDelivered, Status: http.StatusAccepted, LatencyMs: 250}}}
	if diff := cmp.Diff(want, e.store.Fires()); diff != "" {
		t.Errorf("lastFire recorded (-want +got):\n%s", diff)
	}
	if sent := e.send.All(); len(sent) != 0 {
		t.Errorf("SendMessage calls %+v, want none", sent)
	}
	if calls := e.vis.Calls(); len(calls) != 0 {
		t.Errorf("ChangeMessageVisibility calls %+v, want none", calls)
	}
}

func TestClaimSecondMessageForOccurrenceSuppressed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		first func(t *testing.T, e *igEnv, url string)
	}{
		{"after the first message delivered", func(t *testing.T, e *igEnv, url string) {
			if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "POST", url)))); diff != "" {
				t.Fatalf("first message failures (-want +got):\n%s", diff)
			}
		}},
		{"while the first message is in flight", func(t *testing.T, e *igEnv, _ string) {
			e.store.setClaim(igOccurrence("t-1", igAt), igClaim{MessageID: "m-1"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(http.StatusOK))
			tt.first(t, e, tg.URL+"/hook")
			requests, fires, settled := len(tg.Received()), len(e.store.Fires()), len(e.store.Settled())

			got := e.invoke(igRecord(t, "m-2", 1, httpFire("t-1", "POST", tg.URL+"/hook")))

			if diff := cmp.Diff([]string{}, got); diff != "" {
				t.Errorf("failures (-want +got): the duplicate must be acked\n%s", diff)
			}
			if n := len(tg.Received()) - requests; n != 0 {
				t.Errorf("duplicate made %d requests, want 0", n)
			}
			if n := len(e.store.Fires()) - fires; n != 0 {
				t.Errorf("duplicate recorded %d outcomes, want 0", n)
			}
			if n := len(e.store.Settled()) - settled; n != 0 {
				t.Errorf("duplicate settled %d times, want 0", n)
			}
			if !slices.Contains(e.store.Claimed(), igOccurrence("t-1", igAt)+" by m-2") {
				t.Errorf("m-2 never tried to claim: claims %v", e.store.Claimed())
			}
		})
	}
}

func TestClaimRedeliveryAfterFailureDelivers(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, igStatuses(http.StatusInternalServerError, http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")

	if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("first attempt failures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 2, m))); diff != "" {
		t.Errorf("redelivery failures (-want +got):\n%s", diff)
	}

	if n := len(tg.Received()); n != 2 {
		t.Errorf("target received %d requests, want 2", n)
	}
	type outcome struct {
		Attempt int
		Outcome string
		Status  int
	}
	var got []outcome
	for _, f := range e.store.Fires() {
		got = append(got, outcome{f.Fire.Attempt, f.Fire.Outcome, f.Fire.Status})
	}
	want := []outcome{{1, OutcomeRetrying, 500}, {2, OutcomeDelivered, 200}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes recorded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{igOccurrence("t-1", igAt)}, e.store.Settled()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
}

func TestClaimRedeliveryAfterSuccessSuppressed(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")

	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Fatalf("first delivery failures (-want +got):\n%s", diff)
	}
	// Its deletion lost, SQS hands the same message out again.
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 2, m))); diff != "" {
		t.Errorf("redelivery failures (-want +got): a settled redelivery must be acked\n%s", diff)
	}

	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
	if n := len(e.store.Fires()); n != 1 {
		t.Errorf("%d outcomes recorded, want 1 (the first delivery's)", n)
	}
	if n := len(e.store.Claimed()); n != 2 {
		t.Errorf("%d claim attempts, want 2", n)
	}
}

func TestClaimStaleOrUnreadableOccurrence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		timers     []Timer
		claimErr   error
		getErr     error
		wantFailed []string
		// wantUnlinked: the stale chain's next link is deleted, in the
		// partitions the message names.
		wantUnlinked []string
	}{
		{name: "timer deleted", wantFailed: []string{}, wantUnlinked: []string{"t-1@1800003600 p64 v1"}},
		{name: "timer replaced", timers: []Timer{igTimer("t-1", 2)}, wantFailed: []string{}, wantUnlinked: []string{"t-1@1800003600 p64 v1"}},
		{name: "claim error", timers: []Timer{igTimer("t-1", 1)},
			claimErr: errors.New("ProvisionedThroughputExceededException"), wantFailed: []string{"m-1"}},
		{name: "get error", timers: []Timer{igTimer("t-1", 1)},
			getErr: errors.New("get timer t-1: InternalServerError"), wantFailed: []string{"m-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), tt.timers...)
			e.store.claimErr, e.store.getErr = tt.claimErr, tt.getErr
			tg := newTarget(t, answer(http.StatusOK))

			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.NextLinkAt, m.NextLinkParts = 1800003600, 64
			got := e.invoke(igRecord(t, "m-1", 1, m))

			if diff := cmp.Diff(tt.wantFailed, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			e.store.mu.Lock()
			unlinked := slices.Clone(e.store.linksDeleted)
			e.store.mu.Unlock()
			if diff := cmp.Diff(tt.wantUnlinked, unlinked); diff != "" {
				t.Errorf("links deleted (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			if fires := e.store.Fires(); len(fires) != 0 {
				t.Errorf("outcomes recorded %+v, want none", fires)
			}
			if s := e.store.Settled(); len(s) != 0 {
				t.Errorf("settled %v, want none", s)
			}
			if sent := e.send.All(); len(sent) != 0 {
				t.Errorf("SendMessage calls %+v, want none", sent)
			}
		})
	}
}

// A message whose timer could not be read keeps its claim: its
// redelivery delivers.
func TestClaimRedeliveryAfterReadErrorDelivers(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	e.store.setGetErr(errors.New("get timer t-1: InternalServerError"))
	tg := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")

	if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("first attempt failures (-want +got):\n%s", diff)
	}
	e.store.setGetErr(nil)
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 2, m))); diff != "" {
		t.Errorf("redelivery failures (-want +got):\n%s", diff)
	}
	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
}

func TestClaimConcurrentDuplicatesDeliverOnce(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 8} {
		t.Run(fmt.Sprintf("%d messages", n), func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.Concurrency = n
			// Hold every claim until all n messages are claiming, so that
			// they race for the occurrence. The timeout only guards
			// against a hang should the invoker not run them at once.
			var arrived atomic.Int64
			all := make(chan struct{})
			e.store.beforeClaim = func() {
				if arrived.Add(1) == int64(n) {
					close(all)
				}
				select {
				case <-all:
				case <-time.After(5 * time.Second):
				}
			}
			tg := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			var recs []events.SQSMessage
			for i := range n {
				recs = append(recs, igRecord(t, fmt.Sprintf("m-%d", i), 1, m))
			}

			if diff := cmp.Diff([]string{}, e.invoke(recs...)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if got := len(tg.Received()); got != 1 {
				t.Errorf("target received %d requests, want exactly 1", got)
			}
			if got := len(e.store.Claimed()); got != n {
				t.Errorf("%d claim attempts, want %d", got, n)
			}
			if got := len(e.store.Fires()); got != 1 {
				t.Errorf("%d outcomes recorded, want 1", got)
			}
			if got := len(e.log.WithMsg(t, "duplicate suppressed")); got != n-1 {
				t.Errorf("%d duplicates suppressed, want %d", got, n-1)
			}
		})
	}
}

// ---------------------------------------------------------------- retries

func TestRetryPolicyOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		retry   *RetryPolicy
		attempt int
		age     time.Duration // now - scheduledAt
		retried bool          // false: dead-lettered
	}{
		{"attempt 1 of 1+2", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 1, 5 * time.Second, true},
		{"attempt 2 of 1+2", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 2, 5 * time.Second, true},
		{"attempt 3 beyond MaxAttempts", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 3, 5 * time.Second, false},
		{"age within MaxAgeSeconds", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 1, 3599 * time.Second, true},
		{"age exhausted on the first failure", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600}, 1, 3601 * time.Second, false},
		{"MaxAttempts 0", &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}, 1, 5 * time.Second, false},
		{"MaxAgeSeconds 0 is the default", &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 0}, 1, 7200 * time.Second, true},
		{"nil retry: attempt 1", nil, 1, 5 * time.Second, true},
		{"nil retry: attempt 185", nil, 185, 5 * time.Second, true},
		{"nil retry: attempt 186", nil, 186, 5 * time.Second, false},
		{"nil retry: age 86399 s", nil, 1, 86399 * time.Second, true},
		{"nil retry: age 86401 s", nil, 1, 86401 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.clock.Set(igAt.Add(tt.age))
			tg := newTarget(t, answer(http.StatusInternalServerError))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.Retry = tt.retry
			rec := igRecord(t, "m-1", tt.attempt, m)
			reason := "POST " + tg.URL + "/hook: status 500"

			got := e.invoke(rec)

			if n := len(tg.Received()); n != 1 {
				t.Errorf("target received %d requests, want 1", n)
			}
			wantFire := LastFire{ScheduledAt: igAt, AttemptedAt: igAt.Add(tt.age), Attempt: tt.attempt,
				Outcome: OutcomeFailed, Status: 500, Error: reason}
			wantFailed, wantDLQ := []string{}, []igSent{igDeadLetter(rec, reason, tt.attempt)}
			if tt.retried {
				wantFire.Outcome = OutcomeRetrying
				wantFailed, wantDLQ = []string{"m-1"}, nil
			}
			if diff := cmp.Diff(wantFailed, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]igFire{{"t-1", wantFire}}, e.store.Fires()); diff != "" {
				t.Errorf("lastFire recorded (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantDLQ, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			calls := e.vis.Calls()
			if !tt.retried {
				if len(calls) != 0 {
					t.Errorf("ChangeMessageVisibility calls %+v, want none", calls)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("ChangeMessageVisibility calls %+v, want 1", calls)
			}
			if calls[0].QueueURL != igFireQueueURL || calls[0].ReceiptHandle != rec.ReceiptHandle {
				t.Errorf("ChangeMessageVisibility(%s, %s), want (%s, %s)", calls[0].QueueURL, calls[0].ReceiptHandle, igFireQueueURL, rec.ReceiptHandle)
			}
			lo, hi := igRetryBounds(tt.attempt)
			if d := time.Duration(calls[0].Timeout) * time.Second; d < lo || d > hi {
				t.Errorf("VisibilityTimeout %v, want %v to %v for attempt %d", d, lo, hi, tt.attempt)
			}
		})
	}
}

func TestRetryDelayBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		attempt int
		lo, hi  time.Duration
	}{
		{1, 1 * time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{4, 8 * time.Second, 16 * time.Second},
		{5, 16 * time.Second, 32 * time.Second},
		{8, 128 * time.Second, 256 * time.Second},
		{9, 150 * time.Second, 300 * time.Second}, // 512 s capped at 5 minutes
		{12, 150 * time.Second, 300 * time.Second},
		{185, 150 * time.Second, 300 * time.Second},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.attempt), func(t *testing.T) {
			t.Parallel()
			if lo, hi := igRetryBounds(tt.attempt); lo != tt.lo || hi != tt.hi {
				t.Fatalf("igRetryBounds(%d) = %v..%v, table says %v..%v", tt.attempt, lo, hi, tt.lo, tt.hi)
			}
			seen := map[time.Duration]bool{}
			for range 500 {
				d := retryDelay(tt.attempt)
				if d < tt.lo || d > tt.hi {
					t.Fatalf("retryDelay(%d) = %v, want %v to %v", tt.attempt, d, tt.lo, tt.hi)
				}
				if d%time.Second != 0 {
					t.Fatalf("retryDelay(%d) = %v, not whole seconds", tt.attempt, d)
				}
				seen[d] = true
			}
			// Equal jitter: 500 draws over a range of several seconds
			// are not all alike.
			if tt.hi-tt.lo >= 4*time.Second && len(seen) < 2 {
				t.Errorf("retryDelay(%d) always %v: no jitter", tt.attempt, seen)
			}
		})
	}
}

func TestRetrySuccessCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		codes     []int
		delivered bool
	}{
		{404, []int{404}, true},
		{200, []int{201, 202}, false},
		{202, []int{201, 202}, true},
		{204, nil, true},
		{500, nil, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d in %v", tt.status, tt.codes), func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(tt.status))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.HTTP.SuccessCodes = tt.codes

			got := e.invoke(igRecord(t, "m-1", 1, m))

			wantFailed, wantOutcome := []string{"m-1"}, OutcomeRetrying
			if tt.delivered {
				wantFailed, wantOutcome = []string{}, OutcomeDelivered
			}
			if diff := cmp.Diff(wantFailed, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			fires := e.store.Fires()
			if len(fires) != 1 || fires[0].Fire.Outcome != wantOutcome || fires[0].Fire.Status != tt.status {
				t.Errorf("outcomes recorded %+v, want one %s with status %d", fires, wantOutcome, tt.status)
			}
		})
	}
}

func TestRetryPermanentRequestErrorDeadLettered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path string
	}{
		// Both smuggled past HTTPTarget.Validate, as a crafted message can.
		{"method with a space", "GET X", "/hook"},
		{"control character in URL", "POST", "/a\x7fb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", tt.method, tg.URL+tt.path)
			m.Retry = nil // 185 retries allowed: none must be used
			rec := igRecord(t, "m-1", 1, m)

			if diff := cmp.Diff([]string{}, e.invoke(rec)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			reason := fmt.Sprintf("invalid: cannot build request for %s %s", tt.method, tg.URL+tt.path)
			if diff := cmp.Diff([]igSent{igDeadLetter(rec, reason, 1)}, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			if fires := e.store.Fires(); len(fires) != 1 || fires[0].Fire.Outcome != OutcomeFailed {
				t.Errorf("outcomes recorded %+v, want one failed", fires)
			}
			if calls := e.vis.Calls(); len(calls) != 0 {
				t.Errorf("ChangeMessageVisibility calls %+v, want none", calls)
			}
		})
	}
}

func TestRetryPoisonMessage(t *testing.T) {
	t.Parallel()
	const (
		notJSON   = `{"timerId":"t-1","http":{"method":"POST","url":"%s"}`
		noTimerID = `{"version":1,"scheduledAt":"2025-03-01T09:00:00Z","http":{"method":"POST","url":"%s"}}`
	)
	tests := []struct {
		name       string
		body       string
		dlq        string
		sendErr    error
		wantFailed []string
		wantSent   bool
	}{
		{"not JSON", notJSON, igDLQURL, nil, []string{}, true},
		{"no timerId", noTimerID, igDLQURL, nil, []string{}, true},
		{"no dead-letter queue", notJSON, "", nil, []string{"m-1"}, false},
		{"dead-letter send fails", noTimerID, igDLQURL, errors.New("AWS.SimpleQueueService.NonExistentQueue"), []string{"m-1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.DeadLetterQueueURL = tt.dlq
			e.send.errs = map[string]error{igDLQURL: tt.sendErr}
			tg := newTarget(t, answer(http.StatusOK))
			rec := events.SQSMessage{MessageId: "m-1", ReceiptHandle: "rh-m-1-4", Body: fmt.Sprintf(tt.body, tg.URL+"/hook"),
				Attributes: map[string]string{"ApproximateReceiveCount": "4"}}

			if diff := cmp.Diff(tt.wantFailed, e.invoke(rec)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			var want []igSent
			if tt.wantSent {
				want = []igSent{{QueueURL: igDLQURL, Body: rec.Body, Attributes: map[string]string{
					"Reason":            "String:malformed fire message",
					"Attempts":          "Number:4",
					"OriginalMessageId": "String:m-1",
				}}}
			}
			if diff := cmp.Diff(want, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			if c := e.store.Claimed(); len(c) != 0 {
				t.Errorf("claims %v, want none", c)
			}
		})
	}
}

func TestRetryDeadLetterSendErrorIsBatchFailure(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	e.send.errs = map[string]error{igDLQURL: errors.New("AWS.SimpleQueueService.NonExistentQueue")}
	tg := newTarget(t, answer(http.StatusInternalServerError))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}

	if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("failures (-want +got): a message not dead-lettered must stay on the queue\n%s", diff)
	}
	if n := len(e.send.To(igDLQURL)); n != 1 {
		t.Errorf("%d dead-letter sends, want 1", n)
	}
	if n := len(e.log.WithMsg(t, "delivery failed; not dead-lettered")); n != 1 {
		t.Errorf("%d \"not dead-lettered\" log lines, want 1:\n%s", n, e.log.String())
	}
}

// ---------------------------------------------------------------- notifications

// igPosts returns the text of each notification hook received, checking
// that each is a POST of exactly {"text": ...}.
func igPosts(t *testing.T, hook *target) []string {
	t.Helper()
	var texts []string
	for _, r := range hook.Received() {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("notification %s with Content-Type %q, want POST application/json", r.Method, r.Header.Get("Content-Type"))
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Errorf("notification body %q: %v", r.Body, err)
			continue
		}
		if _, ok := body["text"]; !ok || len(body) != 1 {
			t.Errorf("notification body %q, want exactly {\"text\": ...}", r.Body)
		}
		texts = append(texts, body["text"])
	}
	return texts
}

func TestNotifyOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		retry     *RetryPolicy
		onSuccess *bool
		onFailure *bool
		// wantText lists what the one notification must say; nil: none is sent.
		wantText []string
	}{
		{name: "final failure", status: 500, retry: &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600},
			wantText: []string{"t-1", "dead-lettered", "POST %s: status 500"}},
		{name: "final failure with onFailure false", status: 500, retry: &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600},
			onFailure: igPtr(false)},
		{name: "retrying never", status: 500, retry: &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 3600},
			onSuccess: igPtr(true), onFailure: igPtr(true)},
		{name: "success with onSuccess true", status: 200, onSuccess: igPtr(true),
			wantText: []string{"t-1", "delivered"}},
		{name: "success by default", status: 200},
		{name: "success with onSuccess false", status: 200, onSuccess: igPtr(false), onFailure: igPtr(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(tt.status))
			hook := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.Retry = tt.retry
			m.Notify = &Notify{Webhook: hook.URL + "/notify", OnSuccess: tt.onSuccess, OnFailure: tt.onFailure}

			e.invoke(igRecord(t, "m-1", 1, m))

			texts := igPosts(t, hook)
			if tt.wantText == nil {
				if len(texts) != 0 {
					t.Errorf("notifications %q, want none", texts)
				}
				return
			}
			if len(texts) != 1 {
				t.Fatalf("notifications %q, want exactly 1", texts)
			}
			for _, w := range tt.wantText {
				if w = strings.ReplaceAll(w, "%s", tg.URL+"/hook"); !strings.Contains(texts[0], w) {
					t.Errorf("notification %q does not say %q", texts[0], w)
				}
			}
		})
	}
}

// TestInvokeFinalOccurrenceDeletes: the last occurrence of a
// deleteAfterCompletion timer (Final) deletes the timer once it has its
// final outcome, delivered or dead-lettered, and not while it is retried;
// a manual fire never deletes.
func TestInvokeFinalOccurrenceDeletes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		status     int
		maxRetries int
		manual     bool
		deleted    bool
	}{
		{name: "delivered", status: 200, maxRetries: 3, deleted: true},
		{name: "dead-lettered", status: 500, maxRetries: 0, deleted: true},
		{name: "retrying", status: 500, maxRetries: 3},
		{name: "manual", status: 200, maxRetries: 3, manual: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			tg := newTarget(t, answer(tt.status))
			m := httpFire("t-1", "GET", tg.URL+"/once")
			m.Final, m.Manual = true, tt.manual
			m.Retry = &RetryPolicy{MaxAttempts: tt.maxRetries, MaxAgeSeconds: 3600}
			e.invoke(igRecord(t, "m-1", 1, m))
			e.store.mu.Lock()
			deletes := e.store.deletes
			_, exists := e.store.timers["t-1"]
			e.store.mu.Unlock()
			if tt.deleted != (len(deletes) == 1) || tt.deleted == exists {
				t.Errorf("DeleteCompleted calls %v, timer kept %v; want deleted %v", deletes, exists, tt.deleted)
			}
		})
	}
}

// TestDeadLetterReplay: a dead-lettered occurrence, redriven from the
// dead-letter queue to the fire queue under a new message id, is delivered
// once, as a replay with the occurrence's own key; a second redrive of it
// is a duplicate. A copy that is not a replay never takes the claim over.
func TestDeadLetterReplay(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, igStatuses(500, 200))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}
	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Fatalf("failures (-want +got):\n%s", diff)
	}
	sent := e.send.All()
	if len(sent) != 1 || sent[0].QueueURL != igDLQURL {
		t.Fatalf("dead letters %+v, want one", sent)
	}
	// Another copy of the original (a second sweep's, say): still a duplicate.
	e.invoke(igRecord(t, "m-2", 1, m))
	if n := len(tg.Received()); n != 1 {
		t.Fatalf("a copy that is not a replay reached the target: %d calls", n)
	}
	// The redrive: the dead letter's body, under a message id of its own.
	redrive := events.SQSMessage{MessageId: "m-3", ReceiptHandle: "rh-m-3-1", Body: sent[0].Body,
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}}
	if diff := cmp.Diff([]string{}, e.invoke(redrive)); diff != "" {
		t.Fatalf("replay failures (-want +got):\n%s", diff)
	}
	got := tg.Received()
	if len(got) != 2 || got[1].Header.Get("Idempotency-Key") != m.IdempotencyKey() {
		t.Fatalf("target received %d calls (key %q), want the replay with key %s", len(got), got[len(got)-1].Header.Get("Idempotency-Key"), m.IdempotencyKey())
	}
	fires := e.store.Fires()
	if last := fires[len(fires)-1].Fire; last.Outcome != OutcomeDelivered || !last.Replay {
		t.Errorf("the replay's outcome %+v, want delivered and marked replay", last)
	}
	// The same dead letter redriven again: delivered already, dropped.
	again := redrive
	again.MessageId, again.ReceiptHandle = "m-4", "rh-m-4-1"
	e.invoke(again)
	if n := len(tg.Received()); n != 2 {
		t.Errorf("a second replay reached the target: %d calls, want 2", n)
	}
}

// TestNotifySlackChannel checks the Deployer's Slack notification: the
// channel goes in the message's "channel", and the text says which
// deployment put the timer there.
func TestNotifySlackChannel(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	hook := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "GET", tg.URL+"/collect")
	m.Notify = &Notify{Webhook: hook.URL + "/notify", Channel: "qa-facilities", OnSuccess: igPtr(true)}
	m.Deployment = &DeploymentInfo{Product: "facilities", Version: "1.4.2", ID: "0-facilities-017"}

	e.invoke(igRecord(t, "m-1", 1, m))

	got := hook.Received()
	if len(got) != 1 {
		t.Fatalf("webhook received %d posts, want 1", len(got))
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(got[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	if body["channel"] != "qa-facilities" || len(body) != 2 {
		t.Errorf("message %q, want text and channel qa-facilities", got[0].Body)
	}
	if !strings.Contains(body["text"], "; facilities 1.4.2, deployed by 0-facilities-017") || !strings.Contains(body["text"], "delivered") {
		t.Errorf("text %q does not name the deployment", body["text"])
	}
}

func TestNotifySecretWebhook(t *testing.T) {
	t.Parallel()
	const token = "s3cr3t-hook-token"
	for _, status := range []int{http.StatusOK, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			hook := newTarget(t, answer(status))
			secretURL := hook.URL + "/services/T000/B000/" + token
			ssmStore := &paramStore{}
			e := newIGEnv(t, ssmStore.fake(t, map[string]string{"/callclock/hook": secretURL}), igTimer("t-1", 1))
			tg := newTarget(t, answer(http.StatusInternalServerError))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}
			m.Notify = &Notify{Webhook: "aws-secret(/callclock/hook)"}

			if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}

			got := hook.Received()
			if len(got) != 1 || got[0].Path != "/services/T000/B000/"+token {
				t.Fatalf("webhook received %+v, want one POST to the resolved URL", got)
			}
			if diff := cmp.Diff([][]string{{"/callclock/hook"}}, ssmStore.Calls()); diff != "" {
				t.Errorf("GetParameters calls (-want +got):\n%s", diff)
			}
			for _, text := range igPosts(t, hook) {
				if strings.Contains(text, token) || strings.Contains(text, secretURL) {
					t.Errorf("notification text holds the webhook secret: %q", text)
				}
			}
			logged := e.log.String()
			if strings.Contains(logged, token) {
				t.Errorf("log holds the webhook secret:\n%s", logged)
			}
			if status != http.StatusOK {
				lines := e.log.WithMsg(t, "notification failed")
				if len(lines) != 1 || lines[0]["webhook"] != "aws-secret(/callclock/hook)" {
					t.Errorf("notification failure lines %v, want one naming the placeholder", lines)
				}
			}
		})
	}
}

func TestNotifyFailingWebhookKeepsOutcome(t *testing.T) {
	t.Parallel()
	hooks := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"webhook answers 500", func(t *testing.T) string { return newTarget(t, answer(http.StatusInternalServerError)).URL + "/notify" }},
		{"webhook port closed", igClosedURL},
	}
	outcomes := []struct {
		name        string
		status      int
		wantOutcome string
	}{
		{"delivered", http.StatusOK, OutcomeDelivered},
		{"failed", http.StatusInternalServerError, OutcomeFailed},
	}
	for _, h := range hooks {
		for _, o := range outcomes {
			t.Run(h.name+"/"+o.name, func(t *testing.T) {
				t.Parallel()
				e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
				tg := newTarget(t, answer(o.status))
				m := httpFire("t-1", "POST", tg.URL+"/hook")
				m.Retry = &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600}
				m.Notify = &Notify{Webhook: h.url(t), OnSuccess: igPtr(true)}

				if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
					t.Errorf("failures (-want +got):\n%s", diff)
				}
				fires := e.store.Fires()
				if len(fires) != 1 || fires[0].Fire.Outcome != o.wantOutcome {
					t.Errorf("outcomes recorded %+v, want one %s", fires, o.wantOutcome)
				}
				wantDLQ := 0
				if o.wantOutcome == OutcomeFailed {
					wantDLQ = 1
				}
				if n := len(e.send.To(igDLQURL)); n != wantDLQ {
					t.Errorf("%d dead-letter sends, want %d", n, wantDLQ)
				}
				lines := e.log.WithMsg(t, "notification failed")
				if len(lines) != 1 || lines[0]["timerId"] != "t-1" {
					t.Errorf("notification failure lines %v, want one for t-1", lines)
				}
			})
		}
	}
}

// ---------------------------------------------------------------- secrets

// igRotatingParams answers every name with "v<n>", n counting the calls,
// so that a test sees whether a value came from the cache.
type igRotatingParams struct {
	mu    sync.Mutex
	calls int
}

func (p *igRotatingParams) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	out := &ssm.GetParametersOutput{}
	for _, n := range in.Names {
		out.Parameters = append(out.Parameters, ssmtypes.Parameter{Name: aws.String(n), Value: aws.String("v" + strconv.Itoa(p.calls))})
	}
	return out, nil
}

func (p *igRotatingParams) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func TestSecretCacheTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ttl  time.Duration
		// advances moves the clock before each delivery after the first.
		advances  []time.Duration
		wantCalls int
		wantAuth  []string
	}{
		{"within the TTL", 30 * time.Second, []time.Duration{29 * time.Second}, 1, []string{"Bearer v1", "Bearer v1"}},
		{"after the TTL", 30 * time.Second, []time.Duration{31 * time.Second}, 2, []string{"Bearer v1", "Bearer v2"}},
		{"refreshed value cached anew", 30 * time.Second, []time.Duration{31 * time.Second, 20 * time.Second}, 2,
			[]string{"Bearer v1", "Bearer v2", "Bearer v2"}},
		{"TTL 0", 0, []time.Duration{0, 0}, 3, []string{"Bearer v1", "Bearer v2", "Bearer v3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := &igRotatingParams{}
			clock := newTestClock(igAt.Add(5 * time.Second))
			inv := testInvoker(params, noCallback(t), nil)
			inv.Now, inv.SecretTTL = clock.Now, tt.ttl
			tg := newTarget(t, answer(http.StatusOK))

			for i := range len(tt.advances) + 1 {
				if i > 0 {
					clock.Add(tt.advances[i-1])
				}
				m := httpFire(fmt.Sprintf("t-%d", i), "POST", tg.URL+"/hook")
				m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/callclock/token)"}
				resp := inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{fire(t, fmt.Sprintf("m-%d", i), m)}})
				if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
					t.Errorf("delivery %d failures (-want +got):\n%s", i, diff)
				}
			}

			if n := params.Calls(); n != tt.wantCalls {
				t.Errorf("%d GetParameters calls, want %d", n, tt.wantCalls)
			}
			var auth []string
			for _, r := range tg.Received() {
				auth = append(auth, r.Header.Get("Authorization"))
			}
			if diff := cmp.Diff(tt.wantAuth, auth); diff != "" {
				t.Errorf("Authorization at target (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSecretOutsidePrefixRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		outside string // the refused parameter
		craft   func(m *FireMessage)
	}{
		{"in the URL", "/other/key", func(m *FireMessage) { m.HTTP.URL += "?k=aws-secret(/other/key)" }},
		{"in a header", "/prod/db-password", func(m *FireMessage) {
			m.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/prod/db-password)"}
		}},
		{"in the body", "/other/key", func(m *FireMessage) { m.HTTP.Body = `{"k":"aws-secret(/other/key)"}` }},
		{"prefix look-alike", "/callclockevil/key", func(m *FireMessage) { m.HTTP.URL += "?k=aws-secret(/callclockevil/key)" }},
		{"next to an allowed one", "/other/key", func(m *FireMessage) {
			m.HTTP.URL += "?ok=aws-secret(/callclock/ok)"
			m.HTTP.Headers = map[string]string{"X-Key": "aws-secret(/other/key)"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1)) // SSM must not be asked at all
			tg := newTarget(t, answer(http.StatusOK))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			tt.craft(&m)
			rec := igRecord(t, "m-1", 1, m)

			if diff := cmp.Diff([]string{}, e.invoke(rec)); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			reason := "invalid: aws-secret(" + tt.outside + ") is outside the allowed prefix /callclock/"
			if diff := cmp.Diff([]igSent{igDeadLetter(rec, reason, 1)}, e.send.All()); diff != "" {
				t.Errorf("SendMessage calls (-want +got):\n%s", diff)
			}
			if calls := e.vis.Calls(); len(calls) != 0 {
				t.Errorf("ChangeMessageVisibility calls %+v, want none: the refusal is permanent", calls)
			}
		})
	}
}

func TestSecretOutsidePrefixWebhookNotResolved(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	hook := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Notify = &Notify{Webhook: hook.URL + "/aws-secret(/other/hook)", OnSuccess: igPtr(true)}

	if diff := cmp.Diff([]string{}, e.invoke(igRecord(t, "m-1", 1, m))); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if n := len(hook.Received()); n != 0 {
		t.Errorf("webhook received %d requests, want 0", n)
	}
	if fires := e.store.Fires(); len(fires) != 1 || fires[0].Fire.Outcome != OutcomeDelivered {
		t.Errorf("outcomes recorded %+v, want one delivered", fires)
	}
	lines := e.log.WithMsg(t, "notification failed")
	if len(lines) != 1 || !strings.Contains(fmt.Sprint(lines[0]["error"]), "outside the allowed prefix") {
		t.Errorf("notification failure lines %v, want one about the prefix", lines)
	}
}

// ---------------------------------------------------------------- safe targets

func TestSafeAddress(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr                          string
		refusedPublic, refusedPrivate bool // with allowPrivate false, true
	}{
		// Link-local and metadata: never.
		{"169.254.169.254:80", true, true},
		{"169.254.0.1:443", true, true},
		{"[fe80::1]:80", true, true},
		{"[fe80::1%eth0]:80", true, true},
		{"[fd00:ec2::254]:80", true, true},
		{"[::ffff:169.254.169.254]:80", true, true},
		{"[::ffff:a9fe:a9fe]:80", true, true},
		// Private, loopback, unspecified: only with allowPrivate.
		{"127.0.0.1:8080", true, false},
		{"[::1]:8080", true, false},
		{"10.0.0.1:80", true, false},
		{"172.16.5.4:80", true, false},
		{"192.168.1.1:80", true, false},
		{"[fc00::1]:80", true, false},
		{"0.0.0.0:80", true, false},
		{"[::ffff:127.0.0.1]:80", true, false},
		// Public.
		{"93.184.216.34:443", false, false},
		{"[2606:2800:220:1::1]:443", false, false},
		// Not an IP address: a name must have been resolved first.
		{"example.com:80", true, true},
	}
	for _, tt := range tests {
		for _, allowPrivate := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/allowPrivate=%t", tt.addr, allowPrivate), func(t *testing.T) {
				t.Parallel()
				want := tt.refusedPublic
				if allowPrivate {
					want = tt.refusedPrivate
				}
				err := safeAddress(tt.addr, allowPrivate)
				if (err != nil) != want {
					t.Fatalf("safeAddress(%q, %t) = %v, want refused %t", tt.addr, allowPrivate, err, want)
				}
				if err != nil && !strings.Contains(err.Error(), "refused to dial") {
					t.Errorf("safeAddress(%q, %t) = %q, want it to say \"refused to dial\"", tt.addr, allowPrivate, err)
				}
			})
		}
	}
}

// The dialer hands safeAddress the address with its IPv6 zone, which a URL
// can carry ("http://[fd00:ec2::254%25eth0]/"), and Linux ignores the zone
// of an address that is not link-local: the metadata service is dialled.
func TestSafeAddressZonedMetadata(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"[fd00:ec2::254%eth0]:80", "[fd00:ec2::254%1]:80"} {
		if err := safeAddress(addr, true); err == nil {
			t.Errorf("safeAddress(%q, true) = nil, want refused", addr)
		}
	}
}

func TestSafeClientPrivateTargets(t *testing.T) {
	t.Parallel()
	for _, allowPrivate := range []bool{false, true} {
		t.Run(fmt.Sprintf("allowPrivate=%t", allowPrivate), func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.Client = newHTTPClient(allowPrivate)
			tg := newTarget(t, answer(http.StatusOK))

			got := e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook")))

			fires := e.store.Fires()
			if len(fires) != 1 {
				t.Fatalf("outcomes recorded %+v, want 1", fires)
			}
			if allowPrivate {
				if diff := cmp.Diff([]string{}, got); diff != "" {
					t.Errorf("failures (-want +got):\n%s", diff)
				}
				if n := len(tg.Received()); n != 1 || fires[0].Fire.Outcome != OutcomeDelivered {
					t.Errorf("target received %d requests, outcome %q; want 1, delivered", n, fires[0].Fire.Outcome)
				}
				return
			}
			if diff := cmp.Diff([]string{"m-1"}, got); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if n := len(tg.Received()); n != 0 {
				t.Errorf("target received %d requests, want 0", n)
			}
			if !strings.Contains(fires[0].Fire.Error, "refused to dial") {
				t.Errorf("lastFire.Error = %q, want it to say \"refused to dial\"", fires[0].Fire.Error)
			}
		})
	}
}

func TestSafeClientRefusesMetadataForms(t *testing.T) {
	t.Parallel()
	for _, url := range []string{
		"http://169.254.169.254/latest/meta-data/",
		"http://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://[::ffff:a9fe:a9fe]/latest/meta-data/",
	} {
		t.Run(url, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
			e.inv.Client = newHTTPClient(true) // even with private targets allowed

			if diff := cmp.Diff([]string{"m-1"}, e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "GET", url)))); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			fires := e.store.Fires()
			if len(fires) != 1 || !strings.Contains(fires[0].Fire.Error, "refused to dial 169.254.169.254") {
				t.Errorf("outcomes recorded %+v, want one whose error says \"refused to dial 169.254.169.254\"", fires)
			}
		})
	}
}

// ---------------------------------------------------------------- logs

func TestInvokeLogsOneLinePerOutcome(t *testing.T) {
	t.Parallel()
	outcomeMsgs := []string{"delivered", "duplicate suppressed", "stale occurrence dropped",
		"delivery failed; will retry", "delivery failed; dead-lettered", "delivery failed; not dead-lettered"}
	tests := []struct {
		name      string
		status    int
		retry     *RetryPolicy
		timers    []Timer
		claimedBy string // another message's claim on the occurrence
		wantMsg   string
	}{
		{name: "delivered", status: 200, timers: []Timer{igTimer("t-1", 1)}, wantMsg: "delivered"},
		{name: "duplicate", status: 200, timers: []Timer{igTimer("t-1", 1)}, claimedBy: "m-0", wantMsg: "duplicate suppressed"},
		{name: "timer deleted", status: 200, wantMsg: "stale occurrence dropped"},
		{name: "timer replaced", status: 200, timers: []Timer{igTimer("t-1", 2)}, wantMsg: "stale occurrence dropped"},
		{name: "retry", status: 500, timers: []Timer{igTimer("t-1", 1)}, wantMsg: "delivery failed; will retry"},
		{name: "dead-lettered", status: 500, retry: &RetryPolicy{MaxAttempts: 0, MaxAgeSeconds: 3600},
			timers: []Timer{igTimer("t-1", 1)}, wantMsg: "delivery failed; dead-lettered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newIGEnv(t, noSecrets(t), tt.timers...)
			if tt.claimedBy != "" {
				e.store.setClaim(igOccurrence("t-1", igAt), igClaim{MessageID: tt.claimedBy})
			}
			tg := newTarget(t, answer(tt.status))
			m := httpFire("t-1", "POST", tg.URL+"/hook")
			m.ScheduledAt = igAt.In(time.FixedZone("CET", 3600)) // logged in UTC all the same
			m.Retry = tt.retry

			e.invoke(igRecord(t, "m-1", 1, m))

			var got []map[string]any
			for _, l := range e.log.Lines(t) {
				if slices.Contains(outcomeMsgs, fmt.Sprint(l["msg"])) {
					got = append(got, l)
				}
			}
			if len(got) != 1 {
				t.Fatalf("outcome lines %v, want exactly one %q", got, tt.wantMsg)
			}
			want := map[string]any{"msg": tt.wantMsg, "timerId": "t-1", "scheduledAt": igScheduledAt, "messageId": "m-1"}
			gotKeys := map[string]any{}
			for k := range want {
				gotKeys[k] = got[0][k]
			}
			if diff := cmp.Diff(want, gotKeys); diff != "" {
				t.Errorf("outcome line (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRetryExhaustedBeforeNotCalledAgain: a message whose tries ran out on
// an earlier receive, but whose dead-lettering failed then, is not sent to
// the target again: it only goes to the dead-letter queue.
func TestRetryExhaustedBeforeNotCalledAgain(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, answer(http.StatusInternalServerError))
	e := newIGEnv(t, nil, igTimer("t-1", 1))
	e.inv.Client = newHTTPClient(true)
	m := httpFire("t-1", "GET", tg.URL+"/x")
	m.Retry = &RetryPolicy{MaxAttempts: 2, MaxAgeSeconds: 86400}
	if failed := e.invoke(igRecord(t, "m-1", 4, m)); len(failed) != 0 {
		t.Fatalf("failures %v, want the message acked once dead-lettered", failed)
	}
	if n := len(tg.Received()); n != 0 {
		t.Errorf("target called %d times, want 0", n)
	}
	dl := e.send.To(igDLQURL)
	if len(dl) != 1 || !strings.Contains(dl[0].Attributes["Reason"], "retries exhausted after 3 attempts") {
		t.Errorf("dead letters %+v, want one with the reason", dl)
	}
}
