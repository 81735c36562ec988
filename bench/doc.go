// Package bench compares kcl with other Go libraries that do the same job,
// in the same process and run, so that the numbers are ratios on one machine
// rather than figures copied from elsewhere. It is a separate module so that
// kcl's own go.mod does not depend on its competitors.
//
// It compares:
//
//   - KPL deaggregation (BenchmarkDeaggregate) with
//     github.com/awslabs/kinesis-aggregation/go/v2/deaggregator.
//   - The MD5 behind kcl's deaggregation (BenchmarkMD5, build tag md5simd):
//     kcl's deaggregate/internal/md5x against github.com/minio/md5-simd, both
//     inside deaggregate.Append. The md5-simd variant of Append exists only
//     in this module's test runs: testdata/md5simd/overlay.json adds it to
//     package deaggregate through go test's -overlay flag.
//
// Run
//
//	./run.sh
//
// for a benchstat table per benchmark with one column per implementation, or
// `go test ./...` to check that kcl and awslabs decode the benchmark inputs
// to the same user records (run.sh also checks md5-simd's variant).
package bench
