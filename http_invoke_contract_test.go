package main

// The contract of claimStore, the invoker's part of the timer table: one
// table of cases run against igStore, the fake the invoker's tests use,
// and against the real Store on moto_server, so that the fake cannot drift
// from what it stands in for. An outcome the two disagree on is mended in
// the fake, never in the case.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// contractT0 is when each case's timer is created; its occurrence is ten
// minutes later, and the claims' lease ends five minutes after that.
var contractT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// contractAt, contractNow and contractLease are the occurrence's instant,
// when a claim is made (unless a step says otherwise), and its lease's end.
var (
	contractAt    = contractT0.Add(10 * time.Minute)
	contractNow   = contractAt
	contractLease = contractAt.Add(5 * time.Minute)
)

// contractOp is one call on a claimStore about timer id's occurrence at
// contractAt, and what came of it, in words.
type contractOp func(ctx context.Context, s claimStore, id string) string

// contractStep is a call and the outcome the contract wants of it.
type contractStep struct {
	op   contractOp
	want string
}

// contractResult says what err was: "ok" or its code, since the fake's
// and the store's texts differ.
func contractResult(err error) string {
	if err != nil {
		return "error: " + ErrorCode(err)
	}
	return "ok"
}

// claimAt claims the occurrence at now for msgID's receive token.
func claimAt(msgID, token string, replay, manual bool, now time.Time) contractOp {
	return func(ctx context.Context, s claimStore, id string) string {
		r, err := s.Claim(ctx, Occurrence{TimerID: id, At: contractAt, Manual: manual},
			Claimant{MessageID: msgID, Token: token, Replay: replay}, now, now.Add(contractLease.Sub(contractNow)))
		if err != nil {
			return contractResult(err)
		}
		return map[ClaimResult]string{Claimed: "claimed", ClaimDuplicate: "duplicate", ClaimInProgress: "in progress"}[r]
	}
}

// claimBy claims the occurrence for msgID's receive token, at contractNow.
func claimBy(msgID, token string) contractOp {
	return claimAt(msgID, token, false, false, contractNow)
}

// replayBy claims the occurrence for a replayed dead letter.
func replayBy(msgID, token string) contractOp {
	return claimAt(msgID, token, true, false, contractNow)
}

// record records an attempt's outcome, dead-lettered or not.
func record(outcome string, deadLettered bool) contractOp {
	return func(ctx context.Context, s claimStore, id string) string {
		f := LastFire{ScheduledAt: contractAt, AttemptedAt: contractNow, Attempt: 1, Outcome: outcome, Status: 200}
		return contractResult(s.Record(ctx, Occurrence{TimerID: id, At: contractAt}, f, deadLettered, contractNow))
	}
}

// release releases msgID's claim as its receive token.
func release(msgID, token string) contractOp {
	return func(ctx context.Context, s claimStore, id string) string {
		return contractResult(s.ReleaseClaim(ctx, Occurrence{TimerID: id, At: contractAt}, Claimant{MessageID: msgID, Token: token}))
	}
}

// duplicate counts a dropped copy of the occurrence's message.
func duplicate() contractOp {
	return func(ctx context.Context, s claimStore, id string) string {
		return contractResult(s.Duplicate(ctx, Occurrence{TimerID: id, At: contractAt}, contractNow))
	}
}

// deleteLink ends the timer's chain of links at the occurrence, as of version.
func deleteLink(version int64) contractOp {
	return func(ctx context.Context, s claimStore, id string) string {
		return contractResult(s.DeleteLink(ctx, id, contractAt.Unix(), 0, version))
	}
}

// deleteCompleted deletes the timer at version, its last occurrence done.
func deleteCompleted(version int64) contractOp {
	return func(ctx context.Context, s claimStore, id string) string {
		return contractResult(s.DeleteCompleted(ctx, id, version))
	}
}

// get reads the timer: its version, or not found.
func get() contractOp {
	return func(ctx context.Context, s claimStore, id string) string {
		t, err := s.Get(ctx, id)
		if err != nil {
			return contractResult(err)
		}
		return fmt.Sprintf("version %d", t.Version)
	}
}

