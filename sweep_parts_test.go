package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The partitions of the due path follow the load: a sweep whose link
// writes are throttled raises the hour's partitions (recorded before any
// link goes into the new ones) and spreads its links over them; later
// sweeps read them; an hour nobody raised is read over dueParts again.

// swBudget is a throttle hook for swStore: each partition key takes
// perKey link writes in each window of real time (as DynamoDB's per
// second), then refuses the rest until the next (called with the
// store's mu held).
type swBudget struct {
	perKey  int
	window  time.Duration
	start   time.Time
	written map[string]int
	refused int
}

// newSwBudget is a budget of perKey writes per partition key for window.
func newSwBudget(perKey int, window time.Duration) *swBudget {
	return &swBudget{perKey: perKey, window: window, start: time.Now(), written: map[string]int{}}
}

// throttle reports whether a write to pk is over its budget.
func (b *swBudget) throttle(pk string) bool {
	if time.Since(b.start) >= b.window {
		b.start, b.written = time.Now(), map[string]int{}
	}
	if b.written[pk] >= b.perKey {
		b.refused++
		return true
	}
	b.written[pk]++
	return false
}

// swPartsTimers are n hourly timers at minute 45, linked (by their
// writer, at dueParts) at 10:45, version 3, in store.
func swPartsTimers(store *swStore, n int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("p%04d", i)
		store.addTimer(swHourly(id, 45), swAt(10, 45, 0), swAt(9, 45, 0))
		ids = append(ids, id)
	}
	return ids
}

// swOnceEach checks that q accepted exactly one message for each id, at
// instant at, and returns the messages by id.
func swOnceEach(t *testing.T, q *swQueue, ids []string, at time.Time) map[string]FireMessage {
	t.Helper()
	got := map[string]FireMessage{}
	var occs []swOcc
	for _, s := range q.acceptedSorted() {
		if s.Msg.ScheduledAt.Equal(at) {
			occs = append(occs, swOcc{s.Msg.TimerID, s.Msg.ScheduledAt})
			got[s.Msg.TimerID] = s.Msg
		}
	}
	var want []swOcc
	for _, id := range ids {
		want = append(want, swOcc{id, at})
	}
	if diff := cmp.Diff(want, occs); diff != "" {
		t.Errorf("occurrences at %s enqueued (-want +got):\n%s", at.Format(time.Kitchen), diff)
	}
	return got
}

