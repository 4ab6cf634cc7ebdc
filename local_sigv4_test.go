package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/google/go-cmp/cmp"
)

var (
	sigCreds    = aws.Credentials{AccessKeyID: "AKIDCALLCLOCKTEST", SecretAccessKey: "verifier-secret-key-never-log-me"}
	sigRegion   = "eu-west-1"
	sigSignedAt = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
)

// sigReq describes a client request and how the client signs it. Zero
// values mean: the verifier's credentials, region and service.
type sigReq struct {
	method, target, body, contentType string
	creds                             *aws.Credentials
	region, service                   string
}

// signed returns the request as the server receives it, signed by the SDK's
// own signer at sigSignedAt, and its body.
func signed(t *testing.T, s sigReq) (*http.Request, string) {
	t.Helper()
	creds, region, service := sigCreds, sigRegion, "execute-api"
	if s.creds != nil {
		creds = *s.creds
	}
	if s.region != "" {
		region = s.region
	}
	if s.service != "" {
		service = s.service
	}
	r := httptest.NewRequest(s.method, s.target, strings.NewReader(s.body))
	if s.contentType != "" {
		r.Header.Set("Content-Type", s.contentType)
	}
	sum := sha256.Sum256([]byte(s.body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), service, region, sigSignedAt); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
	return r, s.body
}

// verifierAt returns a verifier for sigCreds whose clock reads
// sigSignedAt+skew.
func verifierAt(skew time.Duration) *SigV4Verifier {
	v := NewSigV4Verifier(sigCreds, sigRegion)
	v.Now = func() time.Time { return sigSignedAt.Add(skew) }
	return v
}

// editAuth replaces old with new in r's Authorization header, and fails
// the test if old is not there, so that no case passes vacuously.
func editAuth(t *testing.T, r *http.Request, old, new string) {
	t.Helper()
	auth := r.Header.Get("Authorization")
	if !strings.Contains(auth, old) {
		t.Fatalf("Authorization %q does not contain %q", auth, old)
	}
	r.Header.Set("Authorization", strings.Replace(auth, old, new, 1))
}

var (
	sigGet    = sigReq{method: "GET", target: "http://api.example/timers/t-1"}
	sigPut    = sigReq{method: "PUT", target: "http://api.example/timers/t-1", body: `{"minuteOfHour":7}`, contentType: "application/json"}
	sigQuery  = sigReq{method: "GET", target: "http://api.example/timers?b=2&a=1"}
	sigIDChar = sigReq{method: "DELETE", target: "http://api.example/timers/a.b_c-d"}
)

func TestSigV4VerifyAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    sigReq
		tamper func(r *http.Request) // after signing, by a proxy, say
		skew   time.Duration
	}{
		{name: "GET without body", req: sigGet},
		{name: "PUT with JSON body and Content-Type", req: sigPut},
		{name: "query string out of canonical order", req: sigQuery},
		{name: "id with . _ and -", req: sigIDChar},
		{name: "id with colon", req: sigReq{method: "GET", target: "http://api.example/timers/a:b"}},
		{name: "host with port", req: sigReq{method: "GET", target: "http://127.0.0.1:3000/timers/t-1"}},
		{name: "unsigned header added after signing", req: sigPut,
			tamper: func(r *http.Request) { r.Header.Set("X-Forwarded-For", "10.0.0.1") }},
		{name: "server clock 4 minutes ahead", req: sigGet, skew: 4 * time.Minute},
		{name: "server clock 4 minutes behind", req: sigGet, skew: -4 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, body := signed(t, tt.req)
			if tt.tamper != nil {
				tt.tamper(r)
			}
			if err := verifierAt(tt.skew).Verify(r, []byte(body)); err != nil {
				t.Errorf("Verify(%s %s) = %v, want nil", r.Method, r.URL.RequestURI(), err)
			}
		})
	}
}

