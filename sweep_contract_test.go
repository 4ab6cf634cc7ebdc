package main

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
)

// The sweeper's tests run on swStore (sweep_fake_test.go), which claims the
// real Store's semantics for dueStore. This file holds it to that: one
// table of cases, each run on the fake (TestSweepContract) and on the real
// Store over moto_server (TestIntegrationSweepContract), each compared
// with what the case wants. A fake that drifts from the Store fails here,
// not silently in the sweeper's tests.

// contractSubject is a dueStore under the contract, with the few calls a
// case needs beyond dueStore to set it up and to look into it: what the
// API writes (a timer, a slot entry) and what Missed changes.
type contractSubject struct {
	dueStore
	// putTimer stores tm as the API would have: its version, paused when
	// tm.PausedAt is set.
	putTimer func(t *testing.T, tm *Timer)
	// putSlot stores tm's entry for slot sl, written at now, and adds its
	// period to those in use.
	putSlot func(t *testing.T, tm *Timer, sl DueSlot, now time.Time)
	// timer reads timer id back; nil when there is none.
	timer func(t *testing.T, id string) *contractTimer
	// missed reports whether timer id's occurrence at is recorded missed.
	missed func(t *testing.T, id string, at time.Time) bool
}

// contractTimer is what the cases compare of a timer: what Missed's
// condition reads and its write changes.
type contractTimer struct {
	Version      int64
	Paused       bool
	MissedCount  int
	LastMissedAt int64 // Unix seconds; 0: none
}

// fakeSubject is swStore, in pages of 2, as a contractSubject.
func fakeSubject() contractSubject {
	f := newSwStore(2)
	return contractSubject{
		dueStore: f,
		putTimer: func(_ *testing.T, tm *Timer) {
			f.setTimer(tm.ID, &swTimer{Version: tm.Version, Paused: tm.PausedAt != nil})
		},
		putSlot: func(_ *testing.T, tm *Timer, sl DueSlot, now time.Time) { f.slot(tm, now, sl) },
		timer: func(_ *testing.T, id string) *contractTimer {
			st, ok := f.timer(id)
			if !ok {
				return nil
			}
			return &contractTimer{Version: st.Version, Paused: st.Paused, MissedCount: st.MissedCount, LastMissedAt: st.LastMissedAt}
		},
		missed: func(_ *testing.T, id string, at time.Time) bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			_, ok := f.missed[swOcc{id, at.UTC()}]
			return ok
		},
	}
}

// motoSubject is the real Store on a table of its own on moto_server, in
// pages of 2 (PageLimit), as a contractSubject.
func motoSubject(t *testing.T) contractSubject {
	s := motoStore(t)
	s.PageLimit = 2
	put := func(t *testing.T, item map[string]dbtypes.AttributeValue) {
		t.Helper()
		if _, err := s.DB.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &s.Table, Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	return contractSubject{
		dueStore: s,
		putTimer: func(t *testing.T, tm *Timer) {
			item, err := s.timerItem(tm)
			if err != nil {
				t.Fatal(err)
			}
			put(t, item)
		},
		putSlot: func(t *testing.T, tm *Timer, sl DueSlot, now time.Time) {
			if err := s.usePeriods(t.Context(), []DueSlot{sl}); err != nil {
				t.Fatal(err)
			}
			item, err := slotItem(tm, sl, now)
			if err != nil {
				t.Fatal(err)
			}
			put(t, item)
		},
		timer: func(t *testing.T, id string) *contractTimer {
			tm, err := s.Get(t.Context(), id)
			if ErrorCode(err) == ENOTFOUND {
				return nil
			}
			if err != nil {
				t.Fatal(err)
			}
			c := &contractTimer{Version: tm.Version, Paused: tm.PausedAt != nil, MissedCount: tm.MissedCount}
			if tm.LastMissedAt != nil {
				c.LastMissedAt = tm.LastMissedAt.Unix()
			}
			return c
		},
		missed: func(t *testing.T, id string, at time.Time) bool {
			out, err := s.DB.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &s.Table,
				Key: Occurrence{TimerID: id, At: at}.key(), ConsistentRead: aws.Bool(true)})
			if err != nil {
				t.Fatal(err)
			}
			o, _ := out.Item["outcome"].(*dbtypes.AttributeValueMemberS)
			return o != nil && o.Value == OutcomeMissed
		},
	}
}

