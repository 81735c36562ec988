#!/usr/bin/env bash
# run.sh benchmarks kcl's KPL deaggregator against awslabs'
# kinesis-aggregation/go/v2 deaggregator in one run and prints a benchstat
# table with one column per implementation.
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
args=(-run '^$' -bench "${BENCH:-.}" -benchmem -count "$count")
if [[ -n ${BENCHTIME:-} ]]; then
	args+=(-benchtime "$BENCHTIME")
fi

echo "go test ${args[*]} > $out" >&2
go test "${args[@]}" | tee "$out" >&2

echo >&2
go run "$benchstat" -col /impl "$out"
