package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// This file is `bootstrap timers`, the deployment side of callclock: it
// applies a directory of timer files to a group the way terraform applies
// a configuration, and pauses and resumes the group around a rollout. It
// also holds the conversion of the seed's Deployer (Callculon) timer format,
// which PUT /periodic/{id} accepts too.

// substituteEnv replaces ${VAR} and $VAR in s with the variable's value
// from lookup, as envsubst does for the Deployer's other files. Unlike
// envsubst, an undefined variable is an error, not an empty string; $$ is
// a literal $, and a $ before anything but a name (as in $5) is kept.
func substituteEnv(s string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		var name string
		switch c := s[i+1]; {
		case c == '$':
			b.WriteByte('$')
			i++
			continue
		case c == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ at offset %d", i)
			}
			name = s[i+2 : i+2+end]
			if name == "" || envNamePattern.FindString(name) != name {
				return "", fmt.Errorf("${%s}: not a variable name (write $$ for a literal $)", name)
			}
			i += 2 + end
		case c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
			name = envNamePattern.FindString(s[i+1:])
			i += len(name)
		default:
			b.WriteByte('$')
			continue
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not defined (write $$ for a literal $)", name)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// desiredTimer is one timer of the files: its PUT body and the document
// the API would make of it, on the definition fields only.
type desiredTimer struct {
	ID      string
	File    string
	Group   string
	Enabled bool
	Body    []byte         // the PUT body
	Doc     map[string]any // definitionFields of the normalised timer
	// Warnings name what the file holds that callclock ignores.
	Warnings []string
}

// definitionFields are the document fields a PUT sets. The plan compares
// desired and current timers on these and nothing else (not version,
// state, nextFireAt, lastFire, ...).
var definitionFields = []string{"schedule", "minuteOfHour", "timezone", "startAt", "endAt", "group",
	"deleteAfterCompletion", "catchUpSeconds", "retry", "notify", "http", "timerCallbackData", "deploymentInfo"}

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

// readTimerFiles reads FILE and DIR (its *.json files) arguments into
// desired timers, substituting ${VAR} from lookup. Each timer is in group
// when it is given; otherwise in its file's group, or for a Deployer
// file, its deployment.product.
func readTimerFiles(args []string, group string, lookup func(string) (string, bool), now time.Time) ([]desiredTimer, error) {
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		matches, err := dirTimerFiles(a)
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("%s: no timer files (*.json, or timer-*.json in its subdirectories)", a)
		}
		files = append(files, matches...)
	}
	var out []desiredTimer
	seen := map[string]string{}
	for _, f := range files {
		d, err := readTimerFile(f, group, lookup, now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if prev, dup := seen[d.ID]; dup {
			return nil, fmt.Errorf("%s: timer %s is also defined in %s", f, d.ID, prev)
		}
		seen[d.ID] = f
		out = append(out, d)
	}
	return out, nil
}

// dirTimerFiles lists a directory's timer files, sorted: its own *.json
// files, and the timer-*.json files anywhere below it, the Deployer's rule
// for a deployment unit (find $DU_DIR -name "timer-*json").
func dirTimerFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		top := filepath.Dir(path) == filepath.Clean(dir)
		if name := e.Name(); strings.HasSuffix(name, ".json") && (top || strings.HasPrefix(name, "timer-")) {
			files = append(files, path)
		}
		return nil
	})
	return files, err // WalkDir walks in lexical order
}

