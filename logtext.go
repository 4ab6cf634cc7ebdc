package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// TextHandler is a slog.Handler for a person watching the local stack in a
// terminal: one line per record, with the local time to the millisecond,
// the level, the message, and then the attributes as key=value.
//
// It prints the same records, with the same values, as the JSON handler
// Lambda uses: a secret redacted before it is logged is redacted here too,
// and a value the JSON handler would marshal (a struct, a map) is marshalled
// the same way here rather than printed with fmt, which would show fields
// that `json:"-"` hides. What it changes is the presentation only:
//   - a number attribute whose key ends in Ms (durationMs, latenessMs) is
//     shown as a duration under the key without the suffix (duration=1.2s);
//   - a few top-level attributes that only tell records apart in a log
//     store (requestId, eventId, caller) are left out;
//   - control characters are escaped, so that a record is always one line
//     and a value cannot move the cursor or change the terminal's colours.
type TextHandler struct {
	w    io.Writer
	mu   *sync.Mutex // shared by the handlers WithAttrs and WithGroup derive
	opts TextOptions
	// group is the prefix of the open groups' names ("g.h."), pre the
	// attributes WithAttrs gave, already formatted, each with a leading
	// space.
	group, pre string
}

// TextOptions configure a TextHandler.
type TextOptions struct {
	// Level is the lowest level written. Default slog.LevelInfo.
	Level slog.Leveler
	// Color marks levels, keys and times with ANSI colours; only for a
	// terminal.
	Color bool
	// Location is the zone times are shown in. Default time.Local.
	Location *time.Location
}

// NewTextHandler returns a TextHandler writing to w.
func NewTextHandler(w io.Writer, opts TextOptions) *TextHandler {
	return &TextHandler{w: w, mu: &sync.Mutex{}, opts: opts}
}

// Enabled reports whether level is at least the handler's Level.
func (h *TextHandler) Enabled(_ context.Context, level slog.Level) bool {
	lowest := slog.LevelInfo
	if h.opts.Level != nil {
		lowest = h.opts.Level.Level()
	}
	return level >= lowest
}

// ANSI colours, used only when TextOptions.Color is set.
const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[1;31m"
)

// Handle writes r as one line, in one Write.
func (h *TextHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	if !r.Time.IsZero() {
		loc := h.opts.Location
		if loc == nil {
			loc = time.Local
		}
		h.paint(&b, ansiDim, r.Time.In(loc).Format("15:04:05.000"))
		b.WriteByte(' ')
	}
	level, colour := fmt.Sprintf("%-5s", r.Level.String()), ""
	switch {
	case r.Level >= slog.LevelError:
		colour = ansiRed
	case r.Level >= slog.LevelWarn:
		colour = ansiYellow
	case r.Level < slog.LevelInfo:
		colour = ansiDim
	}
	h.paint(&b, colour, level)
	b.WriteByte(' ')
	msg := escapeControl(r.Message)
	if r.Level >= slog.LevelWarn {
		h.paint(&b, colour, msg) // what went wrong stands out, not only its level
	} else {
		b.WriteString(msg)
	}
	b.WriteString(h.pre)
	r.Attrs(func(a slog.Attr) bool {
		h.appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// WithAttrs returns a handler that writes attrs, under the open groups,
// on every record.
func (h *TextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	var b strings.Builder
	for _, a := range attrs {
		h.appendAttr(&b, h.group, a)
	}
	h2 := *h
	h2.pre += b.String()
	return &h2
}

// WithGroup returns a handler that writes the attributes that follow under
// name, as name.key=value.
func (h *TextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group += name + "."
	return &h2
}

// paint writes s, in colour when the handler has colours and colour is set.
func (h *TextHandler) paint(b *strings.Builder, colour, s string) {
	if h.opts.Color && colour != "" {
		b.WriteString(colour + s + ansiReset)
		return
	}
	b.WriteString(s)
}

// appendAttr writes a as " key=value", a group as its attributes under
// its name, following slog's rules: an empty attribute and an empty group
// are left out, a group without a key is inlined.
func (h *TextHandler) appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			group += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			h.appendAttr(b, group, ga)
		}
		return
	}
	if group == "" && textQuietKey(a.Key) {
		return
	}
	key, value := a.Key, textValue(a.Value)
	if d, ok := millisDuration(key, a.Value); ok {
		key, value = strings.TrimSuffix(key, "Ms"), d.String()
	}
	b.WriteByte(' ')
	h.paint(b, ansiDim, escapeControl(group+key)+"=")
	b.WriteString(quoteIfNeeded(value))
}

// textQuietKey reports whether a top-level attribute is left out of the
// text log: ids that tell records apart in a log store, and the local
// stack's one caller, but that a person reading along does not need.
func textQuietKey(key string) bool {
	switch key {
	case "requestId", "eventId", "caller":
		return true
	}
	return false
}

