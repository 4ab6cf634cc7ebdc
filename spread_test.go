package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
)

// spReference is the offset as the README defines it, written out again
// from its definition.
func spReference(id string, window int) time.Duration {
	sum := sha256.Sum256([]byte("spread:" + id))
	return time.Duration(binary.BigEndian.Uint64(sum[:8])%uint64(window)) * time.Second
}

// TestSpreadOffsetIsTheDocumentedFunction: the offset is the first 8
// bytes of SHA-256("spread:" + id), big-endian, modulo the window, in
// whole seconds (known answers from the README's Python line); the same
// at every call; always within the window; none without a window.
func TestSpreadOffsetIsTheDocumentedFunction(t *testing.T) {
	t.Parallel()
	known := []struct {
		id     string
		window int
		want   time.Duration
	}{ // python3 -c 'import hashlib; print(int.from_bytes(hashlib.sha256(b"spread:" + ID).digest()[:8], "big") % WINDOW)'
		{"nightly", 60, 21 * time.Second}, {"poll-0042", 900, 501 * time.Second},
		{"a", 1, 0}, {"order/17", 600, 24 * time.Second},
	}
	for _, k := range known {
		if got := spreadOffset(k.id, k.window); got != k.want {
			t.Errorf("spreadOffset(%q, %d) = %s, want %s", k.id, k.window, got, k.want)
		}
	}
	for _, window := range []int{1, 2, 7, 60, 599, 900} {
		for i := range 2000 {
			id := fmt.Sprintf("timer-%d", i)
			got := spreadOffset(id, window)
			if want := spReference(id, window); got != want {
				t.Fatalf("spreadOffset(%q, %d) = %s, want %s", id, window, got, want)
			}
			if got < 0 || got >= time.Duration(window)*time.Second || got%time.Second != 0 {
				t.Fatalf("spreadOffset(%q, %d) = %s: not a whole second within the window", id, window, got)
			}
			if again := spreadOffset(id, window); again != got {
				t.Fatalf("spreadOffset(%q, %d) changed from %s to %s", id, window, got, again)
			}
		}
	}
	for _, window := range []int{0, -5} {
		if got := spreadOffset("x", window); got != 0 {
			t.Errorf("spreadOffset(x, %d) = %s, want 0", window, got)
		}
	}
}

// TestSpreadOffsetIsEven: many ids spread evenly over a window. For
// 60,000 ids in a window of 60 s, Pearson's chi-square over the 60
// seconds stays below 98.3 (59 degrees of freedom, p = 0.001), and for
// the README's example, 100 ids in 60 s, no 10 s sixth of the window gets
// more than twice its share. The ids are fixed, so the test is
// deterministic: it fails only if the function stops spreading.
func TestSpreadOffsetIsEven(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"timer-", "order/", "acme-prod-poll-"} {
		const window, n = 60, 60000
		counts := make([]int, window)
		for i := range n {
			counts[spreadOffset(fmt.Sprintf("%s%d", prefix, i), window)/time.Second]++
		}
		expect := float64(n) / window
		chi := 0.0
		for _, c := range counts {
			chi += (float64(c) - expect) * (float64(c) - expect) / expect
		}
		if chi > 98.3 {
			t.Errorf("ids %s0..%d over %d s: chi-square %.1f, above 98.3; counts %v", prefix, n-1, window, chi, counts)
		}
		sixths := make([]int, 6)
		for i := range 100 {
			sixths[spreadOffset(fmt.Sprintf("%s%d", prefix, i), window)/(10*time.Second)]++
		}
		if m := slices.Max(sixths); m > 2*100/6 {
			t.Errorf("100 ids %s0..99 over 60 s: %v per 10 s, one above twice its share", prefix, sixths)
		}
	}
}

