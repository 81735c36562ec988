// Package kplcompat checks kcl's KPL aggregation format against another
// implementation: the awslabs Node package aws-kinesis-agg, pinned in the
// repository's package.json. It has no code of its own, only tests:
//
//   - Vectors: testdata/kpl/*.json hold user records and the Kinesis records
//     aws-kinesis-agg aggregated them into, written by
//     tools/kplvectors/generate.js (whose header documents the format). kcl's
//     deaggregate package must turn every aggregated record back into exactly
//     the user records, in order, with sub-sequence numbers 0..n-1. These
//     tests need no Node.
//   - The other direction: aggregates built by kcl's aggregate package are
//     expanded by aws-kinesis-agg's deaggregator (tools/kplvectors/deaggregate.js)
//     and must come back exactly.
//   - Freshness: generate.js --check must find the committed vectors equal to
//     what the pinned package produces.
//
// The Node tests skip when node or node_modules/aws-kinesis-agg is missing
// (run `npm ci` in the repository root), and fail instead when
// KCL_REQUIRE_EMULATORS=1, as in CI.
//
// aws-kinesis-agg@4.2.8 deviates from the KPL format in ways these tests
// work around rather than copy; each is described where it is handled.
package kplcompat
