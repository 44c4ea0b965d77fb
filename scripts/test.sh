#!/usr/bin/env bash
# The README's test command: install, build, and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# Older OpenBLAS builds pick wrong kernels on some CPUs; the environment pins them (keep it).
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
bash scripts/setup.sh
meson test -C "${BUILDDIR:-build}" --print-errorlogs --num-processes 2 "$@"
