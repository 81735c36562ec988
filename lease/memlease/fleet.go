package memlease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kclgo/kcl/lease"
)

// This file implements lease.FleetStore: the heartbeats, roster and leader
// lock of kcl-fleet coordination, with the conditions and errors of the
// DynamoDB store, counted in Stats as DynamoDB would bill them.

// heartbeatBatch is how many keys one DynamoDB BatchGetItem reads.
const heartbeatBatch = 100

var (
	errNoWorker   = errors.New("empty worker id")
	errBadState   = errors.New("invalid worker state")
	errBadLeases  = errors.New("negative lease count")
	errNoLockHeld = errors.New("the lock has no owner")
	errBadCounter = errors.New("heartbeat counter below 1")
)

// Beat implements lease.FleetStore.
func (s *Store) Beat(ctx context.Context, workerID string, state lease.WorkerState, leases int) (lease.Heartbeat, error) {
	switch {
	case workerID == "":
		return lease.Heartbeat{}, fmt.Errorf("memlease: %v: %w", OpBeat, errNoWorker)
	case state < lease.WorkerStarting || state > lease.WorkerStopping:
		return lease.Heartbeat{}, fmt.Errorf("memlease: %v %q: %w: %v", OpBeat, workerID, errBadState, state)
	case leases < 0:
		return lease.Heartbeat{}, fmt.Errorf("memlease: %v %q: %w: %d", OpBeat, workerID, errBadLeases, leases)
	}
	if err := s.begin(ctx, OpBeat, workerID); err != nil {
		return lease.Heartbeat{}, err
	}
	s.mu.Lock()
	hb := s.heartbeats[workerID]
	hb.WorkerID = workerID
	hb.Counter++
	hb.State = state
	hb.Leases = leases
	s.heartbeats[workerID] = hb
	s.countWrite(OpBeat, true)
	s.mu.Unlock()
	if err := s.spurious(OpBeat, workerID); err != nil {
		return lease.Heartbeat{}, err
	}
	return hb, nil
}

