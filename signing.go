package main

// Signed delivery: an HTTP target that names a signing secret gets a
// Callclock-Signature header on each call, an HMAC-SHA256 over what a
// receiver needs to reject a forged or replayed call. README.md, "Signed
// delivery", documents the scheme for receivers; this file is its one
// implementation on the sending side.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SignatureHeader carries the signature of a call.
const SignatureHeader = "Callclock-Signature"

// signatureScheme names the string-to-sign's layout; it is its first line.
const signatureScheme = "callclock-v1"

// Signing names the secret an HTTP target's calls are signed with: an
// aws-secret(...) under the secret prefix, resolved through the invoker's
// cache like every secret. During a rotation PreviousSecret names the old
// one, and each call carries a signature with each, so that a receiver
// that knows either accepts it.
type Signing struct {
	Secret         string `json:"secret" dynamodbav:"secret"`
	PreviousSecret string `json:"previousSecret,omitempty" dynamodbav:"previousSecret,omitempty"`
}

// Validate checks that each secret is one aws-secret(...) placeholder
// under prefix, and that the two differ.
func (s *Signing) Validate(prefix string) error {
	if err := checkSigningSecret("http.signing.secret", s.Secret, prefix); err != nil {
		return err
	}
	if s.PreviousSecret == "" {
		return nil
	}
	if s.PreviousSecret == s.Secret {
		return Errorf(EINVALID, "http.signing.previousSecret must name another parameter than http.signing.secret")
	}
	return checkSigningSecret("http.signing.previousSecret", s.PreviousSecret, prefix)
}

// checkSignedHost refuses a signed target whose host is not ASCII:
// net/http sends such a host in its punycode (xn--) form, so the Host a
// receiver signs over would not be the one callclock signed.
func checkSignedHost(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil // the URL's own check reports it
	}
	for _, r := range u.Host {
		if r >= utf8.RuneSelf {
			return Errorf(EINVALID, "http.url: a signed target's host must be ASCII; write %q in its punycode (xn--) form", u.Hostname())
		}
	}
	return nil
}

// checkSigningSecret refuses a field that is not exactly one valid
// aws-secret(...) under prefix: a key written in the timer itself would
// be shown by every GET.
func checkSigningSecret(field, v, prefix string) error {
	if v == "" || secretPattern.FindString(v) != v {
		return Errorf(EINVALID, "%s must be one aws-secret(/name) placeholder, such as aws-secret(%ssigning-key)", field, prefix)
	}
	return checkSecrets(field, v, prefix)
}

// fields are the placeholders to resolve with the target's others.
func (s *Signing) fields() []string {
	if s == nil {
		return nil
	}
	return []string{s.Secret, s.PreviousSecret}
}

// keys are the resolved secrets, the current one first.
func (s *Signing) keys(secrets map[string]string) [][]byte {
	var keys [][]byte
	for _, ref := range s.fields() {
		if names := secretNames(ref); len(names) == 1 {
			if v, ok := secrets[names[0]]; ok {
				keys = append(keys, []byte(v))
			}
		}
	}
	return keys
}

// signedURL is the URL of req as a receiver sees it: the scheme, the
// Host header as net/http sends it (the URL's host and port as written)
// and the request target of the request line (path and query, as
// escaped).
func signedURL(req *http.Request) string {
	return req.URL.Scheme + "://" + req.URL.Host + req.URL.RequestURI()
}

// stringToSign is the text each signature is the HMAC of, with \n
// between its lines: the scheme, the Unix time in seconds, the method,
// the URL, the idempotency key and the lower-case hex SHA-256 of the
// body as sent.
func stringToSign(t int64, method, url, idempotencyKey string, body []byte) string {
	sum := sha256.Sum256(body)
	return strings.Join([]string{signatureScheme, strconv.FormatInt(t, 10), method, url, idempotencyKey, hex.EncodeToString(sum[:])}, "\n")
}

// signature is the Callclock-Signature value: t=<unix seconds>, then
// v1=<hex HMAC-SHA256> for each key, in order.
func signature(keys [][]byte, at time.Time, method, url, idempotencyKey string, body []byte) string {
	t := at.Unix()
	payload := []byte(stringToSign(t, method, url, idempotencyKey, body))
	parts := []string{"t=" + strconv.FormatInt(t, 10)}
	for _, k := range keys {
		mac := hmac.New(sha256.New, k)
		mac.Write(payload)
		parts = append(parts, "v1="+hex.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(parts, ",")
}
