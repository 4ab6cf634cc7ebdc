package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file tests README.md: TestIntegrationREADME runs its walk-through
// the way a newcomer would, and checks that every command prints what the
// README shows.
//
// The README's conventions (also described in its "For developers"
// section):
//
//   - Every ```sh block runs, in document order, in one bash session, as
//     in one terminal: exports, variables and functions carry from block
//     to block. Every command must exit 0; a command meant to fail is
//     written `... || echo "exit status $?"`.
//   - A trailing `# → OUTPUT` comment on a command's last line is that
//     command's output (stdout and stderr together, as a terminal shows
//     them). A ```text or ```json block right after an ```sh block (only
//     blank lines between) is the output of the whole block. A block uses
//     one convention or the other, and a command shown with no output must
//     print nothing.
//   - Comparing a sample with the real output: `...` in the sample stands
//     for any text (possibly several lines); trailing spaces, and the \r of
//     HTTP header lines, are ignored; and on both sides the values of the
//     keys in readmeVarying (instants, idempotency keys, latencies: what
//     changes from run to run), also inside escaped JSON, are replaced by a
//     placeholder. Nothing else is normalised.
//   - `<!-- not run by readme_test.go: REASON -->` on the line before a
//     fence: the block is not run, and the test logs it with REASON.
//   - `<!-- run by readme_test.go in the background, as in a terminal of
//     its own, until it prints "TEXT" -->` on the line before a fence: the
//     block runs in a bash of its own, in its own process group, as the
//     README tells the reader to run it in another terminal; the session
//     goes on once its output contains TEXT, and the block is stopped with
//     SIGINT (Ctrl-C) at the end.
//
// Where it runs: in a temporary copy of the files git would commit (the
// tracked files and the untracked ones that are not ignored, as they are
// in the working tree). That is a fresh clone as far as the README is
// concerned: no bootstrap binary, no .moto.log, nothing .gitignore'd. It
// is a copy of the working tree rather than a `git clone` so that
// uncommitted edits count: a contributor changing README.md or an example
// file tests the change before committing it, and CI, which runs in a
// clean checkout, tests exactly the commit.

// readmeVarying replaces, on both sides of a comparison, what differs from
// run to run: the values of these keys, as "key":"value" or "key": value,
// also escaped inside a JSON string (\"key\":\"value\").
var readmeVarying = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(\\?"(?:createdAt|updatedAt|nextFireAt|scheduledAt|attemptedAt|pausedAt|lastMissedAt|idempotencyKey)\\?":\s*\\?")[^"\\]*`), "${1}<varies>"},
	{regexp.MustCompile(`(\\?"latencyMs\\?":\s*)[0-9]+`), "${1}<varies>"},
}

const (
	readmeNotRunPrefix = "not run by readme_test.go: "
	readmeOutputArrow  = "# →"
)

var readmeBackgroundMarker = regexp.MustCompile(`^run by readme_test\.go in the background, as in a terminal of its own, until it prints "(.+)"$`)

// readmeBlock is one fenced block of the README.
type readmeBlock struct {
	Line int    // the line of the opening fence, 1-based
	Info string // the fence's info string: sh, json, text or empty
	Text string
	// NotRun is the reason given by a "not run" marker.
	NotRun string
	// ReadyWhen is the text a background block prints when it is ready.
	ReadyWhen string
	// Output is the text or json block right after an sh block.
	Output *readmeBlock
	// IsOutput marks a text or json block that is another block's output.
	IsOutput bool
}

// readmeCommand is one command of an sh block: one or more lines that bash
// parses as complete.
type readmeCommand struct {
	Line      int
	Text      string
	Sample    string // after "# →" on its last line
	HasSample bool
}

var readmeFence = regexp.MustCompile("^```([A-Za-z0-9_-]*)\\s*$")