// contractRead is what one Bucket call handed over: its pages' sizes, and
// its entries in order.
type contractRead struct {
	Pages   []int
	Entries []DueEntry
}

// read reads br through s's Bucket.
func (s contractSubject) read(t *testing.T, br BucketRange) contractRead {
	t.Helper()
	var r contractRead
	err := s.Bucket(t.Context(), br, func(page []DueEntry) error {
		r.Pages = append(r.Pages, len(page))
		r.Entries = append(r.Entries, page...)
		return nil
	})
	if err != nil {
		t.Fatalf("Bucket %+v: %v", br, err)
	}
	return r
}

// linkRange is the range of e's own minute in e's partition.
func linkRange(e DueEntry) BucketRange {
	m := int(e.At / 60 % 60)
	return BucketRange{Hour: e.At / 3600, Part: partIn(e.TimerID, e.Parts), From: m, To: m}
}

// contractLease is one LeaseSweep's answer.
type contractLease struct {
	Granted bool
	Through int64
	Parts   map[int64]int
}

// lease takes the lease for owner and eventID at now (90 s).
func (s contractSubject) lease(t *testing.T, owner, eventID string, now time.Time) contractLease {
	t.Helper()
	st, ok, err := s.LeaseSweep(t.Context(), owner, eventID, now, 90*time.Second)
	if err != nil {
		t.Fatalf("LeaseSweep(%s, %s): %v", owner, eventID, err)
	}
	return contractLease{Granted: ok, Through: st.Through, Parts: st.Parts}
}

// release releases owner's lease, failing t on an error.
func (s contractSubject) release(t *testing.T, owner, eventID string, through int64, completed bool, now time.Time, drop ...int64) {
	t.Helper()
	if err := s.ReleaseSweep(t.Context(), owner, eventID, through, completed, now, drop); err != nil {
		t.Fatalf("ReleaseSweep(%s, %s): %v", owner, eventID, err)
	}
}

// contractRaise is one RaiseParts' answer.
type contractRaise struct {
	Parts    int
	LeaseErr bool // errLeaseLost
	Err      bool // any other error
}

// raise raises hour's partitions to parts for owner.
func (s contractSubject) raise(t *testing.T, owner string, hour int64, parts int) contractRaise {
	t.Helper()
	n, err := s.RaiseParts(t.Context(), owner, hour, parts)
	return contractRaise{Parts: n, LeaseErr: errors.Is(err, errLeaseLost), Err: err != nil && !errors.Is(err, errLeaseLost)}
}

// contractMissed is what a Missed call left: its error, the timer, the
// occurrence's record and the next link's minute.
type contractMissed struct {
	Err    string // "": none
	Timer  *contractTimer
	Missed bool
	Next   []DueEntry
}

// missedCase records e's occurrence missed at swNow with next link next
// (nil: none) and last, on a store holding tm, and returns what it left.
func missedCase(tm *Timer, e DueEntry, next *DueEntry, last bool) func(*testing.T, contractSubject) any {
	return func(t *testing.T, s contractSubject) any {
		s.putTimer(t, tm)
		var c contractMissed
		if err := s.Missed(t.Context(), e, swNow, next, last); err != nil {
			c.Err = err.Error()
		}
		c.Timer = s.timer(t, tm.ID)
		c.Missed = s.missed(t, tm.ID, e.occurrence())
		if next != nil {
			c.Next = s.read(t, linkRange(*next)).Entries
		}
		return c
	}
}

