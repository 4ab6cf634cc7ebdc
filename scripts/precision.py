#!/usr/bin/env python3
"""Measures callclock's firing precision end to end, on this machine.

It starts moto_server and `bootstrap local` (a short --sweep-every) on free
loopback ports, creates TIMERS one-shot timers due at assorted seconds over
the next few minutes, each with an HTTP target on a local listener, waits
for every call, and prints the p50, p99 and max lateness of the calls
against their scheduled instants. It exits non-zero if a timer was not
called exactly once, or if the p99 lateness is above --p99-target. From the
run's log (.precision.log) it also counts what makes a run slow or wrong:
moto's 500s and occurrences delivered only on a later attempt (a message
handed out again after its visibility timeout). While the timers fire it
prints, every 10 s, how many were called so far and their lateness. The
local stack's metric records go to .precision-metrics.jsonl, off the log.
Only loopback addresses are used.

With --window N every timer has spreadSeconds N, and its lateness is
measured against its planned instant (its instant plus its offset, the
README's "Spread"), as callclock measures it.

Usage: scripts/precision.py [--timers 300] [--spread 180] [--sweep-every 10s] [--p99-target 1.0] [--window 0]
"""
import argparse
import datetime as dt
import hashlib
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where bootstrap local's metric records go (--metrics), off the log.
METRICS = os.path.join(ROOT, ".precision-metrics.jsonl")
# Seconds between the progress lines while the timers fire.
PROGRESS_EVERY = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            time.sleep(0.1)
    return False


def spread_offset(ident, window):
    """callclock's spread offset (README, "Spread"): the first 8 bytes of
    SHA-256("spread:" + id), big-endian, modulo the window; 0 without one."""
    if window <= 0:
        return 0
    return int.from_bytes(hashlib.sha256(("spread:" + ident).encode()).digest()[:8], "big") % window


