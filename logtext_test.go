package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// textAt is the instant the text handler tests log at.
var textAt = time.Date(2026, 11, 22, 9, 14, 0, 4_500_000, time.UTC)

// textLine logs one record at textAt through a TextHandler (in UTC, with
// or without colours) after prepare, and returns what it wrote.
func textLine(t *testing.T, colour bool, prepare func(*slog.Logger) *slog.Logger, level slog.Level, msg string, args ...any) string {
	t.Helper()
	var buf bytes.Buffer
	h := NewTextHandler(&buf, TextOptions{Color: colour, Location: time.UTC, Level: slog.LevelDebug})
	log := slog.New(h)
	if prepare != nil {
		log = prepare(log)
	}
	r := slog.NewRecord(textAt, level, msg, 0)
	r.Add(args...)
	if err := log.Handler().Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

type textSecretHolder struct {
	Name   string `json:"name"`
	Secret string `json:"-"`
}

type textRedacted struct{ value string }

func (textRedacted) LogValue() slog.Value { return slog.StringValue("aws-secret(/x)") }

// TestTextHandlerFormat checks the text log's lines: the time, the level,
// the message, the attributes as key=value, quoted when they must be,
// durations from the Ms keys, groups and With attributes, one line whatever
// a value holds.
func TestTextHandlerFormat(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(*slog.Logger) *slog.Logger
		level   slog.Level
		msg     string
		args    []any
		want    string
	}{
		{"plain", nil, slog.LevelInfo, "api request", []any{"method", "PUT", "path", "/periodic/fee5f544", "status", 201},
			"09:14:00.004 INFO  api request method=PUT path=/periodic/fee5f544 status=201\n"},
		{"spaces and quotes quoted", nil, slog.LevelInfo, "callback message", []any{"body", `{"hello": "world"}`, "empty", "", "q", `"x`},
			`09:14:00.004 INFO  callback message body="{\"hello\": \"world\"}" empty="" q="\"x"` + "\n"},
		{"JSON without spaces as it is", nil, slog.LevelInfo, "m", []any{"body", `{"hello":"world"}`},
			`09:14:00.004 INFO  m body={"hello":"world"}` + "\n"},
		{"multi-line values on one line", nil, slog.LevelError, "sweep\nfailed", []any{"error", "line 1\nline 2\r\n\ttab"},
			`09:14:00.004 ERROR sweep\nfailed error="line 1\nline 2\r\n\ttab"` + "\n"},
		{"escape sequences escaped", nil, slog.LevelInfo, "m\x1b[31m", []any{"k\x1b", "v\x1b[2J"},
			`09:14:00.004 INFO  m\x1b[31m k\x1b="v\x1b[2J"` + "\n"},
		{"milliseconds as durations", nil, slog.LevelInfo, "delivered", []any{"latenessMs", 12, "durationMs", int64(1234), "latencyMs", 2.5, "Ms", 3, "countMs", "x"},
			"09:14:00.004 INFO  delivered lateness=12ms duration=1.234s latency=2.5ms Ms=3 countMs=x\n"},
		{"durations, times, booleans, floats", nil, slog.LevelWarn, "delivery failed; will retry", []any{"every", 90 * time.Second, "at", textAt, "ok", false, "f", 0.25},
			"09:14:00.004 WARN  delivery failed; will retry every=1m30s at=2026-11-22T09:14:00.0045Z ok=false f=0.25\n"},
		{"ids for a log store left out at the top level", nil, slog.LevelInfo, "sweep", []any{"eventId", "e-1", "requestId", "r-1", "caller", "arn", "due", 3, slog.Group("g", "eventId", "kept")},
			"09:14:00.004 INFO  sweep due=3 g.eventId=kept\n"},
		{"groups", nil, slog.LevelInfo, "m", []any{slog.Group("a", "b", 1, slog.Group("c", "d", 2)), slog.Group("empty"), slog.Group("", "inline", 3)},
			"09:14:00.004 INFO  m a.b=1 a.c.d=2 inline=3\n"},
		{"With and WithGroup", func(l *slog.Logger) *slog.Logger {
			return l.With("part", "invoker").WithGroup("req").With("id", 7).WithGroup("x")
		},
			slog.LevelDebug, "m", []any{"k", "v"}, "09:14:00.004 DEBUG m part=invoker req.id=7 req.x.k=v\n"},
		{"a group opened with nothing in it", func(l *slog.Logger) *slog.Logger { return l.WithGroup("g") }, slog.LevelInfo, "m", nil,
			"09:14:00.004 INFO  m\n"},
		{"errors as their text", nil, slog.LevelError, "claim failed", []any{"error", errors.New("moto: 500 Internal Server Error")},
			`09:14:00.004 ERROR claim failed error="moto: 500 Internal Server Error"` + "\n"},
		{"values as the JSON handler marshals them", nil, slog.LevelInfo, "m", []any{"holder", textSecretHolder{Name: "n", Secret: "s3cr3t"}, "list", []int{1, 2}},
			`09:14:00.004 INFO  m holder={"name":"n"} list=[1,2]` + "\n"},
		{"LogValuers resolved", nil, slog.LevelInfo, "m", []any{"header", textRedacted{"s3cr3t"}},
			"09:14:00.004 INFO  m header=aws-secret(/x)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := textLine(t, false, tc.prepare, tc.level, tc.msg, tc.args...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestTextHandlerColour checks the colours: a warning's and an error's
// level and message stand out, keys and times are dim, and nothing is
// coloured without the option.
func TestTextHandlerColour(t *testing.T) {
	got := textLine(t, true, nil, slog.LevelError, "sweep failed", "error", "x")
	want := "\x1b[2m09:14:00.004\x1b[0m \x1b[1;31mERROR\x1b[0m \x1b[1;31msweep failed\x1b[0m \x1b[2merror=\x1b[0mx\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error line (-want +got):\n%s", diff)
	}
	got = textLine(t, true, nil, slog.LevelWarn, "occurrence missed")
	if want := "\x1b[2m09:14:00.004\x1b[0m \x1b[33mWARN \x1b[0m \x1b[33moccurrence missed\x1b[0m\n"; got != want {
		t.Errorf("warning line = %q, want %q", got, want)
	}
	got = textLine(t, true, nil, slog.LevelInfo, "delivered", "status", 200)
	if want := "\x1b[2m09:14:00.004\x1b[0m INFO  delivered \x1b[2mstatus=\x1b[0m200\n"; got != want {
		t.Errorf("info line = %q, want %q", got, want)
	}
	if got := textLine(t, false, nil, slog.LevelError, "sweep failed"); strings.Contains(got, "\x1b") {
		t.Errorf("colours without the option: %q", got)
	}
}

// TestTextHandlerLevel checks that records below the level are not written.
func TestTextHandlerLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewTextHandler(&buf, TextOptions{}))
	log.Debug("hidden")
	log.Info("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "INFO  shown") {
		t.Errorf("default level wrote %q; want the info line only", got)
	}
}

