package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The sweep's state (due_state.go) on moto_server: its lease and the
// partitions it raises.

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
