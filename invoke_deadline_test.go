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
