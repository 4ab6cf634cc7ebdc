package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// flakyStore is an igStore whose Record and Duplicate fail, as DynamoDB
// does while its connections are reset, the first failRecords and
// failDuplicates times (forever when negative), recording every call.
type flakyStore struct {
	*igStore
	mu                          sync.Mutex
	failRecords, failDuplicates int
	recordCalls, duplicateCalls int
}

// errOutage is the failure of flakyStore's writes.
var errOutage = errors.New("record the outcome of t-1: connection reset by peer")

// Record fails while the outage lasts, then records as igStore does.
func (s *flakyStore) Record(ctx context.Context, o Occurrence, f LastFire, deadLettered bool, now time.Time) error {
	s.mu.Lock()
	s.recordCalls++
	fail := s.failRecords < 0 || s.recordCalls <= s.failRecords
	s.mu.Unlock()
	if fail {
		return errOutage
	}
	return s.igStore.Record(ctx, o, f, deadLettered, now)
}

// Duplicate fails while the outage lasts, then counts as igStore does.
func (s *flakyStore) Duplicate(ctx context.Context, o Occurrence, now time.Time) error {
	s.mu.Lock()
	s.duplicateCalls++
	fail := s.failDuplicates < 0 || s.duplicateCalls <= s.failDuplicates
	s.mu.Unlock()
	if fail {
		return errOutage
	}
	return s.igStore.Duplicate(ctx, o, now)
}

// Calls returns how often Record and Duplicate were called.
func (s *flakyStore) Calls() (records, duplicates int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recordCalls, s.duplicateCalls
}

// TestOutcomeRecordRetriedUntilItLands delivers while the table fails the
// outcome's record (which settles the occurrence) three times: it is
// retried until it lands, and nothing is logged as lost. A duplicate's
// count in the history is retried the same way.
func TestOutcomeRecordRetriedUntilItLands(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	store := &flakyStore{igStore: e.store, failRecords: 3, failDuplicates: 2}
	e.inv.Timers = store
	tg := newTarget(t, answer(http.StatusOK))
	// A Lambda context: the deadline is far, so nothing stops the retries.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	resp := e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook"))}})
	if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	// A second sweep's copy of the same occurrence: a duplicate.
	resp = e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-2", 1, httpFire("t-1", "POST", tg.URL+"/hook"))}})
	if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
		t.Errorf("duplicate's failures (-want +got):\n%s", diff)
	}

	records, duplicates := store.Calls()
	if diff := cmp.Diff([2]int{4, 3}, [2]int{records, duplicates}); diff != "" {
		t.Errorf("Record and Duplicate calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{igOccurrence("t-1", igAt)}, e.store.duplicates); diff != "" {
		t.Errorf("duplicates counted (-want +got):\n%s", diff)
	}
	got := e.store.Fires()
	if len(got) != 1 || got[0].Fire.Outcome != OutcomeDelivered || got[0].Fire.Status != http.StatusOK {
		t.Errorf("outcomes recorded %+v, want one delivered with status 200", got)
	}
	if diff := cmp.Diff([]string{igOccurrence("t-1", igAt)}, e.store.Settled()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	for _, msg := range []string{"outcome not recorded", "duplicate not counted in the history"} {
		if lines := e.log.WithMsg(t, msg); len(lines) != 0 {
			t.Errorf("%q lines %v, want none", msg, lines)
		}
	}
}

// TestOutcomeRecordStopsAtDeadline delivers while the table refuses every
// record, with the function's deadline already within RecordReserve: the
// invoker stops retrying (one try) and logs a repair line with what the
// record would have held.
func TestOutcomeRecordStopsAtDeadline(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	store := &flakyStore{igStore: e.store, failRecords: -1}
	e.inv.Timers = store
	e.inv.RecordReserve = 2 * time.Hour // the hour left is within it: "about to time out"
	e.inv.CallReserve = time.Nanosecond // but the call itself is not cut short
	tg := newTarget(t, answer(http.StatusAccepted))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 3, httpFire("t-1", "POST", tg.URL+"/hook"))}})

	if fires, _ := store.Calls(); fires != 1 {
		t.Errorf("Record calls %d, want 1", fires)
	}
	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d requests, want 1", n)
	}
	lines := e.log.WithMsg(t, "outcome not recorded")
	if len(lines) != 1 {
		t.Fatalf("repair lines %v, want 1", lines)
	}
	want := map[string]any{"level": "ERROR", "timerId": "t-1", "scheduledAt": igScheduledAt, "attempt": 3.0,
		"outcome": OutcomeDelivered, "status": float64(http.StatusAccepted), "manual": false, "deliveryError": "",
		"recordTries": 1.0, "error": errOutage.Error()}
	got := map[string]any{}
	for k := range want {
		got[k] = lines[0][k]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("repair line (-want +got):\n%s", diff)
	}
	for _, k := range []string{"attemptedAt", "latencyMs"} {
		if _, ok := lines[0][k]; !ok {
			t.Errorf("repair line %v has no %s", lines[0], k)
		}
	}
}

// TestOutcomeRecordWithoutDeadlineGivesUp checks that outside Lambda (no
// deadline) a table that never recovers does not hold the batch forever.
func TestOutcomeRecordWithoutDeadlineGivesUp(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	store := &flakyStore{igStore: e.store, failRecords: -1}
	e.inv.Timers = store
	tg := newTarget(t, answer(http.StatusOK))

	e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook")))

	if fires, _ := store.Calls(); fires != persistTriesWithoutDeadline {
		t.Errorf("Record calls %d, want %d", fires, persistTriesWithoutDeadline)
	}
	if lines := e.log.WithMsg(t, "outcome not recorded"); len(lines) != 1 {
		t.Errorf("repair lines %v, want 1", lines)
	}
}
