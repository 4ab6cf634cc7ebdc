package main

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones on Lambda images without /usr/share/zoneinfo
)

// Schedule says when a timer fires.
type Schedule interface {
	// Next returns the first occurrence strictly after t, and false when
	// there is none.
	Next(t time.Time) (time.Time, bool)
}

// ScheduleSpec is everything that decides a timer's occurrences.
type ScheduleSpec struct {
	// Expression is cron(...), rate(...) or at(...), as EventBridge
	// Scheduler writes them.
	Expression string
	// Location is the zone cron and at wall times are read in. Default UTC.
	Location *time.Location
	// Anchor is a rate schedule's first occurrence when StartAt is zero
	// (the time the timer was created).
	Anchor time.Time
	// StartAt and EndAt bound the occurrences to [StartAt, EndAt); zero
	// means unbounded.
	StartAt, EndAt time.Time
}

// Cron years, as EventBridge accepts them.
const (
	minYear = 1970
	maxYear = 2199
)

// ParseSchedule parses spec. Its errors are EINVALID and say which part of
// the expression is wrong and why.
func ParseSchedule(spec ScheduleSpec) (Schedule, error) {
	loc := spec.Location
	if loc == nil {
		loc = time.UTC
	}
	expr := strings.TrimSpace(spec.Expression)
	open := strings.IndexByte(expr, '(')
	if open < 0 || !strings.HasSuffix(expr, ")") {
		return nil, scheduleError(expr, "must be cron(...), rate(...) or at(...)")
	}
	kind, body := expr[:open], strings.TrimSpace(expr[open+1:len(expr)-1])
	var (
		s   Schedule
		err error
	)
	switch kind {
	case "cron":
		s, err = parseCron(body, loc)
	case "rate":
		anchor := spec.Anchor
		if !spec.StartAt.IsZero() {
			anchor = spec.StartAt
		}
		s, err = parseRate(body, anchor)
	case "at":
		s, err = parseAt(body, loc)
	default:
		err = fmt.Errorf("must be cron(...), rate(...) or at(...), not %s(...)", kind)
	}
	if err != nil {
		return nil, scheduleError(expr, err.Error())
	}
	if !spec.StartAt.IsZero() && !spec.EndAt.IsZero() && !spec.EndAt.After(spec.StartAt) {
		return nil, Errorf(EINVALID, "endAt must be after startAt")
	}
	if spec.StartAt.IsZero() && spec.EndAt.IsZero() {
		return s, nil
	}
	return bounded{s, spec.StartAt, spec.EndAt}, nil
}

func scheduleError(expr, why string) error {
	return Errorf(EINVALID, "schedule %q: %s", expr, why)
}

// bounded keeps the occurrences of a schedule within [start, end).
type bounded struct {
	s          Schedule
	start, end time.Time
}

func (b bounded) Next(t time.Time) (time.Time, bool) {
	if !b.start.IsZero() && t.Before(b.start) {
		t = b.start.Add(-time.Nanosecond) // so that start itself counts
	}
	n, ok := b.s.Next(t)
	if !ok || (!b.end.IsZero() && !n.Before(b.end)) {
		return time.Time{}, false
	}
	return n, true
}

// rateSchedule fires at anchor + k·period, k = 0, 1, 2, ...: fixed
// durations, so daylight saving time does not move it, as in EventBridge.
type rateSchedule struct {
	anchor time.Time
	period time.Duration
}

func (r rateSchedule) Next(t time.Time) (time.Time, bool) {
	if t.Before(r.anchor) {
		return r.anchor, true
	}
	// Whole seconds, not time.Duration: a Duration saturates at 292 years.
	p := int64(r.period / time.Second)
	secs := t.Unix() - r.anchor.Unix()
	if t.Nanosecond() < r.anchor.Nanosecond() {
		secs--
	}
	return time.Unix(r.anchor.Unix()+(secs/p+1)*p, int64(r.anchor.Nanosecond())).In(r.anchor.Location()), true
}

