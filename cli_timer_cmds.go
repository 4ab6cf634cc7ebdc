package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The timers commands on one timer or the list: get, describe, list,
// history, put, delete, fire, pause and resume, each a thin layer over one
// or a few API calls, with human output by default, the API's JSON with
// -o json, and the exit codes of apiclient.go.

// defaultEndpoint is the local stack's API (`make run`), the endpoint when
// neither --endpoint nor CALLCLOCK_ENDPOINT names one.
const defaultEndpoint = "http://127.0.0.1:8080"

// timerCmd is one command's flags and its client, set up by parse.
type timerCmd struct {
	name     string
	fs       *flag.FlagSet
	endpoint *string
	output   *string
	stderr   io.Writer
	lookup   func(string) (string, bool)
}

// newTimerCmd is a command named name with --endpoint and -o.
func newTimerCmd(name, synopsis string, stderr io.Writer) *timerCmd {
	return newCommand(name, synopsis, stderr, true)
}

// newCommand is a command named name with --endpoint, and -o when
// withOutput (apply prints its plan, in text only).
func newCommand(name, synopsis string, stderr io.Writer, withOutput bool) *timerCmd {
	flags := " [--endpoint URL]"
	if withOutput {
		flags += " [-o text|json]"
	}
	fs := newFlagSet("timers "+name, "timers "+synopsis+flags, stderr)
	c := &timerCmd{
		name:     name,
		fs:       fs,
		endpoint: fs.String("endpoint", "", "the API's `URL` (default $CALLCLOCK_ENDPOINT, else the local stack's "+defaultEndpoint+")"),
		output:   new(string),
		stderr:   stderr,
		lookup:   os.LookupEnv,
	}
	*c.output = "text"
	if withOutput {
		c.output = fs.String("o", "text", "output `format`: text or json")
	}
	return c
}

// usage reports a usage error with the command's flags and returns its
// exit code.
func (c *timerCmd) usage(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "bootstrap timers %s: %s\n", c.name, fmt.Sprintf(format, args...))
	c.fs.Usage()
	return exitUsage
}

// parse parses args (flags may follow the positional arguments), wants
// exactly npos positional arguments (any number if npos < 0), and
// resolves the endpoint. It
// returns the positional arguments, or the exit code to stop with (-1 to
// go on).
func (c *timerCmd) parse(args []string, npos int) ([]string, int) {
	pos, err := parseInterspersed(c.fs, args)
	switch {
	case err == flag.ErrHelp:
		return nil, exitOK
	case err != nil:
		return nil, exitUsage
	case npos >= 0 && len(pos) != npos:
		return nil, c.usage("want %d argument(s), got %d", npos, len(pos))
	case *c.output != "text" && *c.output != "json":
		fmt.Fprintf(c.stderr, "bootstrap timers %s: -o is text or json, not %q\n", c.name, *c.output)
		return nil, exitUsage
	}
	return pos, c.resolveEndpoint()
}

// resolveEndpoint applies the endpoint rule: the flag, else
// CALLCLOCK_ENDPOINT, else the local stack. It returns an exit code or -1.
func (c *timerCmd) resolveEndpoint() int {
	if *c.endpoint == "" {
		*c.endpoint = defaultEndpoint
		if v, ok := c.lookup("CALLCLOCK_ENDPOINT"); ok && v != "" {
			*c.endpoint = v
		}
	}
	if u, err := url.Parse(*c.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(c.stderr, "bootstrap timers %s: endpoint %q is not an absolute http or https URL\n", c.name, *c.endpoint)
		return exitUsage
	}
	return -1
}

// call makes one API request, reporting a failure on stderr; code is -1
// on success, else the exit code.
func (c *timerCmd) call(ctx context.Context, method, path string, query url.Values, body []byte) (b []byte, code int) {
	cl, err := newAPIClient(ctx, *c.endpoint)
	if err != nil {
		return nil, c.fail(err)
	}
	b, err = cl.do(ctx, method, path, query, body)
	if err != nil {
		return nil, c.fail(err)
	}
	return b, -1
}

// fail writes err with what to do about it and returns its exit code.
func (c *timerCmd) fail(err error) int {
	fmt.Fprintf(c.stderr, "bootstrap timers %s: %v\n", c.name, err)
	if hint := errorHint(err, *c.endpoint); hint != "" {
		fmt.Fprintf(c.stderr, "  %s\n", hint)
	}
	return exitCodeOf(err)
}

