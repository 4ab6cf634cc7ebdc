package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestErrorResponse: every code has its one status, the body is the one
// error body, and an unclassified error shows nothing of itself.
func TestErrorResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err        error
		wantStatus int
		wantBody   map[string]string
	}{
		{Errorf(EINVALID, "bad %s", "cron"), 400, map[string]string{"code": "invalid", "message": "bad cron"}},
		{Errorf(ENOTFOUND, "no timer"), 404, map[string]string{"code": "not_found", "message": "no timer"}},
		{Errorf(EMETHOD, "no"), 405, map[string]string{"code": "method_not_allowed", "message": "no"}},
		{Errorf(ECONFLICT, "changed"), 409, map[string]string{"code": "conflict", "message": "changed"}},
		{Errorf(ETOOLARGE, "big"), 413, map[string]string{"code": "payload_too_large", "message": "big"}},
		{Errorf(EFORBIDDEN, "signature"), 403, map[string]string{"code": "forbidden", "message": "signature"}},
		{Errorf(EUNAVAILABLE, "not here"), 503, map[string]string{"code": "unavailable", "message": "not here"}},
		{Errorf(EBADGATEWAY, "Internal server error"), 502, map[string]string{"code": "bad_gateway", "message": "Internal server error"}},
		// Wrapped, the code still decides.
		{fmt.Errorf("put a: %w", Errorf(ECONFLICT, "changed")), 409, map[string]string{"code": "conflict", "message": "changed"}},
		// Ours but internal, or not ours: the detail stays in the log.
		{Errorf(EINTERNAL, "table timers-x: throttled"), 500, map[string]string{"code": "internal", "message": "internal error"}},
		{errors.New("dial tcp 10.0.0.1:443: secret-ish detail"), 500, map[string]string{"code": "internal", "message": "internal error"}},
	}
	for _, tt := range tests {
		status, body := errorResponse(tt.err)
		if status != tt.wantStatus {
			t.Errorf("%v: status %d, want %d", tt.err, status, tt.wantStatus)
		}
		if diff := cmp.Diff(map[string]any{"error": tt.wantBody}, body); diff != "" {
			t.Errorf("%v: body (-want +got):\n%s", tt.err, diff)
		}
	}
}
