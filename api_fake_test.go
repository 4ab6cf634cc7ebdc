package main

// The API's fake store. api_contract_test.go holds it to the real
// Store's behaviour.

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"
)

// fakeTimerStore is an in-memory timerStore with Store's semantics: Put
// keeps the first CreatedAt and increments Version, and reports created only
// the first time; Get and Delete of a missing id are ENOTFOUND.
type fakeTimerStore struct {
	mu     sync.Mutex
	timers map[string]*Timer
	calls  []string // "Get id", "Put id", "Delete id", in order
	err    error    // when set, every call fails with it
	// history is what History returns for each timer, newest first.
	history map[string][]LastFire
	// groups holds each paused group's pause: its instant and reason.
	groups map[string]groupPause
}

// groupPause is a paused group's record in fakeTimerStore.
type groupPause struct {
	At     time.Time
	Reason string
}

// Show is Get: the fake keeps a timer's lastFire on it, as a test sets it.
func (f *fakeTimerStore) Show(ctx context.Context, id string) (*Timer, error) { return f.Get(ctx, id) }

// PauseGroup records group's pause as Store.PauseGroup: the first pause's
// instant, to the second, and the latest reason given.
func (f *fakeTimerStore) PauseGroup(_ context.Context, group, reason string, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "PauseGroup "+group)
	if f.err != nil {
		return f.err
	}
	if f.groups == nil {
		f.groups = map[string]groupPause{}
	}
	p, ok := f.groups[group]
	if !ok {
		p.At = now.UTC().Truncate(time.Second)
	}
	if reason != "" {
		p.Reason = reason
	}
	f.groups[group] = p
	return nil
}

// ResumeGroup forgets group's pause; a group that runs is no error.
func (f *fakeTimerStore) ResumeGroup(_ context.Context, group string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "ResumeGroup "+group)
	if f.err != nil {
		return f.err
	}
	delete(f.groups, group)
	return nil
}

// GroupPause returns group's pause, or a nil instant while it runs.
func (f *fakeTimerStore) GroupPause(_ context.Context, group string) (*time.Time, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, "", f.err
	}
	p, ok := f.groups[group]
	if !ok {
		return nil, "", nil
	}
	return &p.At, p.Reason, nil
}

// newFakeTimerStore returns an empty fake store.
func newFakeTimerStore() *fakeTimerStore {
	return &fakeTimerStore{timers: map[string]*Timer{}}
}

// Get returns a copy of timer id, or an ENOTFOUND error.
func (f *fakeTimerStore) Get(_ context.Context, id string) (*Timer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Get "+id)
	if f.err != nil {
		return nil, f.err
	}
	t, ok := f.timers[id]
	if !ok {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	c := *t
	return &c, nil
}

// Put creates or replaces t as Store.Put does, and returns the
// occurrences within short notice, which the caller sends.
func (f *fakeTimerStore) Put(_ context.Context, t *Timer, now time.Time) (*Timer, bool, []time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Put "+t.ID)
	if f.err != nil {
		return nil, false, nil, f.err
	}
	stored := *t
	stored.Version, stored.DueFrom = 1, now
	old, exists := f.timers[t.ID]
	if exists {
		stored.CreatedAt = old.CreatedAt
		stored.Version = old.Version + 1
		// As Store.Put: a paused timer stays paused, a running one runs,
		// and the missed occurrences' count goes on. A new timer in a
		// paused group comes with PausedAt set: it is created paused.
		stored.PausedAt, stored.PauseReason = old.PausedAt, old.PauseReason
		stored.MissedCount, stored.LastMissedAt = old.MissedCount, old.LastMissedAt
	}
	f.timers[t.ID] = fakeKept(stored)
	c := stored
	return &c, !exists, fakeHandOn(&c, now), nil
}

// fakeKept is what Store keeps of t, and so what a read returns: no
// NextFireAt, which the API derives (withNext), and an anchor only for a
// rate schedule, the one kind that has a use for it.
func fakeKept(t Timer) *Timer {
	t.NextFireAt = time.Time{}
	if !strings.HasPrefix(t.ScheduleExpr, "rate(") {
		t.Anchor = time.Time{}
	}
	return &t
}

// fakeHandOn is what Store.Put and Store.Resume hand back to send at once:
// the occurrences within shortNotice of now, unless t is paused.
func fakeHandOn(t *Timer, now time.Time) []time.Time {
	if t.PausedAt != nil {
		return nil
	}
	sched, err := t.Schedule(loadZone)
	if err != nil {
		return nil
	}
	direct, _ := handOn(dueEntryOf(t, time.Time{}, now), sched, now.Add(-time.Nanosecond), now)
	return direct
}

// Delete removes timer id, or returns an ENOTFOUND error.
func (f *fakeTimerStore) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Delete "+id)
	if f.err != nil {
		return f.err
	}
	if _, ok := f.timers[id]; !ok {
		return Errorf(ENOTFOUND, "timer %s not found", id)
	}
	delete(f.timers, id)
	return nil
}