// parseREADME returns the fenced blocks of a Markdown document, with their
// markers and outputs attached. It refuses what would make the document
// render differently from what the test runs: an unclosed fence, a fence
// line with text after it inside a block (which does not close it), an
// unknown info string, a malformed readme_test.go marker.
func parseREADME(doc string) ([]*readmeBlock, error) {
	lines := strings.Split(doc, "\n")
	var blocks []*readmeBlock
	var cur *readmeBlock
	var body []string
	blankSince := -1 // line index where the run of blank lines before now began
	lastClosed := -1 // line index of the last closing fence
	for i, l := range lines {
		if cur != nil {
			if strings.TrimRight(l, " \t") == "```" {
				cur.Text = strings.Join(body, "\n")
				blocks = append(blocks, cur)
				cur, body, lastClosed = nil, nil, i
				continue
			}
			if strings.HasPrefix(strings.TrimLeft(l, " "), "```") {
				return nil, fmt.Errorf("line %d: a fence with text after it inside the block opened on line %d does not close it (put the closing ``` on a line of its own)", i+1, cur.Line)
			}
			body = append(body, l)
			continue
		}
		if strings.TrimSpace(l) == "" {
			if blankSince < 0 {
				blankSince = i
			}
			continue
		}
		prevNonBlank := i - 1
		if blankSince >= 0 {
			prevNonBlank = blankSince - 1
		}
		blankSince = -1
		if strings.HasPrefix(strings.TrimLeft(l, " "), "```") {
			m := readmeFence.FindStringSubmatch(l)
			if m == nil {
				return nil, fmt.Errorf("line %d: malformed fence %q", i+1, l)
			}
			switch m[1] {
			case "sh", "json", "text", "":
			default:
				return nil, fmt.Errorf("line %d: fence info %q: use sh for commands (they are run), json or text for their outputs and for examples", i+1, m[1])
			}
			cur = &readmeBlock{Line: i + 1, Info: m[1]}
			if prevNonBlank >= 0 {
				if err := cur.readMarker(lines[prevNonBlank], prevNonBlank+1); err != nil {
					return nil, err
				}
			}
			// An output block follows its sh block with only blank lines between.
			if (m[1] == "text" || m[1] == "json") && len(blocks) > 0 && lastClosed == prevNonBlank {
				if prev := blocks[len(blocks)-1]; prev.Info == "sh" {
					if prev.ReadyWhen != "" {
						return nil, fmt.Errorf("line %d: a background block has no output sample", i+1)
					}
					prev.Output, cur.IsOutput = cur, true
				}
			}
			continue
		}
		if strings.Contains(l, "readme_test.go") && strings.HasPrefix(strings.TrimSpace(l), "<!--") {
			// Checked when the fence comes; a marker before anything else is an error.
			if next := nextNonBlank(lines, i+1); next < 0 || !strings.HasPrefix(lines[next], "```") {
				return nil, fmt.Errorf("line %d: a readme_test.go marker must stand on the line before a fence", i+1)
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("line %d: the block opened here is never closed", cur.Line)
	}
	for _, b := range blocks {
		if b.Info == "text" && !b.IsOutput {
			return nil, fmt.Errorf("line %d: a text block is an output: put it right after its sh block", b.Line)
		}
	}
	return blocks, nil
}

func nextNonBlank(lines []string, from int) int {
	for i := from; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "" {
			return i
		}
	}
	return -1
}

// readMarker reads a readme_test.go marker on the line before b's fence.
func (b *readmeBlock) readMarker(line string, n int) error {
	l := strings.TrimSpace(line)
	if !strings.HasPrefix(l, "<!--") || !strings.Contains(l, "readme_test.go") {
		return nil
	}
	if !strings.HasSuffix(l, "-->") {
		return fmt.Errorf("line %d: a readme_test.go marker is one line, <!-- ... -->", n)
	}
	inner := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "<!--"), "-->"))
	if b.Info != "sh" {
		return fmt.Errorf("line %d: a readme_test.go marker before a %q block: markers are for sh blocks", n, b.Info)
	}
	if reason, ok := strings.CutPrefix(inner, readmeNotRunPrefix); ok && strings.TrimSpace(reason) != "" {
		b.NotRun = strings.TrimSpace(reason)
		return nil
	}
	if m := readmeBackgroundMarker.FindStringSubmatch(inner); m != nil {
		b.ReadyWhen = m[1]
		return nil
	}
	return fmt.Errorf("line %d: unknown readme_test.go marker %q (want %q or %q)", n, l,
		"<!-- "+readmeNotRunPrefix+"REASON -->",
		`<!-- run by readme_test.go in the background, as in a terminal of its own, until it prints "TEXT" -->`)
}