// invokerContractCases are the contract. Each case has a timer of its own, at
// version 1, with occurrences left (a monthly schedule).
var invokerContractCases = []struct {
	name  string
	steps []contractStep
}{
	{"first claim", []contractStep{{claimBy("m-1", "r-1"), "claimed"}}},
	{"the same receive again, its answer lost", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{claimBy("m-1", "r-1"), "claimed"},
	}},
	{"the same message, another receive, while in progress", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{claimBy("m-1", "r-2"), "in progress"},
	}},
	{"the same message once the lease ran out", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{claimAt("m-1", "r-2", false, false, contractLease.Add(time.Second)), "claimed"},
	}},
	{"another message while in progress", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{claimBy("m-2", "r-2"), "duplicate"},
	}},
	{"another message once the lease ran out", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{claimAt("m-2", "r-2", false, false, contractLease.Add(time.Second)), "duplicate"},
	}},
	{"after a failed attempt: the same message again, not another", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{record(OutcomeRetrying, false), "ok"},
		{claimBy("m-2", "r-2"), "duplicate"},
		{claimBy("m-1", "r-3"), "claimed"},
	}},
	{"settled: every copy is a duplicate", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{record(OutcomeDelivered, false), "ok"},
		{claimBy("m-1", "r-1"), "duplicate"},
		{claimBy("m-1", "r-2"), "duplicate"},
		{claimBy("m-2", "r-3"), "duplicate"},
	}},
	{"a failure recorded after the delivery leaves it settled", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{record(OutcomeDelivered, false), "ok"},
		{record(OutcomeFailed, true), "ok"},
		{claimBy("m-1", "r-2"), "duplicate"},
		{replayBy("m-9", "r-9"), "duplicate"},
	}},
	{"released by its receive", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{release("m-1", "r-1"), "ok"},
		{claimBy("m-1", "r-2"), "claimed"},
	}},
	{"released by another receive of the same message", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{release("m-1", "r-2"), "ok"},
		{claimBy("m-1", "r-3"), "in progress"},
	}},
	{"release of what was never claimed", []contractStep{
		{release("m-1", "r-1"), "ok"},
		{claimBy("m-1", "r-2"), "claimed"},
	}},
	{"duplicate counted, claimed or not", []contractStep{
		{duplicate(), "ok"},
		{claimBy("m-1", "r-1"), "claimed"},
		{duplicate(), "ok"},
		{claimBy("m-2", "r-2"), "duplicate"},
	}},
	{"replay of a dead letter, once", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{record(OutcomeFailed, true), "ok"},
		{claimBy("m-2", "r-2"), "duplicate"},
		{replayBy("m-9", "r-9"), "claimed"},
		{replayBy("m-8", "r-8"), "duplicate"},
		{claimBy("m-1", "r-10"), "duplicate"},
	}},
	{"replay of a dead letter that failed again", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{record(OutcomeFailed, true), "ok"},
		{replayBy("m-9", "r-9"), "claimed"},
		{record(OutcomeFailed, true), "ok"},
		{replayBy("m-8", "r-8"), "claimed"},
	}},
	{"a dead letter's own message claims again: no longer a dead letter", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{record(OutcomeFailed, true), "ok"},
		{claimBy("m-1", "r-2"), "claimed"},
		{record(OutcomeRetrying, false), "ok"},
		{replayBy("m-9", "r-9"), "duplicate"},
	}},
	{"replay of a settled occurrence", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{record(OutcomeDelivered, false), "ok"},
		{replayBy("m-9", "r-9"), "duplicate"},
	}},
	{"replay of an occurrence never claimed", []contractStep{{replayBy("m-9", "r-9"), "claimed"}}},
	{"a fire by hand apart from the scheduled occurrence", []contractStep{
		{claimBy("m-1", "r-1"), "claimed"},
		{claimAt("m-2", "r-2", false, true, contractNow), "claimed"},
		{claimAt("m-3", "r-3", false, true, contractNow), "duplicate"},
	}},
	{"DeleteLink of another version", []contractStep{
		{deleteLink(2), "ok"},
		{get(), "version 1"},
	}},
	{"DeleteCompleted of another version", []contractStep{
		{deleteCompleted(2), "ok"},
		{get(), "version 1"},
	}},
	{"DeleteCompleted at its version, occurrences left", []contractStep{
		{deleteCompleted(1), "ok"},
		{get(), "error: not_found"},
		{deleteCompleted(1), "ok"},
	}},
}

// TestIntegrationInvokerContract runs invokerContractCases against igStore and
// against the real Store on moto_server.
func TestIntegrationInvokerContract(t *testing.T) {
	t.Parallel()
	t.Run("igStore", func(t *testing.T) {
		t.Parallel()
		runContract(t, func(t *testing.T, id string) claimStore {
			return newIGStore(Timer{ID: id, Version: 1, NextFireAt: contractAt})
		})
	})
	t.Run("Store", func(t *testing.T) {
		t.Parallel()
		s := motoStore(t)
		runContract(t, func(t *testing.T, id string) claimStore {
			tm := &Timer{ID: id, ShardID: "shard0", ScheduleExpr: "cron(10 12 1 * ? *)", CallbackData: json.RawMessage(`1`),
				CatchUpSeconds: DefaultCatchUpSeconds, Anchor: contractT0, CreatedAt: contractT0, UpdatedAt: contractT0}
			if stored, _, _, err := s.Put(context.Background(), tm, contractT0); err != nil || stored.Version != 1 {
				t.Fatalf("put %s: %+v, %v", id, stored, err)
			}
			return s
		})
	})
}

// runContract runs each case on a store newStore returns with the case's
// timer in it, and compares its outcomes with the contract's.
func runContract(t *testing.T, newStore func(t *testing.T, id string) claimStore) {
	for i, tc := range invokerContractCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprintf("contract-%02d", i)
			s := newStore(t, id)
			var want, got []string
			for _, st := range tc.steps {
				want = append(want, st.want)
				got = append(got, st.op(context.Background(), s, id))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("outcomes of the steps (-want +got):\n%s", diff)
			}
		})
	}
}
