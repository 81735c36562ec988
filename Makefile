# Developer and CI entry points. `make test` is the one command that checks
# everything on a fresh machine (Go, Node.js 20 with npm, Java 17); CI runs it
# through .ci/run. The scripts under scripts/ document their settings.

SHELL := bash

# Time each fuzz target runs for in `make fuzz`.
FUZZTIME ?= 1m
# Benchmark regexp, time and runs per benchmark in `make bench` (empty: the script's defaults).
BENCH ?=
BENCHTIME ?=
COUNT ?=

.PHONY: test lint fuzz bench emulators-start emulators-stop emulators-status demo chaos

## test: npm ci as needed, start emulators, lint, go test -race (and bench/), stop emulators
test:
	scripts/test.sh

## lint: gofmt check, go vet, staticcheck
lint:
	scripts/lint.sh

## fuzz: run every Fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m)
fuzz:
	FUZZTIME='$(FUZZTIME)' scripts/fuzz.sh

## bench: kcl's deaggregator against awslabs', and md5x against md5-simd, via bench/run.sh, with benchstat (make bench COUNT=5)
bench:
	BENCH='$(BENCH)' BENCHTIME='$(BENCHTIME)' COUNT='$(COUNT)' scripts/bench.sh

## emulators-start: start kinesis-mock and DynamoDB Local on 127.0.0.1; then eval "$$(scripts/emulators.sh env)"
emulators-start:
	scripts/emulators.sh start
	@echo 'now run: eval "$$(scripts/emulators.sh env)"'

## emulators-stop: stop the emulators started from this repository
emulators-stop:
	scripts/emulators.sh stop

emulators-status:
	scripts/emulators.sh status

## demo: run the demo (scripts/demo.sh)
demo:
	scripts/demo.sh

## chaos: a seeded chaos scenario against the emulators (scripts/chaos.sh; make chaos ARGS="-seed 42" or ARGS=-soak)
chaos:
	scripts/chaos.sh $(ARGS)
