package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAPIPutSchedules checks PUT with schedule, timezone and bounds: what
// is stored, and the nextFireAt that GET shows.
func TestAPIPutSchedules(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 7, 12, 0, 30, 0, time.UTC)
	tests := []struct {
		name, body string
		want       timerDoc // the fields this test sets; others are copied from the response
	}{
		{"cron in a zone across spring forward",
			`{"timerCallbackData":1,"schedule":"cron(30 2 ? * SUN *)","timezone":"America/New_York"}`,
			timerDoc{Schedule: "cron(30 2 ? * SUN *)", Timezone: "America/New_York", NextFireAt: ptrTo("2026-03-15T06:30:00Z"), TimeShardID: "30:t"}},
		{"rate without startAt fires at once",
			`{"timerCallbackData":1,"schedule":"rate(5 minutes)"}`,
			timerDoc{Schedule: "rate(5 minutes)", NextFireAt: ptrTo("2026-03-07T12:00:30Z"), TimeShardID: "00:t"}},
		{"rate anchored at a future startAt",
			`{"timerCallbackData":1,"schedule":"rate(1 day)","startAt":"2026-03-08T09:15:00+01:00"}`,
			timerDoc{Schedule: "rate(1 day)", StartAt: ptrTo("2026-03-08T08:15:00Z"), NextFireAt: ptrTo("2026-03-08T08:15:00Z"), TimeShardID: "15:t"}},
		{"rate anchored at a past startAt",
			`{"timerCallbackData":1,"schedule":"rate(7 minutes)","startAt":"2026-03-07T11:58:00Z"}`,
			timerDoc{Schedule: "rate(7 minutes)", StartAt: ptrTo("2026-03-07T11:58:00Z"), NextFireAt: ptrTo("2026-03-07T12:05:00Z"), TimeShardID: "05:t"}},
		{"one-shot with deleteAfterCompletion",
			`{"timerCallbackData":1,"schedule":"at(2026-03-09T02:30:00)","timezone":"Asia/Kathmandu","deleteAfterCompletion":true}`,
			timerDoc{Schedule: "at(2026-03-09T02:30:00)", Timezone: "Asia/Kathmandu", DeleteAfter: true, NextFireAt: ptrTo("2026-03-08T20:45:00Z"), TimeShardID: "45:t"}},
		{"cron with endAt",
			`{"timerCallbackData":1,"schedule":"cron(0 12 * * ? *)","endAt":"2026-03-10T00:00:00Z"}`,
			timerDoc{Schedule: "cron(0 12 * * ? *)", EndAt: ptrTo("2026-03-10T00:00:00Z"), NextFireAt: ptrTo("2026-03-08T12:00:00Z"), TimeShardID: "00:t"}},
		{"hourly default with startAt",
			`{"timerCallbackData":1,"minuteOfHour":10,"startAt":"2026-03-07T15:00:00Z"}`,
			timerDoc{MinuteOfHour: 10, StartAt: ptrTo("2026-03-07T15:00:00Z"), NextFireAt: ptrTo("2026-03-07T15:10:00Z"), TimeShardID: "10:t"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(now, 1)
			resp := a.call(t, http.MethodPut, "/periodic/t", tc.body)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
			}
			got := decodeTimer(t, a.call(t, http.MethodGet, "/periodic/t", ""))
			want := tc.want
			want.ID, want.ShardID, want.State, want.Version, want.CatchUpSeconds = "t", "shard0", "active", 1, 3600
			want.Retry = RetryPolicy{MaxAttempts: 185, MaxAgeSeconds: 86400}
			want.TimerCallbackData, want.CreatedAt, want.UpdatedAt = got.TimerCallbackData, got.CreatedAt, got.UpdatedAt
			if diff := cmp.Diff(want, got, rawAsString); diff != "" {
				t.Errorf("GET document (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAPIPutScheduleRejects checks that every schedule problem is a 400
// with the parser's message and stores nothing.
func TestAPIPutScheduleRejects(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	tests := []struct{ name, body, message string }{
		{"bad cron field", `{"timerCallbackData":1,"schedule":"cron(0 25 * * ? *)"}`, `hours "25": 25 is outside 0-23`},
		{"both day fields", `{"timerCallbackData":1,"schedule":"cron(0 9 * * MON *)"}`, "must be '?'"},
		{"not an expression", `{"timerCallbackData":1,"schedule":"every day"}`, "must be cron(...), rate(...) or at(...)"},
		{"rate plural", `{"timerCallbackData":1,"schedule":"rate(1 minutes)"}`, "must use the singular unit"},
		{"unknown zone", `{"timerCallbackData":1,"schedule":"rate(1 hour)","timezone":"Europe/Atlantis"}`, `timezone "Europe/Atlantis"`},
		{"Local zone", `{"timerCallbackData":1,"schedule":"rate(1 hour)","timezone":"Local"}`, "not Local"},
		{"zone without schedule", `{"timerCallbackData":1,"timezone":"Europe/Berlin"}`, "give a schedule too"},
		{"schedule and minuteOfHour", `{"timerCallbackData":1,"schedule":"rate(1 hour)","minuteOfHour":5}`, "not both"},
		{"at in the past", `{"timerCallbackData":1,"schedule":"at(2026-03-07T11:59:59)"}`, "has no occurrence at or after 2026-03-07T12:00:00Z"},
		{"at in a DST gap", `{"timerCallbackData":1,"schedule":"at(2026-03-08T02:30:00)","timezone":"America/New_York"}`, "does not exist in America/New_York"},
		{"past years only", `{"timerCallbackData":1,"schedule":"cron(0 0 1 1 ? 2020-2025)"}`, "has no occurrence"},
		{"endAt before startAt", `{"timerCallbackData":1,"schedule":"rate(1 hour)","startAt":"2026-04-01T00:00:00Z","endAt":"2026-03-01T00:00:00Z"}`, "endAt must be after startAt"},
		{"endAt already past", `{"timerCallbackData":1,"schedule":"rate(1 hour)","startAt":"2026-01-01T00:00:00Z","endAt":"2026-02-01T00:00:00Z"}`, "has no occurrence"},
		{"startAt not RFC 3339", `{"timerCallbackData":1,"schedule":"rate(1 hour)","startAt":"tomorrow"}`, "malformed JSON body"},
		{"schedule not a string", `{"timerCallbackData":1,"schedule":5}`, "malformed JSON body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(now, 1)
			resp := a.call(t, http.MethodPut, "/periodic/t", tc.body)
			e := decodeError(t, resp)
			if resp.StatusCode != 400 || e.Code != EINVALID || !strings.Contains(e.Message, tc.message) {
				t.Errorf("status %d, error %+v; want 400 invalid containing %q", resp.StatusCode, e, tc.message)
			}
			if n := a.store.puts(); n != 0 {
				t.Errorf("a rejected PUT stored %d timers", n)
			}
		})
	}
}

// TestAPIPutRetryDefaults checks that a field left out of retry takes its
// default, and that the bounds hold.
func TestAPIPutRetryDefaults(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	for body, want := range map[string]RetryPolicy{
		`{"timerCallbackData":1}`:                                              {MaxAttempts: 185, MaxAgeSeconds: 86400},
		`{"timerCallbackData":1,"retry":{}}`:                                   {MaxAttempts: 185, MaxAgeSeconds: 86400},
		`{"timerCallbackData":1,"retry":{"maxAgeSeconds":600}}`:                {MaxAttempts: 185, MaxAgeSeconds: 600},
		`{"timerCallbackData":1,"retry":{"maxAttempts":0}}`:                    {MaxAttempts: 0, MaxAgeSeconds: 86400},
		`{"timerCallbackData":1,"retry":{"maxAttempts":3,"maxAgeSeconds":60}}`: {MaxAttempts: 3, MaxAgeSeconds: 60},
	} {
		a := newTestAPI(now, 1)
		if resp := a.call(t, http.MethodPut, "/periodic/t", body); resp.StatusCode != 201 {
			t.Fatalf("%s: %d %s", body, resp.StatusCode, resp.Body)
		}
		if got := a.store.stored("t").Retry; got != want {
			t.Errorf("%s: retry %+v, want %+v", body, got, want)
		}
	}
	for _, body := range []string{`{"timerCallbackData":1,"retry":{"maxAttempts":186}}`, `{"timerCallbackData":1,"retry":{"maxAgeSeconds":59}}`,
		`{"timerCallbackData":1,"retry":{"maxAttempts":-1}}`, `{"timerCallbackData":1,"retry":{"tries":3}}`} {
		a := newTestAPI(now, 1)
		if resp := a.call(t, http.MethodPut, "/periodic/t", body); resp.StatusCode != 400 || a.store.puts() != 0 {
			t.Errorf("%s: %d, want 400 with nothing stored", body, resp.StatusCode)
		}
	}
}
