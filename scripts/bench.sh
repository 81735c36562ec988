#!/usr/bin/env bash
# bench.sh is `make bench`. When the bench module provides bench/run.sh (kcl's
# KPL deaggregator against awslabs', and kcl's MD5 against minio/md5-simd
# inside it, in one run, reported with benchstat), it runs that; otherwise it
# runs the main module's benchmarks. Benchmarks run in-process and need no
# emulators.
#
# Settings: BENCH [.] regexp selecting benchmarks; BENCHTIME [go test's 1s];
# COUNT [10 for bench/run.sh, 1 otherwise] runs per benchmark.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -x bench/run.sh ]]; then
	exec bench/run.sh "$@"
fi

args=(-run '^$' -bench "${BENCH:-.}" -benchmem -count "${COUNT:-1}")
if [[ -n "${BENCHTIME:-}" ]]; then
	args+=(-benchtime "$BENCHTIME")
fi
echo "==> go test ${args[*]} ./..."
go test "${args[@]}" ./...