// Pause pauses timer id as Store.Pause: a second pause keeps the first
// instant and takes a new reason, if one is given.
func (f *fakeTimerStore) Pause(_ context.Context, id, reason string, now time.Time) (*Timer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Pause "+id)
	t, ok := f.timers[id]
	if !ok {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	if t.PausedAt == nil {
		at := now.Truncate(time.Second)
		t.PausedAt = &at
	}
	if reason != "" {
		t.PauseReason = reason
	}
	c := *t
	return &c, nil
}

// Resume lets a paused timer run from just after now, as Store.Resume;
// resuming a running timer changes nothing.
func (f *fakeTimerStore) Resume(_ context.Context, id string, now time.Time, zone func(string) (*time.Location, error)) (*Timer, []time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Resume "+id)
	t, ok := f.timers[id]
	if !ok {
		return nil, nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	var direct []time.Time
	if t.PausedAt != nil {
		t.PausedAt, t.PauseReason, t.DueFrom = nil, "", now.Add(time.Nanosecond)
		direct = fakeHandOn(t, now.Add(time.Nanosecond)) // after now: what fell while paused is skipped
	}
	c := *t
	return &c, direct, nil
}

// Group hands page the timers of group in one page, by id.
func (f *fakeTimerStore) Group(_ context.Context, group string, page func([]*Timer) error) error {
	f.mu.Lock()
	var ts []*Timer
	for _, t := range f.timers {
		if t.Group == group {
			c := *t
			ts = append(ts, &c)
		}
	}
	f.mu.Unlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
	return page(ts)
}

// List pages timers by id, after the cursor's id, filtered as Store.List.
// As Store.List, which reads the index until it has limit timers, a
// full page has a cursor whenever any timer of the list is left after
// it, even one the state filter will drop: the next page may be empty.
func (f *fakeTimerStore) List(_ context.Context, group, state string, limit int32, cursor map[string]string, now time.Time) ([]*Timer, map[string]string, error) {
	if _, ok := stateFilters[state]; !ok {
		return nil, nil, Errorf(EINVALID, "state must be active, paused or completed")
	}
	if _, err := listStart(group, cursor); err != nil {
		return nil, nil, err // as Store.List: no key DynamoDB would refuse
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "List "+group+" "+state)
	var ids []string
	for id, t := range f.timers {
		if id > cursor["id"] && (group == "" || t.Group == group) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var page []*Timer
	for _, id := range ids {
		if int32(len(page)) == limit {
			last := page[len(page)-1]
			return page, map[string]string{"id": last.ID, "group": last.Group}, nil
		}
		if t := *f.timers[id]; state == "" || fakeState(&t, now) == state {
			page = append(page, &t)
		}
	}
	return page, nil, nil
}

// fakeState is t's state at now as Store.List's filter reads it from the
// item, which changes at no firing: paused; completed once the end of its
// schedule (its endAt, or an at() schedule's one instant), to the second,
// is before now; else active.
func fakeState(t *Timer, now time.Time) string {
	if t.PausedAt != nil {
		return StatePaused
	}
	end := t.EndAt
	if strings.HasPrefix(t.ScheduleExpr, "at(") {
		if sched, err := t.Schedule(loadZone); err == nil {
			if at, ok := sched.Next(time.Time{}); ok {
				end = &at
			}
		}
	}
	if end != nil && end.Unix() < now.Unix() {
		return StateCompleted
	}
	return StateActive
}

// History returns the timer's history, newest first.
func (f *fakeTimerStore) History(_ context.Context, id string, limit int32) ([]LastFire, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "History "+id)
	h := append([]LastFire{}, f.history[id]...) // as Store: none is [], not null
	return h[:min(len(h), int(limit))], nil
}

// puts is the number of Put calls the store received.
func (f *fakeTimerStore) puts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, "Put ") {
			n++
		}
	}
	return n
}

// stored is timer id as the fake holds it (nil: none), for a test to
// inspect without a store call.
func (f *fakeTimerStore) stored(id string) *Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timers[id]
}
