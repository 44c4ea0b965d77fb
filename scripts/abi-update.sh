#!/bin/sh
# Regenerates the committed ABI records from BUILD_DIR, on purpose only (the release that adds
# API, or a soname bump): see docs/ABI.md.
#   abi/libllavanext.abi         abidw baseline compared by scripts/abi-check.sh
#   tests/abi/struct_layout.txt  sizes/offsets/enumerators compared by the struct_layout test
# The build needs debug information (meson setup -Ddebug=true) and the tests (-Dtests=true).
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
ninja -C "$1" >/dev/null
sh "$here/abi-dump.sh" "$1" "$src/abi/libllavanext.abi.tmp"
mv "$src/abi/libllavanext.abi.tmp" "$src/abi/libllavanext.abi"
echo "wrote abi/libllavanext.abi ($(grep -c '<elf-symbol ' "$src/abi/libllavanext.abi") exported functions)"
"$1/tests/abi/abi_struct_layout" > "$src/tests/abi/struct_layout.txt.tmp"
mv "$src/tests/abi/struct_layout.txt.tmp" "$src/tests/abi/struct_layout.txt"
echo "wrote tests/abi/struct_layout.txt ($(wc -l < "$src/tests/abi/struct_layout.txt") lines)"
echo "review the change with: git diff -- abi/ tests/abi/struct_layout.txt"
