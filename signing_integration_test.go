package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// receiverScript is the independent receiver: Python 3, standard library
// only, verifying as README.md tells receivers to.
const receiverScript = "testdata/callclock_receiver.py"

// needPython returns the python3 to run receiverScript with; without it
// the test skips, except under CI=true, where it fails.
func needPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 is needed under CI: %v", err)
		}
		t.Skipf("python3 not found: %v", err)
	}
	return py
}

// TestSignatureReadmeVerifier: the README's verification example is the
// receiver script's, verbatim, and it accepts the README's known-answer
// vector (the one TestSignatureKnownAnswer holds Go's signer to) and
// refuses it with any signed part changed, or outside its tolerance.
func TestSignatureReadmeVerifier(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(receiverScript)
	if err != nil {
		t.Fatal(err)
	}
	// The fenced block that defines verify: its fences are bare, as
	// readme_test.go allows for examples.
	text := string(readme)
	at := strings.Index(text, "\ndef verify(")
	open := strings.LastIndex(text[:max(at, 0)], "\n```\n")
	end := strings.Index(text[max(at, 0):], "\n```\n")
	if at < 0 || open < 0 || end < 0 {
		t.Fatal("README.md has no fenced block with def verify(")
	}
	block := text[open+len("\n```\n") : at+end+1]
	_, marked, _ := strings.Cut(string(script), "# --- README: verify ---\n")
	marked, _, _ = strings.Cut(marked, "# --- README: end ---\n")
	if diff := cmp.Diff(block, marked); diff != "" {
		t.Errorf("README's verify and %s's differ (-README +script):\n%s", receiverScript, diff)
	}
	if !strings.Contains(string(readme), kaSignature) || !strings.Contains(string(readme), kaSecret) {
		t.Errorf("README.md does not give the known-answer vector %s", kaSignature)
	}
	out, err := exec.Command(needPython(t), receiverScript, "vector").CombinedOutput()
	if err != nil {
		t.Fatalf("%s vector: %v\n%s", receiverScript, err, out)
	}
	var got map[string]bool
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s vector: %s", receiverScript, out)
	}
	want := map[string]bool{"vector": true, "method": false, "url": false, "body": false, "key": false,
		"idempotency-key": false, "timestamp": false, "stale": false, "early": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the Python verifier on the vector (-want +got):\n%s", diff)
	}
}

// pyEntry is one line of the receiver's log: a request and its decision.
type pyEntry struct {
	Method, Path, Body, Decision string
	Headers                      map[string]string
	Status                       int
}

// pyReceiver is the running receiver script.
type pyReceiver struct {
	URL     string
	mu      sync.Mutex
	entries []pyEntry
}

// startReceiver runs receiverScript's server, knowing keys, until the
// test ends.
func startReceiver(t *testing.T, keys ...string) *pyReceiver {
	t.Helper()
	cmd := exec.Command(needPython(t), receiverScript, "serve")
	cmd.Env = append(os.Environ(), "CALLCLOCK_KEYS="+strings.Join(keys, ","))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "listening ") {
		t.Fatalf("receiver did not start: %q", lines.Text())
	}
	r := &pyReceiver{URL: "http://127.0.0.1:" + strings.TrimPrefix(lines.Text(), "listening ")}
	go func() {
		for lines.Scan() {
			var e pyEntry
			if err := json.Unmarshal(lines.Bytes(), &e); err != nil {
				t.Errorf("receiver line %q: %v", lines.Text(), err)
				continue
			}
			r.mu.Lock()
			r.entries = append(r.entries, e)
			r.mu.Unlock()
		}
	}()
	return r
}

