#!/usr/bin/env bash
# The unit, reference, CLI and fuzz-corpus tests again, built with gcc under AddressSanitizer and
# UndefinedBehaviorSanitizer: any out-of-bounds access, use after free, leak or undefined
# behaviour fails the run. Called by scripts/test.sh after the normal suite; run it alone with
#   bash scripts/asan-suite.sh [extra meson test arguments]
# The binding and benchmark suites are left out (they test other things, slowly, under a
# sanitizer runtime they were not built for), as is the ABI suite (it checks the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${ASAN_BUILDDIR:-build-asan}
if [ ! -f "$builddir/build.ninja" ]; then
  # gcc's -fsanitize=undefined leaves out float-to-integer overflow; add it
  meson setup "$builddir" --buildtype=debugoptimized -Db_sanitize=address,undefined \
    -Dc_args=-fsanitize=float-cast-overflow -Dc_link_args=-fsanitize=float-cast-overflow \
    -Dbindings=false -Dbenchmarks=false
fi
ninja -C "$builddir"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
meson test -C "$builddir" --print-errorlogs --num-processes 2 \
  --no-suite bindings --no-suite bench --no-suite abi "$@"