func parseRate(body string, anchor time.Time) (Schedule, error) {
	f := strings.Fields(body)
	if len(f) != 2 {
		return nil, fmt.Errorf("rate needs a value and a unit, e.g. rate(5 minutes)")
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1 || f[0][0] == '+' {
		return nil, fmt.Errorf("rate value %q must be a whole number of at least 1", f[0])
	}
	units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	unit, plural := strings.CutSuffix(f[1], "s")
	d, ok := units[unit]
	switch {
	case !ok:
		return nil, fmt.Errorf("rate unit %q must be minute(s), hour(s) or day(s)", f[1])
	case n == 1 && plural:
		return nil, fmt.Errorf("rate(1 %s) must use the singular unit: rate(1 %s)", f[1], unit)
	case n > 1 && !plural:
		return nil, fmt.Errorf("rate(%d %s) must use the plural unit: rate(%d %ss)", n, f[1], n, unit)
	case int64(n) > int64(100*365*24*time.Hour/d):
		return nil, fmt.Errorf("rate value %d is too large (at most 100 years)", n)
	}
	if anchor.IsZero() {
		return nil, fmt.Errorf("a rate needs an anchor: startAt, or the time the timer was created")
	}
	return rateSchedule{anchor: anchor, period: time.Duration(n) * d}, nil
}

// atSchedule fires once.
type atSchedule struct{ at time.Time }

func (a atSchedule) Next(t time.Time) (time.Time, bool) {
	if t.Before(a.at) {
		return a.at, true
	}
	return time.Time{}, false
}

func parseAt(body string, loc *time.Location) (Schedule, error) {
	const layout = "2006-01-02T15:04:05"
	w, err := time.Parse(layout, body)
	if err != nil || len(body) != len(layout) {
		return nil, fmt.Errorf("at needs a local date and time yyyy-mm-ddThh:mm:ss, e.g. at(2026-03-09T02:30:00)")
	}
	if w.Year() < minYear || w.Year() > maxYear {
		return nil, fmt.Errorf("at year %d is outside %d-%d", w.Year(), minYear, maxYear)
	}
	t, ok := resolveWall(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), loc)
	if !ok {
		return nil, fmt.Errorf("%s does not exist in %s (the clocks skip it for daylight saving time)", body, loc)
	}
	return atSchedule{t}, nil
}

// resolveWall returns the instant a wall-clock time in loc stands for, as
// EventBridge Scheduler reads it: a time that happens twice (clocks going
// back) is its first occurrence; a time that does not happen (clocks going
// forward) reports false.
func resolveWall(y int, mo time.Month, d, h, mi, s int, loc *time.Location) (time.Time, bool) {
	guess := time.Date(y, mo, d, h, mi, s, 0, loc)
	if loc == time.UTC {
		return guess, true
	}
	// Far from any change of offset, time.Date is exact. Offsets lie
	// within ±26 hours of UTC, so a day and more either side is far.
	const far = 27 * time.Hour
	start, end := guess.ZoneBounds()
	if (start.IsZero() || guess.Sub(start) > far) && (end.IsZero() || end.Sub(guess) > far) {
		return guess, true
	}
	// Near a change: try every offset in force around the wall time and
	// keep the earliest instant whose wall clock is the one asked for.
	wall := time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	var best time.Time
	found := false
	for p := wall.Add(-far); p.Before(wall.Add(far)); {
		local := p.In(loc)
		_, off := local.Zone()
		c := wall.Add(-time.Duration(off) * time.Second).In(loc)
		cy, cmo, cd := c.Date()
		ch, cmi, cs := c.Clock()
		if cy == y && cmo == mo && cd == d && ch == h && cmi == mi && cs == s && (!found || c.Before(best)) {
			best, found = c, true
		}
		next, ok := nextZoneChange(local)
		if !ok {
			break
		}
		p = next
	}
	return best, found
}

// nextZoneChange is the instant after local at which its zone's offset may
// next change, the step of a walk over a zone's offsets; false when the
// zone has no change after it.
func nextZoneChange(local time.Time) (time.Time, bool) {
	_, next := local.ZoneBounds()
	if next.IsZero() {
		return time.Time{}, false
	}
	// Past the last transition in the zone data, Go can report a bound at
	// or before local (golang/go#81583); step on rather than loop.
	if !next.After(local) {
		next = local.Add(time.Hour)
	}
	return next, true
}

// cronSchedule is a parsed cron(...) expression in a zone. Each field is
// a bit set; day-of-month and day-of-week rules are evaluated per month.
type cronSchedule struct {
	minutes uint64    // bit m for minute m
	hours   uint64    // bit h for hour h
	months  uint64    // bit m for month m, 1-12
	years   [4]uint64 // bit y-minYear
	dom     dayRule
	dow     dayRule
	loc     *time.Location
}