// For returns the entries of requests whose path starts with prefix.
func (r *pyReceiver) For(prefix string) []pyEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pyEntry
	for _, e := range r.entries {
		if strings.HasPrefix(e.Path, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// resend sends e again to the receiver, with change applied first, and
// returns the receiver's decision.
func (r *pyReceiver) resend(t *testing.T, e pyEntry, change func(e *pyEntry)) string {
	t.Helper()
	e.Headers = maps.Clone(e.Headers)
	change(&e)
	before := len(r.For(e.Path))
	req, err := http.NewRequest(e.Method, r.URL+e.Path, strings.NewReader(e.Body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range e.Headers {
		if k != "Host" && k != "Content-Length" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var decision string
	waitFor(t, "the receiver's decision", 5*time.Second, func() bool {
		got := r.For(e.Path)
		if len(got) > before {
			decision = got[len(got)-1].Decision
		}
		return decision != ""
	})
	return decision
}

// TestIntegrationSignedDelivery sends real firings through the local
// stack (API, invoker, moto's SSM) to the independent Python receiver:
// it verifies a signed call whose URL, header and body hold every context
// placeholder, a call signed during a rotation (new and previous key),
// and a retry (signed anew, its attempt number 2); it rejects a call
// signed with a key it does not know, which callclock records as failed.
// Each of the calls it accepted, sent again with its body, URL, method,
// idempotency key or timestamp changed, is rejected; sent again as it
// was, it is recognised as a duplicate and not processed; signed by Go's
// signer outside the tolerance window, it is rejected, inside, accepted.
func TestIntegrationSignedDelivery(t *testing.T) {
	receiver := startReceiver(t, "key-new-4f9a")
	clients, cfg := motoStack(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.Shards, cfg.SecretPrefix, cfg.AllowPrivateTargets = 2, "/callclock/", true
	keys := map[string]string{"/callclock/sig/new": "key-new-4f9a", "/callclock/sig/newer": "key-newer-7c2e", "/callclock/sig/other": "key-other-1d5b"}
	for name, v := range keys {
		putSecret(t, clients, name, v)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	router := newRouter(cfg, clients, log)
	api, _ := startLocal(t, ctx, router, cfg, clients, log)

	signing := func(secret, previous string) string {
		s := `"signing":{"secret":"aws-secret(/callclock/sig/` + secret + `)"`
		if previous != "" {
			s += `,"previousSecret":"aws-secret(/callclock/sig/` + previous + `)"`
		}
		return s + "}"
	}
	target := func(path, sign string) string {
		return `"http":{"method":"POST","url":"` + receiver.URL + path + `",` +
			`"headers":{"Content-Type":"application/json","X-Attempt":"callclock(attempt-number)"},` +
			`"body":"{\"timer\":\"callclock(timer-id)\",\"group\":\"callclock(group)\",\"at\":\"callclock(scheduled-time)\",\"sent\":\"callclock(delivery-time)\"}",` + sign + `}`
	}
	// Each fires at once (a rate without startAt): its PUT sends it.
	timers := map[string]string{
		"signed":   `{"schedule":"rate(1 hour)","group":"sig",` + target("/hook/callclock(timer-id)?at=callclock(scheduled-time)&key=callclock(idempotency-key)", signing("new", "")) + `}`,
		"rotating": `{"schedule":"rate(1 hour)",` + target("/rotating", signing("newer", "new")) + `}`,
		"flaky":    `{"schedule":"rate(1 hour)","retry":{"maxAttempts":2,"maxAgeSeconds":600},` + target("/flaky/callclock(timer-id)", signing("new", "")) + `}`,
		"forged":   `{"schedule":"rate(1 hour)","retry":{"maxAttempts":0,"maxAgeSeconds":600},` + target("/forged", signing("other", "")) + `}`,
	}
	for id, body := range timers {
		if code, resp := signedDo(t, testCreds, "PUT", api+"/periodic/"+id, body); code != 201 {
			t.Fatalf("PUT %s: %d %s", id, code, resp)
		}
	}
	waitFor(t, "every firing to reach the receiver", 60*time.Second, func() bool {
		return len(receiver.For("/hook/")) == 1 && len(receiver.For("/rotating")) == 1 && len(receiver.For("/flaky/")) == 2 && len(receiver.For("/forged")) == 1
	})
	decisions := map[string][]string{}
	for _, p := range []string{"/hook/", "/rotating", "/flaky/", "/forged"} {
		for _, e := range receiver.For(p) {
			decisions[p] = append(decisions[p], e.Decision+" attempt "+e.Headers["X-Attempt"])
		}
	}
	want := map[string][]string{"/hook/": {"processed attempt 1"}, "/rotating": {"processed attempt 1"},
		"/flaky/": {"failed for a moment attempt 1", "processed attempt 2"}, "/forged": {"rejected attempt 1"}}
	if diff := cmp.Diff(want, decisions); diff != "" {
		t.Errorf("the receiver's decisions (-want +got):\n%s", diff)
	}
	if got := receiver.For("/rotating")[0].Headers[SignatureHeader]; strings.Count(got, "v1=") != 2 {
		t.Errorf("the rotating timer's signature %q, want two v1 values", got)
	}
	checkSignedOutcomes(t, api)

	signed := receiver.For("/hook/")[0]
	checkResolved(t, api, signed)
	checkTampering(t, receiver, signed)
	for _, v := range keys {
		if strings.Contains(logs.String(), v) {
			t.Errorf("the log holds the signing key %q", v)
		}
	}
}

// checkResolved: what the receiver got of the signed timer's call, e,
// has every placeholder resolved: the URL's escaped for its path and
// query, the body's as text.
func checkResolved(t *testing.T, api string, e pyEntry) {
	t.Helper()
	var doc struct{ LastFire *LastFire }
	_, body := signedDo(t, testCreds, "GET", api+"/periodic/signed", "")
	json.Unmarshal([]byte(body), &doc)
	at := doc.LastFire.ScheduledAt.UTC()
	wantPath := "/hook/signed?at=" + strings.ReplaceAll(at.Format(time.RFC3339), ":", "%3A") + "&key=signed%2F" + strings.ReplaceAll(at.Format(time.RFC3339), ":", "%3A")
	if e.Path != wantPath {
		t.Errorf("path %s, want %s", e.Path, wantPath)
	}
	var sent struct{ Timer, Group, At, Sent string }
	if err := json.Unmarshal([]byte(e.Body), &sent); err != nil {
		t.Fatalf("body %s: %v", e.Body, err)
	}
	deliveredAt, err := time.Parse(time.RFC3339, sent.Sent)
	if sent.Timer != "signed" || sent.Group != "sig" || sent.At != at.Format(time.RFC3339) || err != nil || deliveredAt.Before(at) || !strings.HasSuffix(sent.Sent, "Z") {
		t.Errorf("body %s: want timer signed, group sig, at %s, sent an RFC 3339 UTC instant at or after it", e.Body, at.Format(time.RFC3339))
	}
}

// checkSignedOutcomes: the accepted calls are delivered, the one signed
// with an unknown key failed with the receiver's 401.
func checkSignedOutcomes(t *testing.T, api string) {
	t.Helper()
	for id, want := range map[string]string{"signed": "delivered 204 1", "rotating": "delivered 204 1", "flaky": "delivered 204 2", "forged": "failed 401 1"} {
		var doc struct{ LastFire *LastFire }
		waitFor(t, id+"'s outcome", 20*time.Second, func() bool {
			_, body := signedDo(t, testCreds, "GET", api+"/periodic/"+id, "")
			json.Unmarshal([]byte(body), &doc)
			return doc.LastFire != nil && doc.LastFire.Outcome != OutcomeRetrying
		})
		if f := doc.LastFire; f.Outcome+" "+strconv.Itoa(f.Status)+" "+strconv.Itoa(f.Attempt) != want {
			t.Errorf("%s lastFire %+v, want %s", id, f, want)
		}
	}
}

// checkTampering sends e, a call the receiver accepted, again: changed,
// as it was, and signed anew by Go's signer.
func checkTampering(t *testing.T, r *pyReceiver, e pyEntry) {
	t.Helper()
	sig := e.Headers[SignatureHeader]
	t0, err := strconv.ParseInt(sig[len("t="):strings.Index(sig, ",")], 10, 64)
	if err != nil {
		t.Fatalf("signature %q: %v", sig, err)
	}
	changes := map[string]func(e *pyEntry){
		"body":            func(e *pyEntry) { e.Body = strings.Replace(e.Body, `"sig"`, `"six"`, 1) },
		"url":             func(e *pyEntry) { e.Path += "&extra=1" },
		"method":          func(e *pyEntry) { e.Method = "PUT" },
		"idempotency key": func(e *pyEntry) { e.Headers["Idempotency-Key"] += "x" },
		"timestamp": func(e *pyEntry) {
			e.Headers[SignatureHeader] = strings.Replace(sig, "t="+strconv.FormatInt(t0, 10), "t="+strconv.FormatInt(t0+1, 10), 1)
		},
	}
	for what, change := range changes {
		if got := r.resend(t, e, change); got != "rejected" {
			t.Errorf("sent again with its %s changed: %s, want rejected", what, got)
		}
	}
	if got := r.resend(t, e, func(*pyEntry) {}); got != "duplicate" {
		t.Errorf("sent again as it was: %s, want duplicate (not processed again)", got)
	}
	resign := func(at time.Time, key string) func(e *pyEntry) {
		return func(e *pyEntry) {
			e.Headers["Idempotency-Key"] = key
			e.Headers[SignatureHeader] = signature([][]byte{[]byte("key-new-4f9a")}, at, e.Method, r.URL+e.Path, key, []byte(e.Body))
		}
	}
	if got := r.resend(t, e, resign(time.Now().Add(-6*time.Minute), "signed/stale")); got != "rejected" {
		t.Errorf("signed 6 minutes ago: %s, want rejected", got)
	}
	if got := r.resend(t, e, resign(time.Now(), "signed/fresh")); got != "processed" {
		t.Errorf("signed now by Go's signer: %s, want processed", got)
	}
}
