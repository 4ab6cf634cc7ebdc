package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// spreadHit is one call a spread timer's target received: when, by the
// test's clock (the same machine's as the invoker's), and the nominal
// instant it names.
type spreadHit struct {
	arrived     time.Time
	scheduledAt string
}

// TestIntegrationSpread: a spread window of 60 s spreads 100 timers over
// it. 100 timers due at one instant T, each with spreadSeconds 60, run
// through the real API and invoker on moto_server. Each is delivered once,
// at its planned instant T + spreadOffset(id, 60): never before it, and
// late against it only by the usual fraction of a second; so the calls
// are spread over the 60 s (the histogram of 10 s buckets is logged, and
// every bucket holds a share). The timer with the smallest offset is a
// rate(1 minute) with two occurrences, T and T+60 s: both are delivered
// at the same offset, and its history and upcoming list show the planned
// instants beside the nominal ones.
//
// The PUTs send these occurrences themselves (they are within short
// notice), so the test takes about 80 s rather than the 4 minutes a sweep
// would need to find them; the sweeper's sends, capped at SQS's 900 s, are
// TestSpreadSweepToDelivery's.
func TestIntegrationSpread(t *testing.T) {
	t.Parallel() // it mostly waits (sweeps, a slow target, a rate limit, a spread window)
	clients, cfg := motoStack(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards, cfg.SecretPrefix, cfg.AllowPrivateTargets = 2, "/callclock/", true
	var (
		mu   sync.Mutex
		hits = map[string][]spreadHit{}
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := spreadHit{arrived: time.Now(), scheduledAt: r.Header.Get("X-Callclock-Scheduled-At")}
		mu.Lock()
		hits[r.Header.Get("X-Callclock-Timer-Id")] = append(hits[r.Header.Get("X-Callclock-Timer-Id")], h)
		mu.Unlock()
	}))
	defer target.Close()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	api, _ := startLocal(t, ctx, newRouter(cfg, clients, log), cfg, clients, log)

	const n, window = 100, 60
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("spread-%03d", i)
	}
	twice := slices.MinFunc(ids, func(a, b string) int { return int(spreadOffset(a, window) - spreadOffset(b, window)) })
	putStart := time.Now()
	at := putStart.UTC().Truncate(time.Second).Add(15 * time.Second) // time for 100 PUTs on moto (3 s with -race)
	for _, id := range ids {
		schedule := `"schedule":"at(` + at.Format("2006-01-02T15:04:05") + `)"`
		if id == twice {
			schedule = `"schedule":"rate(1 minute)","startAt":"` + at.Format(time.RFC3339) + `","endAt":"` + at.Add(61*time.Second).Format(time.RFC3339) + `"`
		}
		body := `{` + schedule + `,"spreadSeconds":60,"http":{"url":"` + target.URL + `/` + id + `"}}`
		if code, resp := signedDo(t, testCreds, "PUT", api+"/periodic/"+id, body); code != 201 {
			t.Fatalf("PUT %s: %d %s", id, code, resp)
		}
	}
	if time.Now().After(at) {
		t.Fatalf("the PUTs took until after the timers' instant %s", at.Format(time.RFC3339))
	}
	t.Logf("%d PUTs in %s", n, time.Since(putStart).Round(time.Millisecond))
	checkSpreadUpcoming(t, api, twice, at)
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for _, h := range hits {
			c += len(h)
		}
		return c
	}
	waitFor(t, "every call", time.Until(at.Add(2*window*time.Second+20*time.Second)), func() bool { return total() >= n+1 })
	time.Sleep(2 * time.Second) // a duplicate would come now
	mu.Lock()
	defer mu.Unlock()
	var late []time.Duration
	buckets := make([]int, 6)
	for _, id := range ids {
		want := []string{at.Format(time.RFC3339)}
		if id == twice {
			want = append(want, at.Add(time.Minute).Format(time.RFC3339))
		}
		var got []string
		for _, h := range hits[id] {
			got = append(got, h.scheduledAt)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s called for %v, want %v, once each", id, got, want)
			continue
		}
		off := spreadOffset(id, window)
		for k, h := range hits[id] {
			planned := at.Add(time.Duration(k)*time.Minute + off)
			late = append(late, h.arrived.Sub(planned))
			if h.arrived.Before(planned) {
				t.Errorf("%s's occurrence %d called at %s, before its planned instant %s", id, k+1, h.arrived.Format(time.RFC3339Nano), planned.Format(time.RFC3339))
			}
			if k == 0 {
				buckets[min(5, int(h.arrived.Sub(at)/(10*time.Second)))]++
			}
		}
	}
	slices.Sort(late)
	if len(late) == 0 {
		return
	}
	p99 := late[min(len(late)-1, len(late)*99/100)]
	t.Logf("%d calls: lateness against the planned instant p50 %s, p99 %s, max %s", len(late), late[len(late)/2], p99, late[len(late)-1])
	t.Logf("first calls per 10 s of the 60 s window, from T: %v", buckets)
	if late[len(late)-1] > 2*time.Second {
		t.Errorf("a call came %s after its planned instant; the usual precision is well under a second", late[len(late)-1])
	}
	for i, c := range buckets {
		if c < 5 {
			t.Errorf("calls per 10 s %v: %d-%d s holds %d, not a share of 100 spread over 60 s", buckets, 10*i, 10*i+10, c)
		}
	}
	checkSpreadHistory(t, api, twice, at, spreadOffset(twice, window))
	for _, rec := range logs.Lines(t) {
		if ms, _ := rec["latenessMs"].(float64); rec["msg"] == "delivered" && ms > 2000 {
			t.Errorf("%s logged as %v ms late: lateness is measured against the planned instant", rec["timerId"], ms)
		}
	}
}

