package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// How `bootstrap timers` shows timers to people: aligned tables and
// fields, RFC 3339 times, "-" for what is not there.

// str is m's field key as text ("" when absent; numbers as written).
func str(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// orDash is s, or "-" for nothing, so that table columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newTable is an aligned text table on w.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// scheduleOf is a timer's schedule as written: its expression, or the
// minute of the hour of a legacy hourly timer.
func scheduleOf(t map[string]any) string {
	if s := str(t, "schedule"); s != "" {
		return s
	}
	if m := str(t, "minuteOfHour"); m != "" {
		return "hourly at minute " + m
	}
	return ""
}

// lastOutcome is the outcome of a timer's latest delivery attempt, with
// its HTTP status.
func lastOutcome(t map[string]any) string {
	lf, _ := t["lastFire"].(map[string]any)
	if lf == nil {
		return ""
	}
	out := str(lf, "outcome")
	if s := str(lf, "status"); s != "" {
		out += " (" + s + ")"
	}
	return out
}

// printTimerFields writes a timer's main fields, one per line.
func printTimerFields(w io.Writer, t map[string]any) {
	tw := newTable(w)
	target := "callback data"
	if h, _ := t["http"].(map[string]any); h != nil {
		target = strings.TrimSpace(orDash(str(h, "method")) + " " + str(h, "url"))
	}
	state := str(t, "state")
	if r := str(t, "pauseReason"); r != "" {
		state += " (" + r + ")"
	}
	for _, f := range [][2]string{
		{"ID", str(t, "id")}, {"Group", orDash(str(t, "group"))}, {"Schedule", scheduleOf(t)},
		{"Timezone", orDash(str(t, "timezone"))}, {"State", state}, {"Next", orDash(str(t, "nextFireAt"))},
		{"Last outcome", orDash(lastOutcome(t))}, {"Target", target}, {"Version", str(t, "version")},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	// Issue 14's delivery controls, shown only when set (overlap.go, selfpause.go).
	for _, f := range [][2]string{{"Overlap", str(t, "overlap")}, {"Pause after failures", str(t, "pauseAfterFailures")}} {
		if f[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
		}
	}
	if w, _ := t["spreadSeconds"].(float64); w > 0 { // spread.go
		fmt.Fprintf(tw, "Spread:\t%s\n", spreadLine(str(t, "id"), int(w)))
	}
	tw.Flush()
}

// printUpcoming writes the next occurrences in UTC and in the timer's
// zone, the first after a DST change marked.
func printUpcoming(w io.Writer, up UpcomingList) {
	zone := up.Timezone
	if zone == "" {
		zone = "UTC"
	}
	fmt.Fprintf(w, "\nUpcoming (zone %s):\n", zone)
	if len(up.Upcoming) == 0 {
		why := "none"
		if up.Paused {
			why = "none: the timer is paused"
		}
		fmt.Fprintf(w, "  %s\n", why)
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "  UTC\tLOCAL\tDST")
	for _, o := range up.Upcoming {
		dst := ""
		if o.OffsetChanged {
			dst = "offset changed"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", o.ScheduledAt.Format(time.RFC3339), o.Local, dst)
	}
	tw.Flush()
}

// printHistory writes at most n outcomes, newest first, under title,
// indented when it has one (describe's section).
func printHistory(w io.Writer, title string, h []map[string]any, n int) {
	fmt.Fprint(w, title)
	indent := ""
	if title != "" {
		indent = "  "
	}
	if len(h) == 0 {
		fmt.Fprintln(w, indent+"none")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, indent+"SCHEDULED\tATTEMPTED\tATTEMPT\tOUTCOME\tSTATUS\tLATENCY MS\tERROR")
	for i, e := range h {
		if i == n {
			break
		}
		outcome := str(e, "outcome")
		if m, _ := e["manual"].(bool); m {
			outcome += " (manual)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%s\t%s\t%s\n", indent, tableTime(str(e, "scheduledAt")), tableTime(str(e, "attemptedAt")), str(e, "attempt"),
			outcome, orDash(str(e, "status")), str(e, "latencyMs"), orDash(str(e, "error")))
	}
	tw.Flush()
}

// tableTime is an instant of the history in UTC to the millisecond, so
// that lateness shows and the columns keep one width; text that is not an
// RFC 3339 instant is left as it is.
func tableTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// printList writes the listed timers as a table, or as one JSON array.
func (c *timerCmd) printList(ctx context.Context, w io.Writer, timers []json.RawMessage) int {
	if *c.output == "json" {
		if timers == nil {
			timers = []json.RawMessage{}
		}
		b, _ := marshalJSON(timers)
		writeJSON(w, b)
		return exitOK
	}
	docs := make([]map[string]any, len(timers))
	for i, raw := range timers {
		if code := c.decodeDoc(raw, &docs[i]); code >= 0 {
			return code
		}
	}
	if code := c.addLastFires(ctx, docs); code >= 0 {
		return code
	}
	if len(docs) == 0 {
		fmt.Fprintln(w, "No timers.")
		return exitOK
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tGROUP\tSCHEDULE\tSTATE\tNEXT\tLAST OUTCOME")
	for _, t := range docs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", str(t, "id"), orDash(str(t, "group")), scheduleOf(t),
			str(t, "state"), orDash(str(t, "nextFireAt")), orDash(lastOutcome(t)))
	}
	tw.Flush()
	return exitOK
}

// printTimerAction writes the timer an action answered with: its JSON, or
// one line with its state and next occurrence.
func (c *timerCmd) printTimerAction(w io.Writer, done string, b []byte) int {
	if *c.output == "json" {
		writeJSON(w, b)
		return exitOK
	}
	var t map[string]any
	if code := c.decodeDoc(b, &t); code >= 0 {
		return code
	}
	fmt.Fprintf(w, "%s %s: version %s, %s, next %s\n", done, str(t, "id"), str(t, "version"), str(t, "state"), orDash(str(t, "nextFireAt")))
	return exitOK
}