// The sweep's minutes and hours the cases use: swNow's hour, and the ones
// after it.
var (
	ctHour = swNow.Unix() / 3600
	ctTm   = swTimerOf("ct-a", "cron(15 * * * ? *)", "") // version 3
	ctLink = swLinked(ctTm, swAt(11, 15, 0))
	ctNext = swLinked(ctTm, swAt(12, 15, 0))
	// ctRich is a link with every field of DueEntry set: a rate in a zone
	// with its anchor, start and end, deleted after completion, written
	// into an hour raised to 64 partitions.
	ctRich = DueEntry{TimerID: "ct-rich", At: swAt(11, 15, 0).Unix(), Version: 7, WrittenAt: swAt(9, 0, 0).Unix(),
		Expr: "rate(7 minutes)", Zone: "Europe/Paris", Anchor: swAt(8, 1, 0).Unix(), Start: swAt(8, 0, 0).Unix(),
		End: swAt(23, 0, 0).Unix(), CatchUp: 120, DeleteAfter: true, Parts: 64}
)

// contractCases are the contract: what each case does through a subject,
// and what it must see.
var contractCases = []struct {
	name string
	run  func(t *testing.T, s contractSubject) any
	want any
	// moto, when set, is what moto_server gives instead of want where it
	// is known to differ from DynamoDB itself, which the fake follows.
	moto any
}{
	{
		name: "links written twice",
		run: func(t *testing.T, s contractSubject) any {
			again := ctLink
			again.WrittenAt++
			var left []DueEntry
			for _, l := range []DueEntry{ctLink, again} {
				got, err := s.PutLinks(t.Context(), []DueEntry{l})
				if err != nil {
					t.Fatal(err)
				}
				left = append(left, got...)
			}
			return []any{left, s.read(t, linkRange(ctLink))}
		},
		want: []any{[]DueEntry(nil), contractRead{Pages: []int{1}, Entries: []DueEntry{func() DueEntry { e := ctLink; e.WrittenAt++; return e }()}}},
	},
	{
		name: "a link read back whole",
		run: func(t *testing.T, s contractSubject) any {
			if left, err := s.PutLinks(t.Context(), []DueEntry{ctRich}); err != nil || len(left) > 0 {
				t.Fatalf("PutLinks: %v left, %v", left, err)
			}
			return s.read(t, linkRange(ctRich)).Entries
		},
		want: []DueEntry{ctRich},
	},
	{
		name: "a bucket range read in pages of 2 in sort order",
		run: func(t *testing.T, s contractSubject) any {
			ids := swIDsInPart("ct", 3, 3)
			var links []DueEntry
			for i, m := range []int{20, 10, 10, 30, 20} { // written out of order
				links = append(links, swLinked(swTimerOf(ids[i%3], "at(2026-11-22T11:00:00)", ""), swAt(11, m, 0)))
			}
			if left, err := s.PutLinks(t.Context(), links); err != nil || len(left) > 0 {
				t.Fatalf("PutLinks: %v left, %v", left, err)
			}
			r := s.read(t, BucketRange{Hour: ctHour + 1, Part: 3, From: 0, To: 59})
			var order []string
			for _, e := range r.Entries {
				order = append(order, time.Unix(e.At, 0).UTC().Format("15:04")+" "+e.TimerID)
			}
			return []any{r.Pages, order}
		},
		want: []any{[]int{2, 2, 1}, func() []string {
			ids := swIDsInPart("ct", 3, 3)
			return []string{"11:10 " + ids[1], "11:10 " + ids[2], "11:20 " + ids[0], "11:20 " + ids[1], "11:30 " + ids[0]}
		}()},
	},
	{
		name: "a bucket range ending on a full page",
		run: func(t *testing.T, s contractSubject) any {
			ids := swIDsInPart("ct", 3, 2)
			var links []DueEntry
			for _, id := range ids {
				links = append(links, swLinked(swTimerOf(id, "at(2026-11-22T11:00:00)", ""), swAt(11, 10, 0)))
			}
			if left, err := s.PutLinks(t.Context(), links); err != nil || len(left) > 0 {
				t.Fatalf("PutLinks: %v left, %v", left, err)
			}
			return s.read(t, BucketRange{Hour: ctHour + 1, Part: 3, From: 0, To: 59}).Pages
		},
		// A Query that fills its Limit returns a LastEvaluatedKey, so
		// the paginator asks again and gets an empty page: DynamoDB's way,
		// which the fake follows. moto_server stops without one when
		// nothing is left; the sweeper takes either.
		want: []int{2, 0},
		moto: []int{2},
	},
	{
		name: "entries outside the range ignored",
		run: func(t *testing.T, s contractSubject) any {
			id := swIDsInPart("ct", 5, 1)[0]
			tm := swTimerOf(id, "at(2026-11-22T11:00:00)", "")
			var links []DueEntry
			for _, at := range []time.Time{swAt(11, 14, 59), swAt(11, 15, 0), swAt(11, 16, 59), swAt(11, 17, 0), swAt(12, 15, 0)} {
				links = append(links, swLinked(tm, at))
			}
			if _, err := s.PutLinks(t.Context(), links); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range s.read(t, BucketRange{Hour: ctHour + 1, Part: 5, From: 15, To: 16}).Entries {
				got = append(got, time.Unix(e.At, 0).UTC().Format("15:04:05")+" "+e.TimerID)
			}
			return got
		},
		want: func() []string {
			id := swIDsInPart("ct", 5, 1)[0]
			return []string{"11:15:00 " + id, "11:16:59 " + id}
		}(),
	},
	{
		name: "lease held",
		run: func(t *testing.T, s contractSubject) any {
			return []contractLease{s.lease(t, "a", "ev-1", swNow), s.lease(t, "b", "ev-2", swNow.Add(89*time.Second)),
				s.lease(t, "c", "ev-3", swNow.Add(90*time.Second))} // held to its last millisecond
		},
		want: []contractLease{{Granted: true}, {}, {}},
	},
	{
		name: "lease expired",
		run: func(t *testing.T, s contractSubject) any {
			return []contractLease{s.lease(t, "a", "ev-1", swNow), s.lease(t, "b", "ev-2", swNow.Add(91*time.Second))}
		},
		want: []contractLease{{Granted: true}, {Granted: true}},
	},
	{
		name: "lease for the same event",
		run: func(t *testing.T, s contractSubject) any {
			first := s.lease(t, "a", "ev-1", swNow)
			s.release(t, "a", "ev-1", swM45, true, swNow)
			return []contractLease{first, s.lease(t, "b", "ev-1", swNow.Add(time.Minute)), s.lease(t, "c", "ev-2", swNow.Add(time.Minute))}
		},
		want: []contractLease{{Granted: true}, {}, {Granted: true, Through: swM45}},
	},
	{
		name: "lease for the same event after an incomplete sweep",
		run: func(t *testing.T, s contractSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			s.release(t, "a", "ev-1", swM44, false, swNow)
			return s.lease(t, "b", "ev-1", swNow.Add(time.Minute))
		},
		want: contractLease{Granted: true, Through: swM44},
	},
	{
		name: "release by a stale owner",
		run: func(t *testing.T, s contractSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			b := s.lease(t, "b", "ev-2", swNow.Add(91*time.Second))
			s.release(t, "a", "ev-1", swM45+5, true, swNow.Add(92*time.Second)) // nothing of a's is left to release
			held := s.lease(t, "c", "ev-3", swNow.Add(93*time.Second))
			s.release(t, "b", "ev-2", swM45, true, swNow.Add(94*time.Second))
			return []contractLease{b, held, s.lease(t, "d", "ev-1", swNow.Add(95*time.Second))}
		},
		want: []contractLease{{Granted: true}, {}, {Granted: true, Through: swM45}},
	},
	{
		name: "through kept",
		run: func(t *testing.T, s contractSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			s.release(t, "a", "ev-1", swM45, true, swNow)
			s.lease(t, "b", "ev-2", swNow.Add(time.Minute))
			s.release(t, "b", "ev-2", 0, false, swNow.Add(time.Minute)) // 0: through as it was
			return s.lease(t, "c", "ev-3", swNow.Add(2*time.Minute))
		},
		want: contractLease{Granted: true, Through: swM45},
	},
	{
		name: "RaiseParts by the owner and not",
		run: func(t *testing.T, s contractSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			raises := []contractRaise{s.raise(t, "a", ctHour+1, 32), s.raise(t, "b", ctHour+2, 32)}
			s.release(t, "a", "ev-1", swM45, true, swNow)
			raises = append(raises, s.raise(t, "a", ctHour+2, 32)) // released: no owner
			return []any{raises, s.lease(t, "c", "ev-2", swNow.Add(time.Minute))}
		},
		want: []any{[]contractRaise{{Parts: 32}, {LeaseErr: true}, {LeaseErr: true}}, contractLease{Granted: true, Through: swM45, Parts: map[int64]int{ctHour + 1: 32}}},
	},
	{
		name: "RaiseParts never lowers",
		run: func(t *testing.T, s contractSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			raises := []contractRaise{s.raise(t, "a", ctHour+1, 64), s.raise(t, "a", ctHour+1, 32), s.raise(t, "a", ctHour+1, 64)}
			s.release(t, "a", "ev-1", swM45, true, swNow)
			return []any{raises, s.lease(t, "b", "ev-2", swNow.Add(time.Minute))}
		},
		want: []any{[]contractRaise{{Parts: 64}, {Parts: 64}, {Parts: 64}}, contractLease{Granted: true, Through: swM45, Parts: map[int64]int{ctHour + 1: 64}}},
	},
	{
		name: "release dropping hours",
		run: func(t *testing.T, s contractSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			for h := ctHour - 1; h <= ctHour+1; h++ {
				s.raise(t, "a", h, 32)
			}
			// through is within ctHour: the hour before it goes, ctHour
			// and the next stay, asked or not.
			s.release(t, "a", "ev-1", swM45, true, swNow, ctHour-1, ctHour, ctHour+1)
			return s.lease(t, "b", "ev-2", swNow.Add(time.Minute))
		},
		want: contractLease{Granted: true, Through: swM45, Parts: map[int64]int{ctHour: 32, ctHour + 1: 32}},
	},
	{
		name: "Missed applied",
		run:  missedCase(ctTm, ctLink, &ctNext, false),
		want: contractMissed{Timer: &contractTimer{Version: 3, MissedCount: 1, LastMissedAt: ctLink.At}, Missed: true, Next: []DueEntry{ctNext}},
	},
	{
		name: "Missed refused on another version",
		run: func() func(*testing.T, contractSubject) any {
			replaced := *ctTm
			replaced.Version = 4
			return missedCase(&replaced, ctLink, &ctNext, false)
		}(),
		want: contractMissed{Timer: &contractTimer{Version: 4}},
	},
	{
		name: "Missed refused when paused",
		run: func() func(*testing.T, contractSubject) any {
			paused := *ctTm
			paused.PausedAt = aws.Time(swAt(9, 0, 0))
			return missedCase(&paused, ctLink, &ctNext, false)
		}(),
		want: contractMissed{Timer: &contractTimer{Version: 3, Paused: true}},
	},
	{
		name: "Missed the last occurrence of a deleteAfterCompletion timer",
		run: func() func(*testing.T, contractSubject) any {
			ending := *ctTm
			ending.DeleteAfterCompletion = true
			return missedCase(&ending, swLinked(&ending, swAt(11, 15, 0)), nil, true)
		}(),
		want: contractMissed{Missed: true},
	},
	{
		name: "Missed not the last of a deleteAfterCompletion timer",
		run: func() func(*testing.T, contractSubject) any {
			ending := *ctTm
			ending.DeleteAfterCompletion = true
			return missedCase(&ending, swLinked(&ending, swAt(11, 15, 0)), nil, false)
		}(),
		want: contractMissed{Timer: &contractTimer{Version: 3, MissedCount: 1, LastMissedAt: ctLink.At}, Missed: true},
	},
	{
		name: "DeleteSlot of another version",
		run: func(t *testing.T, s contractSubject) any {
			tm := swHourly("ct-slot", 15)
			sl := DueSlot{Period: 60, Slot: 15}
			s.putSlot(t, tm, sl, swAt(9, 0, 0))
			br := BucketRange{Period: 60, Hour: 0, Part: partOf(tm.ID), From: 15, To: 15}
			var left []int
			for _, v := range []int64{4, 3} { // a newer version's, then its own
				e := dueEntryOf(tm, time.Time{}, swAt(9, 0, 0))
				e.Period, e.Slot, e.Version = sl.Period, sl.Slot, v
				if err := s.DeleteSlot(t.Context(), e); err != nil {
					t.Fatal(err)
				}
				left = append(left, len(s.read(t, br).Entries))
			}
			return left
		},
		want: []int{1, 0},
	},
	{
		name: "a slot entry read back",
		run: func(t *testing.T, s contractSubject) any {
			tm := swHourly("ct-slot", 15)
			s.putSlot(t, tm, DueSlot{Period: 60, Slot: 15}, swAt(9, 0, 0))
			return s.read(t, BucketRange{Period: 60, Hour: 0, Part: partOf(tm.ID), From: 0, To: 59}).Entries
		},
		want: func() []DueEntry {
			e := dueEntryOf(swHourly("ct-slot", 15), time.Time{}, swAt(9, 0, 0))
			e.Period, e.Slot = 60, 15
			return []DueEntry{e}
		}(),
	},
	{
		name: "Periods",
		run: func(t *testing.T, s contractSubject) any {
			none, err := s.Periods(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			s.putSlot(t, swHourly("ct-daily", 15), DueSlot{Period: 1440, Slot: 615}, swAt(9, 0, 0))
			s.putSlot(t, swHourly("ct-hourly", 15), DueSlot{Period: 60, Slot: 15}, swAt(9, 0, 0))
			s.putSlot(t, swHourly("ct-hourly-2", 15), DueSlot{Period: 60, Slot: 15}, swAt(9, 0, 0))
			got, err := s.Periods(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			return [][]int{none, got}
		},
		want: [][]int{nil, {60, 1440}},
	},
}

// TestSweepContract runs the contract on swStore.
func TestSweepContract(t *testing.T) {
	t.Parallel()
	for _, c := range contractCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(c.want, c.run(t, fakeSubject())); diff != "" {
				t.Errorf("swStore (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIntegrationSweepContract runs the contract on the real Store over
// moto_server, and checks that the fake sees what the Store sees.
func TestIntegrationSweepContract(t *testing.T) {
	t.Parallel()
	for _, c := range contractCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			real := c.run(t, motoSubject(t))
			if c.moto != nil {
				if diff := cmp.Diff(c.moto, real); diff != "" {
					t.Errorf("Store on moto_server (-want +got):\n%s", diff)
				}
				return // the fake is held to DynamoDB's answer by TestSweepContract
			}
			if diff := cmp.Diff(c.want, real); diff != "" {
				t.Errorf("Store on moto_server (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(real, c.run(t, fakeSubject())); diff != "" {
				t.Errorf("swStore differs from the Store (-Store +swStore):\n%s", diff)
			}
		})
	}
}