// readTimerFile reads one timer file: a Deployer document, or a callclock
// document, which is the PUT body plus an "id" field.
func readTimerFile(file, group string, lookup func(string) (string, bool), now time.Time) (desiredTimer, error) {
	d := desiredTimer{File: file, Enabled: true, Group: group}
	raw, err := os.ReadFile(file)
	if err != nil {
		return d, err
	}
	text, err := substituteEnv(string(raw), lookup)
	if err != nil {
		return d, err
	}
	var body []byte
	if isDeployerDoc([]byte(text)) {
		dt, err := readDeployerTimer([]byte(text))
		if err != nil {
			return d, err
		}
		d.ID, body, d.Enabled, d.Warnings = dt.ID, dt.Body, dt.Enabled, dt.Warnings
		if d.Group == "" {
			if dt.Product == "" {
				return d, fmt.Errorf("timer %s has no deployment.product to take its group from: give --group", d.ID)
			}
			if err := validateGroup(dt.Product); err != nil {
				return d, fmt.Errorf("deployment.product %q cannot be the group: %s; give --group", dt.Product, ErrorMessage(err))
			}
			d.Group = dt.Product
		}
	} else {
		// Before the map below, which would keep a duplicate key's last
		// value: the file is refused as the API refuses such a body.
		if err := checkStrictJSON([]byte(text), nil); err != nil {
			return d, errors.New(ErrorMessage(err))
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &top); err != nil {
			return d, fmt.Errorf("not a JSON object: %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		if err := json.Unmarshal(top["id"], &d.ID); err != nil || d.ID == "" {
			return d, errors.New(`a callclock timer file needs an "id" string (or it is a Deployer file, with "deployment" and "request")`)
		}
		delete(top, "id")
		if body, err = json.Marshal(top); err != nil {
			return d, err
		}
	}
	if err := validateID(d.ID); err != nil {
		return d, errors.New(ErrorMessage(err))
	}
	// Set the group, then decode and normalise exactly as the API will.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return d, err
	}
	if g, ok := top["group"]; ok {
		var fg string
		switch {
		case json.Unmarshal(g, &fg) != nil:
			return d, fmt.Errorf("group %s is not a string", g)
		case d.Group == "":
			d.Group = fg
		case fg != d.Group:
			return d, fmt.Errorf("the file sets group %s but --group is %s", g, d.Group)
		}
	}
	if d.Group == "" {
		return d, errors.New(`the file names no "group": give --group`)
	}
	if err := validateGroup(d.Group); err != nil {
		return d, errors.New(ErrorMessage(err))
	}
	top["group"], _ = json.Marshal(d.Group)
	if d.Body, err = marshalJSON(top); err != nil {
		return d, err
	}
	if !d.Enabled {
		return d, nil
	}
	var in putRequest
	if err := decodeBody(eventsRequest(d.Body), &in); err != nil {
		return d, errors.New(ErrorMessage(err))
	}
	api := NewAPI(nil)
	api.SecretPrefix = "/" // the server checks its own prefix
	api.Now = func() time.Time { return now }
	t, err := api.newTimer(d.ID, in)
	if err != nil {
		return d, errors.New(ErrorMessage(err))
	}
	if d.Doc, err = definitionOf(t); err != nil {
		return d, err
	}
	return d, nil
}

// eventsRequest wraps a body as an API request, for decodeBody.
func eventsRequest(body []byte) events.APIGatewayProxyRequest {
	return events.APIGatewayProxyRequest{Body: string(body)}
}

// definitionOf renders a timer as the API does and keeps definitionFields.
func definitionOf(t any) (map[string]any, error) {
	b, err := marshalJSON(t)
	if err != nil {
		return nil, err
	}
	return definitionOfJSON(b)
}