// millisDuration is a number of milliseconds under a key ending in Ms
// (durationMs, latenessMs, latencyMs) as a duration.
func millisDuration(key string, v slog.Value) (time.Duration, bool) {
	if len(key) <= 2 || !strings.HasSuffix(key, "Ms") {
		return 0, false
	}
	switch v.Kind() {
	case slog.KindInt64:
		return time.Duration(v.Int64()) * time.Millisecond, true
	case slog.KindUint64:
		return time.Duration(v.Uint64()) * time.Millisecond, true
	case slog.KindFloat64:
		return time.Duration(v.Float64() * float64(time.Millisecond)), true
	}
	return 0, false
}

// textValue is v as text. A value of kind Any is what the JSON handler
// writes for it: an error's text, anything else marshalled as JSON.
func textValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindDuration:
		return v.Duration().String()
	case slog.KindAny:
		a := v.Any()
		_, marshals := a.(json.Marshaler)
		if err, ok := a.(error); ok && !marshals {
			return err.Error()
		}
		out, err := json.Marshal(a)
		if err != nil {
			return "!ERROR:" + err.Error()
		}
		return string(out)
	}
	return v.String() // numbers and booleans, as strconv writes them
}

// quoteIfNeeded quotes s (Go syntax) when it is empty, holds a space or a
// character that is not printable, or starts with a quote, so that every
// value is one token on one line.
func quoteIfNeeded(s string) string {
	if s == "" || s[0] == '"' {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// escapeControl writes control characters (newlines, escape sequences) of
// s as Go escapes, so that s stays on its line and cannot drive the
// terminal.
func escapeControl(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Log formats a command takes with --log.
const (
	logText = "text"
	logJSON = "json"
	logAuto = "auto"
)

// cliLogger is the logger for --log format on stderr: text for a person,
// jsonLog (main's JSON logger, the format Lambda writes) for json, and for
// auto, text when stderr is a terminal and JSON otherwise (a file, a pipe,
// a log collector), as on Lambda.
func cliLogger(format string, stderr io.Writer, jsonLog *slog.Logger) (*slog.Logger, error) {
	switch format {
	case logJSON:
		return jsonLog, nil
	case logAuto:
		if !isTerminal(stderr) {
			return jsonLog, nil
		}
	case logText:
	default:
		return nil, fmt.Errorf("--log must be text, json or auto, not %q", format)
	}
	return slog.New(NewTextHandler(stderr, TextOptions{Color: wantColour(stderr)})), nil
}

// isTerminal reports whether w is a terminal (a character device), found
// without a dependency.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// wantColour reports whether the text log on w is coloured: on a terminal
// that is not "dumb", unless NO_COLOR is set (https://no-color.org).
func wantColour(w io.Writer) bool {
	return isTerminal(w) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// logFormat is the value of --log: text, json or auto.
type logFormat string

// String is the format's name, as -h shows the default.
func (f *logFormat) String() string { return string(*f) }

// Set accepts text, json and auto only, so that the flag package reports
// anything else as a usage error.
func (f *logFormat) Set(s string) error {
	switch s {
	case logText, logJSON, logAuto:
		*f = logFormat(s)
		return nil
	}
	return errors.New("must be text, json or auto")
}

// outputFlags are the flags `bootstrap local` and `bootstrap invoke`
// share: --log, the log's format, and --metrics, where the metric records
// go.
type outputFlags struct {
	log     logFormat
	metrics *string
}

// addOutputFlags defines --log and --metrics on fs.
func addOutputFlags(fs *flag.FlagSet) *outputFlags {
	o := &outputFlags{log: logAuto}
	fs.Var(&o.log, "log", "the log's `format` on stderr: text (for a person), json (as on Lambda), or auto: text on a terminal, json otherwise")
	o.metrics = fs.String("metrics", defaultMetricsFile,
		"the `FILE` the metric records (CloudWatch Embedded Metric Format, one JSON line each) are appended to, or off")
	return o
}

// cliOutput is where a command's log and metric records go.
type cliOutput struct {
	Log *slog.Logger
	// Metrics receives the metric records; io.Discard when they are off.
	Metrics io.Writer
	// MetricsTo names, for the log, where they go: the file's absolute
	// path, or off.
	MetricsTo string
	// Close closes the metrics file.
	Close func() error
}

// open returns the logger and the metrics writer the flags ask for, the
// log on stderr unless it is json: then jsonLog, main's JSON logger.
func (o *outputFlags) open(stderr io.Writer, jsonLog *slog.Logger) (*cliOutput, error) {
	log, err := cliLogger(string(o.log), stderr, jsonLog)
	if err != nil {
		return nil, err
	}
	metrics, closer, err := openMetrics(*o.metrics)
	if err != nil {
		return nil, err
	}
	to := *o.metrics
	if abs, err := filepath.Abs(to); err == nil && to != metricsOff {
		to = abs
	}
	return &cliOutput{Log: log, Metrics: metrics, MetricsTo: to, Close: closer}, nil
}
