package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// The known-answer vector README.md's "Signed delivery" gives receivers.
const (
	kaSecret    = "whsec-example-key"
	kaTime      = 1798794000 // 2027-01-01T09:00:00Z
	kaMethod    = "POST"
	kaURL       = "https://example.com/hook?at=2027-01-01T09%3A00%3A00Z"
	kaKey       = "nightly/2027-01-01T09:00:00Z"
	kaBody      = `{"n":1}`
	kaSignature = "t=1798794000,v1=b0b3d11fc97b4858a457189cf09d6ef525afa579703276d6858370ce7447b4cd"
)

// TestSignatureKnownAnswer: the README's vector, and its string-to-sign
// line by line.
func TestSignatureKnownAnswer(t *testing.T) {
	t.Parallel()
	wantPayload := "callclock-v1\n1798794000\nPOST\nhttps://example.com/hook?at=2027-01-01T09%3A00%3A00Z\nnightly/2027-01-01T09:00:00Z\n" +
		"2bfd14f43d17fc7cea24e0917a8879b4b2f880b8baeec1b9d90fbaad655e71bd"
	if diff := cmp.Diff(wantPayload, stringToSign(kaTime, kaMethod, kaURL, kaKey, []byte(kaBody))); diff != "" {
		t.Errorf("stringToSign (-want +got):\n%s", diff)
	}
	got := signature([][]byte{[]byte(kaSecret)}, time.Unix(kaTime, 0), kaMethod, kaURL, kaKey, []byte(kaBody))
	if got != kaSignature {
		t.Errorf("signature = %s, want %s", got, kaSignature)
	}
}

// TestSignatureCoversEachPart: changing any signed part, or the key,
// changes the signature; two keys give two v1 values, the current first.
func TestSignatureCoversEachPart(t *testing.T) {
	t.Parallel()
	key := [][]byte{[]byte(kaSecret)}
	base := signature(key, time.Unix(kaTime, 0), kaMethod, kaURL, kaKey, []byte(kaBody))
	variants := map[string]string{
		"time":   signature(key, time.Unix(kaTime+1, 0), kaMethod, kaURL, kaKey, []byte(kaBody)),
		"method": signature(key, time.Unix(kaTime, 0), "PUT", kaURL, kaKey, []byte(kaBody)),
		"url":    signature(key, time.Unix(kaTime, 0), kaMethod, kaURL+"&x=1", kaKey, []byte(kaBody)),
		"key":    signature(key, time.Unix(kaTime, 0), kaMethod, kaURL, kaKey+"x", []byte(kaBody)),
		"body":   signature(key, time.Unix(kaTime, 0), kaMethod, kaURL, kaKey, []byte(`{"n":2}`)),
		"secret": signature([][]byte{[]byte("other")}, time.Unix(kaTime, 0), kaMethod, kaURL, kaKey, []byte(kaBody)),
	}
	v1 := func(sig string) string { return sig[strings.Index(sig, "v1="):] }
	for part, sig := range variants {
		if part != "time" && strings.HasPrefix(sig, "t=") && sig[:strings.Index(sig, ",")] != "t=1798794000" {
			t.Errorf("%s: t changed: %s", part, sig)
		}
		if v1(sig) == v1(base) {
			t.Errorf("changing the %s keeps the signature %s", part, sig)
		}
	}
	two := signature([][]byte{[]byte(kaSecret), []byte("other")}, time.Unix(kaTime, 0), kaMethod, kaURL, kaKey, []byte(kaBody))
	if want := kaSignature + "," + v1(variants["secret"]); two != want {
		t.Errorf("two keys: %s, want %s", two, want)
	}
}

// sigRequest is what a signing target saw of one request: enough to
// verify it as a receiver would.
type sigRequest struct {
	Method, Host, RequestURI string
	Header                   http.Header
	Body                     []byte
}

// sigTarget records every request and answers with status(n), n the
// request's number from 1.
func sigTarget(t *testing.T, status func(n int) int) (*httptest.Server, func() []sigRequest) {
	var (
		mu  sync.Mutex
		got []sigRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, sigRequest{r.Method, r.Host, r.RequestURI, r.Header.Clone(), body})
		n := len(got)
		mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []sigRequest { mu.Lock(); defer mu.Unlock(); return append([]sigRequest(nil), got...) }
}

