#!/usr/bin/env bash
# demo.sh — the README's demo command (make demo).
#
# Starts the local emulators (reusing running ones), runs testkit/cmd/kcldemo
# against them and stops the emulators again if this script started them.
# The demo runs a fleet of three worker processes (examples/worker) over a
# stream that is resharded while records flow, stops one worker gracefully,
# kills and restarts another, and checks that every record was processed in
# order per key. Arguments are passed to the demo (go run ./testkit/cmd/kcldemo -h
# lists them). examples/kplroundtrip, the earlier demo, still runs on its own.
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
go run ./testkit/cmd/kcldemo "$@"