// TestSpreadSecondsValidation: spreadSeconds is 1 to 900, refused
// otherwise by newTimer (the API's PUT and timers apply) with a 400
// naming it; left out, a timer has none.
func TestSpreadSecondsValidation(t *testing.T) {
	t.Parallel()
	opt := timerOptions{Now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Shards: 4, SecretPrefix: DefaultSecretPrefix}
	for _, tt := range []struct {
		spread *int
		want   int
		err    string
	}{
		{nil, 0, ""}, {ptrTo(1), 1, ""}, {ptrTo(60), 60, ""}, {ptrTo(900), 900, ""},
		{ptrTo(0), 0, "spreadSeconds must be from 1 to 900"},
		{ptrTo(901), 0, "spreadSeconds must be from 1 to 900"},
		{ptrTo(-1), 0, "spreadSeconds must be from 1 to 900"},
	} {
		in := putRequest{TimerCallbackData: json.RawMessage(`{}`), Schedule: "rate(5 minutes)", SpreadSeconds: tt.spread}
		tm, err := newTimer("spread-me", in, opt)
		switch {
		case tt.err != "":
			if ErrorCode(err) != EINVALID || err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("spreadSeconds %d: error %v, want %s %q", *tt.spread, err, EINVALID, tt.err)
			}
		case err != nil:
			t.Errorf("spreadSeconds %v: %v", tt.spread, err)
		case tm.SpreadSeconds != tt.want:
			t.Errorf("spreadSeconds %v: the timer has %d, want %d", tt.spread, tm.SpreadSeconds, tt.want)
		}
	}
	// The strict decoder knows the field, in its one spelling.
	var in putRequest
	if err := decodeBody(events.APIGatewayProxyRequest{Body: `{"timerCallbackData":{},"spreadSeconds":30}`}, &in); err != nil || in.SpreadSeconds == nil || *in.SpreadSeconds != 30 {
		t.Errorf("decode spreadSeconds: %v, %v", err, in.SpreadSeconds)
	}
	if err := decodeBody(events.APIGatewayProxyRequest{Body: `{"timerCallbackData":{},"SpreadSeconds":30}`}, &in); err == nil {
		t.Errorf("decode SpreadSeconds: accepted a field in another case")
	}
}

// TestSpreadStoredAndShown: the window is kept in the timer item and in
// every link and slot entry the timer writes (and in none of a timer
// without it), shown in the document, and each upcoming occurrence has
// its planned instant beside its nominal one.
func TestSpreadStoredAndShown(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	in := putRequest{TimerCallbackData: json.RawMessage(`{}`), Schedule: "cron(0 9 * * ? *)", SpreadSeconds: ptrTo(600)}
	tm, err := newTimer("nightly", in, timerOptions{Now: now, SecretPrefix: DefaultSecretPrefix})
	if err != nil {
		t.Fatal(err)
	}
	if back, err := fromItem(mustItem(t, tm)); err != nil || back.SpreadSeconds != 600 {
		t.Errorf("timer item round trip: spreadSeconds %v, %v; want 600", back, err)
	}
	if e := dueEntryOf(tm, now, now); e.Spread != 600 || e.timer().SpreadSeconds != 600 {
		t.Errorf("due entry: Spread %d, its timer %d; want 600", e.Spread, e.timer().SpreadSeconds)
	}
	plain := *tm
	plain.SpreadSeconds = 0
	item, err := slotItem(&plain, DueSlot{Period: 1440, Slot: 540}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := item["sp"]; ok {
		t.Errorf("a timer without spread writes sp in its slot entry: %v", item["sp"])
	}
	doc, err := json.Marshal(tm)
	if err != nil || !strings.Contains(string(doc), `"spreadSeconds":600`) {
		t.Errorf("document %s (%v): want spreadSeconds 600", doc, err)
	}
	list, err := upcomingOf(tm, 2)
	if err != nil {
		t.Fatal(err)
	}
	off := spreadOffset("nightly", 600)
	want := []Upcoming{
		{ScheduledAt: now, PlannedAt: ptrTo(now.Add(off)), Local: "2026-12-01T09:00:00Z"},
		{ScheduledAt: now.Add(24 * time.Hour), PlannedAt: ptrTo(now.Add(24*time.Hour + off)), Local: "2026-12-02T09:00:00Z"},
	}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("upcoming (-want +got):\n%s", diff)
	}
	if list, _ := upcomingOf(&plain, 1); list[0].PlannedAt != nil {
		t.Errorf("upcoming of a timer without spread has plannedAt %s", list[0].PlannedAt)
	}
	var out bytes.Buffer
	printTimerFields(&out, map[string]any{"id": "nightly", "spreadSeconds": float64(600)})
	wantLine := fmt.Sprintf("Spread:        within 600 s, each occurrence delivered %d s after its instant\n", int(off/time.Second))
	if !strings.Contains(out.String(), wantLine) {
		t.Errorf("printTimerFields:\n%s\nwant the line %q", out.String(), wantLine)
	}
	out.Reset()
	printTimerFields(&out, map[string]any{"id": "nightly"})
	if strings.Contains(out.String(), "Spread") {
		t.Errorf("printTimerFields shows a spread the timer does not have:\n%s", out.String())
	}
}

// mustItem is the timer item of tm, decoded as the store writes it.
func mustItem(t *testing.T, tm *Timer) map[string]dbtypes.AttributeValue {
	t.Helper()
	item, err := (&Store{}).timerItem(tm)
	if err != nil {
		t.Fatal(err)
	}
	return item
}

