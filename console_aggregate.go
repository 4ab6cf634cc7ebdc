package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The console's aggregates: answers of its own, each computed from a
// known number of API calls, which it reports in apiCalls.
//
//   - GET /console/timers?group=&state=&prefix=: every timer (the list,
//     all pages: one call per 500 timers), each with its last outcome (one
//     GET per timer, since the list carries none; consoleLookups at a
//     time, as `timers list` does) and its schedule in words; and the
//     failures panel computed from them. At most consoleMaxTimers.
//   - GET /console/timer?id=ID: one timer, its next 10 occurrences and its
//     history: three calls.
//   - GET /console/info: the API's endpoint, for the page's header; none.

// Bounds of the timers aggregate.
const (
	consoleLookups   = 8    // GETs in flight at once, as listLastFireLookups
	consoleMaxTimers = 2000 // timers read at most; beyond, truncated
	consolePage      = "500"
	// consoleRecent is how far back the failures panel looks: the history
	// is kept for a week.
	consoleRecent = 7 * 24 * time.Hour
)

// consoleTimers is GET /console/timers's answer.
type consoleTimers struct {
	Timers    []map[string]any `json:"timers"`
	Failures  []consoleFailure `json:"failures"`
	Truncated bool             `json:"truncated"`
	APICalls  int              `json:"apiCalls"`
}

// consoleFailure is one line of the failures panel: a timer whose last
// delivery failed (dead-lettered) or is being retried, or that missed
// occurrences.
type consoleFailure struct {
	TimerID string `json:"timerId"`
	Group   string `json:"group,omitempty"`
	// Kind is failed, retrying or missed.
	Kind string    `json:"kind"`
	At   time.Time `json:"at"`
	// Detail says what happened: the error and status, or how many missed.
	Detail string `json:"detail"`
}

// aggregate serves the console's own GET /console/... answers.
func (c *Console) aggregate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeConsoleError(w, methodNotAllowed(r.Method, r.URL.Path, "GET"), "")
		return
	}
	var out any
	var err error
	switch r.URL.Path {
	case "/console/timers":
		q := r.URL.Query()
		out, err = c.timers(r.Context(), q.Get("group"), q.Get("state"), q.Get("prefix"))
	case "/console/info": // no API call
		out = map[string]string{"endpoint": c.Endpoint}
	case "/console/timer":
		out, err = c.timer(r.Context(), r.URL.Query().Get("id"))
	default:
		writeConsoleError(w, Errorf(ENOTFOUND, "no such console resource: %s", r.URL.Path), "")
		return
	}
	if err != nil {
		c.writeAPIError(w, err)
		return
	}
	writeConsoleJSON(w, http.StatusOK, out)
}