// splitCommands splits an sh block into commands: whole-line comments and
// blank lines between commands are skipped, a line ending in \ continues,
// and lines are joined until bash parses them as complete (a function, a
// loop, a quoted string over several lines).
func splitCommands(b *readmeBlock) ([]readmeCommand, error) {
	lines := strings.Split(b.Text, "\n")
	var cmds []readmeCommand
	var cur []string
	start := 0
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		if len(cur) == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if len(cur) == 0 {
			start = i
		}
		cur = append(cur, l)
		if strings.HasSuffix(l, "\\") {
			continue
		}
		src := strings.Join(cur, "\n")
		complete, err := bashComplete(src)
		if err != nil {
			return nil, fmt.Errorf("README line %d: %v", b.Line+1+start, err)
		}
		if !complete {
			continue
		}
		c := readmeCommand{Line: b.Line + 1 + start, Text: src}
		if k := strings.LastIndex(l, readmeOutputArrow); k >= 0 && (k == 0 || l[k-1] == ' ' || l[k-1] == '\t') {
			c.Sample, c.HasSample = strings.TrimSpace(l[k+len(readmeOutputArrow):]), true
		}
		cmds = append(cmds, c)
		cur = nil
	}
	if len(cur) > 0 {
		return nil, fmt.Errorf("README line %d: the command that starts here is incomplete at the end of its block", b.Line+1+start)
	}
	if b.Output != nil {
		for _, c := range cmds {
			if c.HasSample {
				return nil, fmt.Errorf("README line %d: the block's output is the %s block after it, so its commands take no # → sample", c.Line, b.Output.Info)
			}
		}
	}
	return cmds, nil
}

