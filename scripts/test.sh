#!/usr/bin/env bash
# Runs every test of hoist on a bare machine: installs what is missing,
# starts a Docker daemon for the tests (registries are started by the tests
# themselves), runs vet and the tests, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. scripts/dockerd.sh
trap stop_dockerd EXIT
start_dockerd
export HOIST_TEST_DOCKER_HOST="$DOCKER_HOST"
export CI="${CI:-true}"
echo "test: gofmt and go vet"
unformatted=$(gofmt -l cmd internal bench)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
go vet ./...
# Every package once, under the race detector: the step engine runs
# several steps in one process, the push fans out, the cloud stand-ins are
# read under locks. (Most of the time goes to the real components, which
# are not instrumented: the race run costs about what a plain run does.)
echo "test: go test -race (CI=$CI)"
go test -race -count=1 -timeout 40m "$@" ./...
# The fuzz targets, briefly (their seeds already ran above): a bounded
# number of inputs each, about ten seconds here. A count rather than a
# duration: a duration that ends while a worker is busy can fail the run
# with "context deadline exceeded", which is the fuzzer's, not the code's.
for target in internal/outputs:FuzzEnvRoundTrip:50000 internal/registry:FuzzDestinations:100000 internal/settings:FuzzLoad:100000 internal/source:FuzzOpenArchive:8000 internal/pipeline:FuzzExpand:20000 internal/pipeline:FuzzParse:10000; do
  pkg=${target%%:*}; rest=${target#*:}; name=${rest%%:*}; n=${rest#*:}
  echo "test: fuzz $name ($n inputs)"
  go test -run='^$' -fuzz="^$name\$" -fuzztime="${n}x" -fuzzminimizetime=1s "./$pkg"
done
