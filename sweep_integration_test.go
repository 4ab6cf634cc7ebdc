package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"
)

// TestIntegrationSweepPages sweeps 3 shards of 80 due timers on
// moto_server with pages of 7, so every shard takes several pages, and
// checks that every occurrence reaches the fire queue exactly once, that
// every timer moves on, and that a repeated event sweeps nothing.
func TestIntegrationSweepPages(t *testing.T) {
	clients, cfg := motoStack(t, 0)
	ctx := context.Background()
	store := NewStore(clients.DynamoDB, cfg.Table)
	store.PageLimit = 7
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const n, shards = 80, 3
	perShard := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("page-%03d", i)
		t0 := &Timer{ID: id, ShardID: shardFor(id, shards), ScheduleExpr: "cron(* * * * ? *)", CatchUpSeconds: 3600,
			CallbackData: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), NextFireAt: now, CreatedAt: now, UpdatedAt: now}
		if _, _, _, err := store.Put(ctx, t0, now.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		perShard[t0.ShardID]++
	}
	for shard, c := range perShard {
		if c <= int(store.PageLimit) {
			t.Fatalf("%s has %d timers, not more than one page of %d", shard, c, store.PageLimit)
		}
	}
	sw := NewSweeper(store, clients.SQS, cfg.FireQueueURL)
	sw.Now, sw.Log = func() time.Time { return now }, slog.New(slog.NewJSONHandler(io.Discard, nil))
	sw.Lookahead = 30 * time.Second // only the 10:00 occurrences

	res, err := sw.Sweep(ctx, "event-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(SweepResult{Due: n, Enqueued: n}, res); diff != "" {
		t.Errorf("sweep (-want +got):\n%s", diff)
	}
	got := map[string]int{}
	for len(got) < n {
		out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &cfg.FireQueueURL, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			var fm FireMessage
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &fm); err != nil {
				t.Fatal(err)
			}
			got[fm.TimerID+" "+fm.ScheduledAt.UTC().Format(time.RFC3339)]++
			clients.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &cfg.FireQueueURL, ReceiptHandle: m.ReceiptHandle})
		}
	}
	want := map[string]int{}
	for i := range n {
		want[fmt.Sprintf("page-%03d 2026-05-04T10:00:00Z", i)] = 1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fire messages (-want +got):\n%s", diff)
	}
	for i := range n {
		tm, err := store.Get(ctx, fmt.Sprintf("page-%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		if !tm.NextFireAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("%s: nextFireAt %s, want 10:01", tm.ID, tm.NextFireAt)
		}
	}

	// The same event again sweeps nothing; the next one finds nothing due
	// within its look-ahead.
	if res, err := sw.Sweep(ctx, "event-1"); err != nil || res.Skipped != shards || res.Enqueued != 0 {
		t.Errorf("repeated event: %+v, %v; want every shard skipped", res, err)
	}
	if res, err := sw.Sweep(ctx, "event-2"); err != nil || res.Due != 0 || res.Skipped != 0 {
		t.Errorf("next event at the same instant: %+v, %v; want nothing due", res, err)
	}
}
