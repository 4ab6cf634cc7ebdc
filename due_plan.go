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
// The slots share one period and are sorted. A slot's visits are the
// minutes of the window it names, whether the timer fires in them or not.
// Among the periods that meet both bounds, PlanDue takes the fewest slots,
// then the fewest visits, then the largest period: equal visits cost the
// same reads, and a larger period spreads the timers with the same phase
// over more bucket keys.
//
// PlanDue is a pure function of its inputs, and cheap enough for the PUT
// path: rates are planned analytically, and crons span by span of steady
// offset, calling Next only around a change of the zone's offset.
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

// dueFloorDiv is a/b rounded towards minus infinity: minutes before the
// epoch still fall in the right slot.
func dueFloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// dueFloorMod is a mod b, never negative (see dueFloorDiv).
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

// mark adds minute m, of the week, to the occurrences.
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
// 10080/gcd(step, 10080) occurrences.
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

// dueGCD is the greatest common divisor of a and b.
func dueGCD(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// collectCron adds a cron's occurrences without walking them where the
// zone's offset is steady. Away from a change of offset by more than the
// zone's offsets differ (dueSteadyMargin), a wall time happens once, at the
// wall time minus the offset, and resolveWall reads it so: there a matching
// day adds a known count and its midnight's minute of the week, and a part
// of a day its minutes. Next walks only the rest: about an hour either side
// of each change (a DST zone's walls skipped and repeated), and a few hours
// where Go misreads the zone data's bounds (golang/go#81583).
func (o *dueOccurrences) collectCron(c *cronSchedule, lo, hi time.Time) {
	pattern := cronDayPattern(c)
	if len(pattern) == 0 {
		return
	}
	margin := dueSteadyMargin(c.loc, lo, hi)
	d := dueCronDays{c: c, pattern: pattern}
	pending := lo // occurrences before it are collected
	for t := lo; t.Before(hi); {
		lt := t.In(c.loc)
		start, end := lt.ZoneBounds()
		if (!end.IsZero() && !end.After(t)) || start.After(t) {
			t = t.Add(time.Hour) // misread bounds: leave the hour to Next
			continue
		}
		_, off := lt.Zone()
		s0, s1 := t, hi
		if !start.IsZero() && start.Add(margin).After(s0) {
			s0 = start.Add(margin)
		}
		if !end.IsZero() && end.Add(-margin).Before(s1) {
			s1 = end.Add(-margin)
		}
		if s0.Before(s1) && dueSamePeriod(s0.In(c.loc), start, end, off) && dueSamePeriod(s1.Add(-time.Nanosecond).In(c.loc), start, end, off) {
			o.collectNext(c, pending, s0)
			d.collect(o, dueCeilSecond(s0), dueCeilSecond(s1), int64(off))
			pending = s1
		}
		if end.IsZero() {
			break
		}
		t = end
	}
	o.collectNext(c, pending, hi)
	d.flush(o)
}

// cronDayPattern is the minutes of a day that matches c, from its
// midnight, in order: what collectCron adds for each whole matching day.
func cronDayPattern(c *cronSchedule) []int64 {
	var pattern []int64
	for hours := c.hours; hours != 0; hours &= hours - 1 {
		h := int64(bits.TrailingZeros64(hours))
		for minutes := c.minutes; minutes != 0; minutes &= minutes - 1 {
			pattern = append(pattern, h*60+int64(bits.TrailingZeros64(minutes)))
		}
	}
	return pattern
}

// dueSteadyMargin is how far from a change of offset an instant of [lo, hi)
// must be for its wall time to happen only there: more than the zone's
// offsets differ within three days either side (resolveWall looks 27 hours
// either side of a wall time for the offsets that may read it).
func dueSteadyMargin(loc *time.Location, lo, hi time.Time) time.Duration {
	lt := lo.Add(-72 * time.Hour).In(loc)
	_, first := lt.Zone()
	least, most := first, first
	for p, stop := lo.Add(-72*time.Hour), hi.Add(72*time.Hour); p.Before(stop); {
		lt := p.In(loc)
		_, off := lt.Zone()
		least, most = min(least, off), max(most, off)
		next, ok := nextZoneChange(lt)
		if !ok {
			break
		}
		p = next
	}
	return time.Duration(most-least)*time.Second + time.Minute
}

// dueSamePeriod reports whether Go reports the zone period [start, end)
// with offset off at lt too: a span read by offset is trusted to Go's
// bounds only where they agree from both of its ends.
func dueSamePeriod(lt time.Time, start, end time.Time, off int) bool {
	s, e := lt.ZoneBounds()
	_, o := lt.Zone()
	return s.Equal(start) && e.Equal(end) && o == off
}

// dueCeilSecond is the first whole Unix second at or after t.
func dueCeilSecond(t time.Time) int64 {
	if t.Nanosecond() > 0 {
		return t.Unix() + 1
	}
	return t.Unix()
}

// dueCronDays adds a cron's occurrences in spans of steady offset.
type dueCronDays struct {
	c         *cronSchedule
	pattern   []int64
	midnights [dueWeekWords]uint64 // minutes of the week of whole matching days' midnights
	monthY    int
	monthM    time.Month
	monthDays uint64
}

// collect adds the occurrences in the Unix seconds [s0, s1), all read
// with offset off.
func (d *dueCronDays) collect(o *dueOccurrences, s0, s1, off int64) {
	for day := dueFloorDiv(s0+off, 86400); day*86400-off < s1; day++ {
		midnight := day*86400 - off // the Unix second of the day's wall 00:00
		y, mo, dd := time.Unix(day*86400, 0).UTC().Date()
		if !d.c.hasYear(y) || d.c.months&(1<<mo) == 0 {
			continue
		}
		if y != d.monthY || mo != d.monthM {
			d.monthY, d.monthM, d.monthDays = y, mo, d.c.days(y, mo)
		}
		if d.monthDays&(1<<dd) == 0 {
			continue
		}
		if midnight >= s0 && midnight+86400 <= s1 {
			o.n += int64(len(d.pattern))
			r := dueFloorMod(dueFloorDiv(midnight, 60), DueWeekMinutes)
			d.midnights[r/64] |= 1 << (r % 64)
			continue
		}
		for _, p := range d.pattern {
			if x := midnight + 60*p; x >= s0 && x < s1 {
				o.n++
				o.mark(dueFloorDiv(x, 60))
			}
		}
	}
}

// flush marks the minutes of the whole days collected.
func (d *dueCronDays) flush(o *dueOccurrences) {
	for i, w := range d.midnights {
		for ; w != 0; w &= w - 1 {
			base := int64(i*64 + bits.TrailingZeros64(w))
			for _, p := range d.pattern {
				o.mark(base + p)
			}
		}
	}
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