// dayRule is one of the two day fields. Exactly one of a cron's two rules
// is "any" (the field written '?').
type dayRule struct {
	kind    dayKind
	set     uint64       // domSet: bit d for day d; dowSet: bit w for weekday w (1=SUN)
	n       int          // domNearest: the day; dowNth: the occurrence, 1-5
	weekday time.Weekday // dowLast, dowNth
}

type dayKind int

const (
	dayAny         dayKind = iota // '?'
	domSet                        // values, ranges, steps, '*'
	domLast                       // L
	domLastWeekday                // LW
	domNearest                    // nW
	dowSet                        // values, ranges, steps, '*'
	dowLast                       // nL: the last weekday n of the month
	dowNth                        // n#k: the k-th weekday n of the month
)

// cronField describes one field for parsing and for messages.
type cronField struct {
	name     string
	min, max int
	names    []string // names[i] stands for min+i
}

var (
	fieldMinutes = cronField{name: "minutes", min: 0, max: 59}
	fieldHours   = cronField{name: "hours", min: 0, max: 23}
	fieldDOM     = cronField{name: "day-of-month", min: 1, max: 31}
	fieldMonth   = cronField{name: "month", min: 1, max: 12,
		names: []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}}
	fieldDOW = cronField{name: "day-of-week", min: 1, max: 7,
		names: []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}}
	fieldYear = cronField{name: "year", min: minYear, max: maxYear}
)

func parseCron(body string, loc *time.Location) (Schedule, error) {
	f := strings.Fields(body)
	if len(f) != 6 {
		return nil, fmt.Errorf("cron needs 6 fields (minutes hours day-of-month month day-of-week year), found %d", len(f))
	}
	c := &cronSchedule{loc: loc}
	var err error
	if c.minutes, err = fieldMinutes.parseSet(f[0]); err != nil {
		return nil, err
	}
	if c.hours, err = fieldHours.parseSet(f[1]); err != nil {
		return nil, err
	}
	if c.months, err = fieldMonth.parseSet(f[3]); err != nil {
		return nil, err
	}
	years, err := fieldYear.parseYears(f[5])
	if err != nil {
		return nil, err
	}
	c.years = years
	switch {
	case f[2] == "?" && f[4] == "?":
		return nil, fmt.Errorf("day-of-month and day-of-week cannot both be '?': one of them must say which days")
	case f[2] != "?" && f[4] != "?":
		return nil, fmt.Errorf("one of day-of-month (%q) and day-of-week (%q) must be '?'", f[2], f[4])
	}
	if c.dom, err = parseDOM(f[2]); err != nil {
		return nil, err
	}
	if c.dow, err = parseDOW(f[4]); err != nil {
		return nil, err
	}
	return c, nil
}

func (f cronField) errorf(text, format string, args ...any) error {
	return fmt.Errorf("%s %q: %s", f.name, text, fmt.Sprintf(format, args...))
}

// value parses one number or name of the field.
func (f cronField) value(full, s string) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	if s == "" {
		return 0, f.errorf(full, "a value is missing")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			if len(f.names) > 0 {
				return 0, f.errorf(full, "%q is not a number from %d to %d or a name %s-%s", s, f.min, f.max, f.names[0], f.names[len(f.names)-1])
			}
			return 0, f.errorf(full, "%q is not a number from %d to %d", s, f.min, f.max)
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, f.errorf(full, "%s is outside %d-%d", s, f.min, f.max)
	}
	return v, nil
}

// parseItems parses a list of values, ranges and steps into the values it
// covers, calling add for each.
func (f cronField) parseItems(text string, add func(int)) error {
	if text == "" {
		return f.errorf(text, "the field is empty")
	}
	for _, item := range strings.Split(text, ",") {
		base, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 || stepText[0] == '+' {
				return f.errorf(text, "step %q must be a whole number of at least 1", stepText)
			}
			if n > f.max-f.min+1 {
				return f.errorf(text, "step %d is larger than the field's range %d-%d", n, f.min, f.max)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case base == "*":
		case strings.Contains(base, "-"):
			a, b, _ := strings.Cut(base, "-")
			var err error
			if lo, err = f.value(text, a); err != nil {
				return err
			}
			if hi, err = f.value(text, b); err != nil {
				return err
			}
			if lo > hi {
				return f.errorf(text, "range %s starts after it ends; write it as two ranges", base)
			}
		default:
			v, err := f.value(text, base)
			if err != nil {
				return err
			}
			lo = v
			if !hasStep {
				hi = v // a single value; "v/step" runs from v to the field's end
			}
		}
		for v := lo; v <= hi; v += step {
			add(v)
		}
	}
	return nil
}

