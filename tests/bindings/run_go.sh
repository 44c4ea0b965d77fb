#!/bin/sh
# meson test: the Go module's go test (bindings/go), built with cgo against this build.
. "$(dirname "$0")/common.sh"

need go "install Go >= 1.21"
need pkg-config "install pkg-config"
export CGO_ENABLED=1
# The header, also when the .pc file does not name its directory.
export CGO_CFLAGS="-I$src/include${CGO_CFLAGS:+ $CGO_CFLAGS}"
cd "$src/bindings/go"
go vet ./...
# -count=1: the C library is not a Go input, so cached results could be stale.
exec go test -count=1 -v ./...