// errorHint says what to do about the failures users hit most: the local
// stack not started, or called with other credentials than it expects.
func errorHint(err error, endpoint string) string {
	local := isLocalEndpoint(endpoint)
	var ae *timersAPIError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) && strings.TrimRight(endpoint, "/") == defaultEndpoint:
		return "nothing answers at the local stack's " + defaultEndpoint + ": start it with `make run`, or name another API with --endpoint or CALLCLOCK_ENDPOINT"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing answers at " + endpoint + ": check --endpoint or CALLCLOCK_ENDPOINT"
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden && local:
		return "the local stack accepts requests signed with AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test: export them"
	case errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return "the API refused these credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID and that their IAM policy allows execute-api:Invoke"
	}
	return ""
}

// isLocalEndpoint reports whether endpoint is on this machine, as the
// local stack is.
func isLocalEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return h == "127.0.0.1" || h == "localhost" || h == "::1"
}

// timerPath is the path of timer id, or of one of its sub-resources.
func timerPath(id string, sub ...string) string {
	return strings.Join(append([]string{"/periodic/" + url.PathEscape(id)}, sub...), "/")
}

// writeJSON writes the API's JSON as is, one line.
func writeJSON(w io.Writer, b []byte) {
	fmt.Fprintf(w, "%s\n", bytes.TrimSpace(b))
}

// decodeDoc decodes an API answer for the human output; code is -1 on
// success.
func (c *timerCmd) decodeDoc(b []byte, v any) int {
	if err := json.Unmarshal(b, v); err != nil {
		return c.fail(fmt.Errorf("the API's answer is not the JSON expected: %w", err))
	}
	return -1
}

// oneTimer is what the commands on one timer share: parse its ID, make
// the call to path(ID), and print the API's JSON as it is under -o json.
// It returns the ID and the answer for the command to show, or, when the
// command is done (usage, a failed call, JSON printed), its exit code.
func (c *timerCmd) oneTimer(ctx context.Context, args []string, method string, stdout io.Writer, path func(id string) string) (string, []byte, int) {
	pos, code := c.parse(args, 1)
	if code >= 0 {
		return "", nil, code
	}
	b, code := c.call(ctx, method, path(pos[0]), nil, nil)
	if code >= 0 {
		return "", nil, code
	}
	if *c.output == "json" {
		writeJSON(stdout, b)
		return "", nil, exitOK
	}
	return pos[0], b, -1
}

// runTimerGet is `timers get ID`: the timer's main fields, or its JSON.
func runTimerGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("get", "get ID", stderr)
	_, b, code := c.oneTimer(ctx, args, http.MethodGet, stdout, func(id string) string { return timerPath(id) })
	if code >= 0 {
		return code
	}
	var t map[string]any
	if code := c.decodeDoc(b, &t); code >= 0 {
		return code
	}
	printTimerFields(stdout, t)
	return exitOK
}

// historyAnswer is GET /periodic/{id}/history's answer.
type historyAnswer struct {
	TimerID string           `json:"timerId"`
	History []map[string]any `json:"history"`
}

// runTimerDescribe is `timers describe ID [--count N]`: the timer's main
// fields, its next N occurrences and its latest N outcomes.
func runTimerDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("describe", "describe ID [--count N]", stderr)
	count := c.fs.Int("count", 5, "how many upcoming occurrences and latest outcomes to show (1-100)")
	pos, code := c.parse(args, 1)
	if code >= 0 {
		return code
	}
	if *count < 1 || *count > 100 {
		fmt.Fprintf(stderr, "bootstrap timers describe: --count is 1 to 100, not %d\n", *count)
		return exitUsage
	}
	var docs [3][]byte
	for i, p := range []struct {
		path  string
		query url.Values
	}{{timerPath(pos[0]), nil}, {timerPath(pos[0], "upcoming"), url.Values{"count": {strconv.Itoa(*count)}}}, {timerPath(pos[0], "history"), nil}} {
		if docs[i], code = c.call(ctx, http.MethodGet, p.path, p.query, nil); code >= 0 {
			return code
		}
	}
	if *c.output == "json" {
		fmt.Fprintf(stdout, "{\"timer\":%s,\"upcoming\":%s,\"history\":%s}\n", bytes.TrimSpace(docs[0]), bytes.TrimSpace(docs[1]), bytes.TrimSpace(docs[2]))
		return exitOK
	}
	var t map[string]any
	var up UpcomingList
	var h historyAnswer
	for i, v := range []any{&t, &up, &h} {
		if code := c.decodeDoc(docs[i], v); code >= 0 {
			return code
		}
	}
	printTimerFields(stdout, t)
	printUpcoming(stdout, up)
	printHistory(stdout, "\nLatest outcomes:\n", h.History, *count)
	return exitOK
}