// textLineRE parses a line of the text log without colours: the time (if
// any), the level, the message, then the attributes.
var (
	textLineRE = regexp.MustCompile(`^(?:(\d\d:\d\d:\d\d\.\d{3}) )?(DEBUG|INFO|WARN|ERROR)\s+(.*?)((?: [^ =]*=(?:"(?:[^"\\]|\\.)*"|[^ ]*))*)$`)
	textAttrRE = regexp.MustCompile(` ([^ =]*)=("(?:[^"\\]|\\.)*"|[^ ]*)`)
)

// parseTextLine is a line as slogtest wants it: a map of the time, level,
// message and attributes, groups (a.b=) as nested maps.
func parseTextLine(line string) (map[string]any, error) {
	m := textLineRE.FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("not a text log line: %q", line)
	}
	rec := map[string]any{slog.LevelKey: m[2], slog.MessageKey: m[3]}
	if m[1] != "" {
		rec[slog.TimeKey] = m[1]
	}
	for _, a := range textAttrRE.FindAllStringSubmatch(m[4], -1) {
		v := a[2]
		if strings.HasPrefix(v, `"`) {
			var err error
			if v, err = strconv.Unquote(v); err != nil {
				return nil, err
			}
		}
		path := strings.Split(a[1], ".")
		into := rec
		for _, g := range path[:len(path)-1] {
			sub, _ := into[g].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
				into[g] = sub
			}
			into = sub
		}
		into[path[len(path)-1]] = v
	}
	return rec, nil
}

