package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The console's aggregates: answers of its own, each computed from a
// known number of API calls, which it reports in apiCalls.
//
//   - GET /console/timers?group=&state=&prefix=: every timer (the list,
//     all pages: one call per 500 timers), each with its last outcome (one
//     GET per timer, since the list carries none; consoleLookups at a
//     time, as `timers list` does: getTimers in apiclient.go) and its schedule in words; and the
//     failures panel computed from them. At most consoleMaxTimers.
//   - GET /console/timer?id=ID: one timer, its next 10 occurrences and its
//     history: three calls.
//   - GET /console/limits: the destinations' limits (one call) and, for
//     each, the timers naming it (the timers aggregate's calls), with the
//     keys timers name that no limit has.
//   - GET /console/info: the API's endpoint, for the page's header; none.
//
// Each timer the aggregates answer carries, besides its document,
// scheduleWords and delivery (consoleDelivery): what its schedule and its
// delivery controls mean, said by the Go code that implements them
// rather than recomputed by the page.

// Bounds of the timers aggregate.
const (
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
	// Kind is failed, retrying, missed or paused (a timer that paused
	// itself after pauseAfterFailures failed occurrences).
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
	case "/console/limits":
		out, err = c.limits(r.Context())
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
	docs, err := getTimers(ctx, c.API, ids)
	out.APICalls += len(ids)
	if err != nil {
		return nil, err
	}
	for _, d := range docs {
		if d != nil { // nil: deleted since the list
			out.Timers = append(out.Timers, withDelivery(withWords(d)))
		}
	}
	out.Failures = failuresOf(out.Timers, c.Now().Add(-consoleRecent))
	return out, nil
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
		if selfPaused(d) {
			add(consoleFailure{TimerID: id, Group: group, Kind: consolePaused, Detail: str(d, "pauseReason")}, str(d, "pausedAt"))
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
	withDelivery(withWords(out.Timer))
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

// consolePaused is the failures panel's kind for a timer that paused
// itself (selfPaused).
const consolePaused = "paused"

// selfPaused reports whether doc is a timer paused by its own
// pauseAfterFailures, rather than by hand.
func selfPaused(doc map[string]any) bool {
	return str(doc, "state") == "paused" && isSelfPauseReason(str(doc, "pauseReason"))
}

// consoleDelivery is a timer's delivery controls (issue 14) as the page
// shows them, each only when the timer sets it.
type consoleDelivery struct {
	SpreadSeconds int `json:"spreadSeconds,omitempty"`
	// SpreadOffsetSeconds is where in the window its occurrences are
	// delivered (spreadOffset), Spread the command line's words for it.
	SpreadOffsetSeconds *int   `json:"spreadOffsetSeconds,omitempty"`
	Spread              string `json:"spread,omitempty"`
	LimitKey            string `json:"limitKey,omitempty"`
	// SigningSecret and PreviousSecret are the names of the signing
	// secrets' parameters (never a value), the previous one during a
	// rotation.
	SigningSecret      string `json:"signingSecret,omitempty"`
	PreviousSecret     string `json:"previousSecret,omitempty"`
	Overlap            string `json:"overlap,omitempty"`
	PauseAfterFailures int    `json:"pauseAfterFailures,omitempty"`
	SelfPaused         bool   `json:"selfPaused,omitempty"`
}

// withDelivery adds delivery (consoleDelivery) to a timer's document.
// A field the API does not send (overlap and pauseAfterFailures before
// they exist) is left out.
func withDelivery(doc map[string]any) map[string]any {
	var d consoleDelivery
	if w, _ := doc["spreadSeconds"].(float64); w > 0 {
		off := int(spreadOffset(str(doc, "id"), int(w)) / time.Second)
		d.SpreadSeconds, d.SpreadOffsetSeconds, d.Spread = int(w), &off, spreadLine(str(doc, "id"), int(w))
	}
	if h, _ := doc["http"].(map[string]any); h != nil {
		d.LimitKey = str(h, "limitKey")
		if sg, _ := h["signing"].(map[string]any); sg != nil {
			d.SigningSecret, d.PreviousSecret = secretParam(str(sg, "secret")), secretParam(str(sg, "previousSecret"))
		}
	}
	d.Overlap = str(doc, "overlap")
	if n, _ := doc["pauseAfterFailures"].(float64); n > 0 {
		d.PauseAfterFailures = int(n)
	}
	d.SelfPaused = selfPaused(doc)
	doc["delivery"] = d
	return doc
}

// consoleLimits is GET /console/limits's answer.
type consoleLimits struct {
	// Limits are the API's, each with timers: the IDs naming its key.
	Limits []map[string]any `json:"limits"`
	// Unlimited are the keys timers name that no limit has: their calls
	// go out unbounded until one is set.
	Unlimited []consoleKey `json:"unlimited"`
	Truncated bool         `json:"truncated"`
	APICalls  int          `json:"apiCalls"`
}

// consoleKey is a limit key and the timers naming it.
type consoleKey struct {
	Key    string   `json:"key"`
	Timers []string `json:"timers"`
}

// limits is the destinations' view: GET /limits, and the timers
// aggregate for which timers name each key.
func (c *Console) limits(ctx context.Context) (*consoleLimits, error) {
	b, err := c.API.do(ctx, http.MethodGet, "/limits", nil, nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Limits []map[string]any `json:"limits"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, Errorf(EBADGATEWAY, "the API's limits are not the JSON expected: %v", err)
	}
	ts, err := c.timers(ctx, "", "", "")
	if err != nil {
		return nil, err
	}
	out := &consoleLimits{Limits: []map[string]any{}, Unlimited: []consoleKey{}, Truncated: ts.Truncated, APICalls: 1 + ts.APICalls}
	named := timersByKey(ts.Timers)
	for _, l := range list.Limits {
		k := str(l, "key")
		l["timers"] = append([]string{}, named[k]...)
		delete(named, k)
		out.Limits = append(out.Limits, l)
	}
	for k, ids := range named {
		out.Unlimited = append(out.Unlimited, consoleKey{Key: k, Timers: ids})
	}
	sort.Slice(out.Unlimited, func(i, j int) bool { return out.Unlimited[i].Key < out.Unlimited[j].Key })
	return out, nil
}

// timersByKey is the IDs of the timers naming each limit key, in the
// order listed.
func timersByKey(docs []map[string]any) map[string][]string {
	named := map[string][]string{}
	for _, d := range docs {
		if h, _ := d["http"].(map[string]any); h != nil && str(h, "limitKey") != "" {
			named[str(h, "limitKey")] = append(named[str(h, "limitKey")], str(d, "id"))
		}
	}
	return named
}
