package main

// Tests of group actions: POST /groups/{group}/pause and /resume, and the
// group of a PUT. The helpers are api_lifecycle_test.go's ("lc").

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ---------------------------------------------------------------- groups

// groupAction posts action (pause or resume) with body to group, whose
// timers are members, and checks the response against want and that the
// store was asked to apply action to each member, once.
func (e *lcEnv) groupAction(t *testing.T, step, group, action, body string, want groupResult, members []string) {
	t.Helper()
	n := len(e.storeCalls())
	resp := e.must(t, http.MethodPost, "/groups/"+group+"/"+action, body, http.StatusOK)
	var got groupResult
	decodeStrict(t, resp.Body, &got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: response (-want +got):\n%s", step, diff)
	}
	calls := lifecycleCalls(e.storeCalls()[n:])
	slices.Sort(calls)
	var wantCalls []string
	for _, id := range members {
		wantCalls = append(wantCalls, strings.ToUpper(action[:1])+action[1:]+" "+id)
	}
	if diff := cmp.Diff(wantCalls, calls); diff != "" {
		t.Errorf("%s: store calls (-want +got):\n%s", step, diff)
	}
}

// checkUnchanged checks that the timers of others, outside the group,
// are as they were.
func (e *lcEnv) checkUnchanged(t *testing.T, step string, others map[string]lcDoc) {
	t.Helper()
	for id, want := range others {
		// Its nextFireAt follows the clock; nothing else may change.
		if diff := cmp.Diff(want, e.get(t, id), lcDocOpts, cmpopts.IgnoreFields(timerDoc{}, "NextFireAt")); diff != "" {
			t.Errorf("%s: %s, outside the group, changed (-before +after):\n%s", step, id, diff)
		}
	}
}

func TestAPILifecycleGroupPauseResume(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	bodies := map[string]string{
		"qa-1":   `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`,
		"qa-2":   `{"timerCallbackData":2,"schedule":"cron(0 9 * * ? *)","timezone":"America/New_York","group":"qa"}`,
		"qa-3":   `{"timerCallbackData":3,"minuteOfHour":5,"group":"qa"}`,
		"prod-1": `{"timerCallbackData":4,"minuteOfHour":45,"group":"prod"}`,
		"solo":   `{"timerCallbackData":5,"minuteOfHour":45}`,
	}
	created := map[string]lcDoc{}
	for id, body := range bodies {
		created[id] = e.put(t, id, body)
	}
	// prod-1 is paused by itself: resuming qa must not resume it.
	e.must(t, http.MethodPost, "/periodic/prod-1/pause", `{"reason":"freeze"}`, http.StatusOK)
	others := map[string]lcDoc{"prod-1": e.get(t, "prod-1"), "solo": e.get(t, "solo")}
	qa := []string{"qa-1", "qa-2", "qa-3"}

	checkOthers := func(step string) { t.Helper(); e.checkUnchanged(t, step, others) }
	group := func(step, action, body string, want groupResult) {
		t.Helper()
		e.groupAction(t, step, "qa", action, body, want, qa)
	}

	e.clock.Set(lcPauseAt)
	group("pause", "pause", `{"reason":"deploy 42"}`, groupResult{Group: "qa", Action: "pause", Timers: 3, Changed: 3})
	for _, id := range qa {
		if diff := cmp.Diff(paused(created[id], "2026-11-22T10:31:07Z", "deploy 42"), e.get(t, id), lcDocOpts); diff != "" {
			t.Errorf("pause: %s (-want +got):\n%s", id, diff)
		}
	}
	checkOthers("pause")

	e.clock.Set(lcPauseAt.Add(9 * time.Minute))
	group("pause again", "pause", "", groupResult{Group: "qa", Action: "pause", Timers: 3, Changed: 0})
	for _, id := range qa {
		if diff := cmp.Diff(paused(created[id], "2026-11-22T10:31:07Z", "deploy 42"), e.get(t, id), lcDocOpts); diff != "" {
			t.Errorf("pause again: %s (-want +got): the first pause's instant and reason are kept\n%s", id, diff)
		}
	}
	checkOthers("pause again")

	e.clock.Set(lcResumeAt)
	group("resume", "resume", "", groupResult{Group: "qa", Action: "resume", Timers: 3, Changed: 3})
	wantNext := map[string]string{
		"qa-1": "2026-11-22T11:45:00Z", // 10:45 fell while paused
		"qa-2": "2026-11-22T14:00:00Z", // 09:00 in New York
		"qa-3": "2026-11-22T11:05:00Z",
	}
	for _, id := range qa {
		want := created[id]
		want.State, want.NextFireAt = StateActive, ptrTo(wantNext[id])
		if diff := cmp.Diff(want, e.get(t, id), lcDocOpts); diff != "" {
			t.Errorf("resume: %s (-want +got):\n%s", id, diff)
		}
	}
	checkOthers("resume")
}

