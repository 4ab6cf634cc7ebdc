package main

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// GET /periodic/{id}/upcoming: a timer's next occurrences, for the people
// who check a schedule before they trust it.

// Upcoming is one of a timer's next occurrences, in UTC and in the
// timer's zone.
type Upcoming struct {
	ScheduledAt time.Time `json:"scheduledAt"`
	// PlannedAt is when a spread timer's occurrence is delivered
	// (spread.go); absent without spread.
	PlannedAt *time.Time `json:"plannedAt,omitempty"`
	// Local is the instant in the timer's zone, with its offset then.
	Local string `json:"local"`
	// OffsetChanged marks the first occurrence after the zone's offset
	// changed (a DST change) since the one before it.
	OffsetChanged bool `json:"offsetChanged,omitempty"`
}

// UpcomingList is GET /periodic/{id}/upcoming's answer; the command line
// reads it as it is.
type UpcomingList struct {
	TimerID  string     `json:"timerId"`
	Timezone string     `json:"timezone"`
	Paused   bool       `json:"paused"`
	Upcoming []Upcoming `json:"upcoming"`
}

// upcomingLimits bound GET /periodic/{id}/upcoming's count.
const (
	defaultUpcoming = 10
	maxUpcoming     = 100
)

// upcoming is GET /periodic/{id}/upcoming?count=N: the timer's next N
// occurrences, from where its nextFireAt stands (its start and end, and
// the instant it was last handed on, respected). A paused timer has none:
// the occurrences that fall while it is paused are skipped.
func (a *API) upcoming(ctx context.Context, id, countParam string) (int, any, error) {
	if err := validateID(id); err != nil {
		return 0, nil, err
	}
	n, err := upcomingCount(countParam)
	if err != nil {
		return 0, nil, err
	}
	t, err := a.Timers.Get(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	t = a.withNext(t)
	out := UpcomingList{TimerID: id, Timezone: zoneName(t.Timezone), Paused: t.PausedAt != nil, Upcoming: []Upcoming{}}
	if t.NextFireAt.IsZero() { // paused, or completed: withNext gives it none
		return http.StatusOK, out, nil
	}
	list, err := upcomingOf(t, n)
	if err != nil {
		return 0, nil, err
	}
	out.Upcoming = list
	return http.StatusOK, out, nil
}

// upcomingCount reads the count parameter: 1 to maxUpcoming, default
// defaultUpcoming.
func upcomingCount(s string) (int, error) {
	if s == "" {
		return defaultUpcoming, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxUpcoming {
		return 0, Errorf(EINVALID, "count must be a whole number from 1 to %d, not %q", maxUpcoming, s)
	}
	return n, nil
}

// upcomingOf lists up to n of t's occurrences from t.NextFireAt on.
func upcomingOf(t *Timer, n int) ([]Upcoming, error) {
	sched, err := t.Schedule(loadZone)
	if err != nil {
		return nil, err
	}
	loc, err := loadZone(t.Timezone)
	if err != nil {
		return nil, err
	}
	var list []Upcoming
	_, lastOffset := t.NextFireAt.In(loc).Zone()
	for at, ok := t.NextFireAt, true; ok && len(list) < n; at, ok = sched.Next(at) {
		local := at.In(loc)
		_, offset := local.Zone()
		u := Upcoming{ScheduledAt: at.UTC(), Local: local.Format(time.RFC3339), OffsetChanged: offset != lastOffset}
		if t.SpreadSeconds > 0 {
			u.PlannedAt = ptrTime(t.plannedAt(at).UTC())
		}
		list = append(list, u)
		lastOffset = offset
	}
	return list, nil
}

// zoneName is a timer's zone as shown: UTC when it names none.
func zoneName(tz string) string {
	if tz == "" {
		return "UTC"
	}
	return tz
}
