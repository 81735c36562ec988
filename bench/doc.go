// Package bench compares kcl with other Go libraries that do the same job,
// in the same process and run, so that the numbers are ratios on one machine
// rather than figures copied from elsewhere. It is a separate module so that
// kcl's own go.mod does not depend on its competitors.
//
// Today it compares KPL deaggregation with
// github.com/awslabs/kinesis-aggregation/go/v2/deaggregator. Run
//
//	./run.sh
//
// for a benchstat table with one column per implementation, or
// `go test ./...` to check that both implementations decode the benchmark
// inputs to the same user records.
package bench
