#!/usr/bin/env bash
# Fuzz smoke test: builds the libFuzzer targets of tests/fuzz with clang under AddressSanitizer
# and UndefinedBehaviorSanitizer, then runs each for FUZZ_SECONDS (default 30) on a scratch copy
# of its seed corpus. Any crash, sanitizer report, leak, timeout or out-of-memory fails the run;
# the input that caused it is kept in $builddir/fuzz-artifacts/. Add it to
# tests/fuzz/corpus/<target>/ as crash-<what> together with the fix, so that the gcc replay
# tests keep covering it. Called by scripts/test.sh; run alone with
#   bash scripts/fuzz-smoke.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
builddir=${FUZZ_BUILDDIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors config tokenizer template media chat)

if [ ! -f "$builddir/build.ninja" ]; then
  # the library is instrumented for coverage (fuzzer-no-link); only the targets link libFuzzer.
  # clang's sanitizers need b_lundef=false (their runtime is linked into executables only).
  CC=clang meson setup "$builddir" --buildtype=debugoptimized -Dfuzzing=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link \
    -Dexamples=false -Dbenchmarks=false -Dbindings=false
fi
ninja -C "$builddir" $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}")

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
artifacts="$builddir/fuzz-artifacts"
mkdir -p "$artifacts"
failed=()
for t in "${targets[@]}"; do
  cp -r "tests/fuzz/corpus/$t" "$work/$t"
  log="$work/$t.log"
  if "$builddir/tests/fuzz/fuzz_$t" "$work/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$artifacts/$t-" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz-smoke: $t: ${execs:-?} executions in ${seconds} s, ${cov:-cov: ?}"
  else
    echo "fuzz-smoke: $t FAILED; the end of its log:"
    tail -n 60 "$log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz-smoke: failing targets: ${failed[*]}; reproducing inputs are in $artifacts/"
  exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran clean"
