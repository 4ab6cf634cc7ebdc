package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// strictSeeds are the attack bodies of TestAPIStrictJSON and the bodies
// TestAPIStrictJSONAccepts lets through, as the fuzzers' starting points.
var strictSeeds = []string{
	`{"http":{"url":"https://example.com/"},"http":{"url":"http://127.0.0.1:9/"}}`,
	`{"http":{"url":"https://example.com/","url":"http://127.0.0.1:9/"}}`,
	`{"http":{"url":"https://example.com/","headers":{"X-A":"1","X-A":"2"}}}`,
	`{"http":{"url":"https://example.com/","headers":{"X-Key":"1","x-key":"2"}}}`,
	`{"timerCallbackData":{"a":1,"a":2}}`,
	`{"timerCallbackData":[{"a":1,"a":2}]}`,
	`{"timerCallbackData":1,"timerCallbackData":2}`,
	`{"TimerCallbackData":1}`,
	`{"http":{"URL":"https://example.com/"}}`,
	`{"timerCallbackData":1,"retry":{"maxattempts":3}}`,
	"{\"timerCallbackData\":\"a\xffb\"}",
	"{\"timerCallbackData\":1,\"\xc3\":1}",
	`{"timerCallbackData":"a\ud800b"}`,
	`{"timerCallbackData":"\udc00"}`,
	`{"timerCallbackData":"\uD83D"}`,
	`{"timerCallbackData":"\ud83d\ud83d"}`,
	`{"timerCallbackData":{"\ud800":1}}`,
	`{"reason":"a","reason":"b"}`,
	`{"Reason":"a"}`,
	`{"name":"t1","deployment":{"cron":"0 0 * * ? *","enabled":true},"request":{"protocol":"https","hostname":"example.com","path":"/p","hostname":"127.0.0.1"}}`,
	`{"timerCallbackData":{"a":1,"A":2,"b":{"a":1}}}`,
	`{"timerCallbackData":"\u00fc ü \ufffd"}`,
	`{"timerCallbackData":[{"a":1},{"a":2}]}`,
	`{"timerCallbackData":"\ud83d\ude00 \u00e9 \\ud800"}`,
	`{"timerCallbackData":"\"\\\ud83d\ude00"}`,
	`{"schedule":"cron(0 9 * * ? *)","timezone":"Europe/Berlin","http":{"method":"POST","url":"https://example.com/h","headers":{"Authorization":"Bearer aws-secret(/callclock/t)"},"body":"{}","timeoutSeconds":30,"successCodes":[200,202]},"retry":{"maxAttempts":2,"maxAgeSeconds":600},"notify":{"webhook":"https://hooks.example.com/x","onSuccess":true},"group":"qa","startAt":"2026-12-01T00:00:00Z"}`,
}

// FuzzStrictJSON: the strict pre-pass never panics, and what it and the
// API's decoder let through is valid UTF-8 JSON with no key given twice
// in an object, no field name that matches a struct field only by case,
// and no U+FFFD the client did not send.
func FuzzStrictJSON(f *testing.F) {
	for _, s := range strictSeeds {
		f.Add([]byte(s))
	}
	putType := reflect.TypeFor[*putRequest]()
	f.Fuzz(func(t *testing.T, body []byte) {
		// As decodeBody reads a PUT body, and as the Deployer reader
		// checks its documents (any keys, duplicates only).
		putOK := checkStrictJSON(body, putType) == nil && decodesStrictly(body, &putRequest{})
		anyOK := checkStrictJSON(body, nil) == nil && json.Valid(body)
		if putOK && !anyOK {
			t.Fatalf("accepted as a PUT body but not as any JSON: %q", body)
		}
		if !anyOK {
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted invalid UTF-8: %q", body)
		}
		if path, dup := duplicateKey(t, body); dup {
			t.Fatalf("accepted a duplicate key in the object at %q: %q", path, body)
		}
		v := decodeAny(t, body)
		if holdsReplacement(v) && !sentReplacement(body) {
			t.Fatalf("accepted a body that decodes with U+FFFD it does not contain: %q", body)
		}
		if putOK {
			if path, ok := caseVariant(v, putType); ok {
				t.Fatalf("accepted a field name matching only by case at %s: %q", path, body)
			}
		}
	})
}

