package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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

// throttlingDB is moto's DynamoDB with DynamoDB's per-key write limit on
// link writes: each link partition key takes perKey writes a window, and
// BatchWriteItem returns the rest in UnprocessedItems, as DynamoDB does.
type throttlingDB struct {
	dynamoAPI
	mu      sync.Mutex
	budget  *swBudget
	refused int
}

func (d *throttlingDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	d.mu.Lock()
	pass := map[string][]dbtypes.WriteRequest{}
	var held []dbtypes.WriteRequest
	for table, reqs := range in.RequestItems {
		for _, r := range reqs {
			if r.PutRequest != nil && d.budget != nil {
				if pk, _ := r.PutRequest.Item[attrPK].(*dbtypes.AttributeValueMemberS); pk != nil && strings.HasPrefix(pk.Value, pkDue) && d.budget.throttle(pk.Value) {
					held = append(held, r)
					d.refused++
					continue
				}
			}
			pass[table] = append(pass[table], r)
		}
	}
	d.mu.Unlock()
	out := &dynamodb.BatchWriteItemOutput{}
	if len(pass) > 0 {
		o, err := d.dynamoAPI.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pass}, opts...)
		if err != nil {
			return nil, err
		}
		out = o
	}
	if len(held) > 0 {
		if out.UnprocessedItems == nil {
			out.UnprocessedItems = map[string][]dbtypes.WriteRequest{}
		}
		for table := range in.RequestItems {
			out.UnprocessedItems[table] = append(out.UnprocessedItems[table], held...)
		}
	}
	return out, nil
}

// TestIntegrationSweepRaisesParts: on moto_server, 100 monthly timers due
// at one minute whose next links are throttled (3 writes a key a window:
// 16 partitions take 48) are all linked on, into the raised partitions of
// next month's hour; next month's sweep reads them from the table and
// finds every timer, and the month after, whose hour nobody raised, is
// read over 16 partitions again: partitions go up and down with the
// load, and every timer fires each month.
func TestIntegrationSweepRaisesParts(t *testing.T) {
	clients, cfg := motoStack(t, 0)
	ctx := context.Background()
	db := &throttlingDB{dynamoAPI: clients.DynamoDB}
	store := NewStore(db, cfg.Table)
	put := time.Date(2026, 5, 4, 9, 55, 0, 0, time.UTC)
	const n = 100
	for i := range n {
		id := fmt.Sprintf("monthly-%03d", i)
		tm := &Timer{ID: id, ShardID: "shard0", ScheduleExpr: "cron(5 10 4 * ? *)", CatchUpSeconds: 3600,
			CallbackData: json.RawMessage(`{}`), CreatedAt: put, UpdatedAt: put}
		if _, _, direct, err := store.Put(ctx, tm, put); err != nil || len(direct) != 0 {
			t.Fatalf("put %s: %v, %d sent at once", id, err, len(direct))
		}
	}
	sweep := func(now time.Time, event string) SweepResult {
		t.Helper()
		sw := NewSweeper(store, clients.SQS, cfg.FireQueueURL)
		sw.Now, sw.Log = func() time.Time { return now }, slog.New(slog.DiscardHandler)
		sw.MaxBacklog = 15 * time.Minute // a month between sweeps: read the last minutes only
		res, err := sw.Sweep(ctx, event)
		if err != nil {
			t.Fatalf("sweep at %s: %v", now.Format(time.DateTime), err)
		}
		return res
	}
	linkedAt := func(at time.Time) (parts map[int]bool, count int) {
		t.Helper()
		parts = map[int]bool{}
		// The hour's partitions as the sweep's item records them.
		item, err := clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &cfg.Table, Key: sweepKey(), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		raised := 0
		if v, ok := item.Item[partsAttr(at.Unix()/3600)].(*dbtypes.AttributeValueMemberN); ok {
			raised, _ = strconv.Atoi(v.Value)
		}
		for _, br := range bucketRanges(unixMinute(at), unixMinute(at), map[int64]int{at.Unix() / 3600: raised}) {
			if err := store.Bucket(ctx, br, func(page []DueEntry) error {
				for range page {
					parts[br.Part] = true
					count++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		return parts, count
	}
	june, july := time.Date(2026, 6, 4, 10, 5, 0, 0, time.UTC), time.Date(2026, 7, 4, 10, 5, 0, 0, time.UTC)

	db.mu.Lock()
	db.budget = newSwBudget(3, 500*time.Millisecond)
	db.mu.Unlock()
	if res := sweep(time.Date(2026, 5, 4, 10, 3, 30, 0, time.UTC), "may"); res.Due != n || res.Enqueued != n {
		t.Errorf("May's sweep: %+v, want %d due and enqueued", res, n)
	}
	db.mu.Lock()
	db.budget = nil
	refused := db.refused
	db.mu.Unlock()
	if refused == 0 {
		t.Fatal("no link write was throttled: the test shows nothing")
	}
	parts, count := linkedAt(june)
	if count != n || len(parts) <= dueParts {
		t.Errorf("June's links: %d in %d partitions, want %d in more than %d", count, len(parts), n, dueParts)
	}
	t.Logf("%d link writes throttled; June's %d links in %d partitions", refused, count, len(parts))

	if res := sweep(time.Date(2026, 6, 4, 10, 3, 30, 0, time.UTC), "june"); res.Due != n || res.Enqueued != n {
		t.Errorf("June's sweep: %+v, want %d due and enqueued (every raised partition read)", res, n)
	}
	parts, count = linkedAt(july)
	if count != n || len(parts) > dueParts {
		t.Errorf("July's links: %d in %d partitions, want %d in at most %d", count, len(parts), n, dueParts)
	}
	if res := sweep(time.Date(2026, 7, 4, 10, 3, 30, 0, time.UTC), "july"); res.Due != n || res.Enqueued != n {
		t.Errorf("July's sweep: %+v, want %d due and enqueued", res, n)
	}
}
