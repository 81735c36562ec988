package memlease

import (
	"context"
	"slices"

	"github.com/kclgo/kcl/lease"
)

// Survey implements lease.Surveyor. Survey.Fleet is set once the Store holds
// a kcl-fleet item, as the DynamoDB store's are: a heartbeat (Beat), the
// roster (any Join or Leave: the roster item stays when emptied) or the
// leader lock (any acquisition: a release keeps the item). Survey.Java holds
// what AddForeignItem registered, in order, and is nil when nothing was.
// Leases never count. Stats counts the call in Surveys.
func (s *Store) Survey(ctx context.Context) (lease.Survey, error) {
	if err := s.begin(ctx, OpSurvey, ""); err != nil {
		return lease.Survey{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Surveys++
	return lease.Survey{
		Fleet: len(s.heartbeats) > 0 || s.rosterItem || s.leader != nil,
		Java:  slices.Clone(s.foreign),
	}, nil
}

// AddForeignItem records that the table holds a Java KCL 3.x coordination
// item described by desc (such as "WorkerMetricStats row of worker-1"), which
// Survey then lists in Survey.Java: a test's way to make the table look
// shared with Java workers. The item is not a lease and no other method sees
// it. Like Put, it bypasses faults and counts and never fails.
func (s *Store) AddForeignItem(desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.foreign = append(s.foreign, desc)
}
