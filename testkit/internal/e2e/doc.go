// Package e2e holds the end-to-end tests of the consumer: Workers, the
// DynamoDB lease store and resharding streams, run against the local
// emulators (DynamoDB Local and kinesis-mock) rather than fakes.
//
// The tests prove delivery properties with testkit/checker — every record
// produced is processed, each partition key in order, and without crashes
// exactly once — and measure failover times against the limits of the
// lease protocol:
//
//   - TestInProcessResharding: three Workers in one process while the stream
//     is split, merged and rescaled with UpdateShardCount.
//   - TestInProcessStartAfterResharding: three Workers started on an empty
//     lease table after that resharding, which must read every parent shard
//     before its children.
//   - TestMultiProcessResharding: three worker processes (examples/worker)
//     during the same resharding; one is killed with SIGKILL and restarted
//     under its id, another is killed and replaced under a new id.
//   - TestFailoverFleet: worker processes in kcl fleet coordination (the
//     default), against issue 12's targets: the shards of a killed worker
//     resume within 4 s (median 3 s), of a killed leader within 4 s, of a
//     gracefully stopped worker or leader within 500 ms (a single run:
//     750 ms, see fleetGracefulBound), and a joining worker gets its fair
//     share within 5 s with no record processed twice. -e2e.repeat=N runs
//     each scenario N times and, from 3 runs on, checks the medians and
//     maxima against the targets; each is logged as "failover: fleet <case>
//     median <m> max <x> over <n> runs (...)".
//   - TestFailoverPerLease: the same with KCL-compatible coordination
//     (examples/worker -coordination kcl, per-lease renewal, 3 s lease): the
//     shards of a killed worker resume within the lease duration plus 2 s,
//     those of a gracefully stopped worker within 1 s, and a joining worker
//     gets its fair share within 10 s. The measured times are logged as
//     "failover: per-lease <case> <time> (limit <limit>)".
//   - TestEFOFailover: TestFailoverPerLease's crash and graceful stop with
//     worker processes reading through enhanced fan-out (examples/worker
//     -efo), logged as "failover: efo <case> ...".
//   - TestLatency: put-to-process latency of a polling and an enhanced
//     fan-out application reading the same stream at once, logged as
//     "latency: polling p50 …, efo p50 … (n records)".
//   - TestEFOInProcess: three Workers reading through enhanced fan-out,
//     over h2c and TLS, during a split and a merge and a graceful stop.
//   - TestEFORenewals: Subscribers whose subscriptions all end after one
//     event renew from their continuation without losing a record, dialing
//     or leaking goroutines (-efo.renewals=N, default 10).
//
// Run them with the emulators started:
//
//	scripts/emulators.sh start
//	eval "$(scripts/emulators.sh env)"
//	KCL_REQUIRE_EMULATORS=1 go test -v -run . ./testkit/internal/e2e/
//
// and the figures of kcl fleet failover, each scenario five times:
//
//	KCL_REQUIRE_EMULATORS=1 go test -v -run TestFailoverFleet ./testkit/internal/e2e/ -e2e.repeat=5
//
// Without the emulators the tests skip, or fail when KCL_REQUIRE_EMULATORS=1.
// The package has no non-test code.
package e2e
