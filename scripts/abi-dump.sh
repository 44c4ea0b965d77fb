#!/bin/sh
# Writes the ABI of BUILD_DIR/lib/libllavanext.so as libabigail XML to OUT_FILE: only what the
# public headers declare (the opaque handles stay declarations), only exported interfaces, no
# build paths or line numbers, content-hashed type ids, so that the file changes only when the
# ABI does. Used by scripts/abi-check.sh and scripts/abi-update.sh; see docs/ABI.md.
# Exit status 77 when abidw is missing or the library has no debug information.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR OUT_FILE" >&2
    exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
lib=$1/lib/libllavanext.so
if ! command -v abidw >/dev/null 2>&1; then
    echo "abi: abidw not found (Debian/Ubuntu: apt install abigail-tools)" >&2
    exit 77
fi
if [ ! -e "$lib" ]; then
    echo "abi: $lib not found; build the library first" >&2
    exit 1
fi
if ! readelf -S "$lib" | grep -q '\.debug_info'; then
    echo "abi: $lib has no debug information, so its types cannot be read;" >&2
    echo "abi: configure the build with -Ddebug=true (buildtype release still means -O3)" >&2
    exit 77
fi
abidw --headers-dir "$src/include/llavanext" --drop-private-types --exported-interfaces-only \
      --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed --type-id-style hash \
      --out-file "$2" "$lib"
