package main

import (
	"math/bits"
	"slices"
	"time"
)

// Bounds of a due plan (issue 11).
const (
	// DueWeekMinutes is the minutes in a week. Every slot's period divides
	// it, so that one residue set modulo a week decides every plan.
	DueWeekMinutes = 10080
	// MaxDueSlots bounds a plan so that a PUT replacing a timer deletes the
	// old slots and writes the new ones, with the timer, in one 100-item
	// DynamoDB transaction.
	MaxDueSlots = 48
	// MaxDueAmplification bounds the slot visits per occurrence: a visit
	// that does not fire costs the sweeper a read, never a write.
	MaxDueAmplification = 8
	// DuePlanYears is the window a plan is checked over, from the PUT: long
	// enough to see every offset of a zone's year twice. Past it nothing
	// is checked (a cron's years, a zone's new rules), so a timer kept
	// longer should be planned again (a PUT does).
	DuePlanYears = 2
)

// DueSlot is one static due entry of a timer, written at PUT and never
// rewritten: the timer may fire in Unix minute m (Unix seconds / 60, floor)
// when m mod Period == Slot. The sweeper reads the bucket (P, m mod P) of
// every period P in use each minute and asks the timer's Schedule whether
// it really fires in m, so a slot may be visited without firing (a day of
// the week, daylight saving time, startAt and endAt).
type DueSlot struct{ Period, Slot int } // minutes; Period divides 10080; 0 <= Slot < Period

// dueDivisors are the 72 divisors of DueWeekMinutes, ascending: the periods
// a slot may have.
var dueDivisors = func() []int {
	var d []int
	for p := 1; p <= DueWeekMinutes; p++ {
		if DueWeekMinutes%p == 0 {
			d = append(d, p)
		}
	}
	return d
}()

// PlanDue returns the static slots that cover every occurrence of sched in
// [from, from + DuePlanYears years), or ok=false when the timer should use
// links (one due entry for its next occurrence, rewritten per firing)
// instead: no occurrence in the window, or no period whose plan has at most
// MaxDueSlots slots and at most MaxDueAmplification visits per occurrence
// over the window. That is the case of monthly and yearly crons, at(), most
// rates that do not divide a week, and schedules that end soon after from.
// The bounds decide, not the kind of schedule: rate(2 days) gets one daily
// slot (2 visits per firing), and cron(0 9 ? * 2#1 *) in UTC one weekly
// slot (4.3), while in New York its two weekly slots make 8.7, too many.
//
// The visits of a slot are the minutes of the window it names, whether
// the timer fires in them or not.
// The slots share one period and are sorted. Among the periods that meet
// both bounds, PlanDue takes the fewest slots, then the fewest visits, then
// the largest period: equal visits cost the same reads, and a larger
// period spreads the timers with the same phase over more bucket keys.
//
// PlanDue is a pure function of its inputs, and cheap enough for the PUT
// path: rates are planned analytically, and crons day by day, calling Next
// only near a change of the zone's offset and at the window's ends.
func PlanDue(sched Schedule, from time.Time) (slots []DueSlot, ok bool) {
	end, m0, m1 := dueWindow(from)
	var occ dueOccurrences
	occ.collect(sched, from, end)
	if occ.n == 0 {
		return nil, false
	}
	return occ.plan(m0, m1)
}

// dueWindow returns the end of the window a plan made at from answers for,
// and the first and last Unix minutes that window touches.
func dueWindow(from time.Time) (end time.Time, m0, m1 int64) {
	end = from.UTC().AddDate(DuePlanYears, 0, 0)
	return end, dueMinute(from), dueMinute(end.Add(-time.Nanosecond))
}

// dueMinute is the Unix minute t falls in, floored for instants before 1970
// too.
func dueMinute(t time.Time) int64 { return dueFloorDiv(t.Unix(), 60) }

func dueFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func dueFloorMod(a, b int64) int64 { return a - dueFloorDiv(a, b)*b }

