package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigV4Verifier checks AWS Signature Version 4 on a request the way API
// Gateway's AWS_IAM authorizer does, for the local stack. It does not do the
// cryptography itself: it rebuilds the request from exactly the headers the
// client signed, signs that with the SDK's own signer, and compares.
type SigV4Verifier struct {
	// Credentials is the one identity accepted.
	Credentials aws.Credentials
	// Region and Service are the signing scope, e.g. us-east-1/execute-api.
	Region  string
	Service string
	// MaxSkew is how far X-Amz-Date may be from Now, as API Gateway allows.
	// Default 5 minutes.
	MaxSkew time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// NewSigV4Verifier returns a verifier for execute-api in region.
func NewSigV4Verifier(creds aws.Credentials, region string) *SigV4Verifier {
	return &SigV4Verifier{Credentials: creds, Region: region, Service: "execute-api", MaxSkew: 5 * time.Minute, Now: time.Now}
}

const amzDateFormat = "20060102T150405Z"

func forbidden(msg string) error { return &Error{Code: EFORBIDDEN, Message: msg} }

// Verify returns nil when r, with body, carries a valid signature by
// Credentials, and an EFORBIDDEN error that says what is wrong otherwise.
// The checks go in AWS's order: the headers, the authorization and its
// scope, the date, then the signature itself.
func (v *SigV4Verifier) Verify(r *http.Request, body []byte) error {
	if err := v.checkHeaders(r); err != nil {
		return err
	}
	auth, err := v.checkAuthorization(r)
	if err != nil {
		return err
	}
	signedAt, err := v.checkDate(r, auth.scope[1])
	if err != nil {
		return err
	}
	return v.checkSignature(r, body, auth, signedAt)
}

// sigv4Auth is a parsed Authorization header.
type sigv4Auth struct {
	fields map[string]string // Credential, SignedHeaders, Signature
	scope  []string          // key id, date, region, service, aws4_request
}

// checkHeaders checks the size of r's headers, that each signing header
// comes once, and the session token.
func (v *SigV4Verifier) checkHeaders(r *http.Request) error {
	if n := headerBytes(r); n > MaxHeaderBytes {
		return forbidden(fmt.Sprintf("request line and headers are %d bytes; API Gateway's limit is %d", n, MaxHeaderBytes))
	}
	// A second copy of a signing header would leave it to us which one
	// counts; AWS refuses the request instead.
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		if len(r.Header.Values(h)) > 1 {
			return forbidden(h + " header must be given once")
		}
	}
	// A session token is checked as AWS checks it: it must be the
	// identity's own, and an identity without one accepts none (the SDK
	// signs with long-term keys only when no token is set).
	token, sent := r.Header.Get("X-Amz-Security-Token"), len(r.Header.Values("X-Amz-Security-Token")) > 0
	if sent != (v.Credentials.SessionToken != "") ||
		subtle.ConstantTimeCompare([]byte(token), []byte(v.Credentials.SessionToken)) != 1 {
		return forbidden("The security token included in the request is invalid")
	}
	return nil
}

// checkAuthorization parses r's Authorization header and checks its
// algorithm, its fields, the key id and the scope.
func (v *SigV4Verifier) checkAuthorization(r *http.Request) (sigv4Auth, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return sigv4Auth{}, forbidden("Missing Authentication Token: sign the request with AWS SigV4 (service execute-api)")
	}
	const algorithm = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algorithm) {
		return sigv4Auth{}, forbidden("Authorization header must use AWS4-HMAC-SHA256")
	}
	a := sigv4Auth{fields: parseAuthorization(auth)}
	a.scope = strings.Split(a.fields["Credential"], "/")
	if len(a.scope) != 5 || a.scope[4] != "aws4_request" || a.fields["SignedHeaders"] == "" || a.fields["Signature"] == "" {
		return sigv4Auth{}, forbidden("Authorization header is malformed: it needs Credential, SignedHeaders and Signature")
	}
	if subtle.ConstantTimeCompare([]byte(a.scope[0]), []byte(v.Credentials.AccessKeyID)) != 1 {
		return sigv4Auth{}, forbidden("The security token included in the request is invalid")
	}
	if a.scope[2] != v.Region || a.scope[3] != v.Service {
		return sigv4Auth{}, forbidden("Credential should be scoped to region " + v.Region + " and service " + v.Service)
	}
	return a, nil
}

