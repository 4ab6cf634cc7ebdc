package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestIntegrationStore checks the table design on moto_server with the
// real SDK: atomic create/replace, the sparse due index per shard, and
// conditional advancing.
func TestIntegrationStore(t *testing.T) {
	endpoint := needMoto(t)
	ctx := context.Background()
	clients := motoClients(t, endpoint)
	names := uniqueNames(t)
	if err := ensureTable(ctx, clients.DynamoDB, names.Table); err != nil {
		t.Fatal(err)
	}
	s := NewStore(clients.DynamoDB, names.Table)
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
	repl.CreatedAt, repl.UpdatedAt = t0.Add(time.Hour), t0.Add(time.Hour)
	replaced, isNew, err := s.Put(ctx, repl)
	if err != nil || isNew {
		t.Fatalf("replace: new=%v err=%v", isNew, err)
	}
	want := &Timer{ID: "a", ShardID: "shard0", MinuteOfHour: 10, HTTP: repl.HTTP, NextFireAt: t0.Add(10 * time.Minute),
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

	// Advance is conditional on the occurrence and version it was read with.
	b, _ := s.Get(ctx, "b")
	if ok, err := s.Advance(ctx, b, t0.Add(62*time.Minute)); !ok || err != nil {
		t.Fatalf("advance: %v %v", ok, err)
	}
	if ok, err := s.Advance(ctx, b, t0.Add(62*time.Minute)); ok || err != nil {
		t.Fatalf("second advance from the same read: %v %v, want false, nil", ok, err)
	}
	stale := *b
	stale.NextFireAt, stale.Version = t0.Add(62*time.Minute), 99
	if ok, err := s.Advance(ctx, &stale, t0.Add(122*time.Minute)); ok || err != nil {
		t.Fatalf("advance with a stale version: %v %v, want false, nil", ok, err)
	}
	c, _ := s.Get(ctx, "c")
	if ok, err := s.Advance(ctx, c, time.Time{}); !ok || err != nil {
		t.Fatalf("advance to none: %v %v", ok, err)
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
