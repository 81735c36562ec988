#!/usr/bin/env bash
# test.sh is `make test`, the repository's one test command, run by developers and by CI
# (.ci/run) on a fresh machine that has only Go, Node.js 20 with npm, and Java 17.
#
# It installs the npm packages when needed, starts the emulators (scripts/emulators.sh),
# runs scripts/lint.sh (gofmt, go vet, staticcheck), then
#   go test -race -count=1 ./...            with KCL_REQUIRE_EMULATORS=1, so no emulator test can skip;
#   the full lease simulation               4 seeds and 2 lockstep runs, without -race;
#                                           ./testkit/internal/e2e and ./testkit/internal/chaos/scenario run last, each
#                                           alone (they measure failover times and drive whole fleets);
#                                           their figures and the chaos verdict table are printed
#   (cd cmd/kcl && go test -race ./...)     the kcl binary's module, with internal/e2e: `kcl multilang`
#                                           against the emulators, its children an aws-kcl (npm) Node
#                                           processor and a python3 one (both required: no skipping)
#   (cd plugin/X && go test -race ./...)    each plugin module (plugin/*/go.mod), against the emulators
#   (cd bench && go test -count=1 ./...)    when bench/go.mod exists
# and always stops the emulators it used, on success, failure or interrupt.
# Every step runs even when an earlier one failed; the exit status is non-zero if any failed.
# go test's output is also kept in $KCL_RUN_DIR/go-test.log.
#
# Settings: everything scripts/emulators.sh reads (ports, KCL_RUN_DIR, ...), plus
#   KCL_KEEP_EMULATORS=1   leave the emulators running afterwards (default: stop them)
#   GOTESTFLAGS            extra flags for both go test runs, e.g. "-v" or "-run TestX"
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export KCL_RUN_DIR="${KCL_RUN_DIR:-$ROOT/.run}"
start=$SECONDS

cleanup() {
	local rc=$?
	if [[ "${KCL_KEEP_EMULATORS:-0}" != 1 ]]; then
		scripts/emulators.sh stop || rc=1
	fi
	echo "test: finished in $((SECONDS - start)) s"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "test: interrupted"; exit 130' INT
trap 'echo "test: terminated"; exit 143' TERM

echo "==> starting emulators"
if ! scripts/emulators.sh start; then
	echo "test: FAILED: the emulators could not start (see the messages above)"
	exit 1
fi
eval "$(scripts/emulators.sh env)"
export KCL_REQUIRE_EMULATORS=1

failed=()

scripts/lint.sh || failed+=(lint)

# read -a splits GOTESTFLAGS into words without globbing.
read -r -a extra <<<"${GOTESTFLAGS:-}"

# Packages that measure timings or drive whole fleets run after the others,
# one at a time, so that they do not compete for the two emulators.
e2e=github.com/kclgo/kcl/testkit/internal/e2e
chaos=github.com/kclgo/kcl/testkit/internal/chaos/scenario
mapfile -t pkgs < <(go list ./... | grep -vx -e "$e2e" -e "$chaos")
echo "==> go test -race -count=1 ./... (but $e2e and $chaos)"
go test -race -count=1 "${extra[@]}" "${pkgs[@]}" 2>&1 | tee "$KCL_RUN_DIR/go-test.log"
((PIPESTATUS[0] == 0)) || failed+=("go test")

# The full lease simulation (10, 50 and 100 workers at 8 s and 10 s leases, in
# fake time) under four fixed seeds, and twice in lockstep (every worker acting at
# the same instant: adversarial, not replayable). Without -race: the race run
# above covers the same code at the small size. A failure prints the command
# that replays its seed.
sim=github.com/kclgo/kcl/internal/leasing
echo "==> lease simulation: go test -run 'TestSimulation\$' $sim -sim.full (4 seeds, then 2 lockstep runs)"
if ! go test -count=1 -run 'TestSimulation$' "$sim" -sim.full -sim.steady=8s -sim.seeds=4 2>&1 | tee -a "$KCL_RUN_DIR/go-test.log"; then
	failed+=("lease simulation")
fi
if ! go test -count=1 -run 'TestSimulation$' "$sim" -sim.full -sim.steady=8s -sim.lockstep -sim.seeds=2 2>&1 | tee -a "$KCL_RUN_DIR/go-test.log"; then
	failed+=("lease simulation (lockstep)")
fi

# alone PKG NAME PATTERN: go test -v PKG on its own, print the lines of its
# log matching PATTERN (the figures it reports), and its tail if it fails.
alone() {
	local pkg=$1 name=$2 pattern=$3 log="$KCL_RUN_DIR/go-test-$2.log"
	echo "==> go test -race -count=1 -v $pkg (alone)"
	go test -race -count=1 -v "${extra[@]}" "$pkg" >"$log" 2>&1
	local rc=$?
	grep -E "^(ok|FAIL|--- FAIL|panic:)|$pattern" "$log"
	cat "$log" >>"$KCL_RUN_DIR/go-test.log"
	if ((rc != 0)); then
		failed+=("go test ($name)")
		echo "---- last 100 lines of $log"
		tail -n 100 "$log"
	fi
}
alone "$e2e" e2e 'failover:|latency:|efo renewals:|^[[:space:]]+[a-z_]+_test\.go:[0-9]+: .*(want|limit)'
alone "$chaos" chaos '^[[:space:]]*(seed|records|faults|lost|unexpected|order violations|duplicates|fencing violations|overlap violations|failover|verdict) '

if [[ -f cmd/kcl/go.mod ]] && [[ -n "$(find cmd/kcl -name '*.go' -print -quit)" ]]; then
	echo "==> (cmd/kcl) go test -race -count=1 ./..."
	(cd cmd/kcl && go test -race -count=1 "${extra[@]}" ./...) 2>&1 | tee -a "$KCL_RUN_DIR/go-test.log"
	((PIPESTATUS[0] == 0)) || failed+=("cmd/kcl: go test")
fi

# The plugin modules (plugin/*/go.mod: Prometheus, ...) are modules of their own, so that
# the library gains none of their dependencies; each is tested like cmd/kcl, against the emulators.
for mod in plugin/*/go.mod; do
	[[ -f "$mod" ]] || continue
	dir=$(dirname "$mod")
	echo "==> ($dir) go test -race -count=1 ./..."
	(cd "$dir" && go test -race -count=1 "${extra[@]}" ./...) 2>&1 | tee -a "$KCL_RUN_DIR/go-test.log"
	((PIPESTATUS[0] == 0)) || failed+=("$dir: go test")
done

if [[ -f bench/go.mod ]]; then
	echo "==> (bench) go test -count=1 ./..."
	(cd bench && go test -count=1 "${extra[@]}" ./...) 2>&1 | tee "$KCL_RUN_DIR/go-test-bench.log"
	((PIPESTATUS[0] == 0)) || failed+=("bench: go test")
fi

echo
echo "==> summary"
ok=$(grep -cE '^ok[[:space:]]' "$KCL_RUN_DIR/go-test.log")
echo "go test: $ok package(s) ok"
grep -E '^(FAIL[[:space:]]+[^[:space:]]|--- FAIL|panic:)' "$KCL_RUN_DIR/go-test.log" | sed 's/^/    /'
if ((${#failed[@]})); then
	printf 'test: FAILED: %s\n' "$(IFS=,; echo "${failed[*]}")" | sed 's/,/, /g'
	exit 1
fi
echo "test: PASS"
