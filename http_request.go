package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"
)

// newRequest builds the request of msg's target for the attempt dc:
// secrets and context placeholders resolved in one pass, the context's
// values escaped for where they land, and, when the target names a
// signing secret, the call signed. Its errors are permanent: no retry
// builds it otherwise.
func newRequest(ctx context.Context, msg *FireMessage, secrets map[string]string, dc *deliveryContext) (*http.Request, error) {
	target := msg.HTTP
	var body []byte
	var reader io.Reader
	if target.Body != "" {
		body = []byte(expand(target.Body, secrets, dc, nil))
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, target.Method, expand(target.URL, secrets, dc, escapeInURL), reader)
	if err != nil {
		// Not err: url.Parse quotes the part it rejects, which may be a secret's.
		return nil, permanentError{Errorf(EINVALID, "cannot build request for %s %s", target.Method, target.URL)}
	}
	for k, v := range target.Headers {
		value := expand(v, secrets, dc, nil)
		if !validHeaderValue(value) {
			return nil, permanentError{Errorf(EINVALID, "cannot build request for %s %s: header %s is not a valid header value once its secrets are resolved",
				target.Method, target.URL, k)}
		}
		req.Header.Set(k, value)
	}
	req.Header.Set("User-Agent", "callclock/"+Version)
	req.Header.Set("Idempotency-Key", dc.IdempotencyKey)
	req.Header.Set("X-Callclock-Timer-Id", msg.TimerID)
	req.Header.Set("X-Callclock-Scheduled-At", msg.ScheduledAt.UTC().Format(time.RFC3339))
	if target.Signing != nil {
		keys := target.Signing.keys(secrets)
		if len(keys) == 0 {
			return nil, permanentError{Errorf(EINVALID, "cannot sign the request for %s %s: its signing secret was not resolved", target.Method, target.URL)}
		}
		req.Header.Set(SignatureHeader, signature(keys, dc.DeliveredAt, req.Method, signedURL(req), dc.IdempotencyKey, body))
	}
	return req, nil
}
