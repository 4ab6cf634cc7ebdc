package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// TestBatchDeliveredConcurrently sends a batch whose target answers only
// once every message of the batch has reached it: delivered one after
// another, the first would wait in vain (and fail after the fallback).
func TestBatchDeliveredConcurrently(t *testing.T) {
	t.Parallel()
	const n = 5
	var (
		arrived sync.WaitGroup
		all     = make(chan struct{})
	)
	arrived.Add(n)
	go func() { arrived.Wait(); close(all) }()
	tg := newTarget(t, func(http.ResponseWriter, *http.Request) int {
		arrived.Done()
		select {
		case <-all:
			return http.StatusOK
		case <-time.After(3 * time.Second): // a fallback, not a measurement
			return http.StatusServiceUnavailable
		}
	})
	ids := []string{"t-0", "t-1", "t-2", "t-3", "t-4"}
	var timers []Timer
	var recs []events.SQSMessage
	for i, id := range ids {
		timers = append(timers, igTimer(id, 1))
		recs = append(recs, igRecord(t, "m-"+strconv.Itoa(i), 1, httpFire(id, "POST", tg.URL+"/hook")))
	}
	e := newIGEnv(t, noSecrets(t), timers...)
	e.inv.Concurrency = n

	if diff := cmp.Diff([]string{}, e.invoke(recs...)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

// TestCallNearDeadlineIsFailedAttempt fires at a target that never answers
// while the function's deadline approaches: the call is cut short in time
// for the attempt to be recorded as failed (retrying), its retry delay set
// and the message reported as a batch failure, rather than the function
// being killed mid-call and the message handed out again with no trace.
func TestCallNearDeadlineIsFailedAttempt(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	tg := newTarget(t, func(_ http.ResponseWriter, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	// The deadline is an hour off, but its reserve for calls starts 100 ms
	// from now; the call's own timeout never comes into it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	deadline, _ := ctx.Deadline()
	e.inv.CallReserve = time.Until(deadline.Add(-100 * time.Millisecond))
	e.inv.Timeout = 2 * time.Hour

	resp := e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 2, httpFire("t-1", "POST", tg.URL+"/hook"))}})

	if diff := cmp.Diff([]string{"m-1"}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	fires := e.store.Fires()
	if len(fires) != 1 || fires[0].Fire.Outcome != OutcomeRetrying || fires[0].Fire.Attempt != 2 ||
		!strings.Contains(fires[0].Fire.Error, "about to time out") {
		t.Errorf("outcomes recorded %+v, want attempt 2 retrying, cut short as the function is about to time out", fires)
	}
	if calls := e.vis.Calls(); len(calls) != 1 {
		t.Errorf("ChangeMessageVisibility calls %+v, want 1", calls)
	}
}

// hangingTarget answers only when the request is given up or the test ends.
func hangingTarget(t *testing.T) *target {
	release := make(chan struct{})
	tg := newTarget(t, func(_ http.ResponseWriter, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return http.StatusOK
	})
	t.Cleanup(func() { close(release) })
	return tg
}

// TestNotifyEndsBeforeRecordReserve: a webhook that never answers is given
// up RecordReserve before the function's deadline, not after the
// notification's own 10 seconds, which would carry the function past it.
func TestNotifyEndsBeforeRecordReserve(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	hook := hangingTarget(t)
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Notify = &Notify{Webhook: hook.URL + "/notify", OnSuccess: ptrTo(true)}
	// The deadline is an hour off, but its record reserve starts 300 ms
	// from now; calls are cut short only at the deadline itself.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	deadline, _ := ctx.Deadline()
	e.inv.RecordReserve = time.Until(deadline.Add(-300 * time.Millisecond))
	e.inv.CallReserve = time.Millisecond

	start := time.Now()
	resp := e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 1, m)}})
	took := time.Since(start)

	if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if took > 3*time.Second {
		t.Errorf("Invoke took %v; the notification should have been given up about 300 ms in", took)
	}
	if n := len(hook.Received()); n != 1 {
		t.Errorf("webhook received %d posts, want 1 (given up, not skipped)", n)
	}
	if lines := e.log.WithMsg(t, "notification failed"); len(lines) != 1 {
		t.Errorf("%d \"notification failed\" lines, want 1", len(lines))
	}
}

// TestNotifySkippedNearDeadline: with less than RecordReserve left before
// the function's deadline, the notification is not sent at all; a WARN
// line says so.
func TestNotifySkippedNearDeadline(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	hook := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.Notify = &Notify{Webhook: hook.URL + "/notify", OnSuccess: ptrTo(true)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	e.inv.RecordReserve = 2 * time.Hour // less than that is left already
	e.inv.CallReserve = time.Millisecond

	resp := e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 1, m)}})

	if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	if n := len(tg.Received()); n != 1 {
		t.Errorf("target received %d calls, want 1", n)
	}
	if got := hook.Received(); len(got) != 0 {
		t.Errorf("webhook received %d posts, want none", len(got))
	}
	lines := e.log.WithMsg(t, "notification skipped: the function is about to time out")
	if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["timerId"] != "t-1" {
		t.Errorf("skip lines %v, want one WARN line for t-1", lines)
	}
}

// TestEarlyHoldEndsAtDeadlineReserve: a message that arrives early is
// held until its instant only as long as the call reserve allows; with
// 100 ms to go before the reserve and 2 s to the instant, the hold ends at
// the reserve and the attempt is recorded as cut short, not slept through.
func TestEarlyHoldEndsAtDeadlineReserve(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.ScheduledAt = e.clock.Now().Add(2 * time.Second) // within MaxEarly (3 s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	deadline, _ := ctx.Deadline()
	e.inv.CallReserve = time.Until(deadline.Add(-100 * time.Millisecond))

	start := time.Now()
	resp := e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 1, m)}})
	took := time.Since(start)

	if took >= time.Second {
		t.Errorf("Invoke took %v; the hold should have ended at the call reserve, about 100 ms in", took)
	}
	if diff := cmp.Diff([]string{"m-1"}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
	fires := e.store.Fires()
	if len(fires) != 1 || fires[0].Fire.Outcome != OutcomeRetrying || !strings.Contains(fires[0].Fire.Error, "about to time out") {
		t.Errorf("outcomes recorded %+v, want one retrying, cut short as the function is about to time out", fires)
	}
}

// TestEarlyHoldFarFromDeadline: far from the deadline, an early message is
// still held until its instant.
func TestEarlyHoldFarFromDeadline(t *testing.T) {
	t.Parallel()
	e := newIGEnv(t, noSecrets(t), igTimer("t-1", 1))
	tg := newTarget(t, answer(http.StatusOK))
	m := httpFire("t-1", "POST", tg.URL+"/hook")
	m.ScheduledAt = e.clock.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	start := time.Now()
	resp := e.inv.Invoke(ctx, events.SQSEvent{Records: []events.SQSMessage{igRecord(t, "m-1", 1, m)}})

	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("Invoke took %v, want the 300 ms hold", took)
	}
	if diff := cmp.Diff([]string{}, failures(resp)); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}