// runTimerHistory is `timers history ID`: the latest outcomes.
func runTimerHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("history", "history ID", stderr)
	_, b, code := c.oneTimer(ctx, args, http.MethodGet, stdout, func(id string) string { return timerPath(id, "history") })
	if code >= 0 {
		return code
	}
	var h historyAnswer
	if code := c.decodeDoc(b, &h); code >= 0 {
		return code
	}
	printHistory(stdout, "", h.History, len(h.History))
	return exitOK
}

// runTimerList is `timers list [--group G] [--state S]`: every timer,
// all pages followed, as a table or a JSON array.
func runTimerList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("list", "list [--group G] [--state S]", stderr)
	group := c.fs.String("group", "", "only the timers of this `group`")
	state := c.fs.String("state", "", "only the timers in this `state` (active, paused, completed)")
	if _, code := c.parse(args, 0); code >= 0 {
		return code
	}
	q := url.Values{"limit": {"500"}}
	if *group != "" {
		q.Set("group", *group)
	}
	if *state != "" {
		q.Set("state", *state)
	}
	var timers []json.RawMessage
	for {
		b, code := c.call(ctx, http.MethodGet, "/periodic", q, nil)
		if code >= 0 {
			return code
		}
		var page struct {
			Timers []json.RawMessage `json:"timers"`
			Cursor string            `json:"cursor"`
		}
		if code := c.decodeDoc(b, &page); code >= 0 {
			return code
		}
		timers = append(timers, page.Timers...)
		if page.Cursor == "" {
			break
		}
		q.Set("cursor", page.Cursor)
	}
	return c.printList(ctx, stdout, timers)
}

// addLastFires fills in the lastFire of the listed timers that have none:
// the list does not carry it (it is stored apart, and only GET reads it),
// so the table's LAST OUTCOME needs one GET per timer (getTimers).
// A timer deleted since the list keeps none; any other failure fails the
// command.
func (c *timerCmd) addLastFires(ctx context.Context, docs []map[string]any) int {
	cl, err := newAPIClient(ctx, *c.endpoint)
	if err != nil {
		return c.fail(err)
	}
	var ids []string
	var want []map[string]any
	for _, t := range docs {
		if t["lastFire"] == nil && str(t, "id") != "" {
			ids, want = append(ids, str(t, "id")), append(want, t)
		}
	}
	full, err := getTimers(ctx, cl, ids)
	if err != nil {
		return c.fail(fmt.Errorf("last outcome: %w", err))
	}
	for i, t := range want {
		if full[i] != nil {
			t["lastFire"] = full[i]["lastFire"]
		}
	}
	return -1
}

// runTimerPut is `timers put ID -f FILE|-`: the file (or standard input)
// is the PUT body, sent as is so that the API validates it.
func runTimerPut(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := newTimerCmd("put", "put ID -f FILE|-", stderr)
	file := c.fs.String("f", "", "the timer document's `FILE`; - reads standard input (required)")
	pos, code := c.parse(args, 1)
	if code >= 0 {
		return code
	}
	if *file == "" {
		fmt.Fprintln(stderr, "bootstrap timers put: -f FILE|- is required")
		c.fs.Usage()
		return exitUsage
	}
	var body []byte
	var err error
	if *file == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		body, err = os.ReadFile(*file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap timers put: %v\n", err)
		return exitUsage
	}
	b, code := c.call(ctx, http.MethodPut, timerPath(pos[0]), nil, body)
	if code >= 0 {
		return code
	}
	return c.printTimerAction(stdout, "put", b)
}

// runTimerDelete is `timers delete ID`.
func runTimerDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("delete", "delete ID", stderr)
	id, _, code := c.oneTimer(ctx, args, http.MethodDelete, stdout, func(id string) string { return timerPath(id) })
	if code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "deleted %s\n", id)
	return exitOK
}