// dueOccurrences summarises a schedule's occurrences in a window: how many,
// and which minutes of the week (Unix minute mod 10080) they fall in. Since
// every period divides a week, m mod P is (m mod 10080) mod P, so this is
// all a plan needs.
type dueOccurrences struct {
	n    int64
	week [dueWeekWords]uint64
}

// dueWeekWords is the size of a bit set of the minutes of a week.
const dueWeekWords = (DueWeekMinutes + 63) / 64

func (o *dueOccurrences) mark(m int64) {
	r := dueFloorMod(m, DueWeekMinutes)
	o.week[r/64] |= 1 << (r % 64)
}

// collect adds the occurrences of s in [lo, hi).
func (o *dueOccurrences) collect(s Schedule, lo, hi time.Time) {
	if b, ok := s.(bounded); ok {
		if !b.start.IsZero() && b.start.After(lo) {
			lo = b.start
		}
		if !b.end.IsZero() && b.end.Before(hi) {
			hi = b.end
		}
		s = b.s
	}
	if !lo.Before(hi) {
		return
	}
	switch s := s.(type) {
	case rateSchedule:
		if s.period > 0 && s.period%time.Minute == 0 {
			o.collectRate(s, lo, hi)
			return
		}
	case *cronSchedule:
		o.collectCron(s, lo, hi)
		return
	}
	o.collectNext(s, lo, hi)
}

// collectNext adds the occurrences of s in [lo, hi) one by one.
func (o *dueOccurrences) collectNext(s Schedule, lo, hi time.Time) {
	for t := lo.Add(-time.Nanosecond); ; {
		x, ok := s.Next(t)
		if !ok || !x.Before(hi) || !x.After(t) {
			return
		}
		o.n++
		o.mark(dueMinute(x))
		t = x
	}
}

// collectRate adds a rate's occurrences without enumerating them: with a
// period of whole minutes, occurrence k falls in minute m0 + k·step whatever
// the anchor's seconds, and those minutes repeat modulo a week after
// 10080/dueGCD(step, 10080) occurrences.
func (o *dueOccurrences) collectRate(r rateSchedule, lo, hi time.Time) {
	x0, ok := r.Next(lo.Add(-time.Nanosecond))
	if !ok || !x0.Before(hi) {
		return
	}
	n := int64((hi.Sub(x0)-1)/r.period) + 1
	step := int64(r.period / time.Minute)
	cycle := int64(DueWeekMinutes / dueGCD(step%DueWeekMinutes, DueWeekMinutes))
	m := dueMinute(x0)
	for k := int64(0); k < min(n, cycle); k++ {
		o.mark(m + k*step)
	}
	o.n += n
}