def progress_line(hits, lock, due):
    """What has fired so far: how many of the timers due by now were called,
    and their lateness so far."""
    now = time.time()
    with lock:
        late = sorted(got[0][0] - due[ident] for ident, got in hits.items() if ident in due and got)
        repeated = sum(1 for got in hits.values() if len(got) > 1)
    line = "precision: %s fired %d/%d (%d due by now)" % (
        time.strftime("%H:%M:%S", time.gmtime(now)), len(late), len(due), sum(1 for at in due.values() if at <= now))
    if late:
        line += ", lateness so far p50 %.3f s, max %.3f s" % (late[len(late) // 2], late[-1])
    if repeated:
        line += ", called more than once %d" % repeated
    return line


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timers", type=int, default=300)
    ap.add_argument("--spread", type=int, default=180, help="seconds over which the timers fall due")
    ap.add_argument("--lead", type=int, default=60,
                    help="seconds before the first timer is due: creating the timers takes a while")
    ap.add_argument("--sweep-every", default="10s")
    ap.add_argument("--p99-target", type=float, default=1.0, help="seconds the p99 lateness may reach")
    ap.add_argument("--window", type=int, default=0,
                    help="spreadSeconds of every timer (1-900; 0: none): lateness against each planned instant")
    args = ap.parse_args()

    hits = {}  # timer id -> list of (arrival, scheduled)
    lock = threading.Lock()

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            arrival = time.time()
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            scheduled = self.headers.get("X-Callclock-Scheduled-At")
            with lock:
                hits.setdefault(self.headers.get("X-Callclock-Timer-Id"), []).append((arrival, scheduled))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    listener = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    target = "http://127.0.0.1:%d/fire" % listener.server_address[1]

    moto_port, api_port = free_port(), free_port()
    env = dict(os.environ, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="precision", AWS_SECRET_ACCESS_KEY="precision-secret",
               AWS_ENDPOINT_URL="http://127.0.0.1:%d" % moto_port)
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)
    procs = []
    logs = open(os.path.join(ROOT, ".precision.log"), "w")
    open(METRICS, "w").close()  # this run's records only

    def stop(*_):
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(1)))
    try:
        procs.append(subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)], stdout=logs,
                                      stderr=logs, start_new_session=True))
        if not wait_http(env["AWS_ENDPOINT_URL"] + "/moto-api/data.json", 60):
            sys.exit("precision: moto_server did not start; see .precision.log")
        subprocess.run(["go", "build", "-o", "bootstrap", "."], cwd=ROOT, check=True)
        # The log stays JSON (what this script reads back), the metric records off it.
        procs.append(subprocess.Popen([os.path.join(ROOT, "bootstrap"), "local", "--addr", "127.0.0.1:%d" % api_port,
                                       "--sweep-every", args.sweep_every, "--log", "json", "--metrics", METRICS],
                                      env=env, stdout=logs, stderr=logs, start_new_session=True))
        api = "http://127.0.0.1:%d" % api_port
        if not wait_http(api + "/", 30):
            sys.exit("precision: bootstrap local did not start; see .precision.log")

        start = int(time.time()) + args.lead
        due = {}
        for i in range(args.timers):
            at = start + (i * args.spread) // args.timers
            ident = "precision-%04d" % i
            due[ident] = at + spread_offset(ident, args.window)  # the planned instant
            timer = {"schedule": "at(%s)" % dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                     "http": {"method": "POST", "url": target, "body": "{}"}}
            if args.window > 0:
                timer["spreadSeconds"] = args.window
            body = json.dumps(timer)
            out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "--aws-sigv4", "aws:amz:us-east-1:execute-api", "--user",
                                  env["AWS_ACCESS_KEY_ID"] + ":" + env["AWS_SECRET_ACCESS_KEY"],
                                  "-X", "PUT", "-H", "Content-Type: application/json", "-d", body,
                                  api + "/periodic/" + ident], capture_output=True, text=True)
            if out.stdout != "201":
                sys.exit("precision: PUT %s answered %s" % (ident, out.stdout))
            if (i + 1) % 50 == 0 and i + 1 < args.timers:
                print("precision: created %d/%d timers" % (i + 1, args.timers), file=sys.stderr, flush=True)
        last = max(due.values())
        print("precision: %d timers due from %s to %s; waiting" % (
            args.timers, time.strftime("%H:%M:%S", time.gmtime(start)), time.strftime("%H:%M:%S", time.gmtime(last))),
            file=sys.stderr, flush=True)
        next_report = time.time() + PROGRESS_EVERY
        while time.time() < last + 8:
            time.sleep(1)
            if time.time() >= next_report:
                print(progress_line(hits, lock, due), file=sys.stderr, flush=True)
                next_report += PROGRESS_EVERY
    finally:
        stop()
        listener.shutdown()

    logs.close()
    moto_500s, later_attempts = 0, 0
    with open(os.path.join(ROOT, ".precision.log")) as f:
        for line in f:
            if '" 500 -' in line:
                moto_500s += 1
            elif '"msg":"delivered"' in line and '"attempt":1,' not in line:
                later_attempts += 1

    late, missing, repeated = [], [], []
    for ident, at in sorted(due.items()):
        got = hits.get(ident, [])
        if not got:
            missing.append(ident)
            continue
        if len(got) > 1:
            repeated.append(ident)
        late.append(got[0][0] - at)
    late.sort()
    p99 = None
    if late:
        p = lambda q: late[min(len(late) - 1, int(round(q * (len(late) - 1))))]
        p99 = p(0.99)
        print("timers %d, called %d, missing %d, called more than once %d" % (len(due), len(late), len(missing), len(repeated)))
        print("lateness (s): min %.3f  p50 %.3f  p99 %.3f  max %.3f  mean %.3f" % (
            late[0], p(0.50), p99, late[-1], statistics.mean(late)))
    print("moto 500s %d, delivered only on a later attempt %d (log: .precision.log, metrics: .precision-metrics.jsonl)" % (
        moto_500s, later_attempts))
    failed = False
    if missing or repeated:
        print("missing: %s\nrepeated: %s" % (missing[:10], repeated[:10]), file=sys.stderr)
        failed = True
    if p99 is not None and p99 > args.p99_target:
        print("precision: p99 lateness %.3f s is above the target of %.3f s" % (p99, args.p99_target), file=sys.stderr)
        failed = True
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
