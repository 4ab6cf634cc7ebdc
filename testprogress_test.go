package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// This file tests scripts/test-progress.py, what `make test` runs go test
// through, on a small module of its own.

const progressModuleTests = `package m

import "testing"

func TestPass(t *testing.T) { t.Log("hello") }
func TestFail(t *testing.T) { t.Log("some context"); t.Errorf("broken: %d", 42) }
func TestSkip(t *testing.T) { t.Skip("needs moto_server") }
func TestSub(t *testing.T) {
	t.Run("a", func(t *testing.T) {})
	t.Run("b", func(t *testing.T) { t.Skip("no b here") })
}
func TestMain(m *testing.M) { m.Run() }
`

// runProgress runs the script in a module holding files, with args, and
// returns its output (times replaced by T), its exit code, and the
// --output file's text.
func runProgress(t *testing.T, files map[string]string, args ...string) (out string, code int, whole string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is needed for make test")
		}
		t.Skip("no python3")
	}
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.26\n"
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs("scripts/test-progress.py")
	if err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "whole.txt")
	cmd := exec.Command("python3", append([]string{script, "--output", outFile}, args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "GOFLAGS=", "GOWORK=off", "NO_COLOR=1")
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(outFile)
	times := regexp.MustCompile(`\b\d+(?:\.\d+)?s\b|\b\d+m\d\ds\b`)
	return times.ReplaceAllString(string(b), "T"), code, string(data)
}

// TestTestProgress checks what `make test` prints: a numbered line per
// finished top-level test, the failure's whole output and the skip reasons
// at the end, a summary, go test's exit status, and the whole output, as
// go test -v prints it, in the --output file (what .ci/run checks).
func TestTestProgress(t *testing.T) {
	out, code, whole := runProgress(t, map[string]string{"a_test.go": progressModuleTests}, "-count=1", "./...")
	want := `[1/4] ok   TestPass T
[2/4] FAIL TestFail T
[3/4] SKIP TestSkip T
[4/4] ok   TestSub T

=== FAIL TestFail (example.com/m): its output
=== RUN   TestFail
    a_test.go:6: some context
    a_test.go:6: broken: 42
--- FAIL: TestFail (T)

skipped:
  TestSkip: a_test.go:7: needs moto_server
  TestSub/b: a_test.go:10: no b here

4 tests in T: 2 passed, 1 failed, 1 skipped (and 1 skipped subtests)
FAIL example.com/m T
`
	if diff := cmp.Diff(want, strings.SplitAfter(out, "the whole output")[0][:len(want)]); diff != "" || code != 1 {
		t.Errorf("exit %d (want 1); output (-want +got):\n%s\nall of it:\n%s", code, diff, out)
	}
	for _, line := range []string{"--- PASS: TestPass (", "--- SKIP: TestSub/b (", "--- FAIL: TestFail (", "    a_test.go:5: hello"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line)).MatchString(whole) {
			t.Errorf("the --output file has no line %q:\n%s", line, whole)
		}
	}

	// -run counts only the tests it runs; all passed is exit 0.
	out, code, _ = runProgress(t, map[string]string{"a_test.go": progressModuleTests}, "-count=1", "-run", "TestPass|TestSub", "./...")
	if !strings.HasPrefix(out, "[1/2] ok   TestPass T\n[2/2] ok   TestSub T\n") || code != 0 {
		t.Errorf("-run: exit %d (want 0), output:\n%s", code, out)
	}

	// A build failure shows the compiler's message and fails.
	out, code, _ = runProgress(t, map[string]string{"a_test.go": progressModuleTests,
		"b_test.go": "package m\n\nimport \"testing\"\n\nfunc TestBroken(t *testing.T) { notDefined() }\n"}, "-count=1", "./...")
	if !strings.Contains(out, "b_test.go:5:33: undefined: notDefined") || !strings.Contains(out, "[build failed]") || code == 0 {
		t.Errorf("build failure: exit %d (want non-zero), output:\n%s", code, out)
	}

	// A test still running at go test's -timeout: its output, the panic's.
	out, code, _ = runProgress(t, map[string]string{"a_test.go": "package m\n\nimport (\n\t\"testing\"\n\t\"time\"\n)\n\n" +
		"func TestSlow(t *testing.T) { t.Log(\"waiting\"); time.Sleep(time.Minute) }\n"}, "-count=1", "-timeout", "1s", "./...")
	if !strings.Contains(out, "=== TestSlow (example.com/m) did not finish: its output\n=== RUN   TestSlow\n    a_test.go:8: waiting\npanic: test timed out") || code == 0 {
		t.Errorf("timeout: exit %d (want non-zero), output:\n%s", code, out)
	}
}
