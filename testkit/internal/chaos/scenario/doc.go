// Package scenario runs one chaos scenario against the local emulators and
// judges it: the harness behind testkit/cmd/kclchaos and its CI test.
//
// Run creates a stream and a lease table, puts a fault-injecting proxy
// (testkit/internal/chaos/proxy) in front of each emulator, starts Config.Workers
// worker processes (testkit/internal/chaos/worker) that reach the emulators only
// through the proxies — DynamoDB through a listener of their own, so that
// one can be cut off alone — and produces sequenced records (per partition
// key 0, 1, 2, …; plain records and KPL aggregates alternating) at
// Config.Rate, straight to Kinesis. Meanwhile it carries out a fault
// schedule drawn from Config.Seed (math/rand/v2 PCG, see plan), its
// durations in failover times (the lease duration with per-lease renewal,
// F = 2 s in kcl fleet mode):
//
//   - process faults: SIGKILL and SIGTERM followed by a restart under the
//     same worker id, SIGSTOP for 1.5–2.5 failover times then SIGCONT (a
//     zombie), a partition of as long from DynamoDB (Kinesis still
//     answers: the worker must stop processing at its own deadline), a
//     new worker joining;
//   - faults of the kcl fleet's leader, the worker the leader lock names
//     when the action runs (lease.FleetStore.Leader): killed, paused or
//     partitioned as above;
//   - resharding: SplitShard, MergeShards, UpdateShardCount up and down,
//     each waiting for the stream to be ACTIVE again, and a reshard while a
//     worker is paused (stop-reshard: the parent gate's test);
//   - proxy windows of 3–6 s: latency, connection resets, blackholes, HTTP
//     500s, throttling, expired iterators, slow DynamoDB, dropped responses,
//     slow bodies (see proxyRules).
//
// When production ends it heals everything (windows close, paused workers
// continue, partitions heal, killed ones restart), waits until every
// produced record was processed (bounded by Config.DrainTimeout), stops the
// workers, reads the lease table and checks the history with history.Check.
//
// # Coordination
//
// The workers coordinate as Config.Coordination says: by default as a
// Worker does by default, which on the run's new table must choose kcl
// fleet mode (heartbeats, an elected leader that assigns the leases; the
// run reads each worker process's choice from its log and reports any
// other as a problem), or with per-lease renewal ("kcl", KCL-compatible
// mode; no leader faults). The checker's overlap rule is in failover times
// too: in both modes a worker that can no longer prove it is alive stops
// every shard by its own clock before anyone may take them over — at its
// lease's expiry, or in kcl fleet mode at its heartbeat deadline, F minus a
// margin after its last successful heartbeat was sent, while the leader
// reassigns only after the heartbeat stood still for F on its clock — so
// two workers processing a shard together for longer than that is a
// violation.
//
// # Multilang mode
//
// With Config.HostCommand the workers are `kcl multilang` hosts (cmd/kcl)
// instead: each host process gets a properties file pointing it at the
// proxies, and runs, for every shard it processes, the recording child of
// package testkit/internal/chaos/mlchild, which writes the history lines the
// Go worker writes — its records, its checkpoint requests and their replies,
// and a lease event at initialize and at the shard's ending — and checks
// the host's side of the protocol. The faults include FaultSIGKILLChild:
// SIGKILL of one child of a host (found through /proc), after which the
// host must start a new child at the last checkpoint and deliver the
// records after it again; a new child logs a new acquisition, so those
// replays show as takeovers, and a replay of anything checkpointed shows as
// a violation. What a child finds wrong with its host becomes a problem of
// the run.
//
// # Logs
//
// Everything lands in Config.Dir:
//
//	harness.jsonl    Produced lines (one per acknowledged user record, with its
//	                 shard and sequence number) and Lifecycle lines (start,
//	                 sigkill, sigterm, sigstop, sigcont, partition, heal, exit;
//	                 "leader" marks a leader fault)
//	settings.json    the coordination and the failover time, for CheckDir
//	w1.1.jsonl …     each worker process's Processed, LeaseEvent and
//	                 Checkpoint lines (<id>.<start number>.jsonl)
//	w1.stderr …      each worker's own log (zap JSON), all its processes
//
// and in the multilang mode, instead of w1.1.jsonl:
//
//	w1.1.properties  the properties file of w1's first host process
//	w1.1.SHARD.PID.jsonl     each child's Processed, LeaseEvent and Checkpoint lines
//	w1.1.SHARD.PID.problems  what a child found wrong with its host, if anything
//	faults.log       the planned schedule, then every action as it happened,
//	                 with the time since the start
//
// # Replay
//
// The schedule — kinds, times, targets, durations — is a pure function of
// the seed and the configuration, and each proxy draws from its own source
// seeded from it, so the same seed replays the same run as closely as the
// timing of processes allows. Runs end with the final SIGTERMs unlogged:
// stopping the fleet is not a fault, and would count as failovers that
// never resolved.
package scenario