func dueGCD(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// steadyMargin is how far from a change of offset a wall time must be for
// resolveWall to read it with time.Date (27 hours), and a little more.
const steadyMargin = 28 * time.Hour

// collectCron adds a cron's occurrences day by day. On a local day far from
// any change of the zone's offset, the occurrences are the day's wall
// minutes shifted by that offset, so the day adds a known count and its
// midnight's minute of the week; only the days near a change, and the
// window's partial first and last days, are walked with Next, which knows
// the skipped and repeated wall times. A dense cron in a zone with daylight
// saving time thus calls Next for about 16 days of two years.
func (o *dueOccurrences) collectCron(c *cronSchedule, lo, hi time.Time) {
	var pattern []int64 // the minutes of a matching day, from its midnight
	for hours := c.hours; hours != 0; hours &= hours - 1 {
		h := int64(bits.TrailingZeros64(hours))
		for minutes := c.minutes; minutes != 0; minutes &= minutes - 1 {
			pattern = append(pattern, h*60+int64(bits.TrailingZeros64(minutes)))
		}
	}
	if len(pattern) == 0 {
		return
	}
	var midnights [dueWeekWords]uint64 // minutes of the week of steady matching days' midnights
	var (
		monthY  int
		monthM  time.Month
		monthDs uint64
	)
	pending := lo // occurrences before it are collected
	ly, lm, ld := lo.In(c.loc).Date()
	for day := time.Date(ly, lm, ld, 0, 0, 0, 0, time.UTC); ; day = day.AddDate(0, 0, 1) {
		y, mo, d := day.Date()
		g := time.Date(y, mo, d, 0, 0, 0, 0, c.loc)
		if !g.Before(hi) {
			break
		}
		next := g.Add(24 * time.Hour)
		if g.Before(pending) || next.After(hi) || !steadyDay(g) {
			continue
		}
		o.collectNext(c, pending, g)
		pending = next
		if !c.hasYear(y) || c.months&(1<<mo) == 0 {
			continue
		}
		if y != monthY || mo != monthM {
			monthY, monthM, monthDs = y, mo, c.days(y, mo)
		}
		if monthDs&(1<<d) == 0 {
			continue
		}
		o.n += int64(len(pattern))
		r := dueFloorMod(dueMinute(g), DueWeekMinutes)
		midnights[r/64] |= 1 << (r % 64)
	}
	o.collectNext(c, pending, hi)
	for i, w := range midnights {
		for ; w != 0; w &= w - 1 {
			base := int64(i*64 + bits.TrailingZeros64(w))
			for _, p := range pattern {
				o.mark(base + p)
			}
		}
	}
}

// steadyDay reports whether the local day starting at midnight g, and
// steadyMargin either side, lie in one zone period: then every wall time of
// the day is g plus its time of day.
func steadyDay(g time.Time) bool {
	start, end := g.ZoneBounds()
	if !start.IsZero() && g.Sub(start) < steadyMargin {
		return false
	}
	if !end.IsZero() && end.Sub(g) < 24*time.Hour+steadyMargin {
		return false
	}
	// Past the zone data's last transition Go can report bounds that do
	// not hold (golang/go#81583): check the offset at the day's end too.
	_, a := g.Zone()
	_, b := g.Add(24*time.Hour - time.Second).Zone()
	return a == b
}

// plan picks the period, as PlanDue says, for occurrences that touch the
// minutes [m0, m1].
func (o *dueOccurrences) plan(m0, m1 int64) ([]DueSlot, bool) {
	var (
		best       []DueSlot
		bestVisits int64
		seen       [dueWeekWords]uint64
		cur        []DueSlot
	)
	for _, p := range dueDivisors {
		cur = cur[:0]
		clear(seen[:(p+63)/64])
		over := false
	scan:
		for i, w := range o.week {
			for ; w != 0; w &= w - 1 {
				s := (i*64 + bits.TrailingZeros64(w)) % p
				if seen[s/64]&(1<<(s%64)) != 0 {
					continue
				}
				seen[s/64] |= 1 << (s % 64)
				cur = append(cur, DueSlot{Period: p, Slot: s})
				if len(cur) > MaxDueSlots {
					over = true
					break scan
				}
				if len(cur) == p {
					break scan // every phase: more occurrences add none
				}
			}
		}
		if over {
			continue
		}
		var visits int64
		for _, s := range cur {
			visits += dueVisits(m0, m1, s)
		}
		if visits > MaxDueAmplification*o.n {
			continue
		}
		// Ascending periods: a later one wins a tie on slots and visits.
		if best == nil || len(cur) < len(best) || (len(cur) == len(best) && visits <= bestVisits) {
			best, bestVisits = slices.Clone(cur), visits
		}
	}
	if best == nil {
		return nil, false
	}
	slices.SortFunc(best, func(a, b DueSlot) int { return a.Slot - b.Slot })
	return best, true
}

// dueVisits counts the minutes m in [m0, m1] with m mod s.Period == s.Slot.
func dueVisits(m0, m1 int64, s DueSlot) int64 {
	p, r := int64(s.Period), int64(s.Slot)
	return dueFloorDiv(m1-r, p) - dueFloorDiv(m0-1-r, p)
}
