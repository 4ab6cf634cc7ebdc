package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// bucketEntries is every link in minute's bucket, by timer id: the
// sweeper's view of it.
func bucketEntries(t *testing.T, s *Store, minute int64) map[string]DueEntry {
	t.Helper()
	got := map[string]DueEntry{}
	for _, br := range bucketRanges(minute, minute, nil) {
		if err := s.Bucket(context.Background(), br, func(page []DueEntry) error {
			for _, e := range page {
				got[e.TimerID] = e
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// TestIntegrationStore checks the table design on moto_server with the
// real SDK: atomic create/replace with the timer's first link in the same
// transaction, the occurrences within short notice handed back instead of
// linked, and the minute buckets the sweeper reads.
func TestIntegrationStore(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mk := func(id, expr string) *Timer {
		return &Timer{ID: id, ShardID: "shard0", ScheduleExpr: expr, CallbackData: json.RawMessage(`{"id": "` + id + `"}`),
			CatchUpSeconds: DefaultCatchUpSeconds, Anchor: t0, CreatedAt: t0, UpdatedAt: t0}
	}

	// Create, then replace: version counts, createdAt stays, and attributes
	// the replacement lacks are removed.
	// Monthly: linked (PlanDue plans no slots for it).
	created, isNew, direct, err := s.Put(ctx, mk("a", "cron(10 12 1 * ? *)"), t0)
	if err != nil || !isNew || created.Version != 1 || len(direct) != 0 {
		t.Fatalf("create: %+v new=%v direct=%v err=%v", created, isNew, direct, err)
	}
	if e, ok := bucketEntries(t, s, unixMinute(t0.Add(10*time.Minute)))["a"]; !ok || e.Version != 1 || e.WrittenAt != t0.Unix() {
		t.Fatalf("a's first link: %+v %v, want version 1 written at %s", e, ok, t0)
	}
	repl := mk("a", "cron(20 12 1 * ? *)")
	repl.CallbackData = nil
	repl.HTTP = &HTTPTarget{Method: "POST", URL: "https://example.com/x", Headers: map[string]string{"A": "b"}}
	repl.Notify = &Notify{Webhook: "aws-secret(/callclock/slack)", Channel: "qa-alerts"}
	repl.Deployment = &DeploymentInfo{Product: "facilities", Version: "1.4.2", ID: "d-17", Environment: "qa"}
	repl.CreatedAt, repl.UpdatedAt = t0.Add(time.Hour), t0.Add(time.Hour)
	replaced, isNew, _, err := s.Put(ctx, repl, t0)
	if err != nil || isNew {
		t.Fatalf("replace: new=%v err=%v", isNew, err)
	}
	want := &Timer{ID: "a", ShardID: "shard0", ScheduleExpr: "cron(20 12 1 * ? *)", HTTP: repl.HTTP, Notify: repl.Notify, Deployment: repl.Deployment,
		CatchUpSeconds: DefaultCatchUpSeconds, DueFrom: t0, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour), Version: 2}
	replaced.Anchor = time.Time{} // kept for rate schedules only
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
	// The replacement's own link; the old one stays until the invoker
	// drops its stale occurrence (and deletes the link after it).
	if e, ok := bucketEntries(t, s, unixMinute(t0.Add(20*time.Minute)))["a"]; !ok || e.Version != 2 {
		t.Errorf("the replacement's link: %+v %v, want version 2", e, ok)
	}

	// A replacement without them removes the notification and the
	// deployment metadata.
	if again, _, _, err := s.Put(ctx, mk("a", "cron(20 12 1 * ? *)"), t0); err != nil || again.Notify != nil || again.Deployment != nil {
		t.Fatalf("replace without notify and deploymentInfo: %+v, %v", again, err)
	}

	// Short notice: occurrences within shortNotice of now are handed back
	// to send at once, and the first beyond is linked (every minute of
	// 12:xx on 1 March: yearly, so linked).
	_, _, direct, err = s.Put(ctx, mk("b", "cron(* 12 1 3 ? *)"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute), t0.Add(3 * time.Minute)}, direct); diff != "" {
		t.Errorf("the occurrences to send at once (-want +got):\n%s", diff)
	}
	if _, ok := bucketEntries(t, s, unixMinute(t0.Add(4*time.Minute)))["b"]; !ok {
		t.Error("no link at the fifth occurrence, the first beyond short notice")
	}
	for m := range 4 {
		if _, ok := bucketEntries(t, s, unixMinute(t0.Add(time.Duration(m)*time.Minute)))["b"]; ok {
			t.Errorf("linked at minute %d, an occurrence sent at once", m)
		}
	}

	// A link written twice is one entry; DeleteLink keeps another
	// version's link.
	e := dueEntryOf(got, t0.Add(30*time.Minute), t0)
	if left, err := s.PutLinks(ctx, []DueEntry{e, e}); err != nil || len(left) > 0 {
		t.Fatal(err)
	}
	if err := s.DeleteLink(ctx, "a", e.At, 0, 1); err != nil { // not its version
		t.Fatal(err)
	}
	if _, ok := bucketEntries(t, s, unixMinute(t0.Add(30*time.Minute)))["a"]; !ok {
		t.Error("DeleteLink of another version deleted the link")
	}
	if err := s.DeleteLink(ctx, "a", e.At, 0, e.Version); err != nil {
		t.Fatal(err)
	}
	if _, ok := bucketEntries(t, s, unixMinute(t0.Add(30*time.Minute)))["a"]; ok {
		t.Error("DeleteLink of the link's version kept it")
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

// slotEntries is timer id's slot entries of period, by slot.
func slotEntries(t *testing.T, s *Store, period int, id string) []int {
	t.Helper()
	var got []int
	for _, br := range slotRanges(period, 0, int64(period-1)) {
		if err := s.Bucket(context.Background(), br, func(page []DueEntry) error {
			for _, e := range page {
				if e.TimerID == id {
					got = append(got, e.Slot)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	sort.Ints(got)
	return got
}

// TestIntegrationSlots: a timer whose schedule repeats within a week is
// found through static slot entries, written with it in one transaction
// and never rewritten as it fires; a replacement, a pause, a resume and a
// delete keep them in step with the timer, and the period is recorded for
// the sweeper.
func TestIntegrationSlots(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tm := &Timer{ID: "h", ShardID: "shard0", ScheduleExpr: "cron(10 * * * ? *)", CallbackData: json.RawMessage(`1`),
		CatchUpSeconds: DefaultCatchUpSeconds, CreatedAt: t0, UpdatedAt: t0}
	stored, _, _, err := s.Put(ctx, tm, t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]DueSlot{{Period: 60, Slot: 10}}, stored.Slots); diff != "" {
		t.Fatalf("hourly at :10, slots (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{10}, slotEntries(t, s, 60, "h")); diff != "" {
		t.Errorf("slot entries (-want +got):\n%s", diff)
	}
	if _, ok := bucketEntries(t, s, unixMinute(t0.Add(70*time.Minute)))["h"]; ok {
		t.Error("a slotted timer is linked too")
	}
	if ps, err := s.Periods(ctx); err != nil || !slices.Contains(ps, 60) {
		t.Errorf("periods %v %v, want 60 among them", ps, err)
	}
	tm2 := *tm
	tm2.ScheduleExpr = "cron(20 * * * ? *)"
	if _, _, _, err := s.Put(ctx, &tm2, t0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{20}, slotEntries(t, s, 60, "h")); diff != "" {
		t.Errorf("after a replacement at :20, slot entries (-want +got):\n%s", diff)
	}
	if _, err := s.Pause(ctx, "h", "", t0); err != nil {
		t.Fatal(err)
	}
	if got := slotEntries(t, s, 60, "h"); len(got) != 0 {
		t.Errorf("paused, slot entries %v, want none", got)
	}
	if got, _ := s.Get(ctx, "h"); len(got.Slots) != 0 {
		t.Errorf("paused, the timer lists slots %v", got.Slots)
	}
	resumed, direct, err := s.Resume(ctx, "h", t0.Add(time.Hour), loadZone)
	if err != nil || len(direct) != 0 {
		t.Fatalf("resume: %v, direct %v", err, direct)
	}
	if diff := cmp.Diff([]int{20}, slotEntries(t, s, 60, "h")); diff != "" || len(resumed.Slots) != 1 {
		t.Errorf("resumed, slot entries (-want +got):\n%s (timer's: %v)", diff, resumed.Slots)
	}
	if err := s.Delete(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if got := slotEntries(t, s, 60, "h"); len(got) != 0 {
		t.Errorf("deleted, slot entries %v, want none", got)
	}
}

// TestIntegrationSweepLease checks the sweep's lease and progress on
// moto_server: one holder at a time, expiry, the same scheduled event not
// sweeping twice, and the first minute not yet read kept across sweeps.
func TestIntegrationSweepLease(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lease := func(owner, event string, at time.Time) (int64, bool) {
		t.Helper()
		state, ok, err := s.LeaseSweep(ctx, owner, event, at, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return state.Through, ok
	}
	if through, ok := lease("a", "e1", t0); !ok || through != 0 {
		t.Fatalf("first lease: %d %v, want granted at 0", through, ok)
	}
	if _, ok := lease("b", "e2", t0.Add(time.Second)); ok {
		t.Fatal("a second sweep got a held lease")
	}
	if _, ok := lease("b", "e2", t0.Add(91*time.Second)); !ok {
		t.Fatal("an expired lease was not taken over")
	}
	if err := s.ReleaseSweep(ctx, "a", "e1", 100, true, t0, nil); err != nil { // a's lease is gone: a no-op
		t.Fatal(err)
	}
	if _, ok := lease("c", "e3", t0.Add(92*time.Second)); ok {
		t.Fatal("the stale owner's release freed b's lease")
	}
	if err := s.ReleaseSweep(ctx, "b", "e2", 200, true, t0.Add(95*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := lease("d", "e2", t0.Add(96*time.Second)); ok {
		t.Fatal("the same event swept twice")
	}
	through, ok := lease("d", "e3", t0.Add(96*time.Second))
	if !ok || through != 200 {
		t.Fatalf("the next event: %d %v, want granted at minute 200 (b's release, not a's)", through, ok)
	}
	if err := s.ReleaseSweep(ctx, "d", "e3", 0, false, t0.Add(97*time.Second), nil); err != nil {
		t.Fatal(err)
	}
	if through, ok := lease("e", "e3", t0.Add(98*time.Second)); !ok || through != 200 {
		t.Fatalf("an event whose sweep did not complete: %d %v, want it to try again from 200", through, ok)
	}
}

// TestIntegrationSweepParts checks the raised partitions on moto_server:
// only the lease's owner raises an hour, never lower; the next lease
// returns them; a release drops the hours behind it; and a link written
// into a raised hour is found there, and deleted there, by its Parts.
func TestIntegrationSweepParts(t *testing.T) {
	ctx := context.Background()
	s := motoStore(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h1, h2 := t0.Unix()/3600+1, t0.Unix()/3600+2
	if _, ok, err := s.LeaseSweep(ctx, "a", "e1", t0, 90*time.Second); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	for _, step := range []struct {
		owner       string
		hour        int64
		parts, want int
		err         error
	}{
		{"a", h1, 32, 32, nil},
		{"a", h1, 64, 64, nil},
		{"a", h1, 32, 64, nil}, // never lower
		{"a", h2, 128, 128, nil},
		{"b", h1, 256, 0, errLeaseLost}, // not the lease's owner
	} {
		got, err := s.RaiseParts(ctx, step.owner, step.hour, step.parts)
		if got != step.want || !errors.Is(err, step.err) {
			t.Errorf("RaiseParts(%s, %d, %d) = %d, %v; want %d, %v", step.owner, step.hour, step.parts, got, err, step.want, step.err)
		}
	}
	// A link in the 64 partitions of h1, read and deleted there; its id
	// one whose partition differs from its dueParts one.
	id := "raised"
	for i := 0; partIn(id, 64) == partOf(id); i++ {
		id = fmt.Sprintf("raised%d", i)
	}
	tm := &Timer{ID: id, ScheduleExpr: "cron(5 13 1 * ? *)", CatchUpSeconds: DefaultCatchUpSeconds, Version: 2}
	e := dueEntryOf(tm, t0.Add(65*time.Minute), t0)
	e.Parts = 64
	if left, err := s.PutLinks(ctx, []DueEntry{e}); err != nil || len(left) != 0 {
		t.Fatalf("PutLinks: %v, %d left", err, len(left))
	}
	found := func() bool {
		for _, br := range bucketRanges(e.At/60, e.At/60, map[int64]int{h1: 64}) {
			hit := false
			if err := s.Bucket(ctx, br, func(page []DueEntry) error {
				for _, got := range page {
					hit = hit || (got.TimerID == id && got.Parts == 64)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if hit {
				return true
			}
		}
		return false
	}
	if !found() {
		t.Fatal("the link written into 64 partitions is not in them")
	}
	if err := s.DeleteLink(ctx, id, e.At, 0, 2); err != nil || !found() {
		t.Errorf("DeleteLink under dueParts partitions: %v; the link must stay (found %v)", err, found())
	}
	if err := s.DeleteLink(ctx, id, e.At, 64, 2); err != nil || found() {
		t.Errorf("DeleteLink under its 64 partitions: %v; still found %v", err, found())
	}

	// Released through h2's first minute: h1 is behind, dropped; h2 kept.
	if err := s.ReleaseSweep(ctx, "a", "e1", h2*60, true, t0, []int64{h1, h2}); err != nil {
		t.Fatal(err)
	}
	state, ok, err := s.LeaseSweep(ctx, "c", "e2", t0.Add(time.Minute), 90*time.Second)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if diff := cmp.Diff(SweepState{Through: h2 * 60, Parts: map[int64]int{h2: 128}}, state); diff != "" {
		t.Errorf("sweep state (-want +got):\n%s", diff)
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
	tm := &Timer{ID: "qa-new", ShardID: "shard0", Group: "qa", CallbackData: json.RawMessage(`1`), ScheduleExpr: "cron(5 12 * * ? *)",
		CreatedAt: t0, UpdatedAt: t0, PausedAt: at, PauseReason: reason}
	stored, created, direct, err := s.Put(ctx, tm, t0)
	if err != nil || !created || stored.PausedAt == nil || !stored.PausedAt.Equal(t0) || stored.PauseReason != "deploy 1" || len(direct) != 0 {
		t.Fatalf("created in the paused group: %+v created=%v direct=%v err=%v", stored, created, direct, err)
	}
	again, created, direct, err := s.Put(ctx, tm, t0)
	if err != nil || created || again.PausedAt == nil || again.Version != 2 || len(direct) != 0 {
		t.Fatalf("replaced while paused: %+v created=%v direct=%v err=%v", again, created, direct, err)
	}
	if links := bucketEntries(t, s, unixMinute(t0.Add(5*time.Minute))); len(links) != 0 {
		t.Fatalf("linked while paused: %v", links)
	}
	listed, _, err := s.List(ctx, "", "", 100, nil, t0)
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