// runTimerFire is `timers fire ID [--at INSTANT]`: a manual firing now,
// or, with --at, that past occurrence again (a replay, for one that was
// dead-lettered or never delivered).
func runTimerFire(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("fire", "fire ID [--at INSTANT]", stderr)
	at := c.fs.String("at", "", "deliver this past occurrence of the schedule again (an RFC 3339 `instant`), e.g. one that was dead-lettered")
	pos, code := c.parse(args, 1)
	if code >= 0 {
		return code
	}
	var body []byte
	if *at != "" {
		when, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			return c.usage("--at %q is not an RFC 3339 instant such as 2026-11-22T09:00:00Z", *at)
		}
		when = when.UTC()
		body, _ = marshalJSON(fireRequest{ScheduledAt: &when})
	}
	b, code := c.call(ctx, http.MethodPost, timerPath(pos[0], "fire"), nil, body)
	if code >= 0 {
		return code
	}
	if *c.output == "json" {
		writeJSON(stdout, b)
		return exitOK
	}
	var f map[string]any
	if code := c.decodeDoc(b, &f); code >= 0 {
		return code
	}
	what := "fired %s: occurrence %s queued, idempotency key %s\n"
	if f["replay"] == true {
		what = "fired %s again: past occurrence %s queued as a replay, idempotency key %s\n"
	}
	fmt.Fprintf(stdout, what, pos[0], str(f, "scheduledAt"), str(f, "idempotencyKey"))
	return exitOK
}

// waitPoll is how often `timers wait` reads the timer.
const waitPoll = 2 * time.Second

// runTimerWait is `timers wait ID [--outcome O] [--timeout D]`: it reads
// the timer until its latest outcome is O, then prints that outcome's
// line; a timeout exits 1, saying what the latest outcome was.
func runTimerWait(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("wait", "wait ID [--outcome OUTCOME] [--timeout DURATION]", stderr)
	outcome := c.fs.String("outcome", "delivered", "the `outcome` to wait for: delivered, failed, dead-lettered, ... (as in the history)")
	timeout := c.fs.Duration("timeout", 3*time.Minute, "how long to wait at most")
	pos, code := c.parse(args, 1)
	if code >= 0 {
		return code
	}
	if *timeout <= 0 {
		return c.usage("--timeout must be positive, not %s", *timeout)
	}
	deadline := time.Now().Add(*timeout)
	for {
		b, code := c.call(ctx, http.MethodGet, timerPath(pos[0]), nil, nil)
		if code >= 0 {
			return code
		}
		var t map[string]any
		if code := c.decodeDoc(b, &t); code >= 0 {
			return code
		}
		lf, _ := t["lastFire"].(map[string]any)
		if lf != nil && str(lf, "outcome") == *outcome {
			if *c.output == "json" {
				b, _ := marshalJSON(lf)
				writeJSON(stdout, b)
			} else {
				printHistory(stdout, "", []map[string]any{lf}, 1)
			}
			return exitOK
		}
		if time.Now().Add(waitPoll).After(deadline) {
			last := "none yet"
			if lf != nil {
				last = lastOutcome(t)
			}
			fmt.Fprintf(stderr, "bootstrap timers wait: timer %s: no %s outcome after %s (latest: %s)\n", pos[0], *outcome, *timeout, last)
			return exitFailure
		}
		select {
		case <-ctx.Done():
			return c.fail(ctx.Err())
		case <-time.After(waitPoll):
		}
	}
}

// runTimerPauseResume is `timers pause|resume`: of a timer given its ID,
// of a group given --group (the group command of cli_timers.go, as it
// always was); both or neither is a usage error.
func runTimerPauseResume(ctx context.Context, action string, args []string, stdout, stderr io.Writer) int {
	synopsis := action + " ID | " + action + " --group G"
	if action == "pause" {
		synopsis = "pause ID|--group G [--reason TEXT]"
	}
	c := newTimerCmd(action, synopsis, stderr)
	group := c.fs.String("group", "", "the timer `group` to "+action+" instead of one timer")
	reason := new(string)
	if action == "pause" {
		reason = c.fs.String("reason", "", "why it is paused, e.g. 'deploy 1.4.2' (at most 256 characters)")
	}
	pos, err := parseInterspersed(c.fs, args)
	switch {
	case err == flag.ErrHelp:
		return exitOK
	case err != nil:
		return exitUsage
	case (len(pos) == 1) == (*group != "") || len(pos) > 1:
		return c.usage("name one timer ID or one --group, not both or neither")
	}
	if code := c.resolveEndpoint(); code >= 0 {
		return code
	}
	if *group != "" {
		return c.groupAction(ctx, action, *group, *reason, stdout)
	}
	var body []byte
	if *reason != "" {
		body, _ = marshalJSON(pauseRequest{Reason: *reason})
	}
	b, code := c.call(ctx, http.MethodPost, timerPath(pos[0], action), nil, body)
	if code >= 0 {
		return code
	}
	return c.printTimerAction(stdout, action+"d", b)
}

// timerCmds are the commands on one timer or the list that read no input.
var timerCmds = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) int{
	"get": runTimerGet, "describe": runTimerDescribe, "list": runTimerList,
	"history": runTimerHistory, "delete": runTimerDelete, "fire": runTimerFire,
	"wait": runTimerWait,
}