// Heartbeats implements lease.FleetStore. It returns the heartbeats in id
// order and, unlike the DynamoDB store, never lags writes. Stats counts one
// BatchGetItem per 100 distinct ids.
func (s *Store) Heartbeats(ctx context.Context, ids []string) ([]lease.Heartbeat, error) {
	if slices.Contains(ids, "") {
		return nil, fmt.Errorf("memlease: %v: %w", OpHeartbeats, errNoWorker)
	}
	if err := s.begin(ctx, OpHeartbeats, ""); err != nil {
		return nil, err
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	if len(ids) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []lease.Heartbeat
	for _, id := range ids {
		if hb, ok := s.heartbeats[id]; ok {
			out = append(out, hb)
		}
	}
	s.stats.HeartbeatReads++
	s.stats.HeartbeatBatches += int64((len(ids) + heartbeatBatch - 1) / heartbeatBatch)
	s.stats.HeartbeatKeys += int64(len(ids))
	s.stats.HeartbeatItems += int64(len(out))
	return out, nil
}

// MarkAssigned implements lease.FleetStore.
func (s *Store) MarkAssigned(ctx context.Context, workerID string) error {
	return s.heartbeatWrite(ctx, OpMarkAssigned, workerID, func(hb *lease.Heartbeat) error {
		hb.AssignEpoch++
		return nil
	})
}

// SetStandby implements lease.FleetStore.
func (s *Store) SetStandby(ctx context.Context, workerID string, standby bool) error {
	return s.heartbeatWrite(ctx, OpSetStandby, workerID, func(hb *lease.Heartbeat) error {
		hb.Standby = standby
		return nil
	})
}

// Fence implements lease.FleetStore. A stored counter other than counter
// fails the write, counted as a failed write like DynamoDB's failed
// condition.
func (s *Store) Fence(ctx context.Context, workerID string, counter int64) error {
	if counter < 1 {
		return fmt.Errorf("memlease: %v %q: %w: %d", OpFence, workerID, errBadCounter, counter)
	}
	return s.heartbeatWrite(ctx, OpFence, workerID, func(hb *lease.Heartbeat) error {
		if hb.Counter != counter {
			return fmt.Errorf("memlease: %v %q at counter %d: %w (stored counter %d)",
				OpFence, workerID, counter, lease.ErrConflict, hb.Counter)
		}
		hb.Fenced = counter
		return nil
	})
}

// heartbeatWrite makes the write op of workerID's existing heartbeat; change
// runs with s.mu held, and an error from it fails the write, which then
// changes nothing. Without a heartbeat it fails with lease.ErrNotFound and
// creates none. A failed write is counted as one.
func (s *Store) heartbeatWrite(ctx context.Context, op Op, workerID string, change func(hb *lease.Heartbeat) error) error {
	if workerID == "" {
		return fmt.Errorf("memlease: %v: %w", op, errNoWorker)
	}
	if err := s.begin(ctx, op, workerID); err != nil {
		return err
	}
	s.mu.Lock()
	hb, ok := s.heartbeats[workerID]
	var err error
	if !ok {
		err = fmt.Errorf("memlease: %v %q: no heartbeat: %w", op, workerID, lease.ErrNotFound)
	} else if err = change(&hb); err == nil {
		s.heartbeats[workerID] = hb
	}
	s.countWrite(op, err == nil)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.spurious(op, workerID)
}

// Join implements lease.FleetStore.
func (s *Store) Join(ctx context.Context, workerID string) error {
	return s.rosterWrite(ctx, OpJoin, workerID, func() { s.roster[workerID] = struct{}{} })
}

// Leave implements lease.FleetStore.
func (s *Store) Leave(ctx context.Context, workerID string) error {
	return s.rosterWrite(ctx, OpLeave, workerID, func() { delete(s.roster, workerID) })
}

// rosterWrite makes the roster write op for workerID; change runs with s.mu
// held.
func (s *Store) rosterWrite(ctx context.Context, op Op, workerID string, change func()) error {
	if workerID == "" {
		return fmt.Errorf("memlease: %v: %w", op, errNoWorker)
	}
	if err := s.begin(ctx, op, workerID); err != nil {
		return err
	}
	s.mu.Lock()
	change()
	s.rosterItem = true
	s.countWrite(op, true)
	s.mu.Unlock()
	return s.spurious(op, workerID)
}

// Roster implements lease.FleetStore.
func (s *Store) Roster(ctx context.Context) ([]string, error) {
	if err := s.begin(ctx, OpRoster, ""); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.RosterReads++
	if len(s.roster) == 0 {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(s.roster)), nil
}

// Leader implements lease.FleetStore.
func (s *Store) Leader(ctx context.Context) (lease.LeaderLock, error) {
	if err := s.begin(ctx, OpLeader, ""); err != nil {
		return lease.LeaderLock{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.LeaderReads++
	if s.leader == nil {
		return lease.LeaderLock{}, fmt.Errorf("memlease: %v: %w", OpLeader, lease.ErrNotFound)
	}
	return *s.leader, nil
}

// AcquireLeader implements lease.FleetStore.
func (s *Store) AcquireLeader(ctx context.Context, id string, seen *lease.LeaderLock) (lease.LeaderLock, error) {
	if id == "" {
		return lease.LeaderLock{}, fmt.Errorf("memlease: %v: %w", OpAcquireLeader, errNoWorker)
	}
	return s.lockWrite(ctx, OpAcquireLeader, id, seen, lease.ErrConflict, func(stored lease.LeaderLock) lease.LeaderLock {
		return lease.LeaderLock{Owner: id, Epoch: stored.Epoch + 1, Version: stored.Version + 1}
	})
}

// RenewLeader implements lease.FleetStore.
func (s *Store) RenewLeader(ctx context.Context, l lease.LeaderLock) (lease.LeaderLock, error) {
	if l.Owner == "" {
		return lease.LeaderLock{}, fmt.Errorf("memlease: %v: %w", OpRenewLeader, errNoLockHeld)
	}
	return s.lockWrite(ctx, OpRenewLeader, l.Owner, &l, lease.ErrLeaseLost, func(stored lease.LeaderLock) lease.LeaderLock {
		stored.Version++
		return stored
	})
}

// ReleaseLeader implements lease.FleetStore.
func (s *Store) ReleaseLeader(ctx context.Context, l lease.LeaderLock) error {
	if l.Owner == "" {
		return fmt.Errorf("memlease: %v: %w", OpReleaseLeader, errNoLockHeld)
	}
	_, err := s.lockWrite(ctx, OpReleaseLeader, l.Owner, &l, lease.ErrLeaseLost, func(stored lease.LeaderLock) lease.LeaderLock {
		return lease.LeaderLock{Epoch: stored.Epoch, Version: stored.Version + 1}
	})
	return err
}

// lockWrite makes one conditional write of the leader lock: with seen nil
// the lock must not exist; otherwise its owner and version must be seen's.
// change returns the new lock from the stored one (the zero lock when there
// is none). A failed condition returns condErr, and lease.ErrNotFound too
// when seen was given and there is no lock.
func (s *Store) lockWrite(ctx context.Context, op Op, id string, seen *lease.LeaderLock, condErr error, change func(stored lease.LeaderLock) lease.LeaderLock) (lease.LeaderLock, error) {
	if err := s.begin(ctx, op, id); err != nil {
		return lease.LeaderLock{}, err
	}
	s.mu.Lock()
	var (
		stored lease.LeaderLock
		err    error
	)
	switch {
	case seen == nil && s.leader != nil:
		err = fmt.Errorf("memlease: %v %q: the lock exists (owner %q, version %d): %w",
			op, id, s.leader.Owner, s.leader.Version, condErr)
	case seen != nil && s.leader == nil:
		err = fmt.Errorf("memlease: %v %q: %w (%w)", op, id, condErr, lease.ErrNotFound)
	case seen != nil && (s.leader.Owner != seen.Owner || s.leader.Version != seen.Version):
		err = fmt.Errorf("memlease: %v %q at owner %q, version %d: %w (stored: owner %q, version %d)",
			op, id, seen.Owner, seen.Version, condErr, s.leader.Owner, s.leader.Version)
	default:
		if s.leader != nil {
			stored = *s.leader
		}
		stored = change(stored)
		s.leader = &stored
	}
	s.countWrite(op, err == nil)
	s.mu.Unlock()
	if err != nil {
		return lease.LeaderLock{}, err
	}
	if err := s.spurious(op, id); err != nil {
		return lease.LeaderLock{}, err
	}
	return stored, nil
}

// Assign implements lease.FleetStore.
func (s *Store) Assign(ctx context.Context, l lease.Lease, newOwner string) (lease.Lease, error) {
	if newOwner == "" {
		return lease.Lease{}, fmt.Errorf("memlease: %v %q: %w", OpAssign, l.Key, errNoOwner)
	}
	return s.update(ctx, OpAssign, l, lease.ErrConflict, true, setOwner(l, newOwner))
}
