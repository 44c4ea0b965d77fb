#!/bin/sh
# `meson install` into DESTDIR under the build directory, then checks the installed tree: the
# shared and static libraries with their soname links, every public header, llavanext.pc, the
# CLI and its man page. A consumer program is compiled with `pkg-config --cflags --libs
# llavanext` against the INSTALLED copy only, and run; then linked statically the same way.
# usage: install_test.sh MESON BUILD_ROOT DESTDIR CC SOURCE_ROOT PREFIX LIBDIR INCLUDEDIR BINDIR MANDIR ABI_VERSION WITH_CLI
set -eu
meson=$1 build=$2 dest=$3 cc=$4 src=$5 prefix=$6
abs() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
libdir=$dest$(abs "$7")
incdir=$dest$(abs "$8")
bindir=$dest$(abs "$9")
shift 9
mandir=$dest$(abs "$1")
abi=$2
with_cli=$3
fail() { echo "install_test: FAIL: $*"; exit 1; }

rm -rf "$dest"
"$meson" install -C "$build" --no-rebuild --destdir "$dest" > "$dest.log" 2>&1 || { cat "$dest.log"; fail "meson install"; }
echo "installed into $dest$prefix:"
(cd "$dest" && find . -type f -o -type l | sort | sed 's/^\./  /')

# Libraries: the real file, the soname link a program loads, the dev link the linker finds.
for f in libllavanext.so "libllavanext.so.$abi" libllavanext.a; do
    [ -e "$libdir/$f" ] || fail "$libdir/$f is missing"
done
soname=$(readelf -d "$libdir/libllavanext.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libllavanext.so.$abi" ] || fail "soname is '$soname', expected libllavanext.so.$abi"
if readelf -d "$libdir/libllavanext.so" | grep -q 'R.*PATH'; then fail "the installed library has an RPATH/RUNPATH"; fi
# Every public header of the source tree is installed.
for h in "$src"/include/llavanext/*.h; do
    cmp -s "$h" "$incdir/llavanext/$(basename "$h")" || fail "header $(basename "$h") not installed (or differs)"
done
[ -f "$libdir/pkgconfig/llavanext.pc" ] || fail "llavanext.pc is missing"

# A consumer built from the installed copy only: PKG_CONFIG_SYSROOT_DIR prefixes the .pc's
# paths with DESTDIR, as for a staged install.
export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_SYSROOT_DIR="$dest"
cflags=$(pkg-config --cflags llavanext) || fail "pkg-config --cflags llavanext"
libs=$(pkg-config --libs llavanext) || fail "pkg-config --libs llavanext"
echo "pkg-config --modversion: $(pkg-config --modversion llavanext)"
echo "pkg-config --cflags --libs: $cflags $libs"
case " $cflags " in *" -I$incdir "*) ;; *) fail "cflags do not name the installed include dir" ;; esac
case " $libs " in *" -L$libdir "*) ;; *) fail "libs do not name the installed lib dir" ;; esac
tmp=$dest.consumer
rm -rf "$tmp" && mkdir -p "$tmp"
cp "$src/tests/abi/consumer.c" "$tmp/"
# shellcheck disable=SC2086
"$cc" -std=c99 -Wall -Wextra -Werror -o "$tmp/consumer" "$tmp/consumer.c" $cflags $libs || fail "compile the consumer"
loaded=$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/consumer" | sed -n 's/.*libllavanext[^ ]* => \([^ ]*\).*/\1/p')
case $loaded in "$libdir"/*) ;; *) fail "the consumer loads libllavanext from '$loaded', not from $libdir" ;; esac
echo "consumer (shared, loads $loaded):"
LD_LIBRARY_PATH="$libdir" "$tmp/consumer" || fail "the consumer failed"
# Static: the same flags with --static must carry every private dependency. The dependencies'
# own static flags may name libraries this host lacks (openblas.pc names -lgfortran), so a
# failed link is reported, not failed; a linked program that does not run fails.
slibs=$(pkg-config --static --libs llavanext | sed 's/-lllavanext\b/-l:libllavanext.a/')
# shellcheck disable=SC2086
if "$cc" -std=c99 -o "$tmp/consumer-static" "$tmp/consumer.c" $cflags $slibs > "$tmp/static.log" 2>&1; then
    echo "consumer (static libllavanext.a):"
    "$tmp/consumer-static" || fail "the statically linked consumer failed"
else
    echo "note: no static link on this host (with pkg-config --static --libs llavanext):"
    sed 's/^/  /' "$tmp/static.log"
fi

if [ "$with_cli" = true ]; then
    [ -x "$bindir/llavanext-cli" ] || fail "$bindir/llavanext-cli is missing"
    v=$(LD_LIBRARY_PATH="$libdir" "$bindir/llavanext-cli" --version) || fail "the installed CLI does not run"
    echo "llavanext-cli --version: $v"
    man=$mandir/man1/llavanext-cli.1
    [ -f "$man" ] || fail "$man is missing"
    if command -v groff >/dev/null 2>&1; then
        warnings=$(groff -man -ww -z "$man" 2>&1) || fail "groff cannot format the man page"
        [ -z "$warnings" ] || fail "the man page has groff warnings: $warnings"
        echo "man page: $man (groff -man -ww: clean)"
    fi
fi
echo "install_test: OK"
