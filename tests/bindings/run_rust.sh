#!/bin/sh
# meson test: the Rust workspace's cargo test (bindings/rust). Crates come from crates.io the
# first time; the target directory lives in the meson build directory.
. "$(dirname "$0")/common.sh"

need cargo "install Rust (https://rustup.rs)"
export LLAVANEXT_LIBRARY="$libdir"
export CARGO_TARGET_DIR="$work/rust-target"
cd "$src/bindings/rust"
exec cargo test --locked
