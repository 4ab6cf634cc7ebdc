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

// flakyStore is an igStore whose RecordFire and Settle fail, as DynamoDB
// does while its connections are reset, the first failFires and
// failSettles times (forever when negative), recording every call.
type flakyStore struct {
	*igStore
	mu                     sync.Mutex
	failFires, failSettles int
	fireCalls, settleCalls int
}

var errOutage = errors.New("record last fire of t-1: connection reset by peer")

func (s *flakyStore) RecordFire(ctx context.Context, id string, f LastFire) error {
	s.mu.Lock()
	s.fireCalls++
	fail := s.failFires < 0 || s.fireCalls <= s.failFires
	s.mu.Unlock()
	if fail {
		return errOutage
	}
	return s.igStore.RecordFire(ctx, id, f)
}

func (s *flakyStore) Settle(ctx context.Context, id string, at time.Time, now time.Time) error {
	s.mu.Lock()
	s.settleCalls++
	fail := s.failSettles < 0 || s.settleCalls <= s.failSettles
	s.mu.Unlock()
	if fail {
		return errOutage
	}
	return s.igStore.Settle(ctx, id, at, now)
}

func (s *flakyStore) Calls() (fires, settles int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fireCalls, s.settleCalls
}

// TestOutcomeRecordRetriedUntilItLands delivers while the table fails the
// outcome's record three times and the settle twice: both are retried
// until they land, and nothing is logged as lost.
func TestOutcomeRecordRetriedUntilItLands(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	store := &flakyStore{igStore: e.store, failFires: 3, failSettles: 2}
	e.inv.Timers = store
	tg := newTarget(t, answer(http.StatusOK))
	// A Lambda context: the deadline is far, so nothing stops the retries.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	resp := e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook"))}})

	if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	fires, settles := store.Calls()
	if diff := cmp.Diff([2]int{4, 3}, [2]int{fires, settles}); diff != "" {
		t.Errorf("RecordFire and Settle calls (-want +got):\n%s", diff)
	}
	got := e.store.Fires()
	if len(got) != 1 || got[0].Fire.Outcome != OutcomeDelivered || got[0].Fire.Status != http.StatusOK {
		t.Errorf("outcomes recorded %+v, want one delivered with status 200", got)
	}
	if diff := cmp.Diff([]string{igOccurrence("t-1", igAt)}, e.store.Settled()); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	for _, msg := range []string{"outcome not recorded", "delivery not settled; a redelivery of this message would deliver again"} {
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
	store := &flakyStore{igStore: e.store, failFires: -1}
	e.inv.Timers = store
	e.inv.RecordReserve = 2 * time.Hour // the hour left is within it: "about to time out"
	e.inv.CallReserve = time.Nanosecond // but the call itself is not cut short
	tg := newTarget(t, answer(http.StatusAccepted))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 3, httpFire("t-1", "POST", tg.URL+"/hook"))}})

	if fires, _ := store.Calls(); fires != 1 {
		t.Errorf("RecordFire calls %d, want 1", fires)
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
	store := &flakyStore{igStore: e.store, failFires: -1}
	e.inv.Timers = store
	tg := newTarget(t, answer(http.StatusOK))

	e.invoke(igRecord(t, "m-1", 1, httpFire("t-1", "POST", tg.URL+"/hook")))

	if fires, _ := store.Calls(); fires != persistTriesWithoutDeadline {
		t.Errorf("RecordFire calls %d, want %d", fires, persistTriesWithoutDeadline)
	}
	if lines := e.log.WithMsg(t, "outcome not recorded"); len(lines) != 1 {
		t.Errorf("repair lines %v, want 1", lines)
	}
}
