.PHONY: demo test bench bench-check bench-docs build docs images

# Runs hoist's main job end to end on a bare machine (see README).
demo:
	scripts/demo.sh

# Installs what is missing, starts the services and runs every test.
test:
	scripts/test.sh

# Every benchmark, side by side with the peers (about 50 minutes), then
# docs/benchmarks.json and docs/benchmarks.md regenerated from that run.
bench:
	HOIST_BENCH_COMMAND="make bench" scripts/bench.sh run -out bench/out/results.json
	$(MAKE) bench-docs RESULTS=bench/out/results.json

# A short run that measures every target of bench/targets.json and prints
# one line per target; fails when a target is missed.
bench-check:
	HOIST_BENCH_COMMAND="make bench-check" scripts/bench.sh check -out bench/out/check.json

# docs/benchmarks.md from a results file (default: the committed one).
RESULTS ?= docs/benchmarks.json
bench-docs:
	[ "$(RESULTS)" = docs/benchmarks.json ] || cp $(RESULTS) docs/benchmarks.json
	go run ./bench report -results docs/benchmarks.json -out docs/benchmarks.md

build:
	go build -o bin/hoist ./cmd/hoist

docs:
	go run ./cmd/hoist settings --markdown > docs/settings.md

# Builds hoist's plugin images with hoist (scripts/images.sh).
images:
	scripts/images.sh