// parseSet parses a field of at most 64 values into a bit set.
func (f cronField) parseSet(text string) (uint64, error) {
	if text == "?" {
		return 0, f.errorf(text, "'?' is allowed only in day-of-month and day-of-week")
	}
	var set uint64
	err := f.parseItems(text, func(v int) { set |= 1 << v })
	return set, err
}

func (f cronField) parseYears(text string) ([4]uint64, error) {
	var set [4]uint64
	if text == "?" {
		return set, f.errorf(text, "'?' is allowed only in day-of-month and day-of-week")
	}
	err := f.parseItems(text, func(v int) { set[(v-minYear)/64] |= 1 << ((v - minYear) % 64) })
	return set, err
}

func parseDOM(text string) (dayRule, error) {
	f := fieldDOM
	switch {
	case text == "?":
		return dayRule{kind: dayAny}, nil
	case strings.EqualFold(text, "L"):
		return dayRule{kind: domLast}, nil
	case strings.EqualFold(text, "LW"):
		return dayRule{kind: domLastWeekday}, nil
	case strings.HasSuffix(strings.ToUpper(text), "W"):
		n, err := f.value(text, text[:len(text)-1])
		if err != nil {
			return dayRule{}, f.errorf(text, "W needs a single day before it, e.g. 15W (nearest weekday to the 15th)")
		}
		return dayRule{kind: domNearest, n: n}, nil
	case strings.ContainsAny(strings.ToUpper(text), "LW#"):
		return dayRule{}, f.errorf(text, "L, LW and nW stand alone in day-of-month; they cannot be combined with other values or offsets")
	}
	r := dayRule{kind: domSet}
	err := f.parseItems(text, func(v int) { r.set |= 1 << v })
	return r, err
}

func parseDOW(text string) (dayRule, error) {
	f := fieldDOW
	upper := strings.ToUpper(text)
	switch {
	case text == "?":
		return dayRule{kind: dayAny}, nil
	case upper == "L":
		// L alone is the last day of the week: Saturday.
		return dayRule{kind: dowSet, set: 1 << 7}, nil
	case strings.Contains(text, "#"):
		a, b, _ := strings.Cut(text, "#")
		w, err := f.value(text, a)
		if err != nil {
			return dayRule{}, err
		}
		k, err := strconv.Atoi(b)
		if err != nil || k < 1 || k > 5 || b[0] == '+' {
			return dayRule{}, f.errorf(text, "the occurrence after # must be 1 to 5")
		}
		return dayRule{kind: dowNth, weekday: time.Weekday(w - 1), n: k}, nil
	case strings.HasSuffix(upper, "L"):
		w, err := f.value(text, text[:len(text)-1])
		if err != nil {
			return dayRule{}, f.errorf(text, "L needs a single weekday before it, e.g. 6L (the last Friday)")
		}
		return dayRule{kind: dowLast, weekday: time.Weekday(w - 1)}, nil
	case strings.Contains(upper, "W") && !strings.Contains(upper, "WED"):
		return dayRule{}, f.errorf(text, "W is allowed only in day-of-month")
	}
	r := dayRule{kind: dowSet}
	err := f.parseItems(text, func(v int) { r.set |= 1 << v })
	return r, err
}

// days returns the set of days (bit d for day d) of a month that the two
// day rules select.
func (c *cronSchedule) days(year int, month time.Month) uint64 {
	last := daysIn(year, month)
	first := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC).Weekday()
	weekdayOf := func(d int) time.Weekday { return (first + time.Weekday(d-1)) % 7 }
	rule := c.dom
	if rule.kind == dayAny {
		rule = c.dow
	}
	var set uint64
	switch rule.kind {
	case domSet:
		set = rule.set & (1<<(last+1) - 1)
	case domLast:
		set = 1 << last
	case domLastWeekday:
		d := last
		for weekdayOf(d) == time.Saturday || weekdayOf(d) == time.Sunday {
			d--
		}
		set = 1 << d
	case domNearest:
		if rule.n > last {
			return 0 // like a plain day-of-month, a day the month lacks never fires
		}
		d := rule.n
		switch weekdayOf(d) {
		case time.Saturday:
			if d > 1 {
				d-- // Friday before
			} else {
				d += 2 // the 1st: Monday after, never the month before
			}
		case time.Sunday:
			if d < last {
				d++ // Monday after
			} else {
				d -= 2 // the last day: Friday before, never the month after
			}
		}
		set = 1 << d
	case dowSet:
		for d := 1; d <= last; d++ {
			if rule.set&(1<<(int(weekdayOf(d))+1)) != 0 {
				set |= 1 << d
			}
		}
	case dowLast:
		d := last
		for weekdayOf(d) != rule.weekday {
			d--
		}
		set = 1 << d
	case dowNth:
		d := 1 + int(rule.weekday-first+7)%7 + 7*(rule.n-1)
		if d <= last {
			set = 1 << d
		}
	}
	return set
}

