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

// swcSubject is a dueStore under the contract, with the few calls a
// case needs beyond dueStore to set it up and to look into it: what the
// API writes (a timer, a slot entry) and what Missed changes.
type swcSubject struct {
	dueStore
	// putTimer stores tm as the API would have: its version, paused when
	// tm.PausedAt is set.
	putTimer func(t *testing.T, tm *Timer)
	// putSlot stores tm's entry for slot sl, written at now, and adds its
	// period to those in use.
	putSlot func(t *testing.T, tm *Timer, sl DueSlot, now time.Time)
	// timer reads timer id back; nil when there is none.
	timer func(t *testing.T, id string) *swcTimer
	// missed reports whether timer id's occurrence at is recorded missed.
	missed func(t *testing.T, id string, at time.Time) bool
}

// swcTimer is what the cases compare of a timer: what Missed's
// condition reads and its write changes.
type swcTimer struct {
	Version      int64
	Paused       bool
	MissedCount  int
	LastMissedAt int64 // Unix seconds; 0: none
}

// swcFake is swStore, in pages of 2, as a swcSubject.
func swcFake() swcSubject {
	f := newSwStore(2)
	return swcSubject{
		dueStore: f,
		putTimer: func(_ *testing.T, tm *Timer) {
			f.setTimer(tm.ID, &swTimer{Version: tm.Version, Paused: tm.PausedAt != nil})
		},
		putSlot: func(_ *testing.T, tm *Timer, sl DueSlot, now time.Time) { f.slot(tm, now, sl) },
		timer: func(_ *testing.T, id string) *swcTimer {
			st, ok := f.timer(id)
			if !ok {
				return nil
			}
			return &swcTimer{Version: st.Version, Paused: st.Paused, MissedCount: st.MissedCount, LastMissedAt: st.LastMissedAt}
		},
		missed: func(_ *testing.T, id string, at time.Time) bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			_, ok := f.missed[swOcc{id, at.UTC()}]
			return ok
		},
	}
}