// decodesStrictly decodes body into v as decodeBody does.
func decodesStrictly(body []byte, v any) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if dec.Decode(v) != nil {
		return false
	}
	_, err := dec.Token()
	return err == io.EOF
}

// duplicateKey reports a key given twice in one object of the valid JSON
// body, by counting the keys of each object on the wire against those of
// its decoded map, which keeps one per name.
func duplicateKey(t *testing.T, body []byte) (string, bool) {
	v := decodeAny(t, body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var walk func(v any, path string) (string, bool)
	walk = func(v any, path string) (string, bool) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		switch tok {
		case json.Delim('{'):
			m := v.(map[string]any)
			n := 0
			for dec.More() {
				k, _ := dec.Token()
				n++
				if p, dup := walk(m[k.(string)], path+"."+k.(string)); dup {
					return p, true
				}
			}
			dec.Token()
			if n != len(m) {
				return path, true
			}
		case json.Delim('['):
			a := v.([]any)
			for i := 0; dec.More(); i++ {
				if p, dup := walk(a[i], path+"[]"); dup {
					return p, true
				}
			}
			dec.Token()
		}
		return "", false
	}
	return walk(v, "")
}

// decodeAny decodes the valid JSON body with numbers as json.Number,
// which holds any number json.Valid lets through (a float64 does not).
func decodeAny(t *testing.T, body []byte) any {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("json.Valid(%q), but Decode: %v", body, err)
	}
	return v
}

// holdsReplacement reports whether a key or string of v holds U+FFFD.
func holdsReplacement(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsRune(v, utf8.RuneError)
	case []any:
		return slices.ContainsFunc(v, holdsReplacement)
	case map[string]any:
		for k, e := range v {
			if strings.ContainsRune(k, utf8.RuneError) || holdsReplacement(e) {
				return true
			}
		}
	}
	return false
}

// sentReplacement reports whether body spells U+FFFD itself, as UTF-8 or
// as an escape.
func sentReplacement(body []byte) bool {
	return bytes.ContainsRune(body, utf8.RuneError) || bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
}

// caseVariant reports a key of v, decoded into t, that is not the JSON
// name of a field of its struct but equals one ignoring case.
func caseVariant(v any, t reflect.Type) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return "", false
	}
	switch v := v.(type) {
	case map[string]any:
		return objectCaseVariant(v, t)
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, e := range v {
				if p, bad := caseVariant(e, t.Elem()); bad {
					return "[]." + p, true
				}
			}
		}
	}
	return "", false
}

// objectCaseVariant is caseVariant of object v, decoded into t: a struct
// or a map.
func objectCaseVariant(v map[string]any, t reflect.Type) (string, bool) {
	switch t.Kind() {
	case reflect.Struct:
		fields := jsonFields(t)
		for k, e := range v {
			ft, ok := fields[k]
			if !ok {
				return k, true // unknown fields are refused, so this matched by case
			}
			if p, bad := caseVariant(e, ft); bad {
				return k + "." + p, true
			}
		}
	case reflect.Map:
		for k, e := range v {
			if p, bad := caseVariant(e, t.Elem()); bad {
				return k + "." + p, true
			}
		}
	}
	return "", false
}

