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
	if h, _ := t["http"].(map[string]any); h != nil && str(h, "limitKey") != "" {
		fmt.Fprintf(tw, "Limit:\t%s\n", str(h, "limitKey"))
	}
	if line := signingLine(t); line != "" {
		fmt.Fprintf(tw, "Signing:\t%s\n", line)
	}
	tw.Flush()
}

// signingLine is how the command line shows a timer's signing: the
// secret's parameter name (never a value), and the previous one during a
// rotation; "" for a timer whose calls are not signed.
func signingLine(t map[string]any) string {
	h, _ := t["http"].(map[string]any)
	sg, _ := h["signing"].(map[string]any)
	if sg == nil {
		return ""
	}
	line := "signed with " + secretParam(str(sg, "secret"))
	if p := secretParam(str(sg, "previousSecret")); p != "" {
		line += ", and with " + p + " during the rotation"
	}
	return line
}

// secretParam is the parameter an aws-secret(NAME) placeholder names;
// "" for none, and "(set)" for text that is no single placeholder, so
// that nothing but a name ever shows.
func secretParam(ref string) string {
	if ref == "" {
		return ""
	}
	if names := secretNames(ref); len(names) == 1 && secretPattern.FindString(ref) == ref {
		return names[0]
	}
	return "(set)"
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
	// A spread timer's occurrences also show when they are delivered.
	spread := up.Upcoming[0].PlannedAt != nil
	tw := newTable(w)
	if spread {
		fmt.Fprintln(tw, "  UTC\tPLANNED\tLOCAL\tDST")
	} else {
		fmt.Fprintln(tw, "  UTC\tLOCAL\tDST")
	}
	for _, o := range up.Upcoming {
		dst := ""
		if o.OffsetChanged {
			dst = "offset changed"
		}
		at := o.ScheduledAt.Format(time.RFC3339)
		if spread && o.PlannedAt != nil {
			at += "\t" + o.PlannedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", at, o.Local, dst)
	}
	tw.Flush()
}

// printHistory writes at most n outcomes, newest first, under title,
// indented when it has one (describe's section). A PLANNED column (a
// spread occurrence's delivery instant) and a LIMITED MS one (how long
// the destination's limit held the attempt) show only when an entry has
// them, so that a timer without either keeps the plain table.
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
	if n >= 0 && n < len(h) {
		h = h[:n]
	}
	planned, limited := historyHas(h, "plannedAt"), historyHas(h, "limitedMs")
	cols := []string{"SCHEDULED"}
	if planned {
		cols = append(cols, "PLANNED")
	}
	cols = append(cols, "ATTEMPTED", "ATTEMPT", "OUTCOME", "STATUS", "LATENCY MS")
	if limited {
		cols = append(cols, "LIMITED MS")
	}
	tw := newTable(w)
	fmt.Fprintln(tw, indent+strings.Join(append(cols, "ERROR"), "\t"))
	for _, e := range h {
		outcome := str(e, "outcome")
		if m, _ := e["manual"].(bool); m {
			outcome += " (manual)"
		}
		row := []string{tableTime(str(e, "scheduledAt"))}
		if planned {
			row = append(row, orDash(tableTime(str(e, "plannedAt"))))
		}
		row = append(row, tableTime(str(e, "attemptedAt")), str(e, "attempt"), outcome, orDash(str(e, "status")), str(e, "latencyMs"))
		if limited {
			row = append(row, orDash(str(e, "limitedMs")))
		}
		fmt.Fprintln(tw, indent+strings.Join(append(row, orDash(str(e, "error"))), "\t"))
	}
	tw.Flush()
}

// historyHas reports whether an entry of h has field key.
func historyHas(h []map[string]any, key string) bool {
	for _, e := range h {
		if str(e, key) != "" {
			return true
		}
	}
	return false
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
