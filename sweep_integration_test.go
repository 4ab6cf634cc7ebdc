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
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

// TestIntegrationSweepPages sweeps 80 timers' links on moto_server with
// pages of 2, so that every bucket partition takes several pages, and
// checks that every occurrence reaches the fire queue exactly once (the
// linked one and the ones within short notice after it), that every
// timer is linked on, and that a repeated event sweeps nothing.
func TestIntegrationSweepPages(t *testing.T) {
	clients, cfg := motoStack(t, 0)
	ctx := context.Background()
	store := NewStore(clients.DynamoDB, cfg.Table)
	store.PageLimit = 2
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	const n = 80
	perPart := map[int]int{}
	for i := range n {
		id := fmt.Sprintf("page-%03d", i)
		// Every minute of 10:00 on 4 May: yearly, so linked, not slotted.
		t0 := &Timer{ID: id, ShardID: "shard0", ScheduleExpr: "cron(* 10 4 5 ? *)", CatchUpSeconds: 3600,
			CallbackData: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), CreatedAt: now, UpdatedAt: now}
		// Written at 09:56, its first occurrence, 10:00, is beyond short
		// notice: linked.
		if _, _, direct, err := store.Put(ctx, t0, now.Add(-4*time.Minute)); err != nil || len(direct) != 0 {
			t.Fatalf("put %s: %v, %d occurrences to send at once, want none", id, err, len(direct))
		}
		perPart[partOf(id)]++
	}
	for part, c := range perPart {
		if c <= int(store.PageLimit) {
			t.Fatalf("partition %d has %d links, not more than one page of %d", part, c, store.PageLimit)
		}
	}
	sw := NewSweeper(store, clients.SQS, cfg.FireQueueURL)
	sw.Now, sw.Log = func() time.Time { return now }, slog.New(slog.NewJSONHandler(io.Discard, nil))

	res, err := sw.Sweep(ctx, "event-1")
	if err != nil {
		t.Fatal(err)
	}
	// 09:56 (the first PUT started the sweep there) to 10:02, the last
	// minute wholly within the look-ahead; each timer's 10:00 link, sent
	// with 10:01 to 10:03 (within short notice), and linked on at 10:04.
	if diff := cmp.Diff(SweepResult{Minutes: 7, Due: n, Enqueued: 4 * n}, res); diff != "" {
		t.Errorf("sweep (-want +got):\n%s", diff)
	}
	got := map[string]int{}
	for {
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
	// The 10:00 ones are visible at once (the clock is fake, SQS's is
	// not); the later ones wait out their delays.
	want := map[string]int{}
	for i := range n {
		want[fmt.Sprintf("page-%03d 2026-05-04T10:00:00Z", i)] = 1
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fire messages (-want +got):\n%s", diff)
	}
	attrs, err := clients.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &cfg.FireQueueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		t.Fatal(err)
	}
	if got := attrs.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)]; got != fmt.Sprint(3*n) {
		t.Errorf("%s messages delayed, want %d (10:01 to 10:03)", got, 3*n)
	}
	linked := bucketEntries(t, store, unixMinute(now.Add(4*time.Minute)))
	if len(linked) != n {
		t.Errorf("%d timers linked at 10:04, want %d", len(linked), n)
	}

	// The same event again sweeps nothing; the next one, at the same
	// instant, finds every minute within its look-ahead read already.
	if res, err := sw.Sweep(ctx, "event-1"); err != nil || res.Skipped != 1 || res.Enqueued != 0 {
		t.Errorf("repeated event: %+v, %v; want it skipped", res, err)
	}
	if res, err := sw.Sweep(ctx, "event-2"); err != nil || res.Due != 0 || res.Minutes != 0 {
		t.Errorf("next event at the same instant: %+v, %v; want nothing read", res, err)
	}
}
