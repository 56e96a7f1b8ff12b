.PHONY: demo test bench build docs images

# Runs hoist's main job end to end on a bare machine (see README).
demo:
	scripts/demo.sh

# Installs what is missing, starts the services and runs every test.
test:
	scripts/test.sh

bench:
	scripts/bench.sh

build:
	go build -o bin/hoist ./cmd/hoist

docs:
	go run ./cmd/hoist settings --markdown > docs/settings.md

# Builds hoist's plugin images with hoist (scripts/images.sh).
images:
	scripts/images.sh
