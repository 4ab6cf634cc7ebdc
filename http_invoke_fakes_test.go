package main

// The invoker's test doubles and set-up: a claimStore with the real
// Store's semantics (igStore, held to them by http_invoke_contract_test.go),
// the SQS calls, the log. Helpers here are prefixed "ig" so as not to meet
// others'.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// igAt is the instant of httpFire's occurrences.
var igAt = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// The queues of igEnv's invoker, and igAt as the messages carry it.
const (
	igFireQueueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/callclock-fire"
	igDLQURL       = "https://sqs.eu-west-1.amazonaws.com/123456789012/callclock-fire-dlq"
	igScheduledAt  = "2025-03-01T09:00:00Z"
)

// ---------------------------------------------------------------- fakes

// igClaim is the claim item of one occurrence.
type igClaim struct {
	MessageID string
	// Token is the claiming receive's (Claimant.Token): its own claim
	// again is no other receive's.
	Token        string
	Settled      bool
	DeadLettered bool
	// Leased: claimed by MessageID, whose attempt has not ended (no
	// Record or Release since), until LeaseUntil; zero (a claim a test
	// sets) leases it for good.
	Leased     bool
	LeaseUntil time.Time
}

// leased reports whether c's lease still runs at now.
func (c igClaim) leased(now time.Time) bool {
	return c.Leased && (c.LeaseUntil.IsZero() || !now.After(c.LeaseUntil))
}

// igFire is one Record call.
type igFire struct {
	TimerID string
	Fire    LastFire
}

// igStore is a claimStore with the real Store's semantics, which
// http_invoke_contract_test.go holds it to: per occurrence (timerId,
// scheduledAt, by hand or not) the first message id wins; the same
// message id may claim again until the occurrence is settled, once its
// earlier attempt ended or its lease ran out (a claim while it runs is in
// progress, unless it is the same receive's); Get returns the current
// timer or an ENOTFOUND error. It records every call.
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

// newIGStore returns an igStore holding timers, nothing claimed.
func newIGStore(timers ...Timer) *igStore {
	s := &igStore{timers: map[string]Timer{}, claims: map[string]igClaim{}}
	for _, t := range timers {
		s.timers[t.ID] = t
	}
	return s
}

// igOccurrence names the occurrence of timer id at at, as igStore's
// records do.
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

// Claim claims o for who as Store.Claim does.
func (s *igStore) Claim(_ context.Context, o Occurrence, who Claimant, now, leaseUntil time.Time) (ClaimResult, error) {
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
	c := s.claims[key]
	switch {
	case c.MessageID == "",
		!c.Settled && c.Token != "" && c.Token == who.Token, // its own claim again: the answer was lost
		!c.Settled && c.MessageID == msgID && !c.leased(now),
		replay && c.DeadLettered && !c.Settled && !c.leased(now): // a replay takes over a dead letter
		// A new claim, as Store.Claim's: no longer a dead letter.
		s.claims[key] = igClaim{MessageID: msgID, Token: who.Token, Leased: true, LeaseUntil: leaseUntil}
		return Claimed, nil
	case c.MessageID == msgID && !c.Settled:
		return ClaimInProgress, nil
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

// ReleaseClaim ends the lease of who's claim, as Store.ReleaseClaim does:
// only the receive that holds it (its token) may.
func (s *igStore) ReleaseClaim(_ context.Context, o Occurrence, who Claimant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[igKey(o)]; ok && c.Token == who.Token {
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

// Duplicate records the call; like Store.Duplicate, it does not fail for
// an occurrence with no item.
func (s *igStore) Duplicate(_ context.Context, o Occurrence, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.duplicates = append(s.duplicates, igKey(o))
	return nil
}

// Get returns timer id, getErr when set, or an ENOTFOUND error.
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

// DeleteCompleted deletes the timer as the store does: only at its
// version. Its next occurrence does not count: the invoker calls it for
// the last one (FireMessage.Final), and the store does not look.
func (s *igStore) DeleteCompleted(_ context.Context, id string, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deletes = append(s.deletes, id)
	if t, ok := s.timers[id]; ok && t.Version == version {
		delete(s.timers, id)
	}
	return nil
}

// setClaim puts claim c on the occurrence key, as an earlier message left
// it.
func (s *igStore) setClaim(key string, c igClaim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims[key] = c
}

// setGetErr makes every Get fail with err.
func (s *igStore) setGetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.getErr = err
}

// Claimed returns the Claim calls, "occurrence by messageId".
func (s *igStore) Claimed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.claimed)
}

// Settled returns the occurrences settled by a delivered Record.
func (s *igStore) Settled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.settled)
}

// Fires returns the Record calls.
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

// ChangeMessageVisibility records the call.
func (v *igVisibility) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls = append(v.calls, igVisibilityCall{QueueURL: aws.ToString(in.QueueUrl), ReceiptHandle: aws.ToString(in.ReceiptHandle), Timeout: in.VisibilityTimeout})
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// Calls returns the ChangeMessageVisibility calls.
func (v *igVisibility) Calls() []igVisibilityCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.calls)
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
	send  *sqsSender
	log   *syncBuffer
}

// newIGEnv returns an invoker on an igStore holding timers, with its
// queues, visibility and log faked.
func newIGEnv(t *testing.T, secrets parameterGetter, timers ...Timer) *igEnv {
	e := &igEnv{
		clock: newTestClock(igAt.Add(5 * time.Second)),
		store: newIGStore(timers...),
		vis:   &igVisibility{},
		send:  &sqsSender{},
		log:   &syncBuffer{},
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

// igTimer is timer id at version, with nothing else set.
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
func igDeadLetter(rec events.SQSMessage, reason string, attempts int) sqsSent {
	var msg FireMessage
	if err := json.Unmarshal([]byte(rec.Body), &msg); err != nil {
		panic(err)
	}
	msg.Replay = true
	body, _ := marshalJSON(msg)
	return sqsSent{QueueURL: igDLQURL, Body: string(body), Attributes: map[string]string{
		"Reason":            "String:" + reason,
		"Attempts":          "Number:" + strconv.Itoa(attempts),
		"TimerId":           "String:t-1",
		"ScheduledAt":       "String:" + igScheduledAt,
		"OriginalMessageId": "String:" + rec.MessageId,
	}}
}
