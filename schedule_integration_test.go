package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// invokeAPI sends one REST proxy event through the router, as API Gateway
// would after checking the signature.
func invokeAPI(t *testing.T, r *Router, method, path, body string) (int, map[string]any) {
	t.Helper()
	payload, _ := json.Marshal(events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Body: body,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "test"}})
	out, err := r.Invoke(context.Background(), payload)
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayProxyResponse
	var doc map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(resp.Body), &doc)
	return resp.StatusCode, doc
}

// TestIntegrationSchedules runs cron, rate and at schedules with zones
// through the API, the table and the sweeper on moto_server, checking
// every computed instant and what each sweep enqueues.
func TestIntegrationSchedules(t *testing.T) {
	clients, cfg := motoStack(t, 0)
	ctx := context.Background()
	cfg.Shards = 2
	clock := newTestClock(time.Date(2026, 3, 7, 12, 0, 30, 0, time.UTC))
	router := newRouter(cfg, clients, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	router.API.(*API).Now = clock.Now
	router.Sweeper.(*Sweeper).Now = clock.Now

	for id, body := range map[string]string{
		"ny":        `{"timerCallbackData":"ny","schedule":"cron(30 2 ? * SUN *)","timezone":"America/New_York"}`,
		"once":      `{"timerCallbackData":"once","schedule":"at(2026-03-07T12:05:00)","deleteAfterCompletion":true}`,
		"once-keep": `{"timerCallbackData":"keep","schedule":"at(2026-03-07T17:50:00)","timezone":"Asia/Kathmandu"}`,
		"rate":      `{"timerCallbackData":"rate","schedule":"rate(5 minutes)"}`,
	} {
		if code, doc := invokeAPI(t, router, "PUT", "/periodic/"+id, body); code != 201 {
			t.Fatalf("PUT %s: %d %v", id, code, doc)
		}
	}
	next := func(id string) any {
		t.Helper()
		code, doc := invokeAPI(t, router, "GET", "/periodic/"+id, "")
		if code != 200 {
			return code
		}
		return doc["nextFireAt"]
	}
	sweep := func(at time.Time) SweepResult {
		t.Helper()
		clock.Set(at)
		out, err := router.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`))
		if err != nil {
			t.Fatal(err)
		}
		var r SweepResult
		json.Unmarshal(out, &r)
		return r
	}
	want := map[string]any{"ny": "2026-03-15T06:30:00Z", "once": "2026-03-07T12:05:00Z", "once-keep": "2026-03-07T12:05:00Z", "rate": "2026-03-07T12:00:30Z"}
	for id, w := range want {
		if got := next(id); got != w {
			t.Errorf("%s: nextFireAt %v, want %v", id, got, w)
		}
	}

	// 12:00:30: the rate fired at once, sent by its PUT (short notice);
	// the one-shots are not due yet. The minutes 12:00 to 12:02 are read.
	if diff := cmp.Diff(SweepResult{Minutes: 3}, sweep(clock.Now())); diff != "" {
		t.Errorf("first sweep (-want +got):\n%s", diff)
	}
	// 12:05:00: both one-shots fire and complete; the rate's 12:05:30 is
	// within the look-ahead (12:03 to 12:07 are read).
	if diff := cmp.Diff(SweepResult{Minutes: 5, Due: 3, Enqueued: 3}, sweep(time.Date(2026, 3, 7, 12, 5, 0, 0, time.UTC))); diff != "" {
		t.Errorf("second sweep (-want +got):\n%s", diff)
	}
	clock.Add(time.Second) // the firing second has passed
	// Sent, the deleteAfterCompletion one-shot waits, completed, for its
	// delivery; delivered, it is gone.
	if code, doc := invokeAPI(t, router, "GET", "/periodic/once", ""); code != 200 || doc["state"] != "completed" {
		t.Errorf("once with deleteAfterCompletion, sent: %d %v, want it kept, completed, until delivered", code, doc)
	}
	router.Invoker.(*Invoker).Now = clock.Now
	got := map[string]int{} // every fire message, by timer and instant
	// drain takes the fire queue's messages, counting each in got and
	// handing it to each, for up to rounds receives or until each says stop.
	drain := func(rounds int, each func(m sqstypes.Message, msg FireMessage) (stop bool)) {
		t.Helper()
		for range rounds {
			out, err := clients.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &cfg.FireQueueURL, MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			stop := false
			for _, m := range out.Messages {
				var msg FireMessage
				json.Unmarshal([]byte(aws.ToString(m.Body)), &msg)
				got[msg.TimerID+" "+msg.ScheduledAt.UTC().Format(time.RFC3339)]++
				clients.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &cfg.FireQueueURL, ReceiptHandle: m.ReceiptHandle})
				stop = each(m, msg) || stop
			}
			if stop {
				return
			}
		}
	}
	var delivered bool
	drain(5, func(m sqstypes.Message, msg FireMessage) bool {
		if msg.TimerID != "once" {
			return false
		}
		if !msg.Final {
			t.Errorf("once's last occurrence is not marked final: %s", aws.ToString(m.Body))
		}
		ev, _ := json.Marshal(events.SQSEvent{Records: []events.SQSMessage{{MessageId: aws.ToString(m.MessageId),
			ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body), EventSource: "aws:sqs",
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}}}})
		if resp, err := router.Invoke(ctx, ev); err != nil || string(resp) != `{"batchItemFailures":[]}` {
			t.Fatalf("invoke once's occurrence: %s %v", resp, err)
		}
		delivered = true
		return true
	})
	if !delivered {
		t.Fatal("once's occurrence is not on the fire queue")
	}
	if got := next("once"); got != 404 {
		t.Errorf("once with deleteAfterCompletion, delivered: GET = %v, want 404", got)
	}
	if code, doc := invokeAPI(t, router, "GET", "/periodic/once-keep", ""); code != 200 || doc["state"] != "completed" || doc["nextFireAt"] != nil {
		t.Errorf("once-keep after firing: %d %v, want state completed and no nextFireAt", code, doc)
	}
	if got := next("rate"); got != "2026-03-07T12:05:30Z" {
		t.Errorf("rate after second sweep: nextFireAt %v, want its occurrence on its way", got)
	}
	// The Sunday after spring forward: 02:30 EDT is 06:30Z, then a week on.
	// The rate (a slot entry, every 5 minutes) is 8 days overdue: a sweep
	// looks a day back for a slot's occurrences (the longest catch-up
	// window), finds 06:30:30 on the 14th past its hour of catch-up,
	// records it as missed, and sends the rate's next, 06:30:30 today.
	if diff := cmp.Diff(SweepResult{Due: 3, Enqueued: 2, Missed: 1}, sweep(time.Date(2026, 3, 15, 6, 30, 0, 0, time.UTC)),
		cmpopts.IgnoreFields(SweepResult{}, "Minutes")); diff != "" {
		t.Errorf("third sweep (-want +got):\n%s", diff)
	}
	clock.Add(time.Second)
	if code, doc := invokeAPI(t, router, "GET", "/periodic/rate", ""); code != 200 || doc["missedCount"] != 1.0 || doc["lastMissedAt"] != "2026-03-14T06:30:30Z" {
		t.Errorf("rate after a missed occurrence: %d missedCount %v lastMissedAt %v", code, doc["missedCount"], doc["lastMissedAt"])
	}
	if code, doc := invokeAPI(t, router, "GET", "/periodic/rate/history", ""); code != 200 || len(doc["history"].([]any)) != 1 ||
		doc["history"].([]any)[0].(map[string]any)["outcome"] != "missed" ||
		doc["history"].([]any)[0].(map[string]any)["scheduledAt"] != "2026-03-14T06:30:30Z" {
		t.Errorf("rate history after a missed occurrence: %d %v", code, doc)
	}
	if got := next("ny"); got != "2026-03-22T06:30:00Z" {
		t.Errorf("ny after firing: nextFireAt %v, want 2026-03-22T06:30:00Z", got)
	}
	if got := next("rate"); got != "2026-03-15T06:30:30Z" {
		t.Errorf("missed rate moved past now: nextFireAt %v, want 2026-03-15T06:30:30Z", got)
	}

	// Every occurrence reached the fire queue once, with its instant.
	drain(10, func(sqstypes.Message, FireMessage) bool { return false })
	wantMsgs := map[string]int{"rate 2026-03-07T12:00:30Z": 1, "once 2026-03-07T12:05:00Z": 1, "once-keep 2026-03-07T12:05:00Z": 1,
		"ny 2026-03-15T06:30:00Z": 1}
	for k := range got { // the rate's later occurrences are delayed by SQS in real time; ignore them
		if _, ok := wantMsgs[k]; !ok {
			delete(got, k)
		}
	}
	if diff := cmp.Diff(wantMsgs, got); diff != "" {
		t.Errorf("fire messages (-want +got):\n%s", diff)
	}
}
