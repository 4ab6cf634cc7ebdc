package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestIntegrationStore checks the table design on moto_server with the
// real SDK: atomic create/replace, the sparse due index per shard, and
// conditional advancing.
func TestIntegrationStore(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mk := func(id, shard string, next time.Time) *Timer {
		return &Timer{ID: id, ShardID: shard, MinuteOfHour: next.Minute(), CallbackData: json.RawMessage(`{"id": "` + id + `"}`),
			NextFireAt: next, CreatedAt: t0, UpdatedAt: t0}
	}

	// Create, then replace: version counts, createdAt stays, and attributes
	// the replacement lacks are removed.
	created, isNew, err := s.Put(ctx, mk("a", "shard0", t0.Add(5*time.Minute)))
	if err != nil || !isNew || created.Version != 1 {
		t.Fatalf("create: %+v new=%v err=%v", created, isNew, err)
	}
	repl := mk("a", "shard0", t0.Add(10*time.Minute))
	repl.CallbackData = nil
	repl.HTTP = &HTTPTarget{Method: "POST", URL: "https://example.com/x", Headers: map[string]string{"A": "b"}}
	repl.Notify = &Notify{Webhook: "aws-secret(/callclock/slack)", Channel: "qa-alerts"}
	repl.Deployment = &DeploymentInfo{Product: "facilities", Version: "1.4.2", ID: "d-17", Environment: "qa"}
	repl.CreatedAt, repl.UpdatedAt = t0.Add(time.Hour), t0.Add(time.Hour)
	replaced, isNew, err := s.Put(ctx, repl)
	if err != nil || isNew {
		t.Fatalf("replace: new=%v err=%v", isNew, err)
	}
	want := &Timer{ID: "a", ShardID: "shard0", MinuteOfHour: 10, HTTP: repl.HTTP, Notify: repl.Notify, Deployment: repl.Deployment, NextFireAt: t0.Add(10 * time.Minute),
		CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), Version: 2}
	if diff := cmp.Diff(want, replaced); diff != "" {
		t.Fatalf("replaced (-want +got):\n%s", diff)
	}
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Get (-want +got):\n%s", diff)
	}

	// A replacement without them removes the notification and the
	// deployment metadata.
	if again, _, err := s.Put(ctx, mk("a", "shard0", t0.Add(10*time.Minute))); err != nil || again.Notify != nil || again.Deployment != nil {
		t.Fatalf("replace without notify and deploymentInfo: %+v, %v", again, err)
	}
	if _, _, err := s.Put(ctx, repl); err != nil {
		t.Fatal(err)
	}

	// The due index answers per shard and up to an instant, oldest first.
	for _, tm := range []*Timer{mk("b", "shard0", t0.Add(2*time.Minute)), mk("c", "shard1", t0.Add(time.Minute)), mk("d", "shard0", t0.Add(time.Hour))} {
		if _, _, err := s.Put(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	due := func(shard string, until time.Time) []string {
		var ids []string
		if err := s.Due(ctx, shard, until, func(page []*Timer) error {
			for _, tm := range page {
				ids = append(ids, tm.ID)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if diff := cmp.Diff([]string{"b", "a"}, due("shard0", t0.Add(10*time.Minute))); diff != "" {
		t.Errorf("due shard0 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c"}, due("shard1", t0.Add(10*time.Minute))); diff != "" {
		t.Errorf("due shard1 (-want +got):\n%s", diff)
	}

	// Advance is conditional on the occurrence and version each timer was
	// read with; one stale step does not stop the others in its batch.
	b, _ := s.Get(ctx, "b")
	c, _ := s.Get(ctx, "c")
	d, _ := s.Get(ctx, "d")
	stale := *d
	stale.Version = 99
	outcomes, err := s.Advance(ctx, []Step{{Timer: b, Next: t0.Add(62 * time.Minute)}, {Timer: &stale, Next: t0.Add(2 * time.Hour)},
		{Timer: c, Missed: true}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]StepOutcome{StepApplied, StepConflict, StepApplied}, outcomes); diff != "" {
		t.Fatalf("advance outcomes (-want +got):\n%s", diff)
	}
	if outcomes, err := s.Advance(ctx, []Step{{Timer: b, Next: t0.Add(62 * time.Minute)}}); err != nil || outcomes[0] != StepConflict {
		t.Fatalf("second advance from the same read: %v %v, want a conflict", outcomes, err)
	}
	if got, _ := s.Get(ctx, "d"); !got.NextFireAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("the stale step moved d to %v", got.NextFireAt)
	}
	// c was skipped as missed and has no next occurrence: completed, counted.
	if got, _ := s.Get(ctx, "c"); got.State() != StateCompleted || got.MissedCount != 1 || got.LastMissedAt == nil || !got.LastMissedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("c after a missed last occurrence: state %s, missed %d at %v", got.State(), got.MissedCount, got.LastMissedAt)
	}
	if diff := cmp.Diff([]string{"a"}, due("shard0", t0.Add(10*time.Minute))); diff != "" {
		t.Errorf("due shard0 after advance (-want +got):\n%s", diff)
	}
	if ids := due("shard1", t0.Add(24*time.Hour)); len(ids) != 0 {
		t.Errorf("a timer with no next occurrence is still in the due index: %v", ids)
	}

	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); ErrorCode(err) != ENOTFOUND {
		t.Fatalf("Get after Delete: %v, want not_found", err)
	}
	if err := s.Delete(ctx, "a"); ErrorCode(err) != ENOTFOUND {
		t.Fatalf("second Delete: %v, want not_found", err)
	}
}

// TestIntegrationLease checks shard leases on moto_server: one holder at a
// time, expiry, and the same scheduled event not sweeping a shard twice.
func TestIntegrationLease(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lease := func(owner, event string, at time.Time) bool {
		t.Helper()
		ok, err := s.Lease(ctx, "shard0", owner, event, at, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !lease("a", "e1", t0) {
		t.Fatal("first lease refused")
	}
	if lease("b", "e2", t0.Add(time.Second)) {
		t.Fatal("a second sweep got a held lease")
	}
	if !lease("b", "e2", t0.Add(91*time.Second)) {
		t.Fatal("an expired lease was not taken over")
	}
	if err := s.Release(ctx, "shard0", "a", "e1", true, t0); err != nil { // a's lease is gone: a no-op
		t.Fatal(err)
	}
	if lease("c", "e3", t0.Add(92*time.Second)) {
		t.Fatal("the stale owner's release freed b's lease")
	}
	if err := s.Release(ctx, "shard0", "b", "e2", true, t0.Add(95*time.Second)); err != nil {
		t.Fatal(err)
	}
	if lease("d", "e2", t0.Add(96*time.Second)) {
		t.Fatal("the same event swept the shard twice")
	}
	if !lease("d", "e3", t0.Add(96*time.Second)) {
		t.Fatal("the next event was refused the released shard")
	}
	if err := s.Release(ctx, "shard0", "d", "e3", false, t0.Add(97*time.Second)); err != nil {
		t.Fatal(err)
	}
	if !lease("e", "e3", t0.Add(98*time.Second)) {
		t.Fatal("an event whose sweep did not complete could not try again")
	}
}

// TestIntegrationGroupPause: the group's record on moto_server, and a
// timer created paused because of it: out of the due index, kept paused
// when replaced, and not listed as a timer itself.
func TestIntegrationGroupPause(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if at, _, err := s.GroupPause(ctx, "qa"); err != nil || at != nil {
		t.Fatalf("a group never paused: %v, %v", at, err)
	}
	if err := s.PauseGroup(ctx, "qa", "deploy 1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PauseGroup(ctx, "qa", "", t0.Add(time.Minute)); err != nil { // again: the first instant stays
		t.Fatal(err)
	}
	at, reason, err := s.GroupPause(ctx, "qa")
	if err != nil || at == nil || !at.Equal(t0) || reason != "deploy 1" {
		t.Fatalf("GroupPause = %v %q %v, want %s and the reason", at, reason, err, t0)
	}
	tm := &Timer{ID: "qa-new", ShardID: "shard0", Group: "qa", CallbackData: json.RawMessage(`1`),
		NextFireAt: t0.Add(5 * time.Minute), CreatedAt: t0, UpdatedAt: t0, PausedAt: at, PauseReason: reason}
	stored, created, err := s.Put(ctx, tm)
	if err != nil || !created || stored.PausedAt == nil || !stored.PausedAt.Equal(t0) || stored.PauseReason != "deploy 1" || !stored.NextFireAt.IsZero() {
		t.Fatalf("created in the paused group: %+v created=%v err=%v", stored, created, err)
	}
	again, created, err := s.Put(ctx, tm)
	if err != nil || created || again.PausedAt == nil || again.Version != 2 || !again.NextFireAt.IsZero() {
		t.Fatalf("replaced while paused: %+v created=%v err=%v", again, created, err)
	}
	var due []string
	if err := s.Due(ctx, "shard0", t0.Add(time.Hour), func(page []*Timer) error {
		for _, d := range page {
			due = append(due, d.ID)
		}
		return nil
	}); err != nil || len(due) != 0 {
		t.Fatalf("due while paused: %v %v", due, err)
	}
	listed, _, err := s.List(ctx, "", "", 100, nil)
	if err != nil || len(listed) != 1 || listed[0].ID != "qa-new" {
		t.Fatalf("List = %v, %v; want only the timer, not the group's record", listed, err)
	}
	if err := s.ResumeGroup(ctx, "qa"); err != nil {
		t.Fatal(err)
	}
	if at, _, err := s.GroupPause(ctx, "qa"); err != nil || at != nil {
		t.Fatalf("after ResumeGroup: %v, %v", at, err)
	}
}

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