// FuzzSigV4Verify: the local SigV4 check never panics, never accepts a
// request signed with another secret or not signed at all, and refuses a
// properly signed request once any byte of it on the wire (request line,
// headers, body) has a bit flipped, unless that is a no-op: the request
// read from the changed bytes is the same in method, target, host, body,
// each signed header (as SigV4 normalises its value) and the
// Authorization header's parts.
func FuzzSigV4Verify(f *testing.F) {
	type seed struct {
		method, target, header, body, auth string
	}
	for i, s := range []seed{
		{"GET", "/timers/t-1", "", "", ""},
		{"PUT", "/timers/t-1", "application/json", `{"minuteOfHour":7}`, "AWS4-HMAC-SHA256 garbage"},
		{"GET", "/timers?b=2&a=1", "", "", "AWS4-HMAC-SHA256 Credential=AKIDCALLCLOCKTEST/20250301/eu-west-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"},
		{"DELETE", "/timers/a.b_c-d", "x  y", "", ""},
		{"POST", "/periodic/auth%252Dbase/fire?at=2026-01-01T00%3A00%3A00Z", "a\tb", "{}", ""},
		{"PUT", "/groups/qa/pause", " v ", `{"reason":"r"}`, ""},
	} {
		f.Add(s.method, s.target, s.header, []byte(s.body), s.auth, uint8(i), uint16(i*37), uint8(5), false)
	}
	v := verifierAt(0)
	f.Fuzz(func(t *testing.T, method, target, header string, body []byte, auth string, where uint8, pos uint16, bit uint8, wrongSecret bool) {
		req, err := http.NewRequest(method, "http://api.example"+target, bytes.NewReader(body))
		if err != nil || req.URL.Host != "api.example" || strings.ContainsAny(method, " \r\n") {
			return
		}
		if validHeaderValue(header) && !strings.ContainsAny(header, "\r\n") {
			req.Header.Set("X-Fuzz", header)
		}
		if !refusesUnsigned(t, v, req, auth) {
			return
		}

		orig, origBody, raw, ok := signedAccepted(t, v, req, body, wrongSecret)
		if !ok {
			return
		}

		mutated, i := flipWireBit(raw, where, pos, bit)
		got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(mutated)))
		if err != nil {
			return
		}
		gotBody, err := io.ReadAll(got.Body)
		if err != nil {
			return
		}
		if sameSigned(orig, origBody, got, gotBody) {
			return
		}
		if err := v.Verify(got, gotBody); err == nil {
			t.Fatalf("accepted a request changed at byte %d (%q to %q):\nsigned:\n%s\nreceived:\n%s", i, raw[i], mutated[i], raw, mutated)
		}
	})
}

// signedAccepted signs req (its body body) with the test's credentials,
// or with another secret when wrongSecret, and checks that v refuses it
// signed with the wrong secret. It returns the request as the server
// reads it, its body and its bytes on the wire, with ok false, checking
// nothing more, for a request that cannot be signed or sent, or that v
// refuses although the SDK signed it: that is not the property here.
func signedAccepted(t *testing.T, v *SigV4Verifier, req *http.Request, body []byte, wrongSecret bool) (*http.Request, []byte, []byte, bool) {
	creds := sigCreds
	if wrongSecret {
		creds = aws.Credentials{AccessKeyID: sigCreds.AccessKeyID, SecretAccessKey: "client-wrong-secret-never-log-me"}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "execute-api", sigRegion, sigSignedAt); err != nil {
		return nil, nil, nil, false
	}
	var wire bytes.Buffer
	orig, err := readWire(t, req, &wire)
	if err != nil {
		return nil, nil, nil, false
	}
	origBody := mustBody(t, orig)
	if err := v.Verify(orig, origBody); wrongSecret && err == nil {
		t.Fatalf("accepted a request signed with the wrong secret: %s %s", orig.Method, orig.RequestURI)
	} else if err != nil {
		return nil, nil, nil, false
	}
	return orig, origBody, wire.Bytes(), true
}

// refusesUnsigned checks that req, never signed, is refused whatever its
// Authorization header (auth) says. It reports false, checking nothing,
// for a request that cannot be sent.
func refusesUnsigned(t *testing.T, v *SigV4Verifier, req *http.Request, auth string) bool {
	unsigned, err := readWire(t, req, nil)
	if err != nil {
		return false
	}
	unsigned.Header.Set("Authorization", auth)
	unsigned.Header.Set("X-Amz-Date", sigSignedAt.Format(amzDateFormat))
	if v.Verify(unsigned, mustBody(t, unsigned)) == nil {
		t.Fatalf("accepted an unsigned request with Authorization %q", auth)
	}
	return true
}

// flipWireBit returns a copy of raw, a request on the wire, with one bit
// of one byte flipped, and that byte's index. The byte is in the region
// where selects: the request line, the headers, the body, or anywhere,
// so that the fuzzer's tries are not spent mostly on the unsigned
// User-Agent header.
func flipWireBit(raw []byte, where uint8, pos uint16, bit uint8) ([]byte, int) {
	line := bytes.Index(raw, []byte("\r\n"))
	head := bytes.Index(raw, []byte("\r\n\r\n"))
	lo, hi := 0, len(raw)
	switch where % 4 {
	case 0:
		hi = line
	case 1:
		lo, hi = line+2, head
	case 2:
		if head+4 < len(raw) {
			lo = head + 4
		}
	}
	i := lo + int(pos)%(hi-lo)
	mutated := slices.Clone(raw)
	mutated[i] ^= 1 << (bit % 8)
	return mutated, i
}

