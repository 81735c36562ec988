#!/usr/bin/env bash
# chaos.sh — run the chaos harness (testkit/cmd/kclchaos) against the local
# emulators.
#
# Starts the emulators (reusing running ones), runs kclchaos with the given
# arguments and stops the emulators again if this script started them.
# kclchaos runs worker processes behind a fault-injecting proxy while it
# kills, pauses, partitions and restarts them — the kcl fleet's leader
# among them — and reshards the stream, then checks the history and prints
# a table; it exits non-zero when the checker finds a violation. The
# workers run in kcl fleet mode, the Worker's default; -coordination kcl
# runs them with per-lease renewal (KCL-compatible mode). Examples:
#
#	scripts/chaos.sh                 # CI size: 2 minutes, a random seed (printed)
#	scripts/chaos.sh -seed 42        # replay
#	scripts/chaos.sh -soak           # 20 minutes
#	scripts/chaos.sh -coordination kcl -soak        # per-lease renewal, 20 minutes
#	scripts/chaos.sh -faults leader-sigkill,leader-sigstop,leader-partition
#	scripts/chaos.sh -bug unfenced   # show the checker catching a fencing bug
#	scripts/chaos.sh -multilang      # the workers are `kcl multilang` hosts (kcl built from cmd/kcl)
#	scripts/chaos.sh -multilang -soak
#
# go run ./testkit/cmd/kclchaos -h lists the flags.
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
if ! scripts/emulators.sh status >/dev/null 2>&1; then
	started=1
fi
bindir="$(mktemp -d)"
cleanup() {
	rm -rf "$bindir"
	if [ "$started" = 1 ]; then
		scripts/emulators.sh stop || true
	fi
}
trap cleanup EXIT
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
go build -o "$bindir/kclchaos" ./testkit/cmd/kclchaos
args=("$@")
for a in "$@"; do
	if [[ "$a" == -multilang || "$a" == --multilang || "$a" == -multilang=true ]]; then
		(cd cmd/kcl && go build -o "$bindir/kcl" .)
		args=(-kcl "$bindir/kcl" "$@")
		break
	fi
done
"$bindir/kclchaos" "${args[@]}"
