package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Metrics writes CloudWatch Embedded Metric Format records: JSON lines on
// the function's output that CloudWatch Logs turns into metrics, with no
// API call and no extra dependency. A nil *Metrics writes nothing.
type Metrics struct {
	// W receives one JSON line per record; on Lambda, standard output.
	W io.Writer
	// Namespace is the CloudWatch namespace. Default "callclock".
	Namespace string
	// Now stamps records. Default time.Now.
	Now func() time.Time

	mu sync.Mutex
}

// NewMetrics returns Metrics writing to w in the callclock namespace.
func NewMetrics(w io.Writer) *Metrics { return &Metrics{W: w, Namespace: "callclock", Now: time.Now} }

// Metric is one named value, or several (a distribution, such as the
// lateness of each delivery in a batch), with its CloudWatch unit.
type Metric struct {
	Name   string
	Unit   string // Count, Milliseconds, ...
	Values []float64
}

// Emit writes one record of metrics under a single dimension, such as
// Part=sweeper. Metrics with no values are left out.
func (m *Metrics) Emit(dimension, value string, metrics ...Metric) {
	if m == nil || m.W == nil {
		return
	}
	type def struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	rec := map[string]any{dimension: value}
	var defs []def
	for _, mt := range metrics {
		switch len(mt.Values) {
		case 0:
			continue
		case 1:
			rec[mt.Name] = mt.Values[0]
		default:
			rec[mt.Name] = mt.Values
		}
		defs = append(defs, def{mt.Name, mt.Unit})
	}
	if len(defs) == 0 {
		return
	}
	sort.Slice(defs, func(i, j int) bool { return defs[i].Name < defs[j].Name })
	ns, now := m.Namespace, time.Now
	if ns == "" {
		ns = "callclock"
	}
	if m.Now != nil {
		now = m.Now
	}
	rec["_aws"] = map[string]any{
		"Timestamp": now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace": ns, "Dimensions": [][]string{{dimension}}, "Metrics": defs,
		}},
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.W.Write(append(line, '\n'))
}

// count is a one-value Count metric.
func count(name string, n int) Metric {
	return Metric{Name: name, Unit: "Count", Values: []float64{float64(n)}}
}

// Where `bootstrap local` and `bootstrap invoke` send their metric
// records (--metrics): off Lambda no CloudWatch reads standard output, and
// interleaved with the log they only bury it.
const (
	// defaultMetricsFile, in the working directory, is appended to: one
	// JSON line per record, as CloudWatch would read them.
	defaultMetricsFile = ".callclock-metrics.jsonl"
	// metricsOff writes no metric records.
	metricsOff = "off"
)

// openMetrics opens where --metrics path sends the metric records: the
// file path, appended to and created if missing, or nothing for "off".
// The returned func closes the file.
func openMetrics(path string) (io.Writer, func() error, error) {
	if path == metricsOff {
		return io.Discard, func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics: %w", err)
	}
	return f, f.Close, nil
}
