#!/usr/bin/env bash
# demo.sh — the README's demo command (make demo).
#
# Starts the local emulators (reusing running ones), runs the demo program
# against them and stops the emulators again if this script started them.
# Until the Worker exists the demo is examples/kplroundtrip: plain and
# KPL-aggregated records put into a local stream and read back deaggregated.
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
if ! scripts/emulators.sh status >/dev/null 2>&1; then
	started=1
fi
cleanup() {
	if [ "$started" = 1 ]; then
		scripts/emulators.sh stop || true
	fi
}
trap cleanup EXIT
scripts/emulators.sh start
eval "$(scripts/emulators.sh env)"
go run ./examples/kplroundtrip "$@"