func TestSigV4VerifyRejects(t *testing.T) {
	t.Parallel()
	otherKey := aws.Credentials{AccessKeyID: "AKIDSOMEONEELSE", SecretAccessKey: sigCreds.SecretAccessKey}
	wrongSecret := aws.Credentials{AccessKeyID: sigCreds.AccessKeyID, SecretAccessKey: "client-wrong-secret-never-log-me"}
	const mismatch = "signature we calculated does not match"

	tests := []struct {
		name    string
		req     sigReq
		tamper  func(t *testing.T, r *http.Request, body *string)
		skew    time.Duration
		wantMsg string // a substring of the message, which says why
	}{
		{name: "no Authorization header", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Header.Del("Authorization") },
			wantMsg: "Missing Authentication Token"},
		{name: "wrong algorithm", req: sigGet,
			tamper: func(t *testing.T, r *http.Request, _ *string) {
				editAuth(t, r, "AWS4-HMAC-SHA256 ", "AWS4-ECDSA-P256-SHA256 ")
			},
			wantMsg: "must use AWS4-HMAC-SHA256"},
		{name: "malformed: no components", req: sigGet,
			tamper: func(t *testing.T, r *http.Request, _ *string) {
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage")
			},
			wantMsg: "malformed"},
		{name: "malformed: no Signature", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { editAuth(t, r, ", Signature=", ", Sig=") },
			wantMsg: "malformed"},
		{name: "malformed: no SignedHeaders", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { editAuth(t, r, "SignedHeaders=", "Headers=") },
			wantMsg: "malformed"},
		{name: "malformed: short credential scope", req: sigGet,
			tamper: func(t *testing.T, r *http.Request, _ *string) {
				editAuth(t, r, "/execute-api/aws4_request", "/aws4_request")
			},
			wantMsg: "malformed"},
		{name: "malformed: scope not aws4_request", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { editAuth(t, r, "/aws4_request", "/aws5_request") },
			wantMsg: "malformed"},
		{name: "another access key id", req: sigReq{method: "GET", target: sigGet.target, creds: &otherKey},
			wantMsg: "security token included in the request is invalid"},
		{name: "wrong secret", req: sigReq{method: "PUT", target: sigPut.target, body: sigPut.body, contentType: sigPut.contentType, creds: &wrongSecret},
			wantMsg: mismatch},
		{name: "wrong region", req: sigReq{method: "GET", target: sigGet.target, region: "us-east-1"},
			wantMsg: "scoped to region " + sigRegion},
		{name: "wrong service", req: sigReq{method: "GET", target: sigGet.target, service: "s3"},
			wantMsg: "service execute-api"},
		{name: "body tampered, same length", req: sigPut,
			tamper:  func(t *testing.T, r *http.Request, body *string) { *body = `{"minuteOfHour":8}` },
			wantMsg: mismatch},
		{name: "body tampered, longer", req: sigPut,
			tamper:  func(t *testing.T, r *http.Request, body *string) { *body = `{"minuteOfHour":59}` },
			wantMsg: mismatch},
		{name: "signed Content-Type changed", req: sigPut,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Header.Set("Content-Type", "text/plain") },
			wantMsg: mismatch},
		{name: "signed Content-Type removed", req: sigPut,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Header.Del("Content-Type") },
			wantMsg: "signed header content-type is missing"},
		{name: "host changed", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Host = "evil.example" },
			wantMsg: mismatch},
		{name: "Content-Type dropped from SignedHeaders", req: sigPut,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { editAuth(t, r, "content-type;", "") },
			wantMsg: mismatch},
		{name: "x-amz-date dropped from SignedHeaders", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { editAuth(t, r, ";x-amz-date", "") },
			wantMsg: "must include host and x-amz-date"},
		{name: "path changed", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.URL.Path = "/timers/t-2" },
			wantMsg: mismatch},
		{name: "method changed", req: sigIDChar,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Method = "GET" },
			wantMsg: mismatch},
		{name: "query value changed", req: sigQuery,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.URL.RawQuery = "b=3&a=1" },
			wantMsg: mismatch},
		{name: "query parameter added", req: sigQuery,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.URL.RawQuery += "&c=3" },
			wantMsg: mismatch},
		{name: "X-Amz-Date missing", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Header.Del("X-Amz-Date") },
			wantMsg: "X-Amz-Date header is missing or malformed"},
		{name: "X-Amz-Date malformed", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Header.Set("X-Amz-Date", "2025-03-01T12:00:00Z") },
			wantMsg: "X-Amz-Date header is missing or malformed"},
		{name: "server clock 6 minutes ahead", req: sigGet, skew: 6 * time.Minute,
			wantMsg: "Signature expired"},
		{name: "server clock 6 minutes behind", req: sigGet, skew: -6 * time.Minute,
			wantMsg: "Signature expired"},
		{name: "second X-Amz-Date", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Header.Add("X-Amz-Date", "20250301T120100Z") },
			wantMsg: "X-Amz-Date header must be given once"},
		{name: "second Authorization", req: sigGet,
			tamper: func(t *testing.T, r *http.Request, _ *string) {
				r.Header.Add("Authorization", r.Header.Get("Authorization"))
			},
			wantMsg: "Authorization header must be given once"},
		{name: "bogus X-Amz-Security-Token, identity without one", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { r.Header.Set("X-Amz-Security-Token", "bogus") },
			wantMsg: "security token included in the request is invalid"},
		{name: "signed X-Amz-Security-Token, identity without one",
			req:     sigReq{method: "GET", target: sigGet.target, creds: &aws.Credentials{AccessKeyID: sigCreds.AccessKeyID, SecretAccessKey: sigCreds.SecretAccessKey, SessionToken: "tok"}},
			wantMsg: "security token included in the request is invalid"},
		{name: "100 KB Authorization header", req: sigGet,
			tamper: func(t *testing.T, r *http.Request, _ *string) {
				r.Header.Set("Authorization", r.Header.Get("Authorization")+strings.Repeat("0", 100<<10))
			},
			wantMsg: "limit is 10240"},
		{name: "headers over 10240 bytes together", req: sigGet,
			tamper: func(t *testing.T, r *http.Request, _ *string) {
				for i := range 11 {
					r.Header.Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("p", 1000))
				}
			},
			wantMsg: "limit is 10240"},
		{name: "credential date differs from X-Amz-Date", req: sigGet,
			tamper:  func(t *testing.T, r *http.Request, _ *string) { editAuth(t, r, "/20250301/", "/20250228/") },
			wantMsg: "Credential date does not match X-Amz-Date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, body := signed(t, tt.req)
			if tt.tamper != nil {
				tt.tamper(t, r, &body)
			}
			err := verifierAt(tt.skew).Verify(r, []byte(body))
			if err == nil {
				t.Fatalf("Verify = nil, want %s error", EFORBIDDEN)
			}
			if code := ErrorCode(err); code != EFORBIDDEN {
				t.Errorf("ErrorCode(%v) = %q, want %q", err, code, EFORBIDDEN)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Verify error = %q, want it to contain %q", err, tt.wantMsg)
			}
			for _, secret := range []string{sigCreds.SecretAccessKey, wrongSecret.SecretAccessKey} {
				if strings.Contains(err.Error(), secret) || strings.Contains(ErrorMessage(err), secret) {
					t.Errorf("Verify error %q contains a secret access key", err)
				}
			}
		})
	}
}

