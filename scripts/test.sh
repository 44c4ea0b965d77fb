#!/usr/bin/env bash
# The README's test command: install, build, and run every test: the unit, reference, CLI, ABI,
# bindings and benchmark-smoke suites, then the same tests under AddressSanitizer/UBSan (gcc) and
# a bounded libFuzzer run (clang). LLAVANEXT_SKIP_SANITIZERS=1 skips the last two for a quick
# local run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Older OpenBLAS builds pick wrong kernels on some CPUs; the environment pins them (keep it).
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
bash scripts/setup.sh
build=${BUILDDIR:-build}
rc=0
meson test -C "$build" --print-errorlogs --num-processes 2 "$@" || rc=$?
# the closing lines: every cmocka group's summary, then "N passed, N failed"
if ! python3 scripts/test-summary.py "$build"; then [ "$rc" -ne 0 ] || rc=1; fi
[ "$rc" -eq 0 ] || exit "$rc"
if [ "${LLAVANEXT_SKIP_SANITIZERS:-0}" != 1 ]; then
  bash scripts/asan-suite.sh
  bash scripts/fuzz-smoke.sh
fi
