package main

// The contract between the API's store (timerStore) and its fake: one
// table of cases, run against fakeTimerStore and against the real Store on
// moto_server, whose results must be the same. The API's tests trust the
// fake; this test is what keeps that trust earned.

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ctAt is when a contract case's timers are created; an hourly timer's
// first occurrence is then 10:45, beyond short notice.
var ctAt = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// ctResult is what one store call returned, in terms both stores share.
type ctResult struct {
	Op      string
	Code    string // ErrorCode of the error; "" for none
	Timer   *Timer
	Created bool
	Direct  []time.Time
	// IDs are a list's timers, in the order read, and Pages its page
	// sizes, when the call followed a list's cursors to the end.
	IDs   []string
	Pages []int
	// PausedAt and Reason are a group's pause.
	PausedAt *time.Time
	Reason   string
	History  []LastFire
}

// ctRun records the results of a case's calls on one store.
type ctRun struct {
	ctx     context.Context
	s       timerStore
	results []ctResult
}

// add records r, with err's code.
func (r *ctRun) add(res ctResult, err error) {
	if err != nil {
		res.Code = ErrorCode(err)
	}
	r.results = append(r.results, res)
}

// put stores a timer of definition body (a PUT body) created at now.
func (r *ctRun) put(t *testing.T, id, body string, now time.Time) {
	t.Helper()
	tm := ctTimer(t, id, body, now)
	stored, created, direct, err := r.s.Put(r.ctx, tm, now)
	r.add(ctResult{Op: "Put " + id, Timer: stored, Created: created, Direct: direct}, err)
}

// putPaused stores a new timer of body as a paused group's: paused.
func (r *ctRun) putPaused(t *testing.T, id, body string, now time.Time) {
	t.Helper()
	tm := ctTimer(t, id, body, now)
	tm.PausedAt, tm.PauseReason = &now, "group paused"
	stored, created, direct, err := r.s.Put(r.ctx, tm, now)
	r.add(ctResult{Op: "Put paused " + id, Timer: stored, Created: created, Direct: direct}, err)
}

// get reads timer id both ways: Get, and Show with its latest outcome.
func (r *ctRun) get(id string) {
	tm, err := r.s.Get(r.ctx, id)
	r.add(ctResult{Op: "Get " + id, Timer: tm}, err)
	tm, err = r.s.Show(r.ctx, id)
	r.add(ctResult{Op: "Show " + id, Timer: tm}, err)
}

// delete deletes timer id.
func (r *ctRun) delete(id string) {
	r.add(ctResult{Op: "Delete " + id}, r.s.Delete(r.ctx, id))
}

// pause pauses timer id at now, with reason.
func (r *ctRun) pause(id, reason string, now time.Time) {
	tm, err := r.s.Pause(r.ctx, id, reason, now)
	r.add(ctResult{Op: "Pause " + id + " " + reason, Timer: tm}, err)
}

// resume resumes timer id at now.
func (r *ctRun) resume(id string, now time.Time) {
	tm, direct, err := r.s.Resume(r.ctx, id, now, loadZone)
	r.add(ctResult{Op: "Resume " + id, Timer: tm, Direct: direct}, err)
}

// list follows the cursors of a list to its end, limit timers a page.
func (r *ctRun) list(group, state string, limit int32, now time.Time) {
	res := ctResult{Op: "List " + group + " " + state}
	var cursor map[string]string
	for range 100 {
		page, next, err := r.s.List(r.ctx, group, state, limit, cursor, now)
		if err != nil {
			r.add(res, err)
			return
		}
		res.Pages = append(res.Pages, len(page))
		for _, tm := range page {
			res.IDs = append(res.IDs, tm.ID)
		}
		if next == nil {
			break
		}
		cursor = next
	}
	if group == "" {
		// The list of all timers scans the index, in the order of its
		// partition keys' hashes: only the set is the contract.
		slices.Sort(res.IDs)
	}
	r.add(res, nil)
}

// listFrom is one page of a list from cursor, which may be refused.
func (r *ctRun) listFrom(group string, cursor map[string]string, now time.Time) {
	page, _, err := r.s.List(r.ctx, group, "", 10, cursor, now)
	res := ctResult{Op: "List from " + group}
	for _, tm := range page {
		res.IDs = append(res.IDs, tm.ID)
	}
	r.add(res, err)
}

