package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Timer files, as `bootstrap timers apply` reads them: a directory of
// Deployer documents (deployer.go) or callclock documents (the PUT body
// plus an "id"), with ${VAR} substituted from the environment at deploy
// time, each turned into the timer the group should have.

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
	"deleteAfterCompletion", "catchUpSeconds", "retry", "notify", "http", "timerCallbackData", "deploymentInfo",
	"overlap", "pauseAfterFailures", "spreadSeconds"}

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
		body, err = d.fromDeployer([]byte(text))
	} else {
		body, err = d.fromCallclock([]byte(text))
	}
	if err != nil {
		return d, err
	}
	if err := validateID(d.ID); err != nil {
		return d, errors.New(ErrorMessage(err))
	}
	if d.Body, err = d.withGroup(body); err != nil {
		return d, err
	}
	if !d.Enabled {
		return d, nil
	}
	return d, d.validate(now)
}

// fromDeployer reads a Deployer document into d and returns its PUT body;
// without --group, the group is the document's deployment.product.
func (d *desiredTimer) fromDeployer(text []byte) ([]byte, error) {
	dt, err := readDeployerTimer(text)
	if err != nil {
		return nil, err
	}
	d.ID, d.Enabled, d.Warnings = dt.ID, dt.Enabled, dt.Warnings
	if d.Group == "" {
		if dt.Product == "" {
			return nil, fmt.Errorf("timer %s has no deployment.product to take its group from: give --group", d.ID)
		}
		if err := validateGroup(dt.Product); err != nil {
			return nil, fmt.Errorf("deployment.product %q cannot be the group: %s; give --group", dt.Product, ErrorMessage(err))
		}
		d.Group = dt.Product
	}
	return dt.Body, nil
}

// fromCallclock reads a callclock document (the PUT body and an "id")
// into d and returns the PUT body.
func (d *desiredTimer) fromCallclock(text []byte) ([]byte, error) {
	// Before the map below, which would keep a duplicate key's last
	// value: the file is refused as the API refuses such a body.
	if err := checkStrictJSON(text, nil); err != nil {
		return nil, errors.New(ErrorMessage(err))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(text, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if err := json.Unmarshal(top["id"], &d.ID); err != nil || d.ID == "" {
		return nil, errors.New(`a callclock timer file needs an "id" string (or it is a Deployer file, with "deployment" and "request")`)
	}
	delete(top, "id")
	return json.Marshal(top)
}

// withGroup returns body with d's group set: the file's own, which must
// agree with --group when both are given.
func (d *desiredTimer) withGroup(body []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	if g, ok := top["group"]; ok {
		var fg string
		switch {
		case json.Unmarshal(g, &fg) != nil:
			return nil, fmt.Errorf("group %s is not a string", g)
		case d.Group == "":
			d.Group = fg
		case fg != d.Group:
			return nil, fmt.Errorf("the file sets group %s but --group is %s", g, d.Group)
		}
	}
	if d.Group == "" {
		return nil, errors.New(`the file names no "group": give --group`)
	}
	if err := validateGroup(d.Group); err != nil {
		return nil, errors.New(ErrorMessage(err))
	}
	top["group"], _ = json.Marshal(d.Group)
	return marshalJSON(top)
}

// validate decodes and normalises d's body exactly as the API will, at
// now, and keeps the definition the plan compares.
func (d *desiredTimer) validate(now time.Time) error {
	var in putRequest
	if err := decodeBody(eventsRequest(d.Body), &in); err != nil {
		return errors.New(ErrorMessage(err))
	}
	// The model's own rules, as the API applies them; the server checks
	// its own secret prefix.
	t, err := newTimer(d.ID, in, timerOptions{Now: now, SecretPrefix: "/"})
	if err != nil {
		return errors.New(ErrorMessage(err))
	}
	d.Doc, err = definitionOf(t)
	return err
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
