#!/usr/bin/env python3
"""Runs `go test -json ARGS` and shows its progress: one line per finished
top-level test, with a count and its time, a line naming what still runs
when nothing has finished for a while, the full output of every failure at
the end, and a summary (passed, failed, skipped, with the skip reasons).

With -v among ARGS it streams the whole output instead, as `go test -v`
prints it. --output FILE always gets that whole output, as `go test -v`
prints it (.ci/run checks it). A build or vet failure shows the compiler's
or vet's message as it comes. The exit status is go test's: non-zero when
anything failed or did not build.

Usage: scripts/test-progress.py [--output FILE] [--] GO_TEST_ARGS...
"""
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time

# How long nothing may finish before a line says what is still running.
QUIET_SECONDS = 30

# go test's flags that take no value; any other flag written without "="
# takes the next argument (so that what follows is not a package).
BOOL_FLAGS = {"v", "race", "short", "failfast", "json", "cover", "benchmem", "msan", "asan", "x", "n", "a",
              "trimpath", "fullpath", "modcacherw", "work", "linkshared", "buildvcs"}

TEST_FUNC = re.compile(r"^func ((?:Test|Fuzz)(?:[^a-z]\w*)?)\(\w+ \*testing\.[TF]\)", re.M)


def flag_value(args, name):
    """The value of -name in args (as -name=V or -name V), or None."""
    for i, a in enumerate(args):
        bare = a.lstrip("-")
        if a.startswith("-") and bare.startswith(name + "="):
            return bare[len(name) + 1:]
        if a.startswith("-") and bare == name and i + 1 < len(args):
            return args[i + 1]
    return None


def packages(args):
    """The package patterns among go test's args (default ".")."""
    pkgs, skip_next = [], False
    for a in args:
        if skip_next:
            skip_next = False
        elif a.startswith("-"):
            skip_next = "=" not in a and a.lstrip("-") not in BOOL_FLAGS
        else:
            pkgs.append(a)
    return pkgs or ["."]


def top_pattern(value):
    """The top-level part of a -run or -skip pattern, compiled; None for
    none, False if Python cannot read it."""
    if value is None:
        return None
    try:
        return re.compile(value.split("/")[0])
    except re.error:
        return False


def count_tests(args):
    """How many top-level tests (and fuzz targets' seed runs) go test will
    report, read from the test files of its packages; None if unknown."""
    run, skip = top_pattern(flag_value(args, "run")), flag_value(args, "skip")
    # A -skip of subtests (a/b) skips no top-level test.
    skip = top_pattern(skip) if skip is not None and "/" not in skip else None
    if run is False or skip is False:
        return None
    listed = subprocess.run(["go", "list", "-f", "{{.Dir}}\t{{join .TestGoFiles \"\\t\"}}\t{{join .XTestGoFiles \"\\t\"}}"]
                            + packages(args), capture_output=True, text=True)
    if listed.returncode != 0:
        return None  # go test reports it
    total = 0
    for line in listed.stdout.splitlines():
        folder, *files = line.split("\t")
        for name in filter(None, files):
            with open(os.path.join(folder, name), encoding="utf-8", errors="replace") as f:
                for fn in TEST_FUNC.findall(f.read()):
                    if (run is None or run.search(fn)) and not (skip and skip.search(fn)):
                        total += 1
    return total


