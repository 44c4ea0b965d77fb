#!/bin/sh
# Checks the ABI of BUILD_DIR/lib/libllavanext.so against the committed baseline
# abi/libllavanext.abi with libabigail (abidw + abidiff). See docs/ABI.md for the policy.
#
#   compatible (passes, reported):  new functions; fields appended at the END of a public
#                                   struct (every one is struct_size-extensible)
#   incompatible (fails):           a function removed, or its return or parameter types
#                                   changed; a public struct field removed, resized, retyped,
#                                   or inserted before the end; any other change abidiff finds
#
# abidiff sees types, not names: two fields of one type swapping places, or a renumbered enum
# constant, are caught by the struct_layout test instead (tests/abi/).
#
# --skip-if-no-debug: exit 77 (the "skipped" status of meson test) instead of 1 when abidw is
# missing or the library carries no debug information.
set -eu
skip_code=1
if [ "${1:-}" = "--skip-if-no-debug" ]; then
    skip_code=77
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--skip-if-no-debug] BUILD_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
baseline=$src/abi/libllavanext.abi
suppr=$src/abi/suppressions.abignore
[ -f "$baseline" ] || { echo "abi-check: no baseline $baseline; see docs/ABI.md"; exit 1; }
command -v abidiff >/dev/null 2>&1 || { echo "abi-check: abidiff not found (apt install abigail-tools)"; exit "$skip_code"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
set +e
sh "$here/abi-dump.sh" "$1" "$tmp/current.abi"
rc=$?
set -e
if [ "$rc" -eq 77 ]; then exit "$skip_code"; fi
[ "$rc" -eq 0 ] || exit 1

# abidiff's exit status is a bit field: 1 error, 2 usage error, 4 ABI change, 8 incompatible
# change (a removed symbol). Both sides were written by abi-dump.sh the same way.
set +e
abidiff --show-bytes "$baseline" "$tmp/current.abi" > "$tmp/full" 2>&1
full_rc=$?
abidiff --show-bytes --suppressions "$suppr" --no-added-syms "$baseline" "$tmp/current.abi" > "$tmp/strict" 2>&1
strict_rc=$?
# abidiff's "appended at the end" suppression also hides changes that append nothing (fields
# swapped, a field widened into padding): abi-compare.py applies the policy field by field.
"${PYTHON:-python3}" "$here/abi-compare.py" "$baseline" "$tmp/current.abi" > "$tmp/policy" 2>&1
policy_rc=$?
set -e
if [ $((full_rc & 3)) -ne 0 ] || [ $((strict_rc & 3)) -ne 0 ] || [ "$policy_rc" -ge 2 ]; then
    cat "$tmp/full" "$tmp/strict" "$tmp/policy"
    echo "abi-check: a tool failed (abidiff status $full_rc / $strict_rc, abi-compare $policy_rc)"
    exit 1
fi
nfun=$(grep -c '<elf-symbol ' "$baseline" || true)
if [ "$full_rc" -eq 0 ] && [ "$policy_rc" -eq 0 ]; then
    echo "abi-check: OK, the ABI equals the baseline ($nfun exported functions)"
    exit 0
fi
cat "$tmp/full" "$tmp/policy"
if [ "$strict_rc" -eq 0 ] && [ "$policy_rc" -eq 0 ]; then
    echo "abi-check: OK, compatible additions only. Record them with scripts/abi-update.sh in"
    echo "abi-check: the release that adds them (a minor version); see docs/ABI.md"
    exit 0
fi
if [ $((strict_rc & 8)) -ne 0 ]; then
    echo "abi-check: FAIL, incompatible ABI change: a symbol was removed"
else
    echo "abi-check: FAIL, incompatible ABI change (not a pure addition): see the report above"
fi
echo "abi-check: fix it, or bump LLAVANEXT_ABI_VERSION (the soname) and rebase; see docs/ABI.md"
exit 1
