package main

// `bootstrap timers limit ...`: the destination limits (api_limits.go)
// from the command line: set, get, list and delete, each one API call,
// with human output by default and the API's JSON with -o json.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

const limitUsage = `usage: bootstrap timers limit COMMAND [flags]

  timers limit set    KEY [--per-second N] [--in-flight N]   create or replace the destination's limit
  timers limit get    KEY                                    the destination's limit
  timers limit list                                          every limit
  timers limit delete KEY                                    delete it

A timer obeys the limit whose KEY its http.limitKey names.
`

// runLimit is `bootstrap timers limit`.
func runLimit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, limitUsage)
		return exitUsage
	}
	switch args[0] {
	case "set":
		return runLimitSet(ctx, args[1:], stdout, stderr)
	case "get", "delete":
		return runLimitOne(ctx, args[0], args[1:], stdout, stderr)
	case "list":
		return runLimitList(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, limitUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "bootstrap timers limit: unknown command %q\n\n%s", args[0], limitUsage)
	return exitUsage
}

// limitPath is the API path of the limit of key.
func limitPath(key string) string { return "/limits/" + url.PathEscape(key) }

// runLimitSet is `timers limit set KEY [--per-second N] [--in-flight N]`.
func runLimitSet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("limit set", "limit set KEY [--per-second N] [--in-flight N]", stderr)
	perSecond := c.fs.Int("per-second", 0, "calls per UTC second, 1-250 (0: none)")
	inFlight := c.fs.Int("in-flight", 0, "calls at once, 1-100 (0: none)")
	pos, code := c.parse(args, 1)
	if code >= 0 {
		return code
	}
	l := Limit{Key: pos[0], PerSecond: *perSecond, InFlight: *inFlight}
	if err := l.Validate(); err != nil {
		return c.usage("%s", ErrorMessage(err))
	}
	body := map[string]int{}
	if l.PerSecond > 0 {
		body["perSecond"] = l.PerSecond
	}
	if l.InFlight > 0 {
		body["inFlight"] = l.InFlight
	}
	b, _ := json.Marshal(body)
	out, code := c.call(ctx, http.MethodPut, limitPath(l.Key), nil, b)
	if code >= 0 {
		return code
	}
	return c.printLimit(stdout, out)
}

// runLimitOne is `timers limit get KEY` and `timers limit delete KEY`.
func runLimitOne(ctx context.Context, action string, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("limit "+action, "limit "+action+" KEY", stderr)
	pos, code := c.parse(args, 1)
	if code >= 0 {
		return code
	}
	if err := validateLimitKey("KEY", pos[0]); err != nil {
		return c.usage("%s", ErrorMessage(err))
	}
	method := http.MethodGet
	if action == "delete" {
		method = http.MethodDelete
	}
	out, code := c.call(ctx, method, limitPath(pos[0]), nil, nil)
	if code >= 0 {
		return code
	}
	if action == "delete" {
		if *c.output == "json" {
			writeJSON(stdout, out)
		} else {
			fmt.Fprintf(stdout, "deleted the limit of %s\n", pos[0])
		}
		return exitOK
	}
	return c.printLimit(stdout, out)
}

// runLimitList is `timers limit list`: one line per limit.
func runLimitList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newTimerCmd("limit list", "limit list", stderr)
	if _, code := c.parse(args, 0); code >= 0 {
		return code
	}
	out, code := c.call(ctx, http.MethodGet, "/limits", nil, nil)
	if code >= 0 {
		return code
	}
	if *c.output == "json" {
		writeJSON(stdout, out)
		return exitOK
	}
	var list struct {
		Limits []Limit `json:"limits"`
	}
	if code := c.decodeDoc(out, &list); code >= 0 {
		return code
	}
	if len(list.Limits) == 0 {
		fmt.Fprintln(stdout, "no limits")
		return exitOK
	}
	fmt.Fprintf(stdout, "%-40s %10s %9s\n", "KEY", "PER-SECOND", "IN-FLIGHT")
	for _, l := range list.Limits {
		fmt.Fprintf(stdout, "%-40s %10s %9s\n", l.Key, limitValue(l.PerSecond), limitValue(l.InFlight))
	}
	return exitOK
}

// printLimit shows the API's limit document b.
func (c *timerCmd) printLimit(stdout io.Writer, b []byte) int {
	if *c.output == "json" {
		writeJSON(stdout, b)
		return exitOK
	}
	var l Limit
	if code := c.decodeDoc(b, &l); code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "key:        %s\nper second: %s\nin flight:  %s\nupdated:    %s\n",
		l.Key, limitValue(l.PerSecond), limitValue(l.InFlight), l.UpdatedAt.UTC().Format("2006-01-02T15:04:05Z"))
	return exitOK
}

// limitValue shows a bound, "-" for none.
func limitValue(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}