// bashComplete reports whether src parses as complete shell input: false
// when bash wants more (an open quote, loop, function or here-document).
func bashComplete(src string) (bool, error) {
	cmd := exec.Command("bash", "--noprofile", "--norc", "-n")
	cmd.Stdin = strings.NewReader(src + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	msg := stderr.String()
	switch {
	case strings.Contains(msg, "unexpected end of file") || strings.Contains(msg, "unexpected EOF") ||
		strings.Contains(msg, "here-document"):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("bash -n: %v: %s", err, strings.TrimSpace(msg))
	}
	return true, nil
}

// normaliseOutput makes output and samples comparable: trailing spaces and
// \r go, as do leading and trailing blank lines, and readmeVarying values
// become placeholders.
func normaliseOutput(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	s = strings.Trim(strings.Join(lines, "\n"), "\n")
	for _, v := range readmeVarying {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	return s
}

// matchSample reports whether output is what sample shows, "..." standing
// for any text.
func matchSample(sample, output string) bool {
	parts := strings.Split(normaliseOutput(sample), "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`^(?s:` + strings.Join(parts, `.*`) + `)$`).MatchString(normaliseOutput(output))
}

// TestREADMEStructure checks, without running anything, what can be
// checked of the README alone: its fences and markers, that every sh block
// splits into commands and uses one output convention, that its example
// JSON documents are JSON (and its Deployer examples convert cleanly), and
// that the example timer folders it applies say what it says.
func TestREADMEStructure(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseREADME(string(raw))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	var sh, notRun int
	for _, b := range blocks {
		switch {
		case b.Info == "sh":
			sh++
			if b.NotRun != "" {
				notRun++
			}
			if _, err := splitCommands(b); err != nil {
				t.Error(err)
			}
		case b.Info == "json" && !b.IsOutput:
			if !json.Valid([]byte(b.Text)) {
				t.Errorf("README line %d: the json example is not valid JSON", b.Line)
				continue
			}
			if !isDeployerDoc([]byte(b.Text)) {
				continue
			}
			text, err := substituteEnv(b.Text, func(string) (string, bool) { return "example.com", true })
			if err != nil {
				t.Errorf("README line %d: %v", b.Line, err)
				continue
			}
			d, err := readDeployerTimer([]byte(text))
			if err != nil || len(d.Warnings) > 0 {
				t.Errorf("README line %d: the Deployer example does not convert cleanly: %v %v", b.Line, err, d.Warnings)
			}
		}
	}
	if sh < 10 || notRun > 3 {
		t.Errorf("README.md: %d sh blocks, %d of them not run; want a walk-through that runs", sh, notRun)
	}

	// The example folders the README applies.
	lookup := func(k string) (string, bool) { return map[string]string{"DEMO_HOST": "127.0.0.1"}[k], k == "DEMO_HOST" }
	desired, err := readTimerFiles([]string{"examples/timers"}, "", lookup, time.Now())
	if err != nil {
		t.Fatalf("examples/timers: %v", err)
	}
	var deployer, callclock int
	for _, d := range desired {
		if len(d.Warnings) > 0 || d.Group != "demo" {
			t.Errorf("%s: group %q, warnings %v; want group demo and no warnings", d.File, d.Group, d.Warnings)
		}
		raw, _ := os.ReadFile(d.File)
		if isDeployerDoc(raw) {
			deployer++
			target, _ := d.Doc["http"].(map[string]any)
			if u, _ := target["url"].(string); !strings.HasPrefix(u, "http://127.0.0.1:9000/") {
				t.Errorf("%s: target %q; want the demo listener on 127.0.0.1:9000", d.File, u)
			}
		} else {
			callclock++
		}
	}
	if deployer < 1 || callclock < 1 {
		t.Errorf("examples/timers: %d Deployer and %d callclock files; want both kinds", deployer, callclock)
	}
	if _, err := readTimerFiles([]string{"examples/five-field-cron"}, "", lookup, time.Now()); err == nil ||
		!strings.Contains(err.Error(), "has five fields") {
		t.Errorf("examples/five-field-cron: %v; want the five-field cron refused", err)
	}
}

// TestREADMEParse checks the parser on the mistakes issue 9 found, and on
// the conventions it reads.
func TestREADMEParse(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	for _, tc := range []struct{ name, doc, wantErr string }{
		{"fence with text after it", "```sh\necho a\n``` Its body is\n\n```sh\necho b\n```\n", "does not close it"},
		{"unclosed", "```sh\necho a\n", "never closed"},
		{"unknown info", "```bash\necho a\n```\n", "fence info"},
		{"bad marker", "<!-- not run by readme_test.go -->\n```sh\necho a\n```\n", "unknown readme_test.go marker"},
		{"stray text block", "prose\n\n```text\nhello\n```\n", "a text block is an output"},
		{"both conventions", "```sh\necho a   # → a\n```\n```text\na\n```\n", "take no # → sample"},
		{"incomplete", "```sh\nfor i in 1 2; do\n```\n", "incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks, err := parseREADME(tc.doc)
			for _, b := range blocks {
				if err == nil && b.Info == "sh" {
					_, err = splitCommands(b)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v; want an error containing %q", err, tc.wantErr)
			}
		})
	}

	doc := "<!-- run by readme_test.go in the background, as in a terminal of its own, until it prints \"ready\" -->\n" +
		"```sh\nmake run\n```\n\n" +
		"```sh\nf() {\n  echo \"$1\"\n}\ncurl -s \\\n  x   # → {\"a\":1}\n# a comment\n```\n\n" +
		"<!-- not run by readme_test.go: needs an AWS account -->\n```sh\nsam deploy\n```\n" +
		"```sh\necho hi\n```\n\n```text\nhi\n```\n"
	blocks, err := parseREADME(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 5 || blocks[0].ReadyWhen != "ready" || blocks[2].NotRun != "needs an AWS account" ||
		blocks[3].Output != blocks[4] || !blocks[4].IsOutput {
		t.Fatalf("blocks: %+v", blocks)
	}
	cmds, err := splitCommands(blocks[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || cmds[0].Line != 7 || cmds[0].HasSample || cmds[1].Sample != `{"a":1}` || cmds[1].Line != 10 {
		t.Fatalf("commands: %+v", cmds)
	}
}

// TestREADMESampleMatching checks the comparison of samples with outputs:
// what it forgives, and that a wrong sample fails.
func TestREADMESampleMatching(t *testing.T) {
	for _, tc := range []struct {
		sample, output string
		want           bool
	}{
		{`{"id":"a","shardId":"shard1"}`, "{\"id\":\"a\",\"shardId\":\"shard1\"}\n", true},
		{`{"id":"a","shardId":"shard2"}`, `{"id":"a","shardId":"shard1"}`, false},
		{`{"id":"a",...}`, `{"id":"a","shardId":"shard1"}`, true},
		{`{"id":"b",...}`, `{"id":"a","shardId":"shard1"}`, false},
		{"Plan: 2 to create, 0 to update, 0 to delete, 1 unchanged.", "Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged.", false},
		{`{"nextFireAt":"2026-11-22T09:45:00Z","createdAt":"2026-11-22T09:12:07Z"}`, `{"nextFireAt":"2026-12-01T10:45:00Z","createdAt":"2026-12-01T10:01:02Z"}`, true},
		{`{"nextFireAt":"2026-11-22T09:45:00Z"}`, `{"nextFireAt":null}`, false},
		{`"Body": "{\"timerId\":\"x\",\"scheduledAt\":\"2026-11-22T09:14:12Z\"}"`, `"Body": "{\"timerId\":\"x\",\"scheduledAt\":\"2026-12-01T08:43:01Z\"}"`, true},
		{`"Body": "{\"timerId\":\"x\",\"scheduledAt\":\"2026-11-22T09:14:12Z\"}"`, `"Body": "{\"timerId\":\"y\",\"scheduledAt\":\"2026-12-01T08:43:01Z\"}"`, false},
		{`{"latencyMs":2}`, `{"latencyMs":17}`, true},
		{"HTTP/1.1 403 Forbidden", "HTTP/1.1 403 Forbidden\r\n", true},
		{"2026-03-07T02:30:00-05:00\n2026-03-08T02:30:00-05:00", "2026-03-07T02:30:00-05:00\n2026-03-09T02:30:00-04:00", false},
		{"a\n...\nd", "a\nb\nc\nd\n", true},
		{"", "", true},
		{"", "unexpected\n", false},
	} {
		if got := matchSample(tc.sample, tc.output); got != tc.want {
			t.Errorf("matchSample(%q, %q) = %v; want %v", tc.sample, tc.output, got, tc.want)
		}
	}
}

// readmePorts are the fixed ports of the README's walk-through: moto_server,
// the local API and the demo listener.
var readmePorts = []string{"127.0.0.1:5000", "127.0.0.1:8080", "127.0.0.1:9000"}

// TestIntegrationREADME runs README.md's walk-through against the local
// stack, as a newcomer following it in a fresh clone would, and checks
// every output it shows; see the comment at the top of this file for the
// conventions. It needs the README's prerequisites (bash, git, make, go,
// moto_server, the aws CLI, curl with --aws-sigv4, python3) and its ports
// free; without them it skips, except under CI=true, where it fails.
func TestIntegrationREADME(t *testing.T) {
	t.Parallel() // it mostly waits (sweeps, a slow target, a rate limit, a spread window)
	inCI := os.Getenv("CI") != ""
	if testing.Short() && !inCI {
		t.Skip("integration test skipped in -short mode")
	}
	cannot := func(format string, args ...any) {
		t.Helper()
		if inCI {
			t.Fatalf("the README test must run under CI: "+format, args...)
		}
		t.Skipf("README test skipped: "+format, args...)
	}
	for _, tool := range []string{"bash", "git", "make", "go", "moto_server", "aws", "curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			cannot("%s is not installed (see the README's What you need)", tool)
		}
	}
	if out, _ := exec.Command("curl", "--help", "all").Output(); !bytes.Contains(out, []byte("--aws-sigv4")) {
		cannot("curl has no --aws-sigv4 (curl 7.75 or later has)")
	}
	for _, addr := range readmePorts {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			cannot("%s is taken: the README's walk-through uses it", addr)
		}
		ln.Close()
	}

	work := t.TempDir()
	dir := filepath.Join(work, "callclock")
	if err := copyCommittable(".", dir); err != nil {
		cannot("copy the repository as a fresh clone: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := parseREADME(string(raw))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	env := newcomerEnv(work)

	var backgrounds []*readmeBackground
	t.Cleanup(func() {
		// Ctrl-C in each terminal, the last one opened first; then every
		// port the walk-through used must be free again.
		for i := len(backgrounds) - 1; i >= 0; i-- {
			b := backgrounds[i]
			if !b.stop(30 * time.Second) {
				t.Errorf("README line %d: %s did not stop on Ctrl-C within 30s; killed", b.line, b.firstLine())
			}
			if t.Failed() {
				t.Logf("README line %d: the last lines of %s's output:\n%s", b.line, b.firstLine(), tail(b.output(), 40))
			}
		}
		for _, addr := range readmePorts {
			if !waitPortFree(addr, 30*time.Second) {
				t.Errorf("%s is still taken after the walk-through stopped everything it started", addr)
			}
		}
	})
	shell, err := startReadmeShell(dir, env, filepath.Join(work, "session"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shell.stop) // runs before the backgrounds stop

	start := time.Now()
	var ran, checked int
	for _, b := range blocks {
		if b.Info != "sh" {
			continue
		}
		switch {
		case b.NotRun != "":
			t.Logf("README line %d: not run: %s: %s", b.Line, b.NotRun, firstLineOf(b.Text))
			continue
		case b.ReadyWhen != "":
			bg, err := startReadmeBackground(b, dir, env, filepath.Join(work, fmt.Sprintf("background-%d.log", b.Line)))
			if err != nil {
				t.Fatalf("README line %d: %v", b.Line, err)
			}
			backgrounds = append(backgrounds, bg)
			if err := bg.waitReady(b.ReadyWhen, 10*time.Minute); err != nil { // make run builds bootstrap: slow on a cold cache
				t.Fatalf("README line %d: %s: %v; its output:\n%s", b.Line, bg.firstLine(), err, tail(bg.output(), 40))
			}
			t.Logf("README line %d: %s is running in the background (%s in)", b.Line, bg.firstLine(), time.Since(start).Round(time.Second))
			continue
		}
		cmds, err := splitCommands(b)
		if err != nil {
			t.Fatal(err)
		}
		blockStart := time.Now()
		var all []string
		for _, c := range cmds {
			out, code, err := shell.run(c.Text, 5*time.Minute)
			if err != nil {
				t.Fatalf("README line %d: %v\ncommand:\n%s\noutput so far:\n%s", c.Line, err, c.Text, out)
			}
			ran++
			if code != 0 {
				t.Fatalf("README line %d: exit status %d\ncommand:\n%s\noutput:\n%s", c.Line, code, c.Text, out)
			}
			switch {
			case c.HasSample:
				checked++
				if !matchSample(c.Sample, out) {
					t.Fatalf("README line %d: the output is not what the README shows\ncommand:\n%s\nREADME shows:\n%s\nit printed:\n%s", c.Line, c.Text, c.Sample, out)
				}
			case b.Output == nil && normaliseOutput(out) != "":
				t.Fatalf("README line %d: the command printed something the README does not show\ncommand:\n%s\nit printed:\n%s", c.Line, c.Text, out)
			}
			if out != "" && !strings.HasSuffix(out, "\n") {
				out += "\n" // the block's output shows each command's on lines of its own
			}
			all = append(all, out)
		}
		if b.Output != nil {
			checked++
			out := strings.Join(all, "")
			if !matchSample(b.Output.Text, out) {
				t.Fatalf("README line %d: the block's output is not the %s block at line %d\ncommands:\n%s\nREADME shows:\n%s\nthey printed:\n%s",
					b.Line, b.Output.Info, b.Output.Line, b.Text, b.Output.Text, out)
			}
		}
		t.Logf("README line %d: %d command(s) in %s", b.Line, len(cmds), time.Since(blockStart).Round(100*time.Millisecond))
	}
	t.Logf("README: %d commands ran, %d outputs checked, in %s", ran, checked, time.Since(start).Round(time.Second))
}

// copyCommittable copies the files git would commit from src (the tracked
// files and the untracked ones .gitignore does not exclude, as they are in
// the working tree) into dst.
func copyCommittable(src, dst string) error {
	out, err := exec.Command("git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	n := 0
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from := filepath.Join(src, name)
		st, err := os.Lstat(from)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			continue
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		if err := os.WriteFile(to, data, st.Mode().Perm()); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("git lists no files")
	}
	return nil
}

// newcomerEnv is the environment of a newcomer's fresh terminal: this
// process's, without the variables the README or callclock read (every
// AWS_* among them, so that no profile, credential or endpoint of the
// machine leaks in) and without make's, as the test itself may run under
// make.
func newcomerEnv(work string) []string {
	drop := map[string]bool{}
	for _, k := range []string{"ADDR", "SWEEP_EVERY", "API", "SIGN", "M", "DEMO_HOST", "TABLE_NAME",
		"FIRE_QUEUE_URL", "CALLBACK_QUEUE_URL", "FIRE_DLQ_URL", "SHARDS", "SECRET_PREFIX",
		"ALLOW_PRIVATE_TARGETS", "SECRET_CACHE_SECONDS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
		"MAKEOVERRIDES", "TESTFLAGS", "BASH_ENV", "ENV", "CDPATH"} {
		drop[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || drop[k] {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"AWS_CONFIG_FILE="+filepath.Join(work, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(work, "no-aws-credentials"),
		// A terminal is line-buffered; a log file is not. This lets the
		// listener's "Serving HTTP" line reach the log at once.
		"PYTHONUNBUFFERED=1")
}

// readmeShell is the reader's terminal: one bash that runs the README's
// commands one at a time. Each command is sourced from a file of its own
// with stdin from /dev/null and its output to a file of its own, so that
// variables and functions persist while outputs stay apart (a process it
// starts in the background would write to that command's file).
type readmeShell struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	dir    string
	n      int
	marker string
}

func startReadmeShell(cwd string, env []string, dir string) (*readmeShell, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &readmeShell{dir: dir, lines: make(chan string, 16), marker: "readme-test-status-" + newID()}
	s.cmd = exec.Command("bash", "--noprofile", "--norc")
	s.cmd.Dir, s.cmd.Env = cwd, env
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.cmd.Stderr = io.Discard // each command's stderr goes to its own file
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	return s, nil
}

// run runs one command and returns its output and exit status.
func (s *readmeShell) run(command string, timeout time.Duration) (string, int, error) {
	s.n++
	script := filepath.Join(s.dir, fmt.Sprintf("command-%03d.sh", s.n))
	outFile := filepath.Join(s.dir, fmt.Sprintf("output-%03d.txt", s.n))
	if err := os.WriteFile(script, []byte(command+"\n"), 0o644); err != nil {
		return "", 0, err
	}
	if _, err := fmt.Fprintf(s.stdin, "source '%s' </dev/null >'%s' 2>&1; echo \"%s $?\"\n", script, outFile, s.marker); err != nil {
		return "", 0, fmt.Errorf("the shell is gone: %w", err)
	}
	output := func() string { b, _ := os.ReadFile(outFile); return string(b) }
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return output(), 0, errors.New("the shell exited")
			}
			if rest, found := strings.CutPrefix(l, s.marker+" "); found {
				var code int
				fmt.Sscan(rest, &code)
				return output(), code, nil
			}
		case <-deadline:
			return output(), 0, fmt.Errorf("still running after %s", timeout)
		}
	}
}

// stop ends the shell and anything it left running in its process group.
func (s *readmeShell) stop() {
	s.stdin.Close()
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// readmeBackground is a block run as in a terminal of its own.
type readmeBackground struct {
	cmd  *exec.Cmd
	line int
	text string
	log  string
	done chan struct{}
}

func startReadmeBackground(b *readmeBlock, cwd string, env []string, logPath string) (*readmeBackground, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bg := &readmeBackground{line: b.Line, text: b.Text, log: logPath, done: make(chan struct{})}
	bg.cmd = exec.Command("bash", "--noprofile", "--norc", "-c", b.Text)
	bg.cmd.Dir, bg.cmd.Env, bg.cmd.Stdout, bg.cmd.Stderr = cwd, env, f, f
	bg.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bg.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { bg.cmd.Wait(); close(bg.done) }()
	return bg, nil
}

func (b *readmeBackground) output() string { out, _ := os.ReadFile(b.log); return string(out) }

func (b *readmeBackground) firstLine() string { return "`" + firstLineOf(b.text) + "`" }

// waitReady waits until the block's output contains text.
func (b *readmeBackground) waitReady(text string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(b.output(), text) {
		select {
		case <-b.done:
			return fmt.Errorf("exited (%v) before it printed %q", b.cmd.ProcessState, text)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("did not print %q within %s", text, timeout)
		}
	}
	return nil
}

// stop presses Ctrl-C: SIGINT to the block's process group. It reports
// whether the block ended within timeout; either way, whatever is left of
// its process group is then killed.
func (b *readmeBackground) stop(timeout time.Duration) bool {
	pgid := b.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGINT)
	ok := true
	select {
	case <-b.done:
	case <-time.After(timeout):
		ok = false
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-b.done
	return ok
}

// waitPortFree waits until nothing listens on addr.
func waitPortFree(addr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