// group reads the timers of group, page by page.
func (r *ctRun) group(group string) {
	res := ctResult{Op: "Group " + group}
	err := r.s.Group(r.ctx, group, func(page []*Timer) error {
		for _, tm := range page {
			res.IDs = append(res.IDs, tm.ID)
		}
		return nil
	})
	r.add(res, err)
}

// pauseGroup records group's pause at now, with reason.
func (r *ctRun) pauseGroup(group, reason string, now time.Time) {
	r.add(ctResult{Op: "PauseGroup " + group + " " + reason}, r.s.PauseGroup(r.ctx, group, reason, now))
}

// resumeGroup records that group runs again.
func (r *ctRun) resumeGroup(group string) {
	r.add(ctResult{Op: "ResumeGroup " + group}, r.s.ResumeGroup(r.ctx, group))
}

// groupPause reads group's pause.
func (r *ctRun) groupPause(group string) {
	at, reason, err := r.s.GroupPause(r.ctx, group)
	r.add(ctResult{Op: "GroupPause " + group, PausedAt: at, Reason: reason}, err)
}

// history reads timer id's latest outcomes.
func (r *ctRun) history(id string) {
	h, err := r.s.History(r.ctx, id, 50)
	r.add(ctResult{Op: "History " + id, History: h}, err)
}

// ctTimer is the timer a PUT of body makes at now, through the API's rules.
func ctTimer(t *testing.T, id, body string, now time.Time) *Timer {
	t.Helper()
	var in putRequest
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	tm, err := newTimer(id, in, timerOptions{Now: now, Shards: 2, SecretPrefix: DefaultSecretPrefix})
	if err != nil {
		t.Fatalf("newTimer %s %s: %v", id, body, err)
	}
	return tm
}

// Definitions the cases store.
const (
	ctHourly = `{"timerCallbackData":{"k":1},"minuteOfHour":45}`
	ctQA     = `{"timerCallbackData":1,"minuteOfHour":45,"group":"qa"}`
	ctProd   = `{"timerCallbackData":1,"minuteOfHour":45,"group":"prod"}`
	// ctOnce fires once, at 10:05: completed from then on.
	ctOnce = `{"timerCallbackData":1,"schedule":"at(2026-11-22T10:05:00)","group":"qa"}`
	// ctEnded runs every hour until 10:30.
	ctEnded = `{"http":{"url":"https://example.com/h"},"schedule":"cron(15 * * * ? *)","endAt":"2026-11-22T10:30:00Z"}`
)

