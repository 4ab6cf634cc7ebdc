package main

// Tests of the list, GET /periodic: its query, its pages and its cursors.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// TestAPIListRejects checks GET /periodic's query validation: each bad
// parameter is a 400 and the store is not asked.
func TestAPIListRejects(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"limit=0", "limit=501", "limit=ten", "state=sleeping", "group=a%20b", "cursor=%%%", "cursor=bm90LWpzb24", "sort=id"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			k, v, _ := strings.Cut(q, "=")
			if u, err := url.QueryUnescape(v); err == nil {
				v = u
			}
			req := events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic", QueryStringParameters: map[string]string{k: v}}
			resp := a.do(t, req)
			if resp.StatusCode != http.StatusBadRequest || decodeError(t, resp).Code != EINVALID {
				t.Errorf("GET /periodic?%s = %d %s, want 400 invalid", q, resp.StatusCode, resp.Body)
			}
			for _, c := range a.store.calls {
				if strings.HasPrefix(c, "List") && q != "state=sleeping" {
					t.Errorf("the store was asked: %v", a.store.calls)
				}
			}
		})
	}
}

// TestAPIListPages follows the cursor through every timer, filtered by
// group and state.
func TestAPIListPages(t *testing.T) {
	t.Parallel()
	a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
	for i, g := range []string{"qa", "prod", "qa", "qa", "", "qa"} {
		id := fmt.Sprintf("t%d", i)
		if resp := a.call(t, http.MethodPut, "/periodic/"+id, `{"timerCallbackData":1,"group":"`+g+`"}`); resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d %s", id, resp.StatusCode, resp.Body)
		}
	}
	a.call(t, http.MethodPost, "/periodic/t2/pause", "")
	list := func(query string) []string {
		var ids []string
		for cursor := ""; ; {
			q := map[string]string{"limit": "2"}
			for _, kv := range strings.Split(query, "&") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					q[k] = v
				}
			}
			if cursor != "" {
				q["cursor"] = cursor
			}
			resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic", QueryStringParameters: q})
			var page struct {
				Timers []struct{ ID string } `json:"timers"`
				Cursor string                `json:"cursor"`
			}
			if err := json.Unmarshal([]byte(resp.Body), &page); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /periodic?%s: %d %s", query, resp.StatusCode, resp.Body)
			}
			for _, tm := range page.Timers {
				ids = append(ids, tm.ID)
			}
			if page.Cursor == "" {
				return ids
			}
			cursor = page.Cursor
		}
	}
	for query, want := range map[string][]string{
		"":                      {"t0", "t1", "t2", "t3", "t4", "t5"},
		"group=qa":              {"t0", "t2", "t3", "t5"},
		"group=qa&state=paused": {"t2"},
		"state=active":          {"t0", "t1", "t3", "t4", "t5"},
	} {
		if diff := cmp.Diff(want, list(query)); diff != "" {
			t.Errorf("GET /periodic?%s (-want +got):\n%s", query, diff)
		}
	}
}

// listPage is one GET /periodic answer.
type listPage struct {
	Timers []struct{ ID string } `json:"timers"`
	Cursor string                `json:"cursor"`
}

// listFirstCursor returns the cursor of the first page of query, limit 1.
func listFirstCursor(t *testing.T, a *testAPI, q map[string]string) string {
	t.Helper()
	q = mapsWith(q, "limit", "1")
	resp := a.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic", QueryStringParameters: q})
	var page listPage
	if err := json.Unmarshal([]byte(resp.Body), &page); err != nil || resp.StatusCode != 200 || page.Cursor == "" {
		t.Fatalf("GET /periodic %v: %d %s, want a page with a cursor", q, resp.StatusCode, resp.Body)
	}
	return page.Cursor
}

// mapsWith returns a copy of m with k set to v.
func mapsWith(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for mk, mv := range m {
		out[mk] = mv
	}
	return out
}

