package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The invoker's calls of the Store (occurrence.go) on moto_server.

// TestIntegrationClaimReplay: a dead-lettered occurrence can be claimed
// again by a replay, once; not by any other copy, and not once delivered.
func TestIntegrationClaimReplay(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := at.Add(time.Minute)
	o := Occurrence{TimerID: "t1", At: at}
	receives := 0
	claim := func(msg string, replay bool) ClaimResult {
		t.Helper()
		receives++
		res, err := s.Claim(ctx, o, Claimant{MessageID: msg, Token: fmt.Sprint("receive-", receives), Replay: replay}, now, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	record := func(outcome string, deadLettered bool) {
		t.Helper()
		if err := s.Record(ctx, o, LastFire{ScheduledAt: at, AttemptedAt: now, Attempt: 1, Outcome: outcome}, deadLettered, now); err != nil {
			t.Fatal(err)
		}
	}
	if claim("m-1", false) != Claimed {
		t.Fatal("first claim refused")
	}
	if got := claim("m-2", true); got != ClaimDuplicate {
		t.Errorf("a replay's claim of an occurrence still being delivered: %v, want a duplicate", got)
	}
	record(OutcomeFailed, true)
	if got := claim("m-2", false); got != ClaimDuplicate {
		t.Errorf("a copy that is not a replay, of a dead-lettered claim: %v, want a duplicate", got)
	}
	if claim("m-3", true) != Claimed {
		t.Fatal("the replay of a dead-lettered occurrence was refused")
	}
	if got := claim("m-4", true); got != ClaimDuplicate {
		t.Errorf("a second replay, while the first delivers: %v, want a duplicate", got)
	}
	record(OutcomeRetrying, false)
	if got := claim("m-4", true); got != ClaimDuplicate {
		t.Errorf("a second replay, after the first's failed attempt: %v, want a duplicate", got)
	}
	if got := claim("m-3", true); got != Claimed {
		t.Errorf("the replay's own retry: %v, want claimed", got)
	}
	record(OutcomeDelivered, false)
	record(OutcomeFailed, true) // a late record of an older attempt: the delivery stands
	if got := claim("m-5", true); got != ClaimDuplicate {
		t.Errorf("a replay of a delivered occurrence: %v, want a duplicate", got)
	}
	h, err := s.History(ctx, "t1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Outcome != OutcomeDelivered {
		t.Errorf("history %+v, want the one occurrence, delivered", h)
	}
	// An occurrence never claimed (missed, say) may be replayed.
	other := Occurrence{TimerID: "t1", At: at.Add(time.Hour)}
	if res, err := s.Claim(ctx, other, Claimant{MessageID: "m-6", Token: "r", Replay: true}, now, now); err != nil || res != Claimed {
		t.Errorf("replay of an unclaimed occurrence: %v %v", res, err)
	}
}
