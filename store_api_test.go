package main

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The API's calls of the Store (store_api.go) on moto_server: the slot
// entries its writes keep, and a group's pause.

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
