#!/usr/bin/env python3
"""An independent receiver of signed callclock calls, standard library only.

It verifies Callclock-Signature exactly as README.md ("Signed delivery")
tells receivers to: the function between the markers below is the README's
example, verbatim (TestIntegrationSignedDelivery checks that it is).

  callclock_receiver.py serve     serves on 127.0.0.1, a free port; the keys
                                  are CALLCLOCK_KEYS (comma-separated). It
                                  prints "listening PORT", then one JSON line
                                  per request: what it received and decided.
                                  The first request to a path under /flaky/
                                  is answered 503 before it is verified, as a
                                  receiver that fails for a moment would.
  callclock_receiver.py vector    checks the README's known-answer vector.
"""

import http.server
import json
import os
import sys
import threading

# --- README: verify ---
import hashlib, hmac, time

def verify(secret, method, url, headers, body, now=None, tolerance=300):
    """Whether a callclock call is authentic and recent. secret: bytes; url: the
    scheme, the Host header and the request target as received; headers: a
    case-insensitive mapping (as http.server's); body: bytes, as received."""
    fields = [p.strip().partition("=") for p in headers.get("Callclock-Signature", "").split(",")]
    t = next((v for k, _, v in fields if k == "t"), "")
    if not (t.isascii() and t.isdigit()) or abs((time.time() if now is None else now) - int(t)) > tolerance:
        return False
    signed = "\n".join(["callclock-v1", t, method, url, headers.get("Idempotency-Key", ""),
                        hashlib.sha256(body).hexdigest()])
    want = hmac.new(secret, signed.encode(), hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(v, want) for k, _, v in fields)
# --- README: end ---


def vector():
    """The README's known-answer vector, and one change to each signed part."""
    url = "https://example.com/hook?at=2027-01-01T09%3A00%3A00Z"
    headers = {"Callclock-Signature": "t=1798794000,v1=b0b3d11fc97b4858a457189cf09d6ef525afa579703276d6858370ce7447b4cd",
               "Idempotency-Key": "nightly/2027-01-01T09:00:00Z"}
    key, body, now = b"whsec-example-key", b'{"n":1}', 1798794000
    results = {
        "vector": verify(key, "POST", url, headers, body, now=now),
        "method": verify(key, "PUT", url, headers, body, now=now),
        "url": verify(key, "POST", url + "&x=1", headers, body, now=now),
        "body": verify(key, "POST", url, headers, b'{"n":2}', now=now),
        "key": verify(b"other", "POST", url, headers, body, now=now),
        "idempotency-key": verify(key, "POST", url, dict(headers, **{"Idempotency-Key": "x"}), body, now=now),
        "timestamp": verify(key, "POST", url, dict(headers, **{"Callclock-Signature": headers["Callclock-Signature"].replace("t=1798794000", "t=1798794001")}), body, now=now),
        "stale": verify(key, "POST", url, headers, body, now=now + 301),
        "early": verify(key, "POST", url, headers, body, now=now - 301),
    }
    print(json.dumps(results, sort_keys=True))


class Receiver(http.server.BaseHTTPRequestHandler):
    """Verifies each call, then drops one whose idempotency key it has
    processed already: answered 200, so that callclock stops retrying,
    but not processed again."""

    keys = []
    processed = set()
    flaky = set()
    lock = threading.Lock()

    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = "http://" + self.headers.get("Host", "") + self.path
        key = self.headers.get("Idempotency-Key", "")
        entry = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                 "body": body.decode("utf-8", "replace")}
        with self.lock:
            if self.path.startswith("/flaky/") and self.path not in self.flaky:
                self.flaky.add(self.path)
                status, entry["decision"] = 503, "failed for a moment"
            elif not any(verify(k, self.command, url, self.headers, body) for k in self.keys):
                status, entry["decision"] = 401, "rejected"
            elif key in self.processed:
                status, entry["decision"] = 200, "duplicate"
            else:
                self.processed.add(key)
                status, entry["decision"] = 204, "processed"
        entry["status"] = status
        print(json.dumps(entry, sort_keys=True), flush=True)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_one

    def log_message(self, *args):
        pass


def serve():
    Receiver.keys = [k.encode() for k in os.environ["CALLCLOCK_KEYS"].split(",")]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print("listening %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    {"serve": serve, "vector": vector}[sys.argv[1]]()
