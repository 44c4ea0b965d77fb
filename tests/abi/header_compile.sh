#!/bin/sh
# The public headers compile cleanly and self-contained, each from a one-line translation unit,
# as C99 and C11 and as C++11 and C++17, with -Wall -Wextra -Wpedantic -Werror.
# usage: header_compile.sh INCLUDE_DIR CC [CXX]     (CC and CXX: one word each, may be empty)
set -eu
inc=$1
cc=$2
cxx=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
warn="-Wall -Wextra -Wpedantic -Werror"
fail=0
ran=0
check() { # LANG COMPILER STD EXTRA-FLAGS HEADER
    ext=c
    [ "$1" = c++ ] && ext=cpp
    printf '#include <llavanext/%s>\n' "$5" > "$tmp/tu.$ext"
    # version.h holds macros only, and ISO C forbids an empty translation unit.
    [ "$5" = llavanext.h ] || printf 'typedef int tu_is_not_empty;\n' >> "$tmp/tu.$ext"
    if "$2" -x "$1" -std="$3" $warn $4 -I"$inc" -c "$tmp/tu.$ext" -o "$tmp/tu.o" > "$tmp/log" 2>&1; then
        echo "ok   $2 -std=$3 <llavanext/$5>"
    else
        echo "FAIL $2 -std=$3 <llavanext/$5>"
        cat "$tmp/log"
        fail=1
    fi
    ran=$((ran + 1))
}
# Each public header on its own (all of include/llavanext/, so a new topic header is covered).
for h in "$inc"/llavanext/*.h; do
    h=$(basename "$h")
    for std in c99 c11; do
        check c "$cc" "$std" "-Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wundef" "$h"
    done
    if [ -n "$cxx" ]; then
        for std in c++11 c++17; do
            check c++ "$cxx" "$std" "-Wshadow -Wundef -Wold-style-cast -Wzero-as-null-pointer-constant" "$h"
        done
    fi
done
[ "$fail" -eq 0 ] || exit 1
if [ -z "$cxx" ]; then
    echo "header_compile: $ran C checks passed; no C++ compiler found, C++ checks skipped"
    exit 77
fi
echo "header_compile: all $ran checks passed"
