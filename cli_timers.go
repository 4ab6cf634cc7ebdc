package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// `bootstrap timers`, the deployment side of callclock: it applies a
// directory of timer files to a group the way terraform applies a
// configuration (plan, then apply), and pauses and resumes the group
// around a rollout.

// Plan actions.
const (
	planCreate    = "create"
	planUpdate    = "update"
	planUnchanged = "unchanged"
	planDelete    = "delete"
)

var planSymbols = map[string]string{planCreate: "+", planUpdate: "~", planUnchanged: "=", planDelete: "-"}

type planStep struct {
	Action string
	ID     string
	Body   []byte // PUT body for create and update
}

// computePlan decides, for each desired timer, create, update or
// unchanged against current (id -> document, the groups' timers and any
// desired timer found elsewhere), and delete for every current timer of
// the desired timers' groups that no enabled desired timer names. Steps
// come in file order, deletes last by id.
func computePlan(current map[string]map[string]any, desired []desiredTimer) []planStep {
	var steps []planStep
	keep := map[string]bool{}
	for _, d := range desired {
		if !d.Enabled {
			continue
		}
		keep[d.ID] = true
		cur, ok := current[d.ID]
		switch {
		case !ok:
			steps = append(steps, planStep{planCreate, d.ID, d.Body})
		case sameDefinition(d.Doc, cur):
			steps = append(steps, planStep{planUnchanged, d.ID, nil})
		default:
			steps = append(steps, planStep{planUpdate, d.ID, d.Body})
		}
	}
	groups := planGroups(desired)
	var deletes []string
	for id, cur := range current {
		if g, _ := cur["group"].(string); slices.Contains(groups, g) && !keep[id] {
			deletes = append(deletes, id)
		}
	}
	sort.Strings(deletes)
	for _, id := range deletes {
		steps = append(steps, planStep{planDelete, id, nil})
	}
	return steps
}

// planGroups are the groups the desired timers belong to, sorted: the
// groups whose timers the files define.
func planGroups(desired []desiredTimer) []string {
	var groups []string
	for _, d := range desired {
		if !slices.Contains(groups, d.Group) {
			groups = append(groups, d.Group)
		}
	}
	sort.Strings(groups)
	return groups
}

// sameDefinition compares two documents on definitionFields.
func sameDefinition(want, got map[string]any) bool {
	for _, f := range definitionFields {
		if !reflect.DeepEqual(want[f], got[f]) {
			return false
		}
	}
	return true
}

// printPlan writes the files' warnings, the groups, one line per step
// and the summary.
func printPlan(w io.Writer, desired []desiredTimer, steps []planStep) {
	for _, d := range desired {
		for _, warn := range d.Warnings {
			fmt.Fprintf(w, "! %s: %s\n", d.File, warn)
		}
	}
	fmt.Fprintf(w, "Groups: %s\n", strings.Join(planGroups(desired), ", "))
	n := map[string]int{}
	for _, s := range steps {
		fmt.Fprintf(w, "%s %s %s\n", planSymbols[s.Action], s.Action, s.ID)
		n[s.Action]++
	}
	fmt.Fprintf(w, "Plan: %d to create, %d to update, %d to delete, %d unchanged.\n",
		n[planCreate], n[planUpdate], n[planDelete], n[planUnchanged])
}

const timersUsage = `usage: bootstrap timers COMMAND [flags]

  timers apply    [--group G] [--dry-run] FILE|DIR...  make the groups' timers those of the files
  timers pause    --group G [--reason TEXT]            pause every timer of the group
  timers resume   --group G                            resume every timer of the group
  timers get      ID                                   the timer's main fields
  timers describe ID [--count N]                       its fields, next N occurrences (UTC, local, DST) and latest outcomes
  timers list     [--group G] [--state S]              every timer (all pages), as a table
  timers history  ID                                   its latest outcomes
  timers put      ID -f FILE|-                         create or replace it from a file or standard input
  timers delete   ID                                   delete it
  timers fire     ID [--at INSTANT]                    fire it now, by hand; with --at, that past occurrence again
  timers wait     ID [--outcome O] [--timeout D]       wait until its latest outcome is O (default delivered)
  timers pause    ID [--reason TEXT]                   pause one timer
  timers resume   ID                                   resume one timer
  timers limit    set|get|list|delete [KEY] [flags]    a destination's rate and in-flight limit

Every command takes --endpoint URL (default $CALLCLOCK_ENDPOINT, else the local
stack's http://127.0.0.1:8080), and every one but apply -o text|json. Exit codes: 0 ok,
1 other failure, 2 invalid input or usage, 3 not found, 4 denied, 5 the API
unavailable or unreachable.

Requests are signed with SigV4 (execute-api) with the standard AWS credential
chain; the region is AWS_REGION (default us-east-1). Run 'bootstrap timers
COMMAND -h' for a command's flags.
`

// runTimers is `bootstrap timers`.
func runTimers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, timersUsage)
		return 2
	}
	switch args[0] {
	case "apply":
		return runTimersApply(ctx, args[1:], os.LookupEnv, stdout, stderr)
	case "pause", "resume":
		return runTimerPauseResume(ctx, args[0], args[1:], stdout, stderr)
	case "put":
		return runTimerPut(ctx, args[1:], os.Stdin, stdout, stderr)
	case "limit":
		return runLimit(ctx, args[1:], stdout, stderr)
	case "get", "describe", "list", "history", "delete", "fire", "wait":
		return timerCmds[args[0]](ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, timersUsage)
		return 0
	}
	fmt.Fprintf(stderr, "bootstrap timers: unknown command %q\n\n%s", args[0], timersUsage)
	return 2
}