// readWire writes r as a client sends it and reads it back as a server
// does, the bytes into wire when it is not nil.
func readWire(t *testing.T, r *http.Request, wire *bytes.Buffer) (*http.Request, error) {
	var buf bytes.Buffer
	if r.GetBody != nil {
		body, err := r.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		r.Body = body
	}
	if err := r.Write(&buf); err != nil {
		return nil, err
	}
	if wire != nil {
		wire.Write(buf.Bytes())
	}
	return http.ReadRequest(bufio.NewReader(&buf))
}

// mustBody reads r's body, failing the test if it cannot.
func mustBody(t *testing.T, r *http.Request) []byte {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameSigned reports whether b is a with nothing SigV4 signs changed:
// method, path, query (as url.Values: what SigV4 signs and the handler
// reads), host, body (and so its length), the values of the other headers
// a's Authorization names (with leading, trailing and repeated spaces
// dropped, as SigV4 normalises them), and the parts of the Authorization
// header.
func sameSigned(a *http.Request, aBody []byte, b *http.Request, bBody []byte) bool {
	aPath, _, _ := strings.Cut(a.RequestURI, "?")
	bPath, _, _ := strings.Cut(b.RequestURI, "?")
	if a.Method != b.Method || aPath != bPath || !reflect.DeepEqual(a.URL.Query(), b.URL.Query()) ||
		a.Host != b.Host || !bytes.Equal(aBody, bBody) {
		return false
	}
	authA, authB := a.Header.Values("Authorization"), b.Header.Values("Authorization")
	if len(authA) != 1 || len(authB) != 1 {
		return len(authA) == len(authB) && slices.Equal(authA, authB)
	}
	algA, _, _ := strings.Cut(authA[0], " ")
	algB, _, _ := strings.Cut(authB[0], " ")
	pa, pb := parseAuthorization(authA[0]), parseAuthorization(authB[0])
	if algA != algB || !maps.Equal(pa, pb) {
		return false
	}
	for _, h := range strings.Split(pa["SignedHeaders"], ";") {
		// Host is compared above; Content-Length is signed as the number
		// of body bytes, so "01" for "1" changes nothing the body does not.
		if h == "host" || h == "content-length" {
			continue
		}
		if !slices.Equal(normalised(a.Header.Values(h)), normalised(b.Header.Values(h))) {
			return false
		}
	}
	return true
}

// normalised is header values as SigV4's canonical form has them.
func normalised(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.Join(slices.DeleteFunc(strings.Split(v, " "), func(s string) bool { return s == "" }), " ")
	}
	return out
}

// FuzzPutTimer: a PUT of any body never panics, answers with a JSON body
// and never a 5xx, and a timer it stores (2xx) reads back exactly as the
// PUT answered it, and the same body PUT again is accepted again.
func FuzzPutTimer(f *testing.F) {
	for _, s := range strictSeeds {
		f.Add(s)
	}
	for _, s := range []string{
		`{"timerCallbackData":{"k":"v"}}`,
		`{"minuteOfHour":7,"timerCallbackData":1}`,
		`{"schedule":"rate(5 minutes)","http":{"url":"https://example.com/x"}}`,
		`{"schedule":"at(2026-12-01T10:00:00)","timezone":"Europe/Berlin","timerCallbackData":"x","deleteAfterCompletion":true}`,
	} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body string) {
		a := newTestAPI(now, 2)
		put := events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut, Path: "/periodic/t1", Body: body}
		resp := a.Handle(t.Context(), put)
		if !json.Valid([]byte(resp.Body)) {
			t.Fatalf("PUT %q: body is not JSON: %q", body, resp.Body)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("PUT %q: status %d: %s", body, resp.StatusCode, resp.Body)
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return
		}
		got := a.Handle(t.Context(), events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic/t1"})
		if got.StatusCode != http.StatusOK || !sameJSON(t, got.Body, resp.Body) {
			t.Fatalf("PUT %q answered %s; GET answers %d %s", body, resp.Body, got.StatusCode, got.Body)
		}
		again := a.Handle(t.Context(), put)
		if again.StatusCode/100 != 2 {
			t.Fatalf("PUT %q again: status %d: %s", body, again.StatusCode, again.Body)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(t *testing.T, a, b string) bool {
	var va, vb any
	if err := errors.Join(json.Unmarshal([]byte(a), &va), json.Unmarshal([]byte(b), &vb)); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(va, vb)
}
