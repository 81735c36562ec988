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
//   - TestFailover: the shards of a killed worker resume within the lease
//     duration plus 2 s, those of a gracefully stopped worker within 1 s,
//     and a joining worker gets its fair share within 10 s. The measured
//     times are logged as "failover: <case> <time> (limit <limit>)".
//   - TestEFOFailover: the same crash and graceful stop with worker
//     processes reading through enhanced fan-out (examples/worker -efo),
//     logged as "failover: efo <case> ...".
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
// Without the emulators the tests skip, or fail when KCL_REQUIRE_EMULATORS=1.
// The package has no non-test code.
package e2e