func daysIn(year int, month time.Month) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func (c *cronSchedule) hasYear(y int) bool {
	if y < minYear || y > maxYear {
		return false
	}
	return c.years[(y-minYear)/64]&(1<<((y-minYear)%64)) != 0
}

// Next walks the expression's own fields (years, then months, then the
// month's matching days, hours and minutes) from t's wall time in the
// zone, so it never steps minute by minute and ends after year 2199.
// Wall times map to instants in order (a repeated wall time counts at its
// first occurrence), so the first candidate after t is the answer.
func (c *cronSchedule) Next(t time.Time) (time.Time, bool) {
	lt := t.In(c.loc)
	y0, mo0, d0 := lt.Date()
	h0, mi0 := lt.Hour(), lt.Minute()
	if y0 < minYear {
		y0, mo0, d0, h0, mi0 = minYear, time.January, 1, 0, 0
	}
	for y := y0; y <= maxYear; y++ {
		if !c.hasYear(y) {
			continue
		}
		firstMonth := time.January
		if y == y0 {
			firstMonth = mo0
		}
		for mo := firstMonth; mo <= time.December; mo++ {
			if c.months&(1<<mo) == 0 {
				continue
			}
			days := c.days(y, mo)
			startMonth := y == y0 && mo == mo0
			if startMonth {
				days &^= 1<<d0 - 1 // days before t's
			}
			for days != 0 {
				d := bits.TrailingZeros64(days)
				days &^= 1 << d
				startDay := startMonth && d == d0
				hours := c.hours
				if startDay {
					hours &^= 1<<h0 - 1
				}
				for hours != 0 {
					h := bits.TrailingZeros64(hours)
					hours &^= 1 << h
					minutes := c.minutes
					if startDay && h == h0 {
						minutes &^= 1<<mi0 - 1
					}
					for minutes != 0 {
						mi := bits.TrailingZeros64(minutes)
						minutes &^= 1 << mi
						if at, ok := resolveWall(y, mo, d, h, mi, 0, c.loc); ok && at.After(t) {
							return at, true
						}
					}
				}
			}
		}
	}
	return time.Time{}, false
}

// matches reports whether instant t is an occurrence of c: its wall time
// matches every field and t is that wall time's first occurrence.
func (c *cronSchedule) matches(t time.Time) bool {
	lt := t.In(c.loc)
	y, mo, d := lt.Date()
	h, mi, s := lt.Clock()
	if s != 0 || lt.Nanosecond() != 0 || !c.hasYear(y) || c.months&(1<<mo) == 0 ||
		c.days(y, mo)&(1<<d) == 0 || c.hours&(1<<h) == 0 || c.minutes&(1<<mi) == 0 {
		return false
	}
	first, ok := resolveWall(y, mo, d, h, mi, 0, c.loc)
	return ok && first.Equal(t)
}

// loadZone loads an IANA time zone; the empty name is UTC. "Local" is
// refused: it would mean whatever zone the machine running us is in.
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if name == "Local" {
		return nil, Errorf(EINVALID, "timezone must be an IANA zone name such as Europe/Berlin, not Local")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, Errorf(EINVALID, "timezone %q is not a known IANA zone name (such as Europe/Berlin)", name)
	}
	return loc, nil
}

// zoneCache memoises loadZone: loading a zone reads and parses its tzdata,
// which a sweep would otherwise do once per timer.
type zoneCache struct{ m sync.Map }

// Load is loadZone, cached.
func (z *zoneCache) Load(name string) (*time.Location, error) {
	if loc, ok := z.m.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := loadZone(name)
	if err == nil {
		z.m.Store(name, loc)
	}
	return loc, err
}
