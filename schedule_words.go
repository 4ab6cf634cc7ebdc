package main

import (
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// A timer's schedule in words, for the console's tables: "every day at
// 09:00, America/New_York", "every 5 minutes", "once at 2027-01-01 00:00
// UTC". It reads the expression with schedule.go's own parser, so that
// the words say what the sweeper does; an expression it cannot put in a
// few words comes back as written.

// ScheduleInWords is expr (cron, rate or at, read in timezone; "" is
// UTC) said in words, or expr itself when it is invalid or too intricate
// to say shortly. A legacy hourly timer's expression is Timer.Expression's
// cron(M * * * ? *), "every hour at minute M".
func ScheduleInWords(expr, timezone string) string {
	loc, err := loadZone(timezone)
	if err != nil {
		return expr
	}
	e := strings.TrimSpace(expr)
	open := strings.IndexByte(e, '(')
	if open < 0 || !strings.HasSuffix(e, ")") {
		return expr
	}
	kind, body := e[:open], strings.TrimSpace(e[open+1:len(e)-1])
	var words string
	switch kind {
	case "rate":
		words = rateWords(body)
	case "at":
		words = atWords(body, loc)
	case "cron":
		words = cronWords(body, loc)
	}
	if words == "" {
		return expr
	}
	return words
}

// zoneSuffix ends a wall time with its zone: " UTC", or ", Europe/Paris".
func zoneSuffix(loc *time.Location) string {
	if loc == time.UTC {
		return " UTC"
	}
	return ", " + loc.String()
}

// rateWords is a rate(...) in words: fixed durations, in no zone.
func rateWords(body string) string {
	s, err := parseRate(body, time.Unix(0, 0))
	if err != nil {
		return ""
	}
	p := s.(rateSchedule).period
	unit, n := "minute", int64(p/time.Minute)
	switch {
	case p%(24*time.Hour) == 0:
		unit, n = "day", int64(p/(24*time.Hour))
	case p%time.Hour == 0:
		unit, n = "hour", int64(p/time.Hour)
	}
	return "every " + plural(n, unit)
}

// plural is "minute" for 1, "5 minutes" for 5.
func plural(n int64, unit string) string {
	if n == 1 {
		return unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// atWords is an at(...) in words: its wall time and zone.
func atWords(body string, loc *time.Location) string {
	s, err := parseAt(body, loc)
	if err != nil {
		return ""
	}
	layout := "2006-01-02 15:04"
	at := s.(atSchedule).at.In(loc)
	if at.Second() != 0 {
		layout = "2006-01-02 15:04:05"
	}
	return "once at " + at.Format(layout) + zoneSuffix(loc)
}

// cronWords is a cron(...) in words, "" when it has no short wording
// (several years, many days, irregular times).
func cronWords(body string, loc *time.Location) string {
	s, err := parseCron(body, loc)
	if err != nil {
		return ""
	}
	c := s.(*cronSchedule)
	allYears, _ := fieldYear.parseYears("*")
	if c.years != allYears {
		return ""
	}
	times, wall := cronTimes(c.minutes, c.hours)
	days, ok := cronDays(c, wall)
	if times == "" || !ok {
		return ""
	}
	if !wall {
		// "every 5 minutes", "every hour at minute 45 on Monday": the
		// zone matters unless it is a count of minutes on every day (a
		// zone may be half an hour off UTC, so hours and minutes are its).
		out := strings.TrimSpace(times + " " + days)
		minutesOnly := times == "every minute" || strings.HasSuffix(times, " minutes")
		if loc != time.UTC && (days != "" || !minutesOnly) {
			out += zoneSuffix(loc)
		}
		return out
	}
	return days + " " + times + zoneSuffix(loc)
}

// bitList is the positions of set's bits, lowest first.
func bitList(set uint64) []int {
	var out []int
	for set != 0 {
		b := bits.TrailingZeros64(set)
		out = append(out, b)
		set &^= 1 << b
	}
	return out
}

// stepOf is k when list is 0, k, 2k, ... up to the field's size n, with k
// dividing n; 0 otherwise.
func stepOf(list []int, n int) int {
	if len(list) < 2 || list[0] != 0 || n%len(list) != 0 {
		return 0
	}
	k := n / len(list)
	for i, v := range list {
		if v != i*k {
			return 0
		}
	}
	return k
}

// cronTimes says the minutes and hours: wall times ("at 09:00 and
// 17:00", wall true) or a frequency ("every 5 minutes", "every hour at
// minute 45"); "" when neither is short.
func cronTimes(minutes, hours uint64) (words string, wall bool) {
	mins, hrs := bitList(minutes), bitList(hours)
	switch {
	case len(hrs) == 24 && len(mins) == 60:
		return "every minute", false
	case len(hrs) == 24 && len(mins) == 1:
		return fmt.Sprintf("every hour at minute %d", mins[0]), false
	case len(hrs) == 24 && stepOf(mins, 60) > 0:
		return fmt.Sprintf("every %d minutes", stepOf(mins, 60)), false
	case len(hrs) == 24:
		return "", false
	case len(mins) == 1 && stepOf(hrs, 24) > 0:
		return fmt.Sprintf("every %d hours at minute %d", stepOf(hrs, 24), mins[0]), false
	case len(mins) == 60 && len(hrs) == 1:
		return fmt.Sprintf("every minute from %02d:00 to %02d:59", hrs[0], hrs[0]), false
	case len(mins)*len(hrs) > 4:
		return "", false
	}
	var at []string
	for _, h := range hrs {
		for _, m := range mins {
			at = append(at, fmt.Sprintf("%02d:%02d", h, m))
		}
	}
	return "at " + joinAnd(at), true
}

// joinAnd is "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

var (
	weekdayNames = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
	ordinalNames = []string{"", "first", "second", "third", "fourth", "fifth"}
)

// cronDays says the days and months. For wall times it leads the
// sentence ("every day", "every Monday to Friday", "on the 1st of the
// month"); after a frequency it follows it ("", "on Monday to Friday").
// ok is false when they have no short wording.
func cronDays(c *cronSchedule, wall bool) (string, bool) {
	allMonths := len(bitList(c.months)) == 12
	months := monthNames(c.months)
	rule := c.dom
	if rule.kind == dayAny {
		rule = c.dow
	}
	if rule.kind == dowSet || (rule.kind == domSet && len(bitList(rule.set)) == 31) {
		return weekDays(rule, allMonths, months, wall), true
	}
	words := monthDays(rule)
	if words == "" {
		return "", false
	}
	if allMonths {
		return words + " of the month", true
	}
	return words + " of " + months, true
}

// weekDays says a rule that picks days of the week, or every day: "every
// day", "every Monday to Friday in December"; after a frequency "", "on
// Monday to Friday".
func weekDays(rule dayRule, allMonths bool, months string, wall bool) string {
	var words string // "" for every day
	if rule.kind == dowSet && len(bitList(rule.set)) < 7 {
		words = weekdays(rule.set)
	}
	switch {
	case words == "" && allMonths && wall:
		return "every day"
	case words == "" && allMonths:
		return ""
	case words == "" && wall:
		return "every day in " + months
	case words == "":
		return "in " + months
	case !allMonths:
		words += " in " + months
	}
	if wall {
		return "every " + words
	}
	return "on " + words
}

// monthDays says a rule that picks days of the month ("on the 1st and
// 15th", "on the last Friday"), "" when it has no short wording.
func monthDays(rule dayRule) string {
	switch rule.kind {
	case domSet:
		days := bitList(rule.set)
		if len(days) > 3 {
			return ""
		}
		var ds []string
		for _, d := range days {
			ds = append(ds, ordinal(d))
		}
		return "on the " + joinAnd(ds)
	case domLast:
		return "on the last day"
	case domLastWeekday:
		return "on the last weekday"
	case domNearest:
		return "on the weekday nearest the " + ordinal(rule.n)
	case dowLast:
		return "on the last " + weekdayNames[rule.weekday]
	case dowNth:
		return "on the " + ordinalNames[rule.n] + " " + weekdayNames[rule.weekday]
	}
	return ""
}

// weekdays says a day-of-week set (bit w for weekday w, 1 = Sunday): "Monday
// to Friday" for a run of three or more, else a list.
func weekdays(set uint64) string {
	days := bitList(set)
	if len(days) >= 3 && days[len(days)-1]-days[0] == len(days)-1 {
		return weekdayNames[days[0]-1] + " to " + weekdayNames[days[len(days)-1]-1]
	}
	var names []string
	for _, d := range days {
		names = append(names, weekdayNames[d-1])
	}
	return joinAnd(names)
}

// monthNames lists a month set's names (bit m for month m).
func monthNames(set uint64) string {
	var names []string
	for _, m := range bitList(set) {
		names = append(names, time.Month(m).String())
	}
	return joinAnd(names)
}

// ordinal is 1st, 2nd, 3rd, 4th, ..., 21st, 22nd, 23rd, 31st.
func ordinal(n int) string {
	suffix := "th"
	switch {
	case n%10 == 1 && n != 11:
		suffix = "st"
	case n%10 == 2 && n != 12:
		suffix = "nd"
	case n%10 == 3 && n != 13:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
