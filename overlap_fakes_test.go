package main

// The overlap tests' fakes, with the real services' semantics: ovStore,
// the invoker's igStore with the run lease and the self-pause's calls as
// Store has them (held to it by TestIntegrationRunLeaseContract). The
// fire queue, drained by several invokers at once as Lambda's event source
// mapping would, is fakeFireQueue (fire_queue_fake_test.go).

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// ---------------------------------------------------------------- fakes

// ovStore is igStore with the run lease (runLeaseStore) and the
// self-pause's calls (selfPauseStore), as Store has them: a skipped
// outcome settles its occurrence, a lease is taken, waited for, handed on
// and ended under Store's conditions. It records every lease call.
type ovStore struct {
	*igStore
	lmu    sync.Mutex
	leases map[string]RunLease // by timer id
	waits  map[string]int      // by igKey
	calls  []string            // lease and self-pause calls, "Name id"
	pauses []string            // Pause calls: "id: reason"
	// beforeWait, when set, runs at each WaitRun before its condition is
	// checked, outside the lock: another invoker's move in between.
	beforeWait func()
}

// newOVStore returns an ovStore holding timers.
func newOVStore(timers ...Timer) *ovStore {
	return wrapOV(newIGStore(timers...))
}

// wrapOV makes an ovStore of s.
func wrapOV(s *igStore) *ovStore {
	return &ovStore{igStore: s, leases: map[string]RunLease{}, waits: map[string]int{}}
}

// call records a call.
func (s *ovStore) call(name, id string) { s.calls = append(s.calls, name+" "+id) }

// Calls returns the lease and self-pause calls.
func (s *ovStore) Calls() []string {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return slices.Clone(s.calls)
}

// Lease returns timer id's run lease.
func (s *ovStore) Lease(id string) RunLease {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.leases[id]
}

// Record is igStore's, and settles a skipped occurrence as Store does.
func (s *ovStore) Record(ctx context.Context, o Occurrence, f LastFire, deadLettered bool, now time.Time) error {
	if f.Outcome != OutcomeSkipped {
		return s.igStore.Record(ctx, o, f, deadLettered, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := igKey(o)
	c := s.claims[key]
	if c.Settled {
		return nil
	}
	c.Settled, c.Leased = true, false
	s.claims[key] = c
	s.fires = append(s.fires, igFire{TimerID: o.TimerID, Fire: f})
	return nil
}

// AcquireRun takes the lease under Store.AcquireRun's condition.
func (s *ovStore) AcquireRun(_ context.Context, id, occ string, now, until time.Time) (RunLease, bool, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("AcquireRun", id)
	l := s.leases[id]
	if l.Holder != "" && l.Until >= now.UnixMilli() && l.Holder != occ {
		return l, false, nil
	}
	l.Holder, l.Until = occ, until.UnixMilli()
	s.leases[id] = l
	return RunLease{}, true, nil
}

// WaitRun makes occ the waiter under Store.WaitRun's condition.
func (s *ovStore) WaitRun(_ context.Context, id, occ, receipt string, now, until time.Time) (RunLease, bool, error) {
	if s.beforeWait != nil {
		s.beforeWait()
	}
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("WaitRun", id)
	l, ok := s.leases[id]
	free := l.Waiter == "" || l.WaiterUntil < now.UnixMilli() || l.Waiter == occ || l.Waiter == l.Holder
	if !ok || l.Holder == "" || l.Until < now.UnixMilli() || l.Holder == occ || !free {
		return l, false, nil
	}
	l.Waiter, l.WaiterUntil, l.WaiterReceipt = occ, until.UnixMilli(), receipt
	s.leases[id] = l
	return RunLease{}, true, nil
}

// EndRun deletes or hands on the lease as Store.EndRun does.
func (s *ovStore) EndRun(_ context.Context, id, occ string, now time.Time) (string, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("EndRun", id)
	l := s.leases[id]
	if l.Holder != occ {
		return "", nil
	}
	if !l.waiting(now) || l.Waiter == occ {
		delete(s.leases, id)
		return "", nil
	}
	receipt := l.WaiterReceipt
	s.leases[id] = RunLease{Holder: l.Waiter, Until: l.WaiterUntil}
	return receipt, nil
}

// ReleaseToWait releases the claim and counts a wait.
func (s *ovStore) ReleaseToWait(ctx context.Context, o Occurrence, c Claimant) error {
	s.lmu.Lock()
	s.call("ReleaseToWait", o.TimerID)
	s.waits[igKey(o)]++
	s.lmu.Unlock()
	return s.igStore.ReleaseClaim(ctx, o, c)
}

// Waits returns the waits counted on o.
func (s *ovStore) Waits(_ context.Context, o Occurrence) (int, error) {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	s.call("Waits", o.TimerID)
	return s.waits[igKey(o)], nil
}

// occurrences calls each with timer id's occurrences' latest outcomes,
// newest first (a fire by hand before a scheduled one at its instant, as
// their sort keys order them), as Store.occurrences does.
func (s *ovStore) occurrences(_ context.Context, id string, _ int32, each func(LastFire) bool) error {
	s.lmu.Lock()
	s.call("occurrences", id)
	s.lmu.Unlock()
	latest := map[string]LastFire{}
	for _, f := range s.Fires() {
		if f.TimerID == id {
			latest[igKey(Occurrence{TimerID: id, At: f.Fire.ScheduledAt, Manual: f.Fire.Manual})] = f.Fire
		}
	}
	var all []LastFire
	for _, f := range latest {
		all = append(all, f)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].ScheduledAt.Equal(all[j].ScheduledAt) {
			return all[i].ScheduledAt.After(all[j].ScheduledAt)
		}
		return all[i].Manual
	})
	for _, f := range all {
		if !each(f) {
			return nil
		}
	}
	return nil
}

// Pause pauses timer id as Store.Pause does: the first pause's instant is
// kept, the reason replaced.
func (s *ovStore) Pause(_ context.Context, id, reason string, now time.Time) (*Timer, error) {
	s.lmu.Lock()
	s.call("Pause", id)
	s.pauses = append(s.pauses, id+": "+reason)
	s.lmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.timers[id]
	if !ok {
		return nil, Errorf(ENOTFOUND, "timer %s not found", id)
	}
	if t.PausedAt == nil {
		at := now.UTC()
		t.PausedAt = &at
	}
	t.PauseReason = reason
	s.timers[id] = t
	return &t, nil
}

// setTimer replaces timer t, as a PUT, pause or resume would.
func (s *ovStore) setTimer(t Timer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timers[t.ID] = t
}

// deleteTimer deletes timer id, as a DELETE would.
func (s *ovStore) deleteTimer(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.timers, id)
}