// timers lists the timers of group in state whose ID starts with prefix,
// each completed by a GET, and the recent failures among them.
func (c *Console) timers(ctx context.Context, group, state, prefix string) (*consoleTimers, error) {
	out := &consoleTimers{Timers: []map[string]any{}, Failures: []consoleFailure{}}
	q := url.Values{"limit": {consolePage}}
	if group != "" {
		q.Set("group", group)
	}
	if state != "" {
		q.Set("state", state)
	}
	var ids []string
	for {
		b, err := c.API.do(ctx, http.MethodGet, "/periodic", q, nil)
		out.APICalls++
		if err != nil {
			return nil, err
		}
		var page struct {
			Timers []struct{ ID string } `json:"timers"`
			Cursor string                `json:"cursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, Errorf(EBADGATEWAY, "the API's list is not the JSON expected: %v", err)
		}
		for _, t := range page.Timers {
			if strings.HasPrefix(t.ID, prefix) {
				ids = append(ids, t.ID)
			}
		}
		if len(ids) >= consoleMaxTimers {
			ids, out.Truncated = ids[:consoleMaxTimers], true
			break
		}
		if page.Cursor == "" {
			break
		}
		q.Set("cursor", page.Cursor)
	}
	docs, err := c.getTimers(ctx, ids)
	out.APICalls += len(ids)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if d != nil { // nil: deleted since the list
			out.Timers = append(out.Timers, withWords(d))
		}
	}
	out.Failures = failuresOf(out.Timers, c.Now().Add(-consoleRecent))
	return out, nil
}

// getTimers GETs each timer, consoleLookups at a time: the document with
// its lastFire, nil for a timer deleted meanwhile. The first other
// failure fails them all.
func (c *Console) getTimers(ctx context.Context, ids []string) ([]map[string]any, error) {
	docs := make([]map[string]any, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, consoleLookups)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			b, err := c.API.do(ctx, http.MethodGet, timerPath(id), nil, nil)
			if exitCodeOf(err) == exitNotFound {
				return
			}
			if err == nil && json.Unmarshal(b, &docs[i]) != nil {
				err = Errorf(EBADGATEWAY, "the API's timer %s is not the JSON expected", id)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return docs, nil
}

// withWords adds scheduleWords to a timer's document: its schedule said
// by ScheduleInWords (a legacy hourly timer's minuteOfHour included).
func withWords(doc map[string]any) map[string]any {
	expr := str(doc, "schedule")
	if expr == "" {
		if m := str(doc, "minuteOfHour"); m != "" {
			expr = "cron(" + m + " * * * ? *)"
		}
	}
	doc["scheduleWords"] = ScheduleInWords(expr, str(doc, "timezone"))
	return doc
}

// failuresOf is the failures panel: each timer whose last outcome is
// failed or retrying, and each that missed occurrences, since since;
// newest first.
func failuresOf(docs []map[string]any, since time.Time) []consoleFailure {
	out := []consoleFailure{}
	add := func(f consoleFailure, at string) {
		t, err := time.Parse(time.RFC3339Nano, at)
		if err == nil && !t.Before(since) {
			f.At = t
			out = append(out, f)
		}
	}
	for _, d := range docs {
		id, group := str(d, "id"), str(d, "group")
		if lf, _ := d["lastFire"].(map[string]any); lf != nil {
			if o := str(lf, "outcome"); o == OutcomeFailed || o == OutcomeRetrying {
				detail := "attempt " + str(lf, "attempt")
				if s := str(lf, "status"); s != "" {
					detail += ", status " + s
				}
				if e := str(lf, "error"); e != "" {
					detail += ": " + e
				}
				add(consoleFailure{TimerID: id, Group: group, Kind: o, Detail: detail}, str(lf, "attemptedAt"))
			}
		}
		if n, _ := d["missedCount"].(float64); n > 0 {
			detail := strconv.Itoa(int(n)) + " occurrences missed (later than the catch-up window)"
			if n == 1 {
				detail = "1 occurrence missed (later than the catch-up window)"
			}
			add(consoleFailure{TimerID: id, Group: group, Kind: OutcomeMissed, Detail: detail}, str(d, "lastMissedAt"))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out
}

// consoleTimer is GET /console/timer's answer.
type consoleTimer struct {
	// Timer is the document with scheduleWords; Document is the API's
	// answer as it came, in its order, for the page to show.
	Timer    map[string]any  `json:"timer"`
	Document json.RawMessage `json:"document"`
	Upcoming json.RawMessage `json:"upcoming"`
	History  json.RawMessage `json:"history"`
	APICalls int             `json:"apiCalls"`
}

// timer is one timer's page: its document (with its schedule in words),
// its next 10 occurrences and its history, three calls.
func (c *Console) timer(ctx context.Context, id string) (*consoleTimer, error) {
	if id == "" {
		return nil, Errorf(EINVALID, "id is required")
	}
	out := &consoleTimer{}
	b, err := c.API.do(ctx, http.MethodGet, timerPath(id), nil, nil)
	out.APICalls++
	if err != nil {
		return nil, err
	}
	out.Document = b
	if err := json.Unmarshal(b, &out.Timer); err != nil {
		return nil, Errorf(EBADGATEWAY, "the API's timer is not the JSON expected: %v", err)
	}
	withWords(out.Timer)
	for _, p := range []struct {
		into  *json.RawMessage
		path  string
		query url.Values
	}{{&out.Upcoming, timerPath(id, "upcoming"), url.Values{"count": {"10"}}}, {&out.History, timerPath(id, "history"), nil}} {
		b, err := c.API.do(ctx, http.MethodGet, p.path, p.query, nil)
		out.APICalls++
		if err != nil {
			return nil, err
		}
		*p.into = b
	}
	return out, nil
}