// apiContractCases are the calls each store must answer alike.
var apiContractCases = []struct {
	name string
	run  func(t *testing.T, r *ctRun)
}{
	{"put creates then replaces", func(t *testing.T, r *ctRun) {
		r.put(t, "t1", ctHourly, ctAt)
		r.put(t, "t1", `{"timerCallbackData":"second","minuteOfHour":5,"retry":{"maxAttempts":3}}`, ctAt.Add(90*time.Second))
		r.get("t1")
	}},
	{"put ignores the version and createdAt it is given", func(t *testing.T, r *ctRun) {
		tm := ctTimer(t, "t1", ctHourly, ctAt)
		tm.Version, tm.CreatedAt = 7, ctAt.Add(-time.Hour)
		stored, created, direct, err := r.s.Put(r.ctx, tm, ctAt)
		r.add(ctResult{Op: "Put stale version", Timer: stored, Created: created, Direct: direct}, err)
		tm.Version = 0
		stored, created, direct, err = r.s.Put(r.ctx, tm, ctAt)
		r.add(ctResult{Op: "Put version 0", Timer: stored, Created: created, Direct: direct}, err)
		r.get("t1")
	}},
	{"put within short notice hands on the occurrence", func(t *testing.T, r *ctRun) {
		r.put(t, "soon", `{"timerCallbackData":1,"minuteOfHour":45}`, ctAt.Add(44*time.Minute+58*time.Second))
	}},
	{"get and delete", func(t *testing.T, r *ctRun) {
		r.get("none")
		r.delete("none")
		r.put(t, "t1", ctHourly, ctAt)
		r.delete("t1")
		r.get("t1")
		r.delete("t1")
	}},
	{"pause and resume", func(t *testing.T, r *ctRun) {
		r.put(t, "t1", ctHourly, ctAt)
		r.pause("t1", "deploy", ctAt.Add(67*time.Second+250*time.Millisecond))
		r.pause("t1", "", ctAt.Add(2*time.Minute)) // keeps the first pause and its reason
		r.pause("t1", "again", ctAt.Add(3*time.Minute))
		r.get("t1")
		r.put(t, "t1", ctProd, ctAt.Add(4*time.Minute)) // a paused timer stays paused
		r.resume("t1", ctAt.Add(50*time.Minute+123456789))
		r.resume("t1", ctAt.Add(51*time.Minute)) // running: nothing changes
		r.get("t1")
		r.pause("none", "", ctAt)
		r.resume("none", ctAt)
	}},
	{"resume within short notice hands on the occurrence", func(t *testing.T, r *ctRun) {
		r.put(t, "t1", ctHourly, ctAt)
		r.pause("t1", "", ctAt.Add(time.Minute))
		r.resume("t1", ctAt.Add(44*time.Minute+58*time.Second))
	}},
	{"list filters by group and state", func(t *testing.T, r *ctRun) {
		r.put(t, "a", ctQA, ctAt)
		r.put(t, "b", ctProd, ctAt)
		r.put(t, "c", ctQA, ctAt)
		r.put(t, "d", ctHourly, ctAt)
		r.put(t, "e", ctOnce, ctAt)
		r.put(t, "f", ctEnded, ctAt)
		r.put(t, "g", ctQA, ctAt)
		r.pause("c", "", ctAt)
		r.pause("d", "", ctAt)
		r.resume("d", ctAt.Add(time.Minute))
		later := ctAt.Add(time.Hour) // e and f have ended
		for _, l := range []struct{ group, state string }{
			{"", ""}, {"qa", ""}, {"prod", ""}, {"none", ""},
			{"", StateActive}, {"", StatePaused}, {"", StateCompleted},
			{"qa", StateActive}, {"qa", StatePaused}, {"qa", StateCompleted},
			{"", "sleeping"},
		} {
			r.list(l.group, l.state, 2, later)
			r.list(l.group, l.state, 50, later)
		}
		r.list("", StateActive, 1, ctAt) // before e and f end
	}},
	{"list refuses a cursor of another list", func(t *testing.T, r *ctRun) {
		r.put(t, "a", ctQA, ctAt)
		r.put(t, "b", ctProd, ctAt)
		r.put(t, "c", ctQA, ctAt)
		r.listFrom("qa", map[string]string{"id": "a", "group": "qa"}, ctAt)
		r.listFrom("qa", map[string]string{"id": "b", "group": "prod"}, ctAt)
		r.listFrom("qa", map[string]string{"id": "a"}, ctAt)
		r.listFrom("", map[string]string{"id": "#lease#shard0", "group": ""}, ctAt)
	}},
	{"group pause", func(t *testing.T, r *ctRun) {
		r.groupPause("qa")
		r.pauseGroup("qa", "deploy", ctAt.Add(1500*time.Millisecond))
		r.pauseGroup("qa", "", ctAt.Add(time.Minute)) // keeps the first pause and its reason
		r.groupPause("qa")
		r.pauseGroup("qa", "again", ctAt.Add(2*time.Minute))
		r.groupPause("qa")
		r.groupPause("prod")
		r.putPaused(t, "b", ctQA, ctAt.Add(3*time.Minute))
		r.put(t, "a", ctQA, ctAt.Add(3*time.Minute))
		r.put(t, "c", ctProd, ctAt.Add(3*time.Minute))
		r.group("qa")
		r.group("none")
		r.resumeGroup("qa")
		r.groupPause("qa")
		r.resumeGroup("qa")
	}},
	{"history", func(t *testing.T, r *ctRun) {
		r.put(t, "t1", ctHourly, ctAt)
		r.history("t1")
	}},
}

// ctCompare compares results, the instants by Equal (a store keeps no
// zone), but not slot entries: they are the store's own business (the
// fake writes none, and the API shows none).
var ctCompare = cmp.Options{
	rawAsString,
	cmpopts.IgnoreFields(Timer{}, "Slots"),
}

func TestIntegrationAPIContract(t *testing.T) {
	for _, tc := range apiContractCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &ctRun{ctx: t.Context(), s: newFakeTimerStore()}
			tc.run(t, fake)
			real := &ctRun{ctx: t.Context(), s: motoStore(t)}
			tc.run(t, real)
			if diff := cmp.Diff(real.results, fake.results, ctCompare); diff != "" {
				t.Errorf("the fake store differs from Store (-Store +fake):\n%s", diff)
			}
		})
	}
}
