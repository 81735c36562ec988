#!/usr/bin/env bash
# run.sh benchmarks kcl's KPL deaggregator against awslabs'
# kinesis-aggregation/go/v2 deaggregator (BenchmarkDeaggregate), and kcl's
# own multi-buffer MD5 against github.com/minio/md5-simd inside kcl's
# deaggregator (BenchmarkMD5), in one run, and prints a benchstat table per
# benchmark with one column per implementation. BenchmarkMD5 needs the
# md5simd build tag and testdata/md5simd/overlay.json, which adds an
# md5-simd variant of Append to package deaggregate for this run only.
#
# Usage: bench/run.sh [output-file]      (default: bench/results.txt)
#
# Environment: COUNT (runs per benchmark, default 10), BENCH (regexp, default
# "."), BENCHTIME (e.g. 2s; default go test's 1s). Takes a few minutes; run
# it on an otherwise idle machine.
set -euo pipefail

cd "$(dirname "$0")"

# golang.org/x/perf has no tagged releases; this pseudo-version is the one
# the module proxy served as @latest when the script was written.
benchstat=golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da

out=${1:-results.txt}
count=${COUNT:-10}
build=(-tags md5simd -overlay testdata/md5simd/overlay.json)
args=("${build[@]}" -run '^$' -bench "${BENCH:-.}" -benchmem -count "$count")
if [[ -n ${BENCHTIME:-} ]]; then
	args+=(-benchtime "$BENCHTIME")
fi

# The benchmarks compare like with like only if every implementation decodes
# the pages to the same user records.
go test "${build[@]}" -count 1 -run 'Agree' >&2

echo "go test ${args[*]} > $out" >&2
go test "${args[@]}" | tee "$out" >&2

echo >&2
go run "$benchstat" -col /impl "$out"
