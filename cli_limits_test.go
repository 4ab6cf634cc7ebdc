package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// limitRoutes answer like the API about the limits billing-api and api.example.com.
var limitRoutes = map[string]fakeAnswer{
	"PUT /limits/billing-api":    {201, `{"key":"billing-api","perSecond":2,"inFlight":5,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T10:00:00Z"}`},
	"GET /limits/billing-api":    {200, `{"key":"billing-api","perSecond":2,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T11:00:00Z"}`},
	"DELETE /limits/billing-api": {200, `"billing-api"`},
	"GET /limits/gone":           {404, `{"error":{"code":"not_found","message":"no limit for gone"}}`},
	"GET /limits": {200, `{"limits":[{"key":"api.example.com","inFlight":1,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T10:00:00Z"},` +
		`{"key":"billing-api","perSecond":2,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T10:00:00Z"}]}`},
}

// TestCLILimits: each command makes its one call, prints the limit for a
// person (or the API's JSON with -o json), and exits with the API's code;
// a bad limit is a usage error before any call.
func TestCLILimits(t *testing.T) {
	setTimerCmdEnv(t)
	url, seen := fakeTimersAPI(t, limitRoutes)
	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"limit", "set", "billing-api", "--per-second", "2", "--in-flight", "5", "--endpoint", url}, 0,
			"key:        billing-api\nper second: 2\nin flight:  5\nupdated:    2026-12-01T10:00:00Z\n", ""},
		{[]string{"limit", "get", "billing-api", "--endpoint", url}, 0,
			"key:        billing-api\nper second: 2\nin flight:  -\nupdated:    2026-12-01T11:00:00Z\n", ""},
		{[]string{"limit", "get", "billing-api", "-o", "json", "--endpoint", url}, 0,
			`{"key":"billing-api","perSecond":2,"createdAt":"2026-12-01T10:00:00Z","updatedAt":"2026-12-01T11:00:00Z"}` + "\n", ""},
		{[]string{"limit", "list", "--endpoint", url}, 0,
			"KEY                                      PER-SECOND IN-FLIGHT\n" +
				"api.example.com                                   -         1\n" +
				"billing-api                                       2         -\n", ""},
		{[]string{"limit", "delete", "billing-api", "--endpoint", url}, 0, "deleted the limit of billing-api\n", ""},
		{[]string{"limit", "get", "gone", "--endpoint", url}, 3, "", "no limit for gone"},
		{[]string{"limit", "set", "billing-api", "--endpoint", url}, 2, "", "a limit needs perSecond, inFlight or both"},
		{[]string{"limit", "set", "billing-api", "--per-second", "300", "--endpoint", url}, 2, "", "perSecond must be from 1 to 250"},
		{[]string{"limit", "get", "bad#key", "--endpoint", url}, 2, "", "KEY must be"},
		{[]string{"limit", "frob"}, 2, "", `unknown command "frob"`},
	} {
		code, out, errOut := timersCLI(tc.args...)
		if code != tc.code || out != tc.out || !strings.Contains(errOut, tc.err) {
			t.Errorf("timers %s: exit %d, stdout %q, stderr %q; want %d, %q, stderr with %q",
				strings.Join(tc.args, " "), code, out, errOut, tc.code, tc.out, tc.err)
		}
	}
	var got []string
	for _, r := range seen() {
		got = append(got, r.Method+" "+r.URI+" "+r.Body)
	}
	want := []string{
		`PUT /limits/billing-api {"inFlight":5,"perSecond":2}`,
		"GET /limits/billing-api ", "GET /limits/billing-api ", "GET /limits ", "DELETE /limits/billing-api ", "GET /limits/gone ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the requests (-want +got):\n%s", diff)
	}
}
