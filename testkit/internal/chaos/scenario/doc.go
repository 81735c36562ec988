// Package scenario runs one chaos scenario against the local emulators and
// judges it: the harness behind testkit/cmd/kclchaos and its CI test.
//
// Run creates a stream and a lease table, puts a fault-injecting proxy
// (testkit/internal/chaos/proxy) in front of each emulator, starts Config.Workers
// worker processes (testkit/internal/chaos/worker) that reach the emulators only
// through the proxies, and produces sequenced records (per partition key 0,
// 1, 2, …; plain records and KPL aggregates alternating) at Config.Rate,
// straight to Kinesis. Meanwhile it carries out a fault schedule drawn from
// Config.Seed (math/rand/v2 PCG, see plan):
//
//   - process faults: SIGKILL and SIGTERM followed by a restart under the
//     same worker id, SIGSTOP for 1.5–2.5 lease durations then SIGCONT (a
//     zombie), a new worker joining;
//   - resharding: SplitShard, MergeShards, UpdateShardCount up and down,
//     each waiting for the stream to be ACTIVE again, and a reshard while a
//     worker is paused (stop-reshard: the parent gate's test);
//   - proxy windows of 3–6 s: latency, connection resets, blackholes, HTTP
//     500s, throttling, expired iterators, slow DynamoDB, dropped responses,
//     slow bodies (see proxyRules).
//
// When production ends it heals everything (windows close, paused workers
// continue, killed ones restart), waits until every produced record was
// processed (bounded by Config.DrainTimeout), stops the workers, reads the
// lease table and checks the history with history.Check.
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
//	                 sigkill, sigterm, sigstop, sigcont, exit)
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