// b64 encodes s as a cursor is encoded.
func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestAPIListRefusesBadCursors: a cursor that is not one the list issued
// for the same filter (group, state) is a 400, and the store is not asked.
func TestAPIListRefusesBadCursors(t *testing.T) {
	t.Parallel()
	a := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
	for i, g := range []string{"qa", "qa", "prod", "prod", ""} {
		a.call(t, http.MethodPut, fmt.Sprintf("/periodic/t%d", i), `{"timerCallbackData":1,"group":"`+g+`"}`)
	}
	fromQA := listFirstCursor(t, a, map[string]string{"group": "qa"})
	fromAll := listFirstCursor(t, a, nil)
	fromActive := listFirstCursor(t, a, map[string]string{"state": "active"})
	tests := []struct {
		name   string
		query  map[string]string
		cursor string
		want   string // a fragment of the message
	}{
		{"foreign object", nil, b64(`{"foo":"bar"}`), "malformed"},
		{"empty object", nil, b64(`{}`), "malformed"},
		{"id not a string", nil, b64(`{"id":1}`), "malformed"},
		{"id not a timer id", nil, b64(`{"id":"a b"}`), "malformed"},
		{"extra field", nil, b64(`{"id":"t1","shardId":"shard0"}`), "malformed"},
		{"duplicate id", nil, b64(`{"id":"t1","id":"t2"}`), "malformed"},
		{"case variant", nil, b64(`{"ID":"t1"}`), "malformed"},
		{"trailing data", nil, b64(`{"id":"t1"}x`), "malformed"},
		{"JSON array", nil, b64(`["t1"]`), "malformed"},
		{"standard base64 padding", nil, base64.StdEncoding.EncodeToString([]byte(`{"id":"t1"}`)), "malformed"},
		{"forged lease key for a group", map[string]string{"group": "qa"}, b64(`{"id":"#lease/shard0","group":"qa"}`), "malformed"},
		{"forged internal key of no known kind", nil, b64(`{"id":"#other/x"}`), "malformed"},
		{"lease key of no shard", nil, b64(`{"id":"#lease/"}`), "malformed"},
		{"forged lease key", nil, b64(`{"id":"#lease#shard0","at":""}`), "malformed"},
		{"forged group item", nil, b64(`{"id":"#group#qa"}`), "malformed"},
		{"another group's timer in a group's cursor", map[string]string{"group": "qa"}, b64(`{"id":"t1","at":"prod","group":"qa"}`), "malformed"},
		{"group not a group name", nil, b64(`{"id":"t1","at":"a b"}`), "malformed"},
		{"another group's cursor", map[string]string{"group": "prod"}, fromQA, "belongs to the list"},
		{"a group's cursor on the unfiltered list", nil, fromQA, "belongs to the list"},
		{"the unfiltered list's cursor on a group", map[string]string{"group": "qa"}, fromAll, "belongs to the list"},
		{"another state's cursor", map[string]string{"state": "paused"}, fromActive, "belongs to the list"},
		{"a state's cursor without the state", nil, fromActive, "belongs to the list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestAPI(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), 1)
			resp := b.do(t, events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic", QueryStringParameters: mapsWith(tt.query, "cursor", tt.cursor)})
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; body %s", resp.StatusCode, resp.Body)
			}
			if e := decodeError(t, resp); e.Code != EINVALID || !strings.Contains(e.Message, tt.want) {
				t.Errorf("error %s %q, want %s containing %q", e.Code, e.Message, EINVALID, tt.want)
			}
			if slices.ContainsFunc(b.store.calls, func(c string) bool { return strings.HasPrefix(c, "List") }) {
				t.Errorf("the store was asked: %v", b.store.calls)
			}
		})
	}
}

// TestCursorNamesTimersOnly: a cursor may name a timer (its id, and the
// group it is in) and nothing else: the list reads timers only, so no
// page ends at another kind of item.
func TestCursorNamesTimersOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c    listCursor
		want bool
	}{
		{listCursor{ID: "t1"}, true},
		{listCursor{ID: "a.b:c_d-e", At: "qa"}, true},
		{listCursor{ID: "t1", At: "qa", Group: "qa"}, true},
		{listCursor{ID: "t1", At: "qa", Group: "qa", State: "active"}, true},
		{listCursor{ID: "t1", Group: "qa"}, false}, // a group's list ends in that group
		{listCursor{ID: "t1", At: "prod", Group: "qa"}, false},
		{listCursor{ID: "#lease#shard0"}, false},
		{listCursor{ID: "#group#qa"}, false},
		{listCursor{ID: "t1", At: "#"}, false},
		{listCursor{ID: ""}, false},
		{listCursor{ID: ".."}, false},
		{listCursor{ID: "a/b"}, false},
	}
	for _, tt := range tests {
		if got := cursorValid(tt.c); got != tt.want {
			t.Errorf("cursorValid(%+v) = %v, want %v", tt.c, got, tt.want)
		}
	}
}

