package main

import (
	"context"
	"encoding/json"
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
