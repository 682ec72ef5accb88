#!/usr/bin/env bash
# test.sh installs what the tests need and runs them all: vet, then every
# package's tests against real FFmpeg, ONNX Runtime, NATS and torch fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --test

export VIDPIPE_CACHE="${VIDPIPE_CACHE:-$HOME/.cache/vidpipe}"
test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go vet ./...
go test -count=1 -timeout 20m "$@" ./...