def duration(seconds):
    if seconds < 60:
        return "%.1fs" % seconds
    return "%dm%02ds" % (seconds // 60, seconds % 60)


class Progress:
    """The state of one go test run, fed its JSON events."""

    def __init__(self, total, verbose, out, colour):
        self.total, self.verbose, self.out, self.colour = total, verbose, out, colour
        self.done = 0
        self.running = {}  # (package, test) -> start time
        self.output = {}  # (package, top-level test) -> [lines]
        self.package_output = {}  # package -> [lines] not in a test
        self.failed, self.skipped, self.packages = [], [], []
        self.last_news = time.time()
        self.build_failed = False

    def paint(self, code, text):
        return "\x1b[%sm%s\x1b[0m" % (code, text) if self.colour else text

    def write(self, text):
        sys.stdout.write(text)
        sys.stdout.flush()

    def raw(self, text):
        if self.out:
            self.out.write(text)
        if self.verbose:
            self.write(text)

    def event(self, ev):
        action, pkg, test = ev.get("Action"), ev.get("Package", ev.get("ImportPath", "")), ev.get("Test")
        text = ev.get("Output", "")
        if action == "build-output":
            if self.out:
                self.out.write(text)
            self.write(text)  # the compiler's or vet's message, at once
        elif action == "build-fail":
            self.build_failed = True
        elif action == "output":
            self.raw(text)
            if test:
                self.output.setdefault((pkg, test.split("/")[0]), []).append(text)
            else:
                self.package_output.setdefault(pkg, []).append(text)
        elif action == "run" and test and "/" not in test:
            self.running[(pkg, test)] = time.time()
        elif action in ("pass", "fail", "skip"):
            self.result(action, pkg, test, ev.get("Elapsed", 0.0))

    def result(self, action, pkg, test, elapsed):
        if not test:
            self.packages.append((action, pkg, elapsed))
            return
        top = test.split("/")[0]
        if action == "skip":
            self.skipped.append((test, self.skip_reason(pkg, top, test)))
        if "/" in test:
            return
        self.running.pop((pkg, test), None)
        self.done += 1
        self.last_news = time.time()
        if action == "fail":
            self.failed.append((pkg, test))
        elif action == "pass":
            self.output.pop((pkg, test), None)
        if self.verbose:
            return
        word = {"pass": "ok  ", "fail": self.paint("1;31", "FAIL"), "skip": self.paint("33", "SKIP")}[action]
        count = "%*d/%d" % (len(str(self.total)), self.done, self.total) if self.total and self.done <= self.total else str(self.done)
        self.write("[%s] %s %s %s\n" % (count, word, test, duration(elapsed)))

    def skip_reason(self, pkg, top, test):
        """The text a skipped test logged (t.Skip's reason), on one line."""
        lines = [l.strip() for l in self.output.get((pkg, top), [])
                 if l.strip() and not l.lstrip().startswith(("=== ", "--- "))]
        own = [l for l in lines if test == top or test.split("/")[-1] in l] or lines
        return own[-1] if own else ""

    def quiet(self):
        """A line naming what still runs, when nothing has finished for a while."""
        if self.verbose or not self.running or time.time() - self.last_news < QUIET_SECONDS:
            return
        now = time.time()
        oldest = sorted(self.running.items(), key=lambda kv: kv[1])[:3]
        names = ", ".join("%s (%s)" % (t, duration(now - start)) for (_, t), start in oldest)
        more = " and %d more" % (len(self.running) - 3) if len(self.running) > 3 else ""
        self.write("         still running: %s%s\n" % (names, more))
        self.last_news = now

    def summary(self, seconds):
        for pkg, test in self.failed:
            self.write(self.paint("1;31", "\n=== FAIL %s (%s): its output\n" % (test, pkg)))
            self.write("".join(self.output.get((pkg, test), [])))
        unfinished = list(self.running)
        for action, pkg, _ in self.packages:
            # A panic, a timeout, a race outside a test, a build failure:
            # what the package printed besides its tests and its verdict.
            own = [l for l in self.package_output.get(pkg, [])
                   if l.strip() not in ("PASS", "FAIL") and not l.startswith(("FAIL\t", "ok  \t"))]
            if action == "fail" and (own or not self.failed):
                self.write(self.paint("1;31", "\n=== FAIL %s: the package's output\n" % pkg))
                self.write("".join(own or self.package_output.get(pkg, [])))
        for pkg, test in unfinished:
            self.write(self.paint("1;31", "\n=== %s (%s) did not finish: its output\n" % (test, pkg)))
            self.write("".join(self.output.get((pkg, test), [])))
        if self.skipped:
            self.write("\nskipped:\n" + "".join("  %s: %s\n" % s for s in self.skipped))
        passed = self.done - len(self.failed) - sum(1 for t, _ in self.skipped if "/" not in t)
        top_skips = sum(1 for t, _ in self.skipped if "/" not in t)
        sub_skips = len(self.skipped) - top_skips
        line = "\n%d test%s in %s: %d passed, %d failed, %d skipped" % (
            self.done, "" if self.done == 1 else "s", duration(seconds), passed, len(self.failed), top_skips)
        if sub_skips:
            line += " (and %d skipped subtests)" % sub_skips
        self.write(line + "\n")
        for action, pkg, elapsed in self.packages:
            self.write("%s %s %s\n" % ({"pass": "ok  ", "fail": "FAIL", "skip": "?   "}[action], pkg, duration(elapsed)))


def main():
    args = sys.argv[1:]
    out_path = None
    if args[:1] == ["--output"]:
        out_path, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    verbose = "-v" in args or "-test.v" in args
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    out = open(out_path, "w") if out_path else None
    progress = Progress(count_tests(args), verbose, out, colour)
    start = time.time()
    proc = subprocess.Popen(["go", "test", "-json"] + args, stdout=subprocess.PIPE, text=True,
                            encoding="utf-8", errors="replace")
    lines = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                progress.quiet()
                continue
            if line is None:
                break
            try:
                progress.event(json.loads(line))
            except ValueError:
                if out:
                    out.write(line)
                progress.write(line)  # not an event: go's own words
        code = proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        sys.exit(130)
    finally:
        if out:
            out.close()
    progress.summary(time.time() - start)
    if out_path:
        print("the whole output, as go test -v prints it: %s" % out_path)
    if code == 0 and (progress.failed or progress.build_failed):
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
