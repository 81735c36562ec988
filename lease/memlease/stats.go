package memlease

// Stats counts the requests a Store served, the way DynamoDB would bill them,
// so that simulations can estimate what a lease protocol costs. On-demand
// DynamoDB bills:
//
//   - a write (PutItem, UpdateItem, DeleteItem) of a lease item, which is well
//     under 1 KB, one write request unit, whether its condition held or not:
//     a failed conditional write costs as much as a successful one;
//   - a strongly consistent GetItem of an item up to 4 KB one read request
//     unit, found or not;
//   - a Scan by the size of the items it reads, summed per page and rounded up
//     to 4 KB, at one unit per 4 KB when strongly consistent (half that when
//     eventually consistent). So a List of n items ≈ one scan reading n
//     items ≈ n × (item size) / 4 KB units: with 1,000 leases of about 300
//     bytes, about 75 units per strongly consistent List, however few leases
//     changed;
//   - a Query of the KEYS_ONLY index LeaseOwnerToLeaseKeyIndex (ListOwned),
//     eventually consistent, half a unit per 4 KB of keys returned: a small
//     fraction of a Scan;
//   - a BatchGetItem (Heartbeats) of up to 100 keys, strongly consistent,
//     one unit per heartbeat found (an item is well under 4 KB; DynamoDB
//     Local reports nothing for keys not found);
//   - the fleet writes one request each. Beat, MarkAssigned, SetStandby,
//     Fence and the leader lock's writes touch items under 1 KB: one write
//     unit.
//     Assign writes the owner index too: 2 units for an unowned lease, 3 for
//     an owned one (on DynamoDB Local). The roster grows with the fleet, by
//     the length of each id plus a few bytes: Join and Leave cost one write
//     unit per KB of roster and Roster one read unit per 4 KB (100 ids of 36
//     bytes: 4 and 1), which Stats, counting requests, leaves to the reader
//     to scale.
//
// Requests stopped before they reach the table are not counted: those
// refused by a fault (WithFault), with a done context, or for invalid
// arguments (a zero checkpoint, an empty key or owner). A write whose response
// WithSpuriousFailure discards is counted as succeeded: it landed.
type Stats struct {
	Gets           int64 // Get calls: one strongly consistent GetItem each
	Lists          int64 // List calls: one Scan (of one or more pages) each
	ListedItems    int64 // leases returned by List: every item a Scan read
	ListOwnedCalls int64 // ListOwned calls: one index Query each
	OwnedKeys      int64 // keys returned by ListOwned

	Create     WriteCount
	Renew      WriteCount
	Take       WriteCount
	Handoff    WriteCount
	Checkpoint WriteCount
	Release    WriteCount
	Delete     WriteCount

	// The reads of lease.FleetStore.
	HeartbeatReads   int64 // Heartbeats calls with at least one id
	HeartbeatBatches int64 // BatchGetItem requests: one per 100 distinct ids
	HeartbeatKeys    int64 // distinct ids requested
	HeartbeatItems   int64 // heartbeats returned: the items billed
	RosterReads      int64 // Roster calls: one strongly consistent GetItem each
	LeaderReads      int64 // Leader calls: one strongly consistent GetItem each
	// Surveys counts Survey calls: each an eventually consistent Scan of
	// the whole table (half a List's units) and two DescribeTable calls.
	Surveys int64
	// MetricsReports counts ReportWorkerMetrics calls. The DynamoDB store
	// makes one or two GetItems for each and, beside a Java KCL 3.x fleet,
	// one UpdateItem (a write unit); Writes leaves them out.
	MetricsReports int64

	// The writes of lease.FleetStore.
	Beat          WriteCount
	MarkAssigned  WriteCount
	SetStandby    WriteCount
	Fence         WriteCount
	Join          WriteCount
	Leave         WriteCount
	AcquireLeader WriteCount
	RenewLeader   WriteCount
	ReleaseLeader WriteCount
	Assign        WriteCount
}

// WriteCount counts the conditional writes of one kind.
type WriteCount struct {
	Succeeded int64 // the condition held and the write landed
	Failed    int64 // the condition failed: nothing was written, but it is billed
}

