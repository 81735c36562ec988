// Package shardsync decides which leases a consumer application needs for a
// stream's shards, and when the lease of a child shard may start. Every
// function is pure: it takes values (a shard listing, the lease table as
// read) and returns values. The Worker's loops fetch, call these functions
// and write the results; nothing here does I/O or starts goroutines.
//
// The rules are those of the Java KCL 2.x/3.x (awslabs/amazon-kinesis-client,
// core/ = amazon-kinesis-client/src/main/java/software/amazon/kinesis/):
//
//   - Lease creation at sync time ([NewLeases]; KCL
//     core/leases/HierarchicalShardSyncer.java, EmptyLeaseTableSynchronizer
//     and NonEmptyLeaseTableSynchronizer). The initial position applies only
//     to a lease created for a part of the stream the application has never
//     processed: TRIM_HORIZON and AT_TIMESTAMP lease the oldest shards of the
//     listing, LATEST the open shards. A shard whose parents are leased (or
//     done) is leased at TRIM_HORIZON. A shard with a parent still waiting
//     for its own lease gets none yet: it is leased when its parents end. A
//     shard some descendant of which has a lease never gets one again (it was
//     processed and cleaned up, or it precedes the initial position).
//   - Child leases at a shard's end ([ChildLeases]; KCL
//     core/lifecycle/ShutdownTask.java and
//     HierarchicalShardSyncer.createLeaseForChildShard): TRIM_HORIZON, parents
//     from GetRecords' ChildShards, hash range set. A merge child is created
//     only once every parent has a lease ([MissingParents]); KCL defers the
//     same way ("partial parent information in lease table").
//   - The parent gate ([Ready]; KCL core/lifecycle/BlockOnParentShardTask.java):
//     a lease may start only when the lease of every parent — both parents
//     after a merge — is at SHARD_END or no longer exists.
//   - Cleanup ([Cleanup]; KCL core/leases/LeaseCleanupManager.java): a lease
//     at SHARD_END may be deleted once every child has a lease, every child
//     has started, and its parents' leases are gone (top-down).
//   - The hash-range audit ([Coverage]; KCL
//     core/coordinator/PeriodicShardSyncManager.java): the leases must cover
//     the whole hash key space [0, 2^128−1]; a persistent hole calls for a
//     shard sync. A finished lease whose hand-over to its children is
//     incomplete still counts (see Coverage).
//
// Leases are keyed by shard id (single-stream applications); multi-stream
// keys are the caller's concern.
package shardsync
