package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// getUpcoming asks for timer id's upcoming occurrences with query count
// ("" for none) and decodes the answer strictly.
func (e *lcEnv) getUpcoming(t *testing.T, id, count string) UpcomingList {
	t.Helper()
	req := events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic/" + id + "/upcoming"}
	if count != "" {
		req.QueryStringParameters = map[string]string{"count": count}
	}
	resp := e.do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET upcoming of %s: %d %s", id, resp.StatusCode, resp.Body)
	}
	var doc UpcomingList
	decodeStrict(t, resp.Body, &doc)
	return doc
}

// upcomingLines is doc's occurrences as "UTC local [*]" lines, * marking an offset
// change.
func upcomingLines(doc UpcomingList) []string {
	var out []string
	for _, u := range doc.Upcoming {
		line := u.ScheduledAt.Format(time.RFC3339) + " " + u.Local
		if u.OffsetChanged {
			line += " *"
		}
		out = append(out, line)
	}
	return out
}

// TestAPIUpcoming: a timer's next occurrences in UTC and in its zone, a
// DST change marked, its start and end respected, none while paused or
// once completed, and the first one the timer's nextFireAt.
func TestAPIUpcoming(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t) // the clock: 2026-11-22T10:30:00Z
	// Daily at 09:00 in New York from 12 March 2027: DST begins on the 14th.
	e.put(t, "ny", `{"timerCallbackData":1,"schedule":"cron(0 9 * * ? *)","timezone":"America/New_York","startAt":"2027-03-12T00:00:00Z"}`)
	got := e.getUpcoming(t, "ny", "4")
	want := []string{
		"2027-03-12T14:00:00Z 2027-03-12T09:00:00-05:00",
		"2027-03-13T14:00:00Z 2027-03-13T09:00:00-05:00",
		"2027-03-14T13:00:00Z 2027-03-14T09:00:00-04:00 *",
		"2027-03-15T13:00:00Z 2027-03-15T09:00:00-04:00",
	}
	if diff := cmp.Diff(want, upcomingLines(got)); diff != "" {
		t.Errorf("upcoming (-want +got):\n%s", diff)
	}
	if got.TimerID != "ny" || got.Timezone != "America/New_York" || got.Paused {
		t.Errorf("answer %+v, want timer ny in America/New_York, not paused", got)
	}
	if next := e.get(t, "ny").NextFireAt; next == nil || *next != got.Upcoming[0].ScheduledAt.Format(time.RFC3339) {
		t.Errorf("nextFireAt %v, the first upcoming %s: they must agree", next, got.Upcoming[0].ScheduledAt)
	}

	// The default count is 10, the most 100, each a rate's step after the
	// one before; an end stops the list short of the count.
	e.put(t, "many", `{"timerCallbackData":1,"schedule":"rate(1 minute)"}`)
	if got := e.getUpcoming(t, "many", ""); len(got.Upcoming) != 10 || got.Timezone != "UTC" {
		t.Errorf("default count: %d occurrences in %s, want 10 in UTC", len(got.Upcoming), got.Timezone)
	}
	all := e.getUpcoming(t, "many", "100").Upcoming
	first, _ := time.Parse(time.RFC3339, *e.get(t, "many").NextFireAt)
	if len(all) != 100 || all[0].ScheduledAt.Format(time.RFC3339) != first.Format(time.RFC3339) || all[99].ScheduledAt.Format(time.RFC3339) != first.Add(99*time.Minute).Format(time.RFC3339) {
		t.Errorf("count 100: %d, from %v to %v; want 100 a minute apart from nextFireAt %v", len(all), all[0], all[len(all)-1], first)
	}
	e.put(t, "until", `{"timerCallbackData":1,"schedule":"rate(1 hour)","endAt":"2026-11-22T14:30:00Z"}`)
	var hours []string
	for _, u := range e.getUpcoming(t, "until", "10").Upcoming {
		hours = append(hours, u.ScheduledAt.Format(time.RFC3339))
	}
	if diff := cmp.Diff([]string{"2026-11-22T10:30:00Z", "2026-11-22T11:30:00Z", "2026-11-22T12:30:00Z", "2026-11-22T13:30:00Z"}, hours); diff != "" {
		t.Errorf("rate(1 hour) until 14:30, 10 asked for (-want +got):\n%s", diff)
	}

	// Paused: none, and it says why.
	e.must(t, http.MethodPost, "/periodic/many/pause", "", http.StatusOK)
	if got := e.getUpcoming(t, "many", "5"); !got.Paused || len(got.Upcoming) != 0 {
		t.Errorf("paused: %+v, want paused with none upcoming", got)
	}

	// Completed: an at() in the past has none.
	e.put(t, "once", `{"timerCallbackData":1,"schedule":"at(2026-11-22T10:35:00)"}`)
	e.clock.Set(lcPutAt.Add(time.Hour))
	if got := e.getUpcoming(t, "once", ""); got.Paused || len(got.Upcoming) != 0 {
		t.Errorf("completed: %+v, want none upcoming", got)
	}
}

// TestAPIUpcomingRefuses: a count outside 1-100 or not a number is a 400,
// an unknown timer a 404, another method a 405, each the one error body.
func TestAPIUpcomingRefuses(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45}`)
	for _, tt := range []struct {
		method, id, count string
		status            int
		code              string
	}{
		{http.MethodGet, "t1", "0", 400, EINVALID},
		{http.MethodGet, "t1", "101", 400, EINVALID},
		{http.MethodGet, "t1", "ten", 400, EINVALID},
		{http.MethodGet, "t1", "-1", 400, EINVALID},
		{http.MethodGet, "nope", "", 404, ENOTFOUND},
		{http.MethodPost, "t1", "", 405, EMETHOD},
		{http.MethodDelete, "t1", "", 405, EMETHOD},
	} {
		req := events.APIGatewayProxyRequest{HTTPMethod: tt.method, Path: "/periodic/" + tt.id + "/upcoming"}
		if tt.count != "" {
			req.QueryStringParameters = map[string]string{"count": tt.count}
		}
		resp := e.do(t, req)
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || resp.StatusCode != tt.status || body.Error.Code != tt.code {
			t.Errorf("%s %s count=%q: %d %s, want %d %s", tt.method, tt.id, tt.count, resp.StatusCode, resp.Body, tt.status, tt.code)
		}
		if tt.status == 405 && resp.Headers["Allow"] != "GET" {
			t.Errorf("%s: Allow %q, want GET", tt.method, resp.Headers["Allow"])
		}
	}
}