// TestSweepRaisesPartsOnThrottling: 400 links written into one hour, at
// a budget of 10 writes per partition key (16 keys take 160), are all
// written: the hour is raised, by doublings, to as many partitions as the
// load needs, recorded before any link goes into them, and each fire
// message names the partitions its next link was written with. The next
// hour's sweep reads the raised partitions and finds every link; the
// links it writes go into an hour nobody raised, over dueParts, and the
// sweep after finds those: the partitions go up with the load and back
// down without a timer stranded.
func TestSweepRaisesPartsOnThrottling(t *testing.T) {
	t.Parallel()
	const n = 400
	store := newSwStore(50)
	store.setThrough(swMinute(swAt(10, 44, 0)))
	ids := swPartsTimers(store, n)
	budget := newSwBudget(10, 200*time.Millisecond)
	store.throttle = budget.throttle

	// 10:44:30: the 10:45 occurrences; next links at 11:45.
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	q.check(t)
	if res.Due != n || res.Enqueued != n || res.Failed != 0 {
		t.Errorf("first sweep: %+v, want %d due and enqueued", res, n)
	}
	if budget.refused == 0 {
		t.Fatal("no link write was throttled: the test shows nothing")
	}
	nextHour := swAt(11, 45, 0).Unix() / 3600
	raised := store.state().Parts[nextHour]
	// 400 links at 10 a key a window need 40 keys: 64 partitions (powers
	// of two) if the sweep writes them all in one window, fewer if not.
	if raised <= dueParts || raised > 128 {
		t.Errorf("hour 11's partitions raised to %d, want 32 to 128 (raises %v)", raised, store.state().Raises)
	}
	t.Logf("hour 11 raised to %d partitions; %d link writes throttled", raised, budget.refused)
	msgs := swOnceEach(t, q, ids, swAt(10, 45, 0))
	for _, id := range ids {
		links := store.linksOf(id)
		if len(links) != 2 || !links[1].occurrence().Equal(swAt(11, 45, 0)) {
			t.Fatalf("%s: links %+v, want 10:45 and 11:45", id, links)
		}
		l := links[1]
		if partsOr(l.Parts) > raised {
			t.Errorf("%s: next link written into %d partitions, %d recorded", id, l.Parts, raised)
		}
		if msgs[id].NextLinkAt != l.At || msgs[id].NextLinkParts != l.Parts {
			t.Errorf("%s: message names link %d in %d partitions, written at %d in %d", id, msgs[id].NextLinkAt, msgs[id].NextLinkParts, l.At, l.Parts)
		}
	}

	// 11:44:30, no throttling: every raised partition is read.
	store.mu.Lock()
	store.throttle = nil
	store.mu.Unlock()
	q2 := &swQueue{}
	if _, err := newSwSweeper(store, q2, swNow.Add(time.Hour)).Sweep(t.Context(), "ev-2"); err != nil {
		t.Fatalf("second sweep: %v", err)
	}
	q2.check(t)
	msgs = swOnceEach(t, q2, ids, swAt(11, 45, 0))
	read := map[int]bool{}
	for _, br := range store.bucketCallsSorted() {
		if br.Period == 0 && br.Hour == nextHour {
			read[br.Part] = true
		}
	}
	if len(read) != raised {
		t.Errorf("the second sweep read %d partitions of hour 11, want %d", len(read), raised)
	}
	for _, id := range ids {
		if m := msgs[id]; m.NextLinkParts != 0 {
			t.Errorf("%s: next link at 12:45 in %d partitions; hour 12 was never raised", id, m.NextLinkParts)
		}
	}

	// 12:44:30: hour 11 is behind the sweeps and forgotten; hour 12 is
	// read over dueParts, and every timer still fires.
	q3 := &swQueue{}
	if _, err := newSwSweeper(store, q3, swNow.Add(2*time.Hour)).Sweep(t.Context(), "ev-3"); err != nil {
		t.Fatalf("third sweep: %v", err)
	}
	q3.check(t)
	swOnceEach(t, q3, ids, swAt(12, 45, 0))
	if p, ok := store.state().Parts[nextHour]; ok {
		t.Errorf("hour 11's %d partitions still recorded after the sweeps passed it", p)
	}
}

// TestSweepRaiseNeedsTheLease: a sweep that lost its lease (another sweep
// took it over) cannot raise an hour's partitions, so it never writes a
// link where later sweeps would not look: it backs off and writes its
// throttled links into the partitions recorded.
func TestSweepRaiseNeedsTheLease(t *testing.T) {
	t.Parallel()
	const n = 40
	store := newSwStore(50)
	store.setThrough(swMinute(swAt(10, 44, 0)))
	ids := swPartsTimers(store, n)
	refusals := 0
	store.throttle = func(pk string) bool {
		if refusals < 5 {
			refusals++
			store.sweep.Owner = "another sweep" // it took the lease over meanwhile
			return true
		}
		return false
	}
	q := &swQueue{}
	res, err := newSwSweeper(store, q, swNow).Sweep(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if res.Enqueued != n {
		t.Errorf("result %+v, want %d enqueued", res, n)
	}
	swOnceEach(t, q, ids, swAt(10, 45, 0))
	st := store.state()
	if len(st.Raises) == 0 {
		t.Error("no raise was asked for: the test shows nothing")
	}
	if len(st.Parts) != 0 {
		t.Errorf("partitions %v recorded without the lease", st.Parts)
	}
	for _, id := range ids {
		links := store.linksOf(id)
		if i := slices.IndexFunc(links, func(e DueEntry) bool { return e.Parts != 0 }); i >= 0 {
			t.Errorf("%s: link written into %d partitions without a raise", id, links[i].Parts)
		}
		if len(links) != 2 {
			t.Errorf("%s: %d links, want 2", id, len(links))
		}
	}
}
