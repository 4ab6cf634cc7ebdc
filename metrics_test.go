package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestMetricsEmit checks the Embedded Metric Format record: the values at
// the top level, their definitions under _aws, and nothing for no values.
func TestMetricsEmit(t *testing.T) {
	var buf bytes.Buffer
	m := NewMetrics(&buf)
	m.Now = func() time.Time { return time.UnixMilli(1795341832918) }
	m.Emit("Part", "invoker", count("Delivered", 3), Metric{Name: "Lateness", Unit: "Milliseconds", Values: []float64{4, 7}},
		Metric{Name: "Empty", Unit: "Count"})
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON record: %q", buf.String())
	}
	want := map[string]any{
		"Part": "invoker", "Delivered": 3.0, "Lateness": []any{4.0, 7.0},
		"_aws": map[string]any{"Timestamp": 1795341832918.0, "CloudWatchMetrics": []any{map[string]any{
			"Namespace": "callclock", "Dimensions": []any{[]any{"Part"}},
			"Metrics": []any{map[string]any{"Name": "Delivered", "Unit": "Count"}, map[string]any{"Name": "Lateness", "Unit": "Milliseconds"}},
		}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	buf.Reset()
	m.Emit("Part", "x", Metric{Name: "Empty", Unit: "Count"})
	var nilMetrics *Metrics
	nilMetrics.Emit("Part", "x", count("A", 1))
	if buf.Len() != 0 {
		t.Errorf("a record with no values was written: %q", buf.String())
	}
}

// TestMetricsFromSweepAndInvoke checks that a sweep and an invoker batch
// each write one record with their counts.
func TestMetricsFromSweepAndInvoke(t *testing.T) {
	var buf bytes.Buffer
	e := newIGEnv(t, nil, igTimer("t-1", 1))
	e.inv.Metrics = NewMetrics(&buf)
	e.invoke(igRecord(t, "m-1", 1, FireMessage{TimerID: "t-1", Version: 1, ScheduledAt: igAt, CallbackData: []byte(`1`)}),
		igRecord(t, "m-2", 1, FireMessage{TimerID: "t-1", Version: 1, ScheduledAt: igAt, CallbackData: []byte(`1`)}))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("invoker metrics: %q", buf.String())
	}
	if rec["Part"] != "invoker" || rec["Delivered"] != 1.0 || rec["DuplicatesSuppressed"] != 1.0 {
		t.Errorf("invoker record %v, want 1 delivered and 1 duplicate suppressed", rec)
	}
}

// TestMetricsFromSweep checks the sweeper's record after a clean sweep.
func TestMetricsFromSweep(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	at := now.Add(30 * time.Second) // 12:01, a minute wholly within the look-ahead
	var entries []DueEntry
	for _, id := range []string{"a", "b"} {
		entries = append(entries, DueEntry{TimerID: id, At: at.Unix(), Version: 1, WrittenAt: now.Add(-time.Hour).Unix(),
			Expr: "cron(1 * * * ? *)", CatchUp: DefaultCatchUpSeconds})
	}
	store := newSwStore(10)
	store.link(entries...)
	sw := NewSweeper(store, &swQueue{}, swQueueURL)
	sw.Now, sw.Log, sw.Metrics = func() time.Time { return now }, slog.New(slog.NewJSONHandler(io.Discard, nil)), NewMetrics(&buf)
	sw.Sleep = swNoWait // the clock is fixed: the send window's wait would take real time for nothing
	if _, err := sw.Sweep(t.Context(), "ev-1"); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("sweeper metrics: %q", buf.String())
	}
	for k, want := range map[string]any{"Part": "sweeper", "SweepCompleted": 1.0, "Due": 2.0, "Enqueued": 2.0, "Missed": 0.0, "SweepFailures": 0.0} {
		if rec[k] != want {
			t.Errorf("%s = %v, want %v", k, rec[k], want)
		}
	}
}

// TestOpenMetrics checks --metrics: a file is appended to, not truncated,
// and off writes nowhere.
func TestOpenMetrics(t *testing.T) {
	path := t.TempDir() + "/m.jsonl"
	for i := range 2 {
		w, closeFile, err := openMetrics(path)
		if err != nil {
			t.Fatal(err)
		}
		NewMetrics(w).Emit("Part", "sweeper", count("Due", i))
		if err := closeFile(); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dues []any
	for _, rec := range logLines(t, string(data)) {
		dues = append(dues, rec["Due"])
	}
	if diff := cmp.Diff([]any{0.0, 1.0}, dues); diff != "" {
		t.Errorf("records after two opens (-want +got):\n%s", diff)
	}
	if w, _, err := openMetrics(metricsOff); err != nil || w != io.Discard {
		t.Errorf("openMetrics(off) = %v, %v; want io.Discard", w, err)
	}
}