// TestTextHandlerSlogtest holds the handler to log/slog's own rules for
// handlers (testing/slogtest): empty attributes and groups left out,
// inline groups, WithGroup and WithAttrs in any order, LogValuers
// resolved, no time for a zero time.
func TestTextHandlerSlogtest(t *testing.T) {
	var buf bytes.Buffer
	h := NewTextHandler(&buf, TextOptions{})
	results := func() []map[string]any {
		var recs []map[string]any
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			rec, err := parseTextLine(line)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		return recs
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Error(err)
	}
}

// TestTextHandlerConcurrent logs from many goroutines through loggers
// derived with With and WithGroup, which share the handler's writer: each
// record must come out whole, on a line of its own (run with -race).
func TestTextHandlerConcurrent(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(NewTextHandler(&buf, TextOptions{}))
	const goroutines, each = 8, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := base.With("g", g).WithGroup("w")
			for i := range each {
				log.Info("delivered", "i", i, "body", strings.Repeat("x", 200))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != goroutines*each {
		t.Fatalf("%d lines, want %d", len(lines), goroutines*each)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		rec, err := parseTextLine(line)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := rec["w"].(map[string]any)
		if rec[slog.MessageKey] != "delivered" || w == nil || len(w["body"].(string)) != 200 {
			t.Fatalf("torn line: %q", line)
		}
		seen[fmt.Sprint(rec["g"], "/", w["i"])] = true
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d distinct records, want %d", len(seen), goroutines*each)
	}
}

// TestTextHandlerPrintsNothingNew logs the records of the local stack
// (delivery lines with secrets already redacted, a callback message, an
// error) through both handlers, and checks that every value of the text
// line is one the JSON line has, under the same key (or its Ms key): the
// text log shows no more than the JSON log, so it leaks no more.
func TestTextHandlerPrintsNothingNew(t *testing.T) {
	records := []struct {
		msg  string
		args []any
	}{
		{"delivered", []any{"timerId", "demo-http", "scheduledAt", "2026-11-22T09:14:00Z", "attempt", 1, "latenessMs", 4, "durationMs", 2, "status", 200}},
		{"delivery failed; will retry", []any{"timerId", "t", "error", "GET http://127.0.0.1:9000/: header Authorization: Bearer aws-secret(/callclock/demo/token)"}},
		{"callback message", []any{"messageId", "m-1", "body", `{"hello":"world"}`, "IdempotencyKey", "t/2026-11-22T09:14:00Z"}},
		{"api request", []any{"method", "GET", "path", "/periodic/x", "status", 404, "requestId", "r", "caller", "arn:aws:iam::123456789012:user/local"}},
		{"struct", []any{"holder", textSecretHolder{Name: "n", Secret: "s3cr3t"}, "header", textRedacted{"s3cr3t"}}},
	}
	for _, rec := range records {
		var jbuf, tbuf bytes.Buffer
		slog.New(slog.NewJSONHandler(&jbuf, nil)).Info(rec.msg, rec.args...)
		slog.New(NewTextHandler(&tbuf, TextOptions{})).Info(rec.msg, rec.args...)
		var js map[string]any
		if err := json.Unmarshal(jbuf.Bytes(), &js); err != nil {
			t.Fatal(err)
		}
		text, err := parseTextLine(strings.TrimSuffix(tbuf.String(), "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(tbuf.String(), "s3cr3t") {
			t.Errorf("%s: the text line shows the secret: %s", rec.msg, tbuf.String())
		}
		for k, v := range text {
			if k == slog.TimeKey || k == slog.LevelKey {
				continue
			}
			jv, ok := js[k]
			if !ok {
				jv, ok = js[k+"Ms"]
				if d, err := time.ParseDuration(v.(string)); err == nil && ok {
					v = strconv.FormatInt(d.Milliseconds(), 10)
				}
			}
			jtext := fmt.Sprint(jv)
			if m, isObj := jv.(map[string]any); isObj {
				out, _ := json.Marshal(m)
				jtext = string(out)
			}
			if !ok || jtext != v {
				t.Errorf("%s: the text line has %s=%v, the JSON line %v (present: %v)", rec.msg, k, v, jv, ok)
			}
		}
	}
}

// TestCLILogger checks --log: text and json as asked, auto by what stderr
// is, and a clear error for anything else.
func TestCLILogger(t *testing.T) {
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	file, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	// /dev/null is a character device, as a terminal is: what isTerminal
	// looks at.
	dev, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	tests := []struct {
		format string
		stderr io.Writer
		text   bool
	}{
		{"json", dev, false},
		{"text", &bytes.Buffer{}, true},
		{"text", file, true},
		{"auto", &bytes.Buffer{}, false},
		{"auto", file, false},
		{"auto", dev, true},
	}
	for _, tc := range tests {
		log, err := cliLogger(tc.format, tc.stderr, jsonLog)
		if err != nil {
			t.Fatalf("cliLogger(%q): %v", tc.format, err)
		}
		_, isText := log.Handler().(*TextHandler)
		if isText != tc.text || (!isText && log != jsonLog) {
			t.Errorf("cliLogger(%q, %T) is text %v, want %v", tc.format, tc.stderr, isText, tc.text)
		}
	}
	if _, err := cliLogger("yaml", file, jsonLog); err == nil || !strings.Contains(err.Error(), "--log must be text, json or auto") {
		t.Errorf("cliLogger(yaml) = %v; want the formats named", err)
	}
	t.Setenv("NO_COLOR", "1")
	if wantColour(dev) {
		t.Error("colours with NO_COLOR set")
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	if !wantColour(dev) || wantColour(file) {
		t.Errorf("colours: on a character device %v (want true), on a file %v (want false)", wantColour(dev), wantColour(file))
	}
}

// localOutputEnv sets the environment `bootstrap local` and `bootstrap
// invoke` read, for moto_server at endpoint.
func localOutputEnv(t *testing.T, endpoint string) {
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": testCreds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": testCreds.SecretAccessKey, "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_EC2_METADATA_DISABLED": "true", "TABLE_NAME": "", "FIRE_QUEUE_URL": "", "CALLBACK_QUEUE_URL": "", "FIRE_DLQ_URL": "",
	} {
		t.Setenv(k, v)
	}
}

// runLocalUntil runs `bootstrap local` with args until it has logged
// ready and the log holds every one of wants (from a line after ready),
// with do run once it is ready; it returns the exit code.
func runLocalUntil(t *testing.T, args []string, stderr *syncBuffer, jsonLog *slog.Logger, logged func() string, do func(api string), wants ...string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- runLocal(ctx, append([]string{"--addr", "127.0.0.1:0", "--sweep-every", "1s"}, args...), stderr, jsonLog)
	}()
	apiRE := regexp.MustCompile(`(?:api=|"api":")(http://[0-9.:]+)`)
	waitFor(t, "callclock local stack ready", time.Minute, func() bool { return apiRE.MatchString(logged()) })
	do(apiRE.FindStringSubmatch(logged())[1])
	waitFor(t, fmt.Sprintf("the log to show %q", wants), time.Minute, func() bool {
		for _, w := range wants {
			if !strings.Contains(logged(), w) {
				return false
			}
		}
		return true
	})
	cancel()
	select {
	case c := <-code:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("bootstrap local did not stop")
		return -1
	}
}

// TestIntegrationLocalLogAndMetrics runs `bootstrap local` against
// moto_server as `make run` does, with a callback timer that fires at once:
// with --log text, its log on stderr is text lines only, the ready line
// says where the metric records go, and they (the sweeper's and the
// invoker's) are in that file and not in the log; with --log json and
// --metrics off, the log is JSON lines, without a metric record either.
func TestIntegrationLocalLogAndMetrics(t *testing.T) {
	localOutputEnv(t, needMoto(t))
	metricsFile := t.TempDir() + "/metrics.jsonl"
	fire := func(api string) {
		id := fmt.Sprintf("logs-%d", time.Now().UnixNano())
		if code, body := signedDo(t, testCreds, "PUT", api+"/periodic/"+id, `{"schedule":"rate(1 hour)","timerCallbackData":{"hello":"log"}}`); code != 201 {
			t.Fatalf("PUT %s = %d %s", id, code, body)
		}
	}
	var stderr syncBuffer
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if code := runLocalUntil(t, []string{"--log", "text", "--metrics", metricsFile}, &stderr, jsonLog, stderr.String, fire,
		"INFO  delivered", "INFO  callback message"); code != 0 {
		t.Fatalf("bootstrap local = exit %d\n%s", code, stderr.String())
	}
	var ready bool
	for _, line := range strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n") {
		rec, err := parseTextLine(line)
		if err != nil || strings.Contains(line, "_aws") {
			t.Fatalf("not a text log line (%v): %q", err, line)
		}
		if rec[slog.MessageKey] == "callclock local stack ready" {
			ready = rec["metrics"] == metricsFile
		}
	}
	if !ready {
		t.Errorf("no ready line with metrics=%s:\n%s", metricsFile, stderr.String())
	}
	data, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]bool{}
	for _, rec := range logLines(t, string(data)) {
		if _, ok := rec["_aws"]; !ok {
			t.Errorf("not a metric record in %s: %v", metricsFile, rec)
		}
		parts[fmt.Sprint(rec["Part"])] = true
	}
	if diff := cmp.Diff(map[string]bool{"sweeper": true, "invoker": true}, parts); diff != "" {
		t.Errorf("the metric records' parts (-want +got):\n%s", diff)
	}

	var stderr2, logs syncBuffer
	jsonLog = slog.New(slog.NewJSONHandler(&logs, nil))
	if code := runLocalUntil(t, []string{"--log", "json", "--metrics", "off"}, &stderr2, jsonLog, logs.String, fire,
		`"msg":"delivered"`); code != 0 {
		t.Fatalf("bootstrap local = exit %d\n%s", code, stderr2.String())
	}
	lines := logs.Lines(t)
	if lines[0]["msg"] != "callclock local stack ready" || lines[0]["metrics"] != "off" {
		t.Errorf("ready line %v; want metrics off", lines[0])
	}
	for _, rec := range lines {
		if _, ok := rec["_aws"]; ok {
			t.Errorf("a metric record in the log: %v", rec)
		}
	}
	if stderr2.String() != "" {
		t.Errorf("stderr besides the JSON log: %q", stderr2.String())
	}
}