// parseInterspersed parses flags that may come after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// runTimersApply is `timers apply [--group G] [--dry-run] FILE|DIR...`:
// the plan, then the changes.
func runTimersApply(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	c := newCommand("apply", "apply [--group G] [--dry-run] FILE|DIR...", stderr, false)
	group := c.fs.String("group", "", "the timer `group` of every file (default: each file's group, or a Deployer file's deployment.product)")
	dryRun := c.fs.Bool("dry-run", false, "print the plan and change nothing")
	c.lookup = lookup
	files, code := c.parse(args, -1)
	if code >= 0 {
		return code
	}
	if *group != "" {
		if err := validateGroup(*group); err != nil {
			return c.usage("--group: %s", ErrorMessage(err))
		}
	}
	if len(files) == 0 {
		return c.usage("name at least one timer FILE or DIR")
	}
	desired, err := readTimerFiles(files, *group, lookup, time.Now().UTC())
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap timers apply: %v\n", err)
		return exitUsage
	}
	cl, err := newAPIClient(ctx, *c.endpoint)
	if err != nil {
		return c.fail(err)
	}
	current, err := currentTimers(ctx, cl, desired)
	if err != nil {
		return c.fail(err)
	}
	steps := computePlan(current, desired)
	printPlan(stdout, desired, steps)
	if *dryRun {
		return exitOK
	}
	return c.applyPlan(ctx, cl, steps, stdout)
}

// currentTimers reads what the API has of the desired timers: every timer
// of their groups, and each desired timer outside them (it is updated,
// moved, not created).
func currentTimers(ctx context.Context, c *apiClient, desired []desiredTimer) (map[string]map[string]any, error) {
	current := map[string]map[string]any{}
	for _, g := range planGroups(desired) {
		timers, err := c.groupTimers(ctx, g)
		if err != nil {
			return nil, err
		}
		maps.Copy(current, timers)
	}
	for _, d := range desired {
		if _, ok := current[d.ID]; ok || !d.Enabled {
			continue
		}
		b, err := c.do(ctx, http.MethodGet, "/periodic/"+url.PathEscape(d.ID), nil, nil)
		var ae *timersAPIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		case err != nil:
			return nil, fmt.Errorf("get %s: %w", d.ID, err)
		default:
			if current[d.ID], err = definitionOfJSON(b); err != nil {
				return nil, fmt.Errorf("get %s: %w", d.ID, err)
			}
		}
	}
	return current, nil
}

// applyPlan carries out steps, each on its own: one that fails is reported
// and the others still run. It returns the exit code: that of the first
// failed change, as exitCodeOf gives it, so that a script can tell denied
// from unavailable from invalid.
func (c *timerCmd) applyPlan(ctx context.Context, cl *apiClient, steps []planStep, stdout io.Writer) int {
	var failed []error
	n := map[string]int{}
	for _, s := range steps {
		path := "/periodic/" + url.PathEscape(s.ID)
		var err error
		switch s.Action {
		case planCreate, planUpdate:
			_, err = cl.do(ctx, http.MethodPut, path, nil, s.Body)
		case planDelete:
			_, err = cl.do(ctx, http.MethodDelete, path, nil, nil)
		default:
			continue
		}
		if err != nil {
			failed = append(failed, err)
			fmt.Fprintf(c.stderr, "bootstrap timers apply: %s %s: %v\n", s.Action, s.ID, err)
			continue
		}
		n[s.Action]++
		fmt.Fprintf(stdout, "%sd %s\n", s.Action, s.ID)
	}
	fmt.Fprintf(stdout, "Apply: %d created, %d updated, %d deleted.\n", n[planCreate], n[planUpdate], n[planDelete])
	if len(failed) > 0 {
		return c.fail(fmt.Errorf("%d change(s) failed, the first: %w", len(failed), failed[0]))
	}
	return exitOK
}

// groupAction is `timers pause|resume --group G`: every timer of the
// group, through the API's group call.
func (c *timerCmd) groupAction(ctx context.Context, action, group, reason string, stdout io.Writer) int {
	if err := validateGroup(group); err != nil {
		return c.usage("--group: %s", ErrorMessage(err))
	}
	var body []byte
	if reason != "" {
		body, _ = marshalJSON(pauseRequest{Reason: reason})
	}
	b, code := c.call(ctx, http.MethodPost, "/groups/"+url.PathEscape(group)+"/"+action, nil, body)
	if code >= 0 {
		return code
	}
	if *c.output == "json" {
		writeJSON(stdout, b)
		return exitOK
	}
	var r struct {
		Timers  int `json:"timers"`
		Changed int `json:"changed"`
	}
	if code := c.decodeDoc(b, &r); code >= 0 {
		return code
	}
	fmt.Fprintf(stdout, "%sd group %s: %d timers, %d changed\n", action, group, r.Timers, r.Changed)
	return exitOK
}