func definitionOfJSON(b []byte) (map[string]any, error) {
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, f := range definitionFields {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	return out, nil
}

// apiClient calls the REST API signed with SigV4 for execute-api.
type apiClient struct {
	Endpoint string
	Region   string
	Creds    aws.CredentialsProvider
	HTTP     *http.Client
}

// timersAPIError is a non-2xx answer.
type timersAPIError struct {
	Status  int
	Message string
}

func (e *timersAPIError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

func (c *apiClient) do(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	u := c.Endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	creds, err := c.Creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	// The signer adds X-Amz-Security-Token when creds has a session token.
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.Region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error struct{ Message string } `json:"error"`
			Msg   string                   `json:"message"` // API Gateway's default
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && (e.Error.Message != "" || e.Msg != "") {
			msg = e.Error.Message + e.Msg
		}
		return nil, &timersAPIError{resp.StatusCode, msg}
	}
	return b, nil
}

// groupTimers lists every timer of group, following cursors.
func (c *apiClient) groupTimers(ctx context.Context, group string) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	cursor := ""
	for {
		q := url.Values{"group": {group}, "limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		b, err := c.do(ctx, http.MethodGet, "/periodic", q, nil)
		if err != nil {
			return nil, fmt.Errorf("list group %s: %w", group, err)
		}
		var page struct {
			Timers []json.RawMessage `json:"timers"`
			Cursor string            `json:"cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("list group %s: %w", group, err)
		}
		for _, t := range page.Timers {
			var id struct{ ID string }
			json.Unmarshal(t, &id)
			doc, err := definitionOfJSON(t)
			if err != nil {
				return nil, err
			}
			out[id.ID] = doc
		}
		if page.Cursor == "" {
			return out, nil
		}
		cursor = page.Cursor
	}
}

const timersUsage = `usage: bootstrap timers COMMAND [flags]

  timers apply  --endpoint URL [--group G] [--dry-run] FILE|DIR... make the groups' timers those of the files
  timers pause  --endpoint URL --group G [--reason TEXT]            pause every timer of the group
  timers resume --endpoint URL --group G                            resume every timer of the group

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
		return runTimersGroup(ctx, args[0], args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, timersUsage)
		return 0
	}
	fmt.Fprintf(stderr, "bootstrap timers: unknown command %q\n\n%s", args[0], timersUsage)
	return 2
}

// timersFlags are the flags every timers command has.
type timersFlags struct {
	endpoint, group *string
	// groupOptional is true for apply, whose files may name their groups.
	groupOptional bool
}

func addTimersFlags(fs *flag.FlagSet, groupOptional bool) timersFlags {
	groupUsage := "the timer `group` (required)"
	if groupOptional {
		groupUsage = "the timer `group` of every file (default: each file's group, or a Deployer file's deployment.product)"
	}
	return timersFlags{
		endpoint:      fs.String("endpoint", "", "the API's stage `URL`, e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod (required)"),
		group:         fs.String("group", "", groupUsage),
		groupOptional: groupOptional,
	}
}

// check validates the common flags, returning an exit code or -1.
func (f timersFlags) check(fs *flag.FlagSet) int {
	if *f.endpoint == "" || (*f.group == "" && !f.groupOptional) {
		msg := "--endpoint and --group are required"
		if f.groupOptional {
			msg = "--endpoint is required"
		}
		fmt.Fprintln(fs.Output(), msg)
		fs.Usage()
		return 2
	}
	if u, err := url.Parse(*f.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(fs.Output(), "--endpoint %q is not an absolute http or https URL\n", *f.endpoint)
		return 2
	}
	if err := validateGroup(*f.group); err != nil && *f.group != "" {
		fmt.Fprintf(fs.Output(), "--group: %s\n", ErrorMessage(err))
		return 2
	}
	return -1
}

// newAPIClient loads the standard credential chain.
func newAPIClient(ctx context.Context, endpoint string) (*apiClient, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	if cfg.Credentials == nil {
		return nil, errors.New("no AWS credentials found")
	}
	return &apiClient{Endpoint: strings.TrimRight(endpoint, "/"), Region: region, Creds: cfg.Credentials,
		HTTP: &http.Client{Timeout: 60 * time.Second}}, nil
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

func runTimersApply(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := newFlagSet("timers apply", "timers apply --endpoint URL [--group G] [--dry-run] FILE|DIR...", stderr)
	tf := addTimersFlags(fs, true)
	dryRun := fs.Bool("dry-run", false, "print the plan and change nothing")
	files, err := parseInterspersed(fs, args)
	switch {
	case err == flag.ErrHelp:
		return 0
	case err != nil:
		return 2
	}
	if code := tf.check(fs); code >= 0 {
		return code
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "bootstrap timers apply: name at least one timer FILE or DIR")
		fs.Usage()
		return 2
	}
	desired, err := readTimerFiles(files, *tf.group, lookup, time.Now().UTC())
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap timers apply: %v\n", err)
		return 2
	}
	c, err := newAPIClient(ctx, *tf.endpoint)
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap timers apply: %v\n", err)
		return 1
	}
	current := map[string]map[string]any{}
	for _, g := range planGroups(desired) {
		timers, err := c.groupTimers(ctx, g)
		if err != nil {
			fmt.Fprintf(stderr, "bootstrap timers apply: %v\n", err)
			return 1
		}
		maps.Copy(current, timers)
	}
	// A desired timer outside the group is updated (moved), not created.
	for _, d := range desired {
		if _, ok := current[d.ID]; ok || !d.Enabled {
			continue
		}
		b, err := c.do(ctx, http.MethodGet, "/periodic/"+url.PathEscape(d.ID), nil, nil)
		var ae *timersAPIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		case err != nil:
			fmt.Fprintf(stderr, "bootstrap timers apply: get %s: %v\n", d.ID, err)
			return 1
		default:
			if current[d.ID], err = definitionOfJSON(b); err != nil {
				fmt.Fprintf(stderr, "bootstrap timers apply: get %s: %v\n", d.ID, err)
				return 1
			}
		}
	}
	steps := computePlan(current, desired)
	printPlan(stdout, desired, steps)
	if *dryRun {
		return 0
	}
	var failed int
	n := map[string]int{}
	for _, s := range steps {
		path := "/periodic/" + url.PathEscape(s.ID)
		var err error
		switch s.Action {
		case planCreate, planUpdate:
			_, err = c.do(ctx, http.MethodPut, path, nil, s.Body)
		case planDelete:
			_, err = c.do(ctx, http.MethodDelete, path, nil, nil)
		default:
			continue
		}
		if err != nil {
			failed++
			fmt.Fprintf(stderr, "bootstrap timers apply: %s %s: %v\n", s.Action, s.ID, err)
			continue
		}
		n[s.Action]++
		fmt.Fprintf(stdout, "%sd %s\n", s.Action, s.ID)
	}
	fmt.Fprintf(stdout, "Apply: %d created, %d updated, %d deleted.\n", n[planCreate], n[planUpdate], n[planDelete])
	if failed > 0 {
		fmt.Fprintf(stderr, "bootstrap timers apply: %d change(s) failed\n", failed)
		return 1
	}
	return 0
}

func runTimersGroup(ctx context.Context, action string, args []string, stdout, stderr io.Writer) int {
	synopsis := "timers resume --endpoint URL --group G"
	if action == "pause" {
		synopsis = "timers pause --endpoint URL --group G [--reason TEXT]"
	}
	fs := newFlagSet("timers "+action, synopsis, stderr)
	tf := addTimersFlags(fs, false)
	var reason *string
	if action == "pause" {
		reason = fs.String("reason", "", "why the group is paused, e.g. 'deploy 1.4.2' (at most 256 characters)")
	}
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if code := tf.check(fs); code >= 0 {
		return code
	}
	c, err := newAPIClient(ctx, *tf.endpoint)
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap timers %s: %v\n", action, err)
		return 1
	}
	var body []byte
	if reason != nil && *reason != "" {
		body, _ = marshalJSON(pauseRequest{Reason: *reason})
	}
	b, err := c.do(ctx, http.MethodPost, "/groups/"+url.PathEscape(*tf.group)+"/"+action, nil, body)
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap timers %s: %v\n", action, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", bytes.TrimSpace(b))
	return 0
}