// TestIntegrationListCursors follows the cursor of every list on
// moto_server, with occurrence (history), lease and group items in the
// table beside the timers: every page but the last holds limit timers, no
// cursor names an internal key, and the store refuses a start key the
// read cannot return instead of passing it to DynamoDB.
func TestIntegrationListCursors(t *testing.T) {
	s := motoStore(t)
	ctx := t.Context()
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a := &API{Timers: s, Shards: 1, SecretPrefix: "/callclock/", Now: func() time.Time { return now }, Log: newTestAPI(now, 1).Log}
	fillListCursorsTable(t, s, a, now)
	for _, tt := range []struct {
		q    map[string]string
		want []string
	}{
		{nil, []string{"t0", "t1", "t2", "t3", "t4"}},
		{map[string]string{"group": "qa"}, []string{"t0", "t1", "t4"}},
		{map[string]string{"group": "prod", "state": "active"}, []string{"t2"}},
		{map[string]string{"state": "active"}, []string{"t0", "t1", "t2", "t3", "t4"}},
	} {
		if diff := cmp.Diff(tt.want, listAllPages(t, a, tt.q)); diff != "" {
			t.Errorf("GET /periodic %v (-want +got):\n%s", tt.q, diff)
		}
	}
	for _, tt := range []struct {
		group  string
		cursor map[string]string
	}{
		{"", map[string]string{"foo": "bar"}},
		{"", map[string]string{"id": "t1"}},
		{"", map[string]string{"id": "#lease#shard0", "group": ""}},
		{"", map[string]string{"id": "t1", "group": "#"}},
		{"qa", map[string]string{"id": "t1"}},
		{"qa", map[string]string{"id": "t1", "group": "prod"}},
		{"qa", map[string]string{"id": "t1", "foo": "qa"}},
	} {
		if _, _, err := s.List(ctx, tt.group, "", 1, tt.cursor, now); ErrorCode(err) != EINVALID {
			t.Errorf("List(%q, cursor %v) = %v, want an %s error", tt.group, tt.cursor, err, EINVALID)
		}
	}
}

// fillListCursorsTable puts five timers through a, with more occurrence
// (history) items than timers, as in steady state, a group item and the
// sweep's lease beside them.
func fillListCursorsTable(t *testing.T, s *Store, a *API, now time.Time) {
	ctx := t.Context()
	for i, g := range []string{"qa", "qa", "prod", "", "qa"} {
		id := fmt.Sprintf("t%d", i)
		resp := a.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: http.MethodPut, Path: "/periodic/" + id, Body: `{"timerCallbackData":1,"group":"` + g + `"}`})
		if resp.StatusCode != 201 {
			t.Fatalf("PUT %s: %d %s", id, resp.StatusCode, resp.Body)
		}
		for k := range 4 { // more history items than timers, as in steady state
			o := Occurrence{TimerID: id, At: now.Add(time.Duration(k) * time.Minute)}
			if _, err := s.Claim(ctx, o, Claimant{MessageID: "m", Token: "r"}, now, now); err != nil {
				t.Fatal(err)
			}
			if err := s.Record(ctx, o, LastFire{ScheduledAt: o.At, AttemptedAt: o.At, Attempt: 1, Outcome: OutcomeDelivered}, false, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PauseGroup(ctx, "prod", "", now); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.LeaseSweep(ctx, "owner", "event", now, time.Minute); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
}

// listAllPages follows the cursors of GET /periodic with query q, two
// timers a page, and returns the ids listed, sorted. It checks that every
// page but the last holds two timers and that no cursor names an internal
// key.
func listAllPages(t *testing.T, a *API, q map[string]string) []string {
	var ids []string
	for cursor, pages := "", 0; pages < 100; pages++ {
		q := mapsWith(q, "limit", "2")
		if cursor != "" {
			q["cursor"] = cursor
		}
		resp := a.Handle(t.Context(), events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/periodic", QueryStringParameters: q})
		var page listPage
		if err := json.Unmarshal([]byte(resp.Body), &page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /periodic %v: %d %s", q, resp.StatusCode, resp.Body)
		}
		for _, tm := range page.Timers {
			ids = append(ids, tm.ID)
		}
		if cursor = page.Cursor; cursor == "" {
			break
		}
		if len(page.Timers) != 2 {
			t.Errorf("GET /periodic %v: a page of %d timers with a cursor after it, want 2", q, len(page.Timers))
		}
		if raw, _ := base64.RawURLEncoding.DecodeString(cursor); strings.Contains(string(raw), "#") {
			t.Errorf("GET /periodic %v: cursor %s names an internal key", q, raw)
		}
	}
	slices.Sort(ids)
	return ids
}