// TestAPILifecycleGroupPauseCoversNewTimers: a timer created in a paused
// group is created paused, with the group's pause, and runs when the group
// resumes; a timer that already exists keeps its own state, and another
// group is not affected.
func TestAPILifecycleGroupPauseCoversNewTimers(t *testing.T) {
	t.Parallel()
	e := newLCEnv(t)
	running := e.put(t, "running", `{"timerCallbackData":0,"minuteOfHour":45}`)
	e.clock.Set(lcPauseAt)
	e.must(t, http.MethodPost, "/groups/qa/pause", `{"reason":"deploy 43"}`, http.StatusOK)

	e.clock.Set(lcPauseAt.Add(time.Minute))
	resp := e.must(t, http.MethodPut, "/periodic/qa-new", `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`, http.StatusCreated)
	created := decodeLCDoc(t, resp)
	want := created
	want.State, want.NextFireAt, want.PausedAt, want.PauseReason = StatePaused, nil, ptrTo("2026-11-22T10:31:07Z"), "deploy 43"
	if diff := cmp.Diff(want, created, lcDocOpts); diff != "" {
		t.Errorf("created in the paused group (-want +got):\n%s", diff)
	}
	if other := e.put(t, "prod-new", `{"timerCallbackData":2,"minuteOfHour":45,"group":"prod"}`); other.State != StateActive {
		t.Errorf("created in another group: state %q, want active", other.State)
	}
	if moved := e.put(t, "running", `{"timerCallbackData":0,"minuteOfHour":45,"group":"qa"}`); moved.State != StateActive || moved.PausedAt != nil ||
		*moved.NextFireAt != *running.NextFireAt {
		t.Errorf("an existing timer moved into the paused group: %+v, want it running as before", moved)
	}

	e.clock.Set(lcResumeAt)
	e.must(t, http.MethodPost, "/groups/qa/resume", "", http.StatusOK)
	if got := e.get(t, "qa-new"); got.State != StateActive || got.NextFireAt == nil || *got.NextFireAt != "2026-11-22T11:45:00Z" {
		t.Errorf("after the group's resume: state %q next %v, want active at 11:45", got.State, got.NextFireAt)
	}
	if later := e.put(t, "qa-later", `{"timerCallbackData":3,"minuteOfHour":45,"group":"qa"}`); later.State != StateActive {
		t.Errorf("created after the resume: state %q, want active", later.State)
	}
}