// checkSpreadUpcoming: timer id's upcoming occurrences, T and T+60 s,
// show their planned instants beside them.
func checkSpreadUpcoming(t *testing.T, api, id string, at time.Time) {
	t.Helper()
	code, body := signedDo(t, testCreds, "GET", api+"/periodic/"+id+"/upcoming", "")
	var up UpcomingList
	if err := json.Unmarshal([]byte(body), &up); code != 200 || err != nil {
		t.Fatalf("GET upcoming: %d %s", code, body)
	}
	off := spreadOffset(id, 60)
	if len(up.Upcoming) != 2 || !up.Upcoming[0].ScheduledAt.Equal(at) || up.Upcoming[1].PlannedAt == nil ||
		!up.Upcoming[1].PlannedAt.Equal(at.Add(time.Minute+off)) {
		t.Errorf("upcoming %s, want %s and a minute later, each planned %s after", body, at.Format(time.RFC3339), off)
	}
}

// checkSpreadHistory: timer id's history has both occurrences with their
// planned instants, off after the nominal ones, and attempts at or after
// them.
func checkSpreadHistory(t *testing.T, api, id string, at time.Time, off time.Duration) {
	t.Helper()
	var h struct{ History []LastFire }
	waitFor(t, id+"'s history", 20*time.Second, func() bool {
		_, body := signedDo(t, testCreds, "GET", api+"/periodic/"+id+"/history", "")
		json.Unmarshal([]byte(body), &h)
		return len(h.History) == 2 && h.History[0].Outcome == OutcomeDelivered && h.History[1].Outcome == OutcomeDelivered
	})
	for k, f := range h.History { // newest first
		nominal := at.Add(time.Duration(1-k) * time.Minute)
		if !f.ScheduledAt.Equal(nominal) || f.PlannedAt == nil || !f.PlannedAt.Equal(nominal.Add(off)) ||
			f.AttemptedAt.Before(*f.PlannedAt) || f.Attempt != 1 {
			t.Errorf("history entry %+v: want scheduledAt %s, plannedAt %s after it, attempt 1 at or after that", f, nominal.Format(time.RFC3339), off)
		}
	}
}
