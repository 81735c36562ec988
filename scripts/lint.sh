#!/usr/bin/env bash
# lint.sh is `make lint`: gofmt, go vet and staticcheck over the repository.
#
# Checks, all run even when one fails; exits non-zero if any failed:
#   gofmt -l        every .go file outside node_modules/, .run/ and testdata/ (lists unformatted files)
#   go vet ./...    the main module, bench/ when bench/go.mod exists, cmd/kcl (the binary's module)
#                   and every plugin module (plugin/*/go.mod)
#   staticcheck     the main module, cmd/kcl and the plugin modules, through `go run honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION`
#
# Settings: STATICCHECK_VERSION [v0.8.2]
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATICCHECK_VERSION="${STATICCHECK_VERSION:-v0.8.2}"
cd "$ROOT"

failed=()

echo "==> gofmt -l"
unformatted="$(find . \( -name node_modules -o -name .run -o -name .git -o -name testdata \) -prune -o \
	-name '*.go' -type f -print0 | xargs -0 -r gofmt -l)"
if [[ -n "$unformatted" ]]; then
	echo "these files are not gofmt-formatted (run gofmt -w on them):"
	printf '    %s\n' $unformatted
	failed+=(gofmt)
fi

echo "==> go vet ./..."
go vet ./... || failed+=("go vet")

echo "==> staticcheck@$STATICCHECK_VERSION ./..."
go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./... || failed+=(staticcheck)

if [[ -f bench/go.mod ]]; then
	echo "==> (bench) go vet ./..."
	(cd bench && go vet ./...) || failed+=("bench: go vet")
fi

# The kcl binary is a module of its own (cmd/kcl/go.mod): vet and staticcheck it too.
if [[ -f cmd/kcl/go.mod ]] && [[ -n "$(find cmd/kcl -name '*.go' -print -quit)" ]]; then
	echo "==> (cmd/kcl) go vet ./... and staticcheck ./..."
	(cd cmd/kcl && go vet ./...) || failed+=("cmd/kcl: go vet")
	(cd cmd/kcl && go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...) || failed+=("cmd/kcl: staticcheck")
fi

# The plugin modules (plugin/*/go.mod) too.
for mod in plugin/*/go.mod; do
	[[ -f "$mod" ]] || continue
	dir=$(dirname "$mod")
	echo "==> ($dir) go vet ./... and staticcheck ./..."
	(cd "$dir" && go vet ./...) || failed+=("$dir: go vet")
	(cd "$dir" && go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...) || failed+=("$dir: staticcheck")
done

if ((${#failed[@]})); then
	printf 'lint: FAILED: %s\n' "$(IFS=,; echo "${failed[*]}")" | sed 's/,/, /g'
	exit 1
fi
echo "lint: ok"