// swcMoto is the real Store on a table of its own on moto_server, in
// pages of 2 (PageLimit), as a swcSubject.
func swcMoto(t *testing.T) swcSubject {
	s := motoStore(t)
	s.PageLimit = 2
	put := func(t *testing.T, item map[string]dbtypes.AttributeValue) {
		t.Helper()
		if _, err := s.DB.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &s.Table, Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	return swcSubject{
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
		timer: func(t *testing.T, id string) *swcTimer {
			tm, err := s.Get(t.Context(), id)
			if ErrorCode(err) == ENOTFOUND {
				return nil
			}
			if err != nil {
				t.Fatal(err)
			}
			c := &swcTimer{Version: tm.Version, Paused: tm.PausedAt != nil, MissedCount: tm.MissedCount}
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

// swcRead is what one Bucket call handed over: its pages' sizes, and
// its entries in order.
type swcRead struct {
	Pages   []int
	Entries []DueEntry
}

// read reads br through s's Bucket.
func (s swcSubject) read(t *testing.T, br BucketRange) swcRead {
	t.Helper()
	var r swcRead
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

// swcLinkRange is the range of e's own minute in e's partition.
func swcLinkRange(e DueEntry) BucketRange {
	m := int(e.At / 60 % 60)
	return BucketRange{Hour: e.At / 3600, Part: partIn(e.TimerID, e.Parts), From: m, To: m}
}

// swcLease is one LeaseSweep's answer.
type swcLease struct {
	Granted bool
	Through int64
	Parts   map[int64]int
}

// lease takes the lease for owner and eventID at now (90 s).
func (s swcSubject) lease(t *testing.T, owner, eventID string, now time.Time) swcLease {
	t.Helper()
	st, ok, err := s.LeaseSweep(t.Context(), owner, eventID, now, 90*time.Second)
	if err != nil {
		t.Fatalf("LeaseSweep(%s, %s): %v", owner, eventID, err)
	}
	return swcLease{Granted: ok, Through: st.Through, Parts: st.Parts}
}

// release releases owner's lease, failing t on an error.
func (s swcSubject) release(t *testing.T, owner, eventID string, through int64, completed bool, now time.Time, drop ...int64) {
	t.Helper()
	if err := s.ReleaseSweep(t.Context(), owner, eventID, through, completed, now, drop); err != nil {
		t.Fatalf("ReleaseSweep(%s, %s): %v", owner, eventID, err)
	}
}

// swcRaise is one RaiseParts' answer.
type swcRaise struct {
	Parts    int
	LeaseErr bool // errLeaseLost
	Err      bool // any other error
}

// raise raises hour's partitions to parts for owner.
func (s swcSubject) raise(t *testing.T, owner string, hour int64, parts int) swcRaise {
	t.Helper()
	n, err := s.RaiseParts(t.Context(), owner, hour, parts)
	return swcRaise{Parts: n, LeaseErr: errors.Is(err, errLeaseLost), Err: err != nil && !errors.Is(err, errLeaseLost)}
}

// swcMissed is what a Missed call left: its error, the timer, the
// occurrence's record and the next link's minute.
type swcMissed struct {
	Err    string // "": none
	Timer  *swcTimer
	Missed bool
	Next   []DueEntry
}

// swcMissedCase records e's occurrence missed at swNow with next link next
// (nil: none) and last, on a store holding tm, and returns what it left.
func swcMissedCase(tm *Timer, e DueEntry, next *DueEntry, last bool) func(*testing.T, swcSubject) any {
	return func(t *testing.T, s swcSubject) any {
		s.putTimer(t, tm)
		var c swcMissed
		if err := s.Missed(t.Context(), e, swNow, next, last); err != nil {
			c.Err = err.Error()
		}
		c.Timer = s.timer(t, tm.ID)
		c.Missed = s.missed(t, tm.ID, e.occurrence())
		if next != nil {
			c.Next = s.read(t, swcLinkRange(*next)).Entries
		}
		return c
	}
}

// The sweep's minutes and hours the cases use: swNow's hour, and the ones
// after it.
var (
	swcHour = swNow.Unix() / 3600
	swcTm   = swTimerOf("ct-a", "cron(15 * * * ? *)", "") // version 3
	swcLink = swLinked(swcTm, swAt(11, 15, 0))
	swcNext = swLinked(swcTm, swAt(12, 15, 0))
	// swcRich is a link with every field of DueEntry set: a rate in a zone
	// with its anchor, start and end, deleted after completion, written
	// into an hour raised to 64 partitions.
	swcRich = DueEntry{TimerID: "ct-rich", At: swAt(11, 15, 0).Unix(), Version: 7, WrittenAt: swAt(9, 0, 0).Unix(),
		Expr: "rate(7 minutes)", Zone: "Europe/Paris", Anchor: swAt(8, 1, 0).Unix(), Start: swAt(8, 0, 0).Unix(),
		End: swAt(23, 0, 0).Unix(), CatchUp: 120, DeleteAfter: true, Parts: 64}
)

// swcCases are the contract: what each case does through a subject,
// and what it must see.
var swcCases = []struct {
	name string
	run  func(t *testing.T, s swcSubject) any
	want any
	// moto, when set, is what moto_server gives instead of want where it
	// is known to differ from DynamoDB itself, which the fake follows.
	moto any
}{
	{
		name: "links written twice",
		run: func(t *testing.T, s swcSubject) any {
			again := swcLink
			again.WrittenAt++
			var left []DueEntry
			for _, l := range []DueEntry{swcLink, again} {
				got, err := s.PutLinks(t.Context(), []DueEntry{l})
				if err != nil {
					t.Fatal(err)
				}
				left = append(left, got...)
			}
			return []any{left, s.read(t, swcLinkRange(swcLink))}
		},
		want: []any{[]DueEntry(nil), swcRead{Pages: []int{1}, Entries: []DueEntry{func() DueEntry { e := swcLink; e.WrittenAt++; return e }()}}},
	},
	{
		name: "a link read back whole",
		run: func(t *testing.T, s swcSubject) any {
			if left, err := s.PutLinks(t.Context(), []DueEntry{swcRich}); err != nil || len(left) > 0 {
				t.Fatalf("PutLinks: %v left, %v", left, err)
			}
			return s.read(t, swcLinkRange(swcRich)).Entries
		},
		want: []DueEntry{swcRich},
	},
	{
		name: "a bucket range read in pages of 2 in sort order",
		run: func(t *testing.T, s swcSubject) any {
			ids := swIDsInPart("ct", 3, 3)
			var links []DueEntry
			for i, m := range []int{20, 10, 10, 30, 20} { // written out of order
				links = append(links, swLinked(swTimerOf(ids[i%3], "at(2026-11-22T11:00:00)", ""), swAt(11, m, 0)))
			}
			if left, err := s.PutLinks(t.Context(), links); err != nil || len(left) > 0 {
				t.Fatalf("PutLinks: %v left, %v", left, err)
			}
			r := s.read(t, BucketRange{Hour: swcHour + 1, Part: 3, From: 0, To: 59})
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
		run: func(t *testing.T, s swcSubject) any {
			ids := swIDsInPart("ct", 3, 2)
			var links []DueEntry
			for _, id := range ids {
				links = append(links, swLinked(swTimerOf(id, "at(2026-11-22T11:00:00)", ""), swAt(11, 10, 0)))
			}
			if left, err := s.PutLinks(t.Context(), links); err != nil || len(left) > 0 {
				t.Fatalf("PutLinks: %v left, %v", left, err)
			}
			return s.read(t, BucketRange{Hour: swcHour + 1, Part: 3, From: 0, To: 59}).Pages
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
		run: func(t *testing.T, s swcSubject) any {
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
			for _, e := range s.read(t, BucketRange{Hour: swcHour + 1, Part: 5, From: 15, To: 16}).Entries {
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
		run: func(t *testing.T, s swcSubject) any {
			return []swcLease{s.lease(t, "a", "ev-1", swNow), s.lease(t, "b", "ev-2", swNow.Add(89*time.Second)),
				s.lease(t, "c", "ev-3", swNow.Add(90*time.Second))} // held to its last millisecond
		},
		want: []swcLease{{Granted: true}, {}, {}},
	},
	{
		name: "lease expired",
		run: func(t *testing.T, s swcSubject) any {
			return []swcLease{s.lease(t, "a", "ev-1", swNow), s.lease(t, "b", "ev-2", swNow.Add(91*time.Second))}
		},
		want: []swcLease{{Granted: true}, {Granted: true}},
	},
	{
		name: "lease for the same event",
		run: func(t *testing.T, s swcSubject) any {
			first := s.lease(t, "a", "ev-1", swNow)
			s.release(t, "a", "ev-1", swM45, true, swNow)
			return []swcLease{first, s.lease(t, "b", "ev-1", swNow.Add(time.Minute)), s.lease(t, "c", "ev-2", swNow.Add(time.Minute))}
		},
		want: []swcLease{{Granted: true}, {}, {Granted: true, Through: swM45}},
	},
	{
		name: "lease for the same event after an incomplete sweep",
		run: func(t *testing.T, s swcSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			s.release(t, "a", "ev-1", swM44, false, swNow)
			return s.lease(t, "b", "ev-1", swNow.Add(time.Minute))
		},
		want: swcLease{Granted: true, Through: swM44},
	},
	{
		name: "release by a stale owner",
		run: func(t *testing.T, s swcSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			b := s.lease(t, "b", "ev-2", swNow.Add(91*time.Second))
			s.release(t, "a", "ev-1", swM45+5, true, swNow.Add(92*time.Second)) // nothing of a's is left to release
			held := s.lease(t, "c", "ev-3", swNow.Add(93*time.Second))
			s.release(t, "b", "ev-2", swM45, true, swNow.Add(94*time.Second))
			return []swcLease{b, held, s.lease(t, "d", "ev-1", swNow.Add(95*time.Second))}
		},
		want: []swcLease{{Granted: true}, {}, {Granted: true, Through: swM45}},
	},
	{
		name: "through kept",
		run: func(t *testing.T, s swcSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			s.release(t, "a", "ev-1", swM45, true, swNow)
			s.lease(t, "b", "ev-2", swNow.Add(time.Minute))
			s.release(t, "b", "ev-2", 0, false, swNow.Add(time.Minute)) // 0: through as it was
			return s.lease(t, "c", "ev-3", swNow.Add(2*time.Minute))
		},
		want: swcLease{Granted: true, Through: swM45},
	},
	{
		name: "RaiseParts by the owner and not",
		run: func(t *testing.T, s swcSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			raises := []swcRaise{s.raise(t, "a", swcHour+1, 32), s.raise(t, "b", swcHour+2, 32)}
			s.release(t, "a", "ev-1", swM45, true, swNow)
			raises = append(raises, s.raise(t, "a", swcHour+2, 32)) // released: no owner
			return []any{raises, s.lease(t, "c", "ev-2", swNow.Add(time.Minute))}
		},
		want: []any{[]swcRaise{{Parts: 32}, {LeaseErr: true}, {LeaseErr: true}}, swcLease{Granted: true, Through: swM45, Parts: map[int64]int{swcHour + 1: 32}}},
	},
	{
		name: "RaiseParts never lowers",
		run: func(t *testing.T, s swcSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			raises := []swcRaise{s.raise(t, "a", swcHour+1, 64), s.raise(t, "a", swcHour+1, 32), s.raise(t, "a", swcHour+1, 64)}
			s.release(t, "a", "ev-1", swM45, true, swNow)
			return []any{raises, s.lease(t, "b", "ev-2", swNow.Add(time.Minute))}
		},
		want: []any{[]swcRaise{{Parts: 64}, {Parts: 64}, {Parts: 64}}, swcLease{Granted: true, Through: swM45, Parts: map[int64]int{swcHour + 1: 64}}},
	},
	{
		name: "release dropping hours",
		run: func(t *testing.T, s swcSubject) any {
			s.lease(t, "a", "ev-1", swNow)
			for h := swcHour - 1; h <= swcHour+1; h++ {
				s.raise(t, "a", h, 32)
			}
			// through is within swcHour: the hour before it goes, swcHour
			// and the next stay, asked or not.
			s.release(t, "a", "ev-1", swM45, true, swNow, swcHour-1, swcHour, swcHour+1)
			return s.lease(t, "b", "ev-2", swNow.Add(time.Minute))
		},
		want: swcLease{Granted: true, Through: swM45, Parts: map[int64]int{swcHour: 32, swcHour + 1: 32}},
	},
	{
		name: "Missed applied",
		run:  swcMissedCase(swcTm, swcLink, &swcNext, false),
		want: swcMissed{Timer: &swcTimer{Version: 3, MissedCount: 1, LastMissedAt: swcLink.At}, Missed: true, Next: []DueEntry{swcNext}},
	},
	{
		name: "Missed refused on another version",
		run: func() func(*testing.T, swcSubject) any {
			replaced := *swcTm
			replaced.Version = 4
			return swcMissedCase(&replaced, swcLink, &swcNext, false)
		}(),
		want: swcMissed{Timer: &swcTimer{Version: 4}},
	},
	{
		name: "Missed refused when paused",
		run: func() func(*testing.T, swcSubject) any {
			paused := *swcTm
			paused.PausedAt = aws.Time(swAt(9, 0, 0))
			return swcMissedCase(&paused, swcLink, &swcNext, false)
		}(),
		want: swcMissed{Timer: &swcTimer{Version: 3, Paused: true}},
	},
	{
		name: "Missed the last occurrence of a deleteAfterCompletion timer",
		run: func() func(*testing.T, swcSubject) any {
			ending := *swcTm
			ending.DeleteAfterCompletion = true
			return swcMissedCase(&ending, swLinked(&ending, swAt(11, 15, 0)), nil, true)
		}(),
		want: swcMissed{Missed: true},
	},
	{
		name: "Missed not the last of a deleteAfterCompletion timer",
		run: func() func(*testing.T, swcSubject) any {
			ending := *swcTm
			ending.DeleteAfterCompletion = true
			return swcMissedCase(&ending, swLinked(&ending, swAt(11, 15, 0)), nil, false)
		}(),
		want: swcMissed{Timer: &swcTimer{Version: 3, MissedCount: 1, LastMissedAt: swcLink.At}, Missed: true},
	},
	{
		name: "DeleteSlot of another version",
		run: func(t *testing.T, s swcSubject) any {
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
		run: func(t *testing.T, s swcSubject) any {
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
		run: func(t *testing.T, s swcSubject) any {
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
	for _, c := range swcCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(c.want, c.run(t, swcFake())); diff != "" {
				t.Errorf("swStore (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIntegrationSweepContract runs the contract on the real Store over
// moto_server, and checks that the fake sees what the Store sees.
func TestIntegrationSweepContract(t *testing.T) {
	t.Parallel()
	for _, c := range swcCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			real := c.run(t, swcMoto(t))
			if c.moto != nil {
				if diff := cmp.Diff(c.moto, real); diff != "" {
					t.Errorf("Store on moto_server (-want +got):\n%s", diff)
				}
				return // the fake is held to DynamoDB's answer by TestSweepContract
			}
			if diff := cmp.Diff(c.want, real); diff != "" {
				t.Errorf("Store on moto_server (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(real, c.run(t, swcFake())); diff != "" {
				t.Errorf("swStore differs from the Store (-Store +swStore):\n%s", diff)
			}
		})
	}
}
