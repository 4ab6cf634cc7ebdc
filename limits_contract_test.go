package main

// The contract of destinationStore: one scenario run against ltDest, the
// fake the limiter's tests use, and against the real Store on
// moto_server, so that the fake cannot drift from what it stands in for.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// limitContractEnv is a destinationStore with what the scenario needs
// around it: limits put and deleted, occurrences claimed.
type limitContractEnv struct {
	dest  destinationStore
	put   func(Limit)
	del   func(key string)
	claim func(o Occurrence, c Claimant)
}

// limitContractT is the scenario's clock: 300 ms into a second.
var limitContractT = time.Date(2026, 12, 1, 10, 0, 0, 300_000_000, time.UTC)

// limitScenario runs the contract's calls on env and describes each
// outcome in words.
func limitScenario(t *testing.T, env limitContractEnv) []string {
	ctx := context.Background()
	s := env.dest
	var log []string
	say := func(f string, args ...any) { log = append(log, fmt.Sprintf(f, args...)) }
	sec := limitContractT.Truncate(time.Second).UnixMilli()
	slot := func(now time.Time, view DestState) {
		k, v, err := s.TakeSlot(ctx, "billing", view, now)
		switch {
		case errors.Is(err, errNoLimit):
			say("slot: no limit")
		case err != nil:
			t.Fatalf("TakeSlot: %v", err)
		default:
			say("slot at +%d ms (rate %d)", slotStart(k, v.PerSecond)-sec, v.PerSecond)
		}
	}
	lease := func(now, until time.Time, view DestState) {
		i, _, err := s.AcquireLease(ctx, "billing", view, now, until)
		if err != nil {
			t.Fatalf("AcquireLease: %v", err)
		}
		say("lease %d", i)
	}
	v, err := s.Destination(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	say("no limit: exists %t", v.Exists)
	env.put(Limit{Key: "billing", PerSecond: 2, InFlight: 1})
	stale, _ := s.Destination(ctx, "billing")
	say("limit: exists %t, %d/s, %d in flight", stale.Exists, stale.PerSecond, stale.InFlight)
	for i := 0; i < 3; i++ {
		slot(limitContractT, stale) // a stale view, as the invoker's cache has
	}
	slot(limitContractT.Add(5*time.Second), stale) // the counter fell behind
	now := limitContractT
	lease(now, now.Add(time.Second), stale)
	lease(now, now.Add(time.Second), stale)
	if err := s.ReleaseLease(ctx, "billing", 0, now.Add(time.Minute)); err != nil { // not its holder's
		t.Fatal(err)
	}
	lease(now, now.Add(time.Second), stale)
	if err := s.ReleaseLease(ctx, "billing", 0, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	lease(now, now.Add(time.Second), stale)
	lease(now.Add(2*time.Second), now.Add(3*time.Second), stale) // the holder crashed: its lease ended
	if err := s.BlockDestination(ctx, "billing", stale, now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.BlockDestination(ctx, "billing", stale, now.Add(5*time.Second)); err != nil { // never shortened
		t.Fatal(err)
	}
	lease(now.Add(9*time.Second), now.Add(20*time.Second), stale)
	slot(now.Add(6*time.Second), stale)
	env.put(Limit{Key: "billing", PerSecond: 4, InFlight: 1})
	slot(now.Add(6*time.Second), stale)

	for _, sc := range []int64{0, 0, 0, 1} {
		ok, err := s.CountCall(ctx, "billing", 2, sec/1000+sc)
		if err != nil {
			t.Fatal(err)
		}
		say("call in second +%d counted: %t", sc, ok)
	}

	o := Occurrence{TimerID: "t-1", At: limitContractT}
	c := Claimant{MessageID: "m-1", Token: "tok-1"}
	env.claim(o, c)
	w := LimitWait{Key: "billing", Slot: sec + 1450, Waits: 2, Since: sec + 300, Attempt: 1}
	err = s.DeferOccurrence(ctx, o, Claimant{MessageID: "m-1", Token: "other"}, w)
	say("defer by another receive: refused %t", err != nil)
	if err := s.DeferOccurrence(ctx, o, c, w); err != nil {
		t.Fatal(err)
	}
	got, err := s.LimitWaited(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	say("waited: %+v", got == w)
	none, _ := s.LimitWaited(ctx, Occurrence{TimerID: "t-2", At: limitContractT})
	say("never waited: %t", none == LimitWait{})
	env.del("billing")
	v, _ = s.Destination(ctx, "billing")
	say("deleted: exists %t", v.Exists)
	slot(now, stale)
	return log
}

// limitContractWant is what the scenario must say of every implementation.
var limitContractWant = []string{
	"no limit: exists false",
	"limit: exists true, 2/s, 1 in flight",
	"slot at +450 ms (rate 2)", "slot at +1000 ms (rate 2)", "slot at +1450 ms (rate 2)",
	"slot at +5450 ms (rate 2)",
	"lease 0", "lease -1", "lease -1", "lease 0", "lease 0",
	"lease -1",
	"slot at +10450 ms (rate 2)",
	"slot at +11000 ms (rate 4)",
	"call in second +0 counted: true", "call in second +0 counted: true", "call in second +0 counted: false",
	"call in second +1 counted: true",
	"defer by another receive: refused true",
	"waited: true",
	"never waited: true",
	"deleted: exists false",
	"slot: no limit",
}

// TestLimitStoreContract runs the contract on the fake.
func TestLimitStoreContract(t *testing.T) {
	t.Parallel()
	claims := newIGStore()
	d := newLtDest(func() time.Time { return limitContractT }, claims)
	env := limitContractEnv{dest: d,
		put: func(l Limit) {
			d.mu.Lock()
			defer d.mu.Unlock()
			if it, ok := d.items[l.Key]; ok {
				it.PerSecond, it.InFlight = l.PerSecond, l.InFlight
				return
			}
			d.items[l.Key] = &DestState{Exists: true, PerSecond: l.PerSecond, InFlight: l.InFlight, Leases: map[int]int64{}}
		},
		del: func(key string) { d.mu.Lock(); delete(d.items, key); d.mu.Unlock() },
		claim: func(o Occurrence, c Claimant) {
			if _, err := claims.Claim(context.Background(), o, c, limitContractT, limitContractT.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		},
	}
	if diff := cmp.Diff(limitContractWant, limitScenario(t, env)); diff != "" {
		t.Errorf("the fake (-contract +fake):\n%s", diff)
	}
}

// TestIntegrationLimitStoreContract runs the contract on the Store, on
// moto_server.
func TestIntegrationLimitStoreContract(t *testing.T) {
	s := motoStore(t)
	ctx := context.Background()
	env := limitContractEnv{dest: s,
		put: func(l Limit) {
			if _, _, err := s.PutLimit(ctx, l, limitContractT); err != nil {
				t.Fatal(err)
			}
		},
		del: func(key string) {
			if err := s.DeleteLimit(ctx, key); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteLimit(ctx, key); ErrorCode(err) != ENOTFOUND {
				t.Errorf("a second delete: %v, want not found", err)
			}
		},
		claim: func(o Occurrence, c Claimant) {
			if _, err := s.Claim(ctx, o, c, limitContractT, limitContractT.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		},
	}
	if diff := cmp.Diff(limitContractWant, limitScenario(t, env)); diff != "" {
		t.Errorf("the Store (-contract +store):\n%s", diff)
	}
	ls, err := s.ListLimits(ctx)
	if err != nil || len(ls) != 0 {
		t.Errorf("the list after the delete: %v, %v", ls, err)
	}
	s.PutLimit(ctx, Limit{Key: "b", PerSecond: 1}, limitContractT)
	s.PutLimit(ctx, Limit{Key: "a", InFlight: 3}, limitContractT)
	l, created, err := s.PutLimit(ctx, Limit{Key: "a", InFlight: 4}, limitContractT.Add(time.Hour))
	if err != nil || created || !l.CreatedAt.Equal(limitContractT) || l.InFlight != 4 {
		t.Errorf("a replacement: %+v, created %t, %v", l, created, err)
	}
	ls, _ = s.ListLimits(ctx)
	var keys []string
	for _, l := range ls {
		keys = append(keys, fmt.Sprintf("%s %d/%d", l.Key, l.PerSecond, l.InFlight))
	}
	if got := strings.Join(keys, ", "); got != "a 0/4, b 1/0" {
		t.Errorf("the list: %s", got)
	}
}