// verifySig checks r's signature with key as the README tells receivers
// to (a Go rendering of it; the Python one is checked on the local
// stack), and returns the v1 values that matched.
func verifySig(r sigRequest, key string) int {
	var ts string
	var v1s []string
	for _, p := range strings.Split(r.Header.Get(SignatureHeader), ",") {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1s = append(v1s, v)
		}
	}
	sum := sha256.Sum256(r.Body)
	payload := strings.Join([]string{"callclock-v1", ts, r.Method, "http://" + r.Host + r.RequestURI, r.Header.Get("Idempotency-Key"), hex.EncodeToString(sum[:])}, "\n")
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(payload))
	want := hex.EncodeToString(mac.Sum(nil))
	n := 0
	for _, v := range v1s {
		if hmac.Equal([]byte(v), []byte(want)) {
			n++
		}
	}
	return n
}

// TestInvokerSignsCalls: a signed target's call carries a signature a
// receiver verifies from what it received (the URL as sent, placeholders
// resolved and escaped; the body as sent; the delivery instant), with
// each key during a rotation; the signing secrets come with the others
// in one GetParameters, and from the cache at the next firing; a retry is
// signed anew for its own instant; no key reaches the log.
func TestInvokerSignsCalls(t *testing.T) {
	t.Parallel()
	srv, got := sigTarget(t, func(n int) int {
		if n == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	values := map[string]string{"/callclock/sign/new": "new-signing-key-1", "/callclock/sign/old": "old-signing-key-0", "/callclock/token": "tok-value-9"}
	params := &paramStore{}
	e := newIGEnv(t, params.fake(t, values), Timer{ID: "sig.1", Version: 1, Group: "qa"})
	msg := httpFire("sig.1", "POST", srv.URL+"/hook/callclock(idempotency-key)?at=callclock(scheduled-time)&n=callclock(attempt-number)")
	msg.HTTP.Headers = map[string]string{"Authorization": "Bearer aws-secret(/callclock/token)"}
	msg.HTTP.Body = `{"group":"callclock(group)","sent":"callclock(delivery-time)"}`
	msg.HTTP.Signing = &Signing{Secret: "aws-secret(/callclock/sign/new)", PreviousSecret: "aws-secret(/callclock/sign/old)"}

	e.invoke(igRecord(t, "m-1", 1, msg))
	e.clock.Add(2 * time.Second)
	e.invoke(igRecord(t, "m-1", 2, msg))

	reqs := got()
	if len(reqs) != 2 {
		t.Fatalf("target received %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		at := igAt.Add(5*time.Second + time.Duration(i)*2*time.Second)
		wantURI := "/hook/sig.1%2F2025-03-01T09:00:00Z?at=2025-03-01T09%3A00%3A00Z&n=" + []string{"1", "2"}[i]
		if r.RequestURI != wantURI {
			t.Errorf("attempt %d: request URI %s, want %s", i+1, r.RequestURI, wantURI)
		}
		if want := `{"group":"qa","sent":"` + at.Format(deliveryTimeLayout) + `"}`; string(r.Body) != want {
			t.Errorf("attempt %d: body %s, want %s", i+1, r.Body, want)
		}
		sig := r.Header.Get(SignatureHeader)
		if !strings.HasPrefix(sig, "t="+strconv.FormatInt(at.Unix(), 10)+",v1=") || strings.Count(sig, "v1=") != 2 {
			t.Errorf("attempt %d: signature %q, want t=%d and two v1 values", i+1, sig, at.Unix())
		}
		for name, key := range map[string]string{"new": "new-signing-key-1", "old": "old-signing-key-0"} {
			if n := verifySig(r, key); n != 1 {
				t.Errorf("attempt %d: %d v1 values verify with the %s key, want 1", i+1, n, name)
			}
		}
		if n := verifySig(r, "tok-value-9"); n != 0 {
			t.Errorf("attempt %d: a v1 value verifies with another key", i+1)
		}
	}
	if calls := params.Calls(); len(calls) != 1 || len(calls[0]) != 3 {
		t.Errorf("GetParameters calls %v, want one for the three names (the retry's from the cache)", calls)
	}
	for _, v := range values {
		if strings.Contains(e.log.String(), v) {
			t.Errorf("log holds the secret %q:\n%s", v, e.log.String())
		}
	}
}

// TestInvokerUnsignedTargetHasNoSignature: a target without signing gets
// no signature header, and no SSM call for it.
func TestInvokerUnsignedTargetHasNoSignature(t *testing.T) {
	t.Parallel()
	srv, got := sigTarget(t, func(int) int { return http.StatusOK })
	inv := testInvoker(noSecrets(t), noCallback(t), nil)
	inv.Invoke(context.Background(), events.SQSEvent{Records: []events.SQSMessage{fire(t, "m-1", httpFire("u", "GET", srv.URL))}})
	if reqs := got(); len(reqs) != 1 || reqs[0].Header.Get(SignatureHeader) != "" {
		t.Errorf("requests %+v, want one without %s", reqs, SignatureHeader)
	}
}
