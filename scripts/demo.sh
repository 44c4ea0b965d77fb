#!/usr/bin/env bash
# The README's main command: install, build, and ask the bundled demo model about the bundled
# demo video. (The demo model has random weights: its answer is gibberish, but every number in
# it is exactly what the reference implementation computes.)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
bash scripts/setup.sh
exec "${BUILDDIR:-build}"/examples/llavanext-cli run \
  --model tests/data/tiny-a \
  --video tests/data/media/clip_h264_160x120_97f.mp4 --frames 8 \
  --prompt "Why is this video funny?" --max-tokens 24 --temperature 0 "$@"