// TestSpreadMessage: a message of a timer without spread is the same
// bytes as before (a default timer pays nothing for the feature); a spread
// one carries its planned instant, and redelay exactly when that is more
// than SQS's 900 s from when it is built.
func TestSpreadMessage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	m := newFireMessage("plain", 2, at)
	spreadMessage(&m, 0, at.Add(-time.Hour))
	body, _ := marshalJSON(m)
	if want := `{"timerId":"plain","version":2,"scheduledAt":"2026-12-01T09:00:00Z"}`; string(body) != want {
		t.Errorf("message without spread %s, want %s", body, want)
	}
	id := spID(t, 900, func(o time.Duration) bool { return o >= 100*time.Second })
	off := spreadOffset(id, 900)
	for _, tt := range []struct {
		lead    time.Duration // from building the message to the planned instant
		redelay bool
	}{{900 * time.Second, false}, {900*time.Second + time.Millisecond, true}, {time.Second, false}, {-time.Minute, false}} {
		m := newFireMessage(id, 2, at)
		spreadMessage(&m, 900, at.Add(off).Add(-tt.lead))
		if !m.PlannedAt.Equal(at.Add(off)) || m.Redelay != tt.redelay || m.plannedAt() != m.PlannedAt {
			t.Errorf("lead %s: plannedAt %s redelay %v, want %s %v", tt.lead, m.PlannedAt, m.Redelay, at.Add(off), tt.redelay)
		}
	}
	if got := (&FireMessage{ScheduledAt: at}).plannedAt(); !got.Equal(at) {
		t.Errorf("plannedAt of a message without spread %s, want its instant %s", got, at)
	}
}

// spID is the first id "spread-<n>" whose offset in window satisfies ok.
func spID(t *testing.T, window int, ok func(time.Duration) bool) string {
	t.Helper()
	for i := range 100000 {
		if id := "spread-" + strconv.Itoa(i); ok(spreadOffset(id, window)) {
			return id
		}
	}
	t.Fatal("no such id")
	return ""
}

// TestSpreadAttempts: only the first receive of a message sent capped is
// held, and it is not counted as an attempt; a replay (a redriven dead
// letter, whose receive count starts again) is never held.
func TestSpreadAttempts(t *testing.T) {
	t.Parallel()
	rec := func(n int) events.SQSMessage {
		return events.SQSMessage{Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(n)}}
	}
	capped := &FireMessage{Redelay: true}
	replay := &FireMessage{Redelay: true, Replay: true}
	plain := &FireMessage{}
	for _, tt := range []struct {
		msg     *FireMessage
		receive int
		held    bool
		attempt int
	}{
		{capped, 1, true, 1}, {capped, 2, false, 1}, {capped, 3, false, 2},
		{replay, 1, false, 1}, {replay, 2, false, 2},
		{plain, 1, false, 1}, {plain, 2, false, 2},
	} {
		if got := redelays(tt.msg, rec(tt.receive)); got != tt.held {
			t.Errorf("%+v receive %d: held %v, want %v", *tt.msg, tt.receive, got, tt.held)
		}
		if got := spreadAttempt(tt.msg, rec(tt.receive)); got != tt.attempt {
			t.Errorf("%+v receive %d: attempt %d, want %d", *tt.msg, tt.receive, got, tt.attempt)
		}
	}
}

// TestSpreadTimerFiles: timers apply reads spreadSeconds from a timer
// file, refuses one out of range as the API does (newTimer), and plans a
// change of it alone as an update.
func TestSpreadTimerFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	none := func(string) (string, bool) { return "", false }
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	read := func(spread string) desiredTimer {
		t.Helper()
		f := write("t-"+spread+".json", `{"id":"nightly","schedule":"cron(0 9 * * ? *)","spreadSeconds":`+spread+`,"timerCallbackData":{}}`)
		d, err := readTimerFiles([]string{f}, "qa", none, now)
		if err != nil || len(d) != 1 {
			t.Fatalf("read spreadSeconds %s: %v", spread, err)
		}
		return d[0]
	}
	d60, d90 := read("60"), read("90")
	if d60.Doc["spreadSeconds"] != float64(60) {
		t.Errorf("the file's definition %v: want spreadSeconds 60", d60.Doc)
	}
	steps := computePlan(map[string]map[string]any{"nightly": d60.Doc}, []desiredTimer{d90})
	if len(steps) != 1 || steps[0].Action != planUpdate {
		t.Errorf("plan for a changed spreadSeconds %+v, want one update", steps)
	}
	f := write("bad.json", `{"id":"nightly","schedule":"cron(0 9 * * ? *)","spreadSeconds":901,"timerCallbackData":{}}`)
	if _, err := readTimerFiles([]string{f}, "qa", none, now); err == nil || !strings.Contains(err.Error(), "spreadSeconds must be from 1 to 900") {
		t.Errorf("a file with spreadSeconds 901: %v, want it refused naming spreadSeconds", err)
	}
}