// checkDate parses X-Amz-Date and checks it against the credential's
// scope date and the server's clock.
func (v *SigV4Verifier) checkDate(r *http.Request, scopeDate string) (time.Time, error) {
	signedAt, err := time.Parse(amzDateFormat, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return time.Time{}, forbidden("X-Amz-Date header is missing or malformed")
	}
	if signedAt.Format("20060102") != scopeDate {
		return time.Time{}, forbidden("Credential date does not match X-Amz-Date")
	}
	if skew := v.Now().Sub(signedAt); skew > v.MaxSkew || skew < -v.MaxSkew {
		return time.Time{}, forbidden("Signature expired: X-Amz-Date is more than " + v.MaxSkew.String() + " from the server's time")
	}
	return signedAt, nil
}

// checkSignature signs a copy of r, with only the headers the request
// says it signed, and compares the signatures in constant time.
func (v *SigV4Verifier) checkSignature(r *http.Request, body []byte, auth sigv4Auth, signedAt time.Time) error {
	clone, err := signedCopy(r, body, auth.fields["SignedHeaders"])
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), v.Credentials, clone, hex.EncodeToString(sum[:]),
		v.Service, v.Region, signedAt)
	if err != nil {
		return forbidden("request cannot be signed for comparison")
	}
	want := parseAuthorization(clone.Header.Get("Authorization"))
	if want["SignedHeaders"] != auth.fields["SignedHeaders"] ||
		subtle.ConstantTimeCompare([]byte(want["Signature"]), []byte(auth.fields["Signature"])) != 1 {
		return forbidden("The request signature we calculated does not match the signature you provided")
	}
	return nil
}

// signedCopy is r with only the headers in signedHeaders (host and
// x-amz-date among them), for the signer to sign again.
func signedCopy(r *http.Request, body []byte, signedHeaders string) (*http.Request, error) {
	clone, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), nil)
	if err != nil {
		return nil, forbidden("request URI cannot be canonicalised")
	}
	clone.Host = r.Host
	hasHost := false
	for _, h := range strings.Split(signedHeaders, ";") {
		switch h {
		case "host":
			hasHost = true
		case "x-amz-date": // set again by the signer from signedAt
		case "content-length":
			clone.ContentLength = int64(len(body))
		default:
			vals := r.Header.Values(h)
			if len(vals) == 0 {
				return nil, forbidden("signed header " + h + " is missing from the request")
			}
			clone.Header[textproto.CanonicalMIMEHeaderKey(h)] = vals
		}
	}
	if !hasHost || !strings.Contains(";"+signedHeaders+";", ";x-amz-date;") {
		return nil, forbidden("SignedHeaders must include host and x-amz-date")
	}
	return clone, nil
}

// MaxHeaderBytes is API Gateway's REST API quota on the request line and
// header values together (10240 bytes); the local stack's server would
// otherwise take a megabyte.
const MaxHeaderBytes = 10240

// headerBytes is the size of r's request line and header values, what
// API Gateway counts against MaxHeaderBytes.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.URL.RequestURI()) + 1 + len(r.Proto)
	for _, vs := range r.Header {
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

// parseAuthorization splits a SigV4 Authorization header into its
// Credential, SignedHeaders and Signature components.
func parseAuthorization(auth string) map[string]string {
	parts := map[string]string{}
	_, rest, _ := strings.Cut(auth, " ")
	for _, kv := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
		parts[k] = val
	}
	return parts
}