// TestSigV4VerifySessionToken: an identity with a session token accepts
// requests signed with it and refuses a missing or different token, as
// AWS does for temporary credentials.
func TestSigV4VerifySessionToken(t *testing.T) {
	t.Parallel()
	withToken := func(tok string) *aws.Credentials {
		return &aws.Credentials{AccessKeyID: sigCreds.AccessKeyID, SecretAccessKey: sigCreds.SecretAccessKey, SessionToken: tok}
	}
	v := verifierAt(0)
	v.Credentials = *withToken("session-token")
	got := map[string]string{}
	for name, creds := range map[string]*aws.Credentials{"same token": withToken("session-token"), "other token": withToken("other-token"), "no token": &sigCreds} {
		r, body := signed(t, sigReq{method: "GET", target: sigGet.target, creds: creds})
		got[name] = ""
		if err := v.Verify(r, []byte(body)); err != nil {
			got[name] = ErrorMessage(err)
		}
	}
	const invalid = "The security token included in the request is invalid"
	if diff := cmp.Diff(map[string]string{"same token": "", "other token": invalid, "no token": invalid}, got); diff != "" {
		t.Errorf("Verify messages (-want +got):\n%s", diff)
	}
}

// TestSigV4VerifyAcceptsHeadersUpToTheLimit: the header limit is API
// Gateway's, not lower.
func TestSigV4VerifyAcceptsHeadersUpToTheLimit(t *testing.T) {
	t.Parallel()
	r, body := signed(t, sigGet)
	pad := MaxHeaderBytes - headerBytes(r)
	r.Header.Set("X-Pad", strings.Repeat("p", pad))
	if err := verifierAt(0).Verify(r, []byte(body)); err != nil {
		t.Errorf("Verify with %d header bytes = %v, want nil", headerBytes(r), err)
	}
	r.Header.Set("X-Pad", strings.Repeat("p", pad+1))
	if err := verifierAt(0).Verify(r, []byte(body)); ErrorCode(err) != EFORBIDDEN {
		t.Errorf("Verify with %d header bytes = %v, want a %s error", headerBytes(r), err, EFORBIDDEN)
	}
}