// TestIntegrationInvokeMetrics checks that `bootstrap invoke` appends its
// metric records to the --metrics file, as `bootstrap local` does, and that
// neither its stdout nor its stderr carries one.
func TestIntegrationInvokeMetrics(t *testing.T) {
	endpoint := needMoto(t)
	localOutputEnv(t, endpoint)
	if _, err := provision(context.Background(), motoClients(t, endpoint), DefaultStackNames, deployedQueues()); err != nil {
		t.Fatal(err)
	}
	metricsFile := t.TempDir() + "/metrics.jsonl"
	for range 2 {
		code, stdout, stderr := runCLI([]string{"invoke", "-e", "events/scheduled.json", "--metrics", metricsFile}, "")
		if code != 0 || !strings.HasPrefix(stdout, `{"minutes":`) || strings.Contains(stdout+stderr, "_aws") {
			t.Fatalf("bootstrap invoke = exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
		}
	}
	data, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	recs := logLines(t, string(data))
	if len(recs) != 2 || recs[0]["Part"] != "sweeper" || recs[1]["_aws"] == nil {
		t.Errorf("metric records %v; want the two sweeps', appended", recs)
	}
	if code, _, stderr := runCLI([]string{"invoke", "--log", "yaml"}, ""); code != 2 || !strings.Contains(stderr, "must be text, json or auto") {
		t.Errorf("--log yaml = exit %d, %q; want exit 2 and the formats", code, stderr)
	}
	if code, _, stderr := runCLI([]string{"invoke", "-e", "events/scheduled.json", "--metrics", t.TempDir() + "/no/such/dir/m"}, ""); code != 1 || !strings.Contains(stderr, "--metrics: open") {
		t.Errorf("--metrics in a missing directory = exit %d, %q; want exit 1 and the reason", code, stderr)
	}
}