func TestAPILifecycleGroupEmpty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action, group string
	}{
		{"pause", "nobody"},
		{"resume", "nobody"},
		{"pause", strings.Repeat("g", 64)},
		{"resume", "A.b_C-9"},
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.group, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			other := e.put(t, "t1", `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`)

			resp := e.must(t, http.MethodPost, "/groups/"+tt.group+"/"+tt.action, "", http.StatusOK)

			var got groupResult
			decodeStrict(t, resp.Body, &got)
			if diff := cmp.Diff(groupResult{Group: tt.group, Action: tt.action}, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(other, e.get(t, "t1"), lcDocOpts); diff != "" {
				t.Errorf("t1, of another group, changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAPILifecycleGroupRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		path     string
		body     string
		wantCode string
	}{
		{name: "group with space", path: "/groups/a b/pause", wantCode: EINVALID},
		{name: "group with escaped space", path: "/groups/a%20b/resume", wantCode: EINVALID},
		{name: "group with escaped slash", path: "/groups/qa%2Fx/pause", wantCode: EINVALID},
		{name: "group with colon", path: "/groups/qa:x/pause", wantCode: EINVALID},
		{name: "group of 65 characters", path: "/groups/" + strings.Repeat("g", 65) + "/pause", wantCode: EINVALID},
		{name: "empty group", path: "/groups//pause", wantCode: EINVALID},
		{name: "group fire", path: "/groups/qa/fire", wantCode: ENOTFOUND},
		{name: "reason of 257 characters", path: "/groups/qa/pause", body: `{"reason":"` + strings.Repeat("r", 257) + `"}`, wantCode: EINVALID},
		{name: "malformed body", path: "/groups/qa/pause", body: `{"reason":`, wantCode: EINVALID},
		{name: "unknown field", path: "/groups/qa/pause", body: `{"reason":"x","force":true}`, wantCode: EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			before := e.put(t, "qa-1", `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`)

			resp := e.call(t, http.MethodPost, tt.path, tt.body)

			if want := errorStatus(tt.wantCode); resp.StatusCode != want {
				t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
			}
			if got := decodeError(t, resp); got.Code != tt.wantCode || got.Message == "" {
				t.Errorf("error %+v, want code %q with a message", got, tt.wantCode)
			}
			if calls := lifecycleCalls(e.storeCalls()); len(calls) != 0 {
				t.Errorf("store calls %v, want no Pause or Resume", calls)
			}
			if diff := cmp.Diff(before, e.get(t, "qa-1"), lcDocOpts); diff != "" {
				t.Errorf("qa-1 changed (-before +after):\n%s", diff)
			}
		})
	}
}

// ---------------------------------------------------------------- PUT group

func TestAPILifecyclePutGroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		group     string // the JSON value; "" leaves the field out
		wantGroup string
		wantCode  string // "" for success
	}{
		{name: "named", group: `"qa-facilities"`, wantGroup: "qa-facilities"},
		{name: "every allowed kind", group: `"Az09._-"`, wantGroup: "Az09._-"},
		{name: "64 characters", group: `"` + strings.Repeat("g", 64) + `"`, wantGroup: strings.Repeat("g", 64)},
		{name: "absent", wantGroup: ""},
		{name: "empty string is no group", group: `""`, wantGroup: ""},
		{name: "null is no group", group: `null`, wantGroup: ""},
		{name: "65 characters", group: `"` + strings.Repeat("g", 65) + `"`, wantCode: EINVALID},
		{name: "space", group: `"a b"`, wantCode: EINVALID},
		{name: "slash", group: `"qa/x"`, wantCode: EINVALID},
		{name: "colon", group: `"qa:x"`, wantCode: EINVALID},
		{name: "non-ASCII letter", group: `"ü"`, wantCode: EINVALID},
		{name: "number", group: `7`, wantCode: EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newLCEnv(t)
			body := `{"timerCallbackData":1,"minuteOfHour":45}`
			if tt.group != "" {
				body = `{"timerCallbackData":1,"minuteOfHour":45,"group":` + tt.group + `}`
			}

			resp := e.call(t, http.MethodPut, "/periodic/t1", body)

			if tt.wantCode != "" {
				if want := errorStatus(tt.wantCode); resp.StatusCode != want {
					t.Errorf("status %d, want %d; body %s", resp.StatusCode, want, resp.Body)
				}
				if got := decodeError(t, resp).Code; got != tt.wantCode {
					t.Errorf("error code %q, want %q", got, tt.wantCode)
				}
				if n := e.store.puts(); n != 0 {
					t.Errorf("store received %d Put calls, want none", n)
				}
				if got := e.store.stored("t1"); got != nil {
					t.Errorf("store holds %+v, want nothing", got)
				}
				return
			}
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201; body %s", resp.StatusCode, resp.Body)
			}
			if got := decodeLCDoc(t, resp).Group; got != tt.wantGroup {
				t.Errorf("group in response %q, want %q", got, tt.wantGroup)
			}
			if got := e.get(t, "t1").Group; got != tt.wantGroup {
				t.Errorf("group in GET %q, want %q", got, tt.wantGroup)
			}
			if got := e.store.stored("t1").Group; got != tt.wantGroup {
				t.Errorf("group stored %q, want %q", got, tt.wantGroup)
			}
			if has := strings.Contains(resp.Body, `"group"`); has != (tt.wantGroup != "") {
				t.Errorf("response has a group field: %t, want %t; body %s", has, tt.wantGroup != "", resp.Body)
			}
		})
	}
}