// Total returns Succeeded + Failed: the write requests billed.
func (w WriteCount) Total() int64 { return w.Succeeded + w.Failed }

// Writes returns the write requests billed, over all operations.
func (s Stats) Writes() int64 {
	return s.Create.Total() + s.Renew.Total() + s.Take.Total() + s.Handoff.Total() +
		s.Checkpoint.Total() + s.Release.Total() + s.Delete.Total() + s.FleetWrites()
}

// FleetWrites returns the write requests of lease.FleetStore methods billed,
// a part of Writes.
func (s Stats) FleetWrites() int64 {
	return s.Beat.Total() + s.MarkAssigned.Total() + s.SetStandby.Total() + s.Fence.Total() +
		s.Join.Total() + s.Leave.Total() + s.AcquireLeader.Total() + s.RenewLeader.Total() + s.ReleaseLeader.Total() +
		s.Assign.Total()
}

// Sub returns s - o, field by field: the requests served between two calls of
// Store.Stats.
func (s Stats) Sub(o Stats) Stats {
	w := func(a, b WriteCount) WriteCount {
		return WriteCount{Succeeded: a.Succeeded - b.Succeeded, Failed: a.Failed - b.Failed}
	}
	return Stats{
		Gets:           s.Gets - o.Gets,
		Lists:          s.Lists - o.Lists,
		ListedItems:    s.ListedItems - o.ListedItems,
		ListOwnedCalls: s.ListOwnedCalls - o.ListOwnedCalls,
		OwnedKeys:      s.OwnedKeys - o.OwnedKeys,
		Create:         w(s.Create, o.Create),
		Renew:          w(s.Renew, o.Renew),
		Take:           w(s.Take, o.Take),
		Handoff:        w(s.Handoff, o.Handoff),
		Checkpoint:     w(s.Checkpoint, o.Checkpoint),
		Release:        w(s.Release, o.Release),
		Delete:         w(s.Delete, o.Delete),

		HeartbeatReads:   s.HeartbeatReads - o.HeartbeatReads,
		HeartbeatBatches: s.HeartbeatBatches - o.HeartbeatBatches,
		HeartbeatKeys:    s.HeartbeatKeys - o.HeartbeatKeys,
		HeartbeatItems:   s.HeartbeatItems - o.HeartbeatItems,
		RosterReads:      s.RosterReads - o.RosterReads,
		LeaderReads:      s.LeaderReads - o.LeaderReads,
		Surveys:          s.Surveys - o.Surveys,
		MetricsReports:   s.MetricsReports - o.MetricsReports,

		Beat:          w(s.Beat, o.Beat),
		MarkAssigned:  w(s.MarkAssigned, o.MarkAssigned),
		SetStandby:    w(s.SetStandby, o.SetStandby),
		Fence:         w(s.Fence, o.Fence),
		Join:          w(s.Join, o.Join),
		Leave:         w(s.Leave, o.Leave),
		AcquireLeader: w(s.AcquireLeader, o.AcquireLeader),
		RenewLeader:   w(s.RenewLeader, o.RenewLeader),
		ReleaseLeader: w(s.ReleaseLeader, o.ReleaseLeader),
		Assign:        w(s.Assign, o.Assign),
	}
}

// write returns the counter of write op.
func (s *Stats) write(op Op) *WriteCount {
	switch op {
	case OpCreate:
		return &s.Create
	case OpRenew:
		return &s.Renew
	case OpTake:
		return &s.Take
	case OpHandoff:
		return &s.Handoff
	case OpCheckpoint:
		return &s.Checkpoint
	case OpRelease:
		return &s.Release
	case OpBeat:
		return &s.Beat
	case OpMarkAssigned:
		return &s.MarkAssigned
	case OpSetStandby:
		return &s.SetStandby
	case OpFence:
		return &s.Fence
	case OpJoin:
		return &s.Join
	case OpLeave:
		return &s.Leave
	case OpAcquireLeader:
		return &s.AcquireLeader
	case OpRenewLeader:
		return &s.RenewLeader
	case OpReleaseLeader:
		return &s.ReleaseLeader
	case OpAssign:
		return &s.Assign
	default:
		return &s.Delete
	}
}
