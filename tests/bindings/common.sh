# Sourced by run_*.sh: reads the arguments meson passes and points pkg-config, the dynamic
# loader and the bindings at the library of this build.
#   $1 source root  $2 build root  $3 build dir of tests/bindings  $4 path of libllavanext.so
set -eu
if [ $# -lt 4 ]; then
    echo "usage: $0 SOURCE_ROOT BUILD_ROOT WORK_DIR LIBRARY" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
mkdir -p "$3"
work=$(cd "$3" && pwd)
lib=$(cd "$(dirname "$4")" && pwd)/$(basename "$4")
libdir=$(dirname "$lib")

if [ ! -f "$lib" ]; then
    echo "$0: $lib does not exist (build the library first)" >&2
    exit 1
fi
if [ ! -f "$build/meson-uninstalled/llavanext-uninstalled.pc" ]; then
    echo "$0: $build/meson-uninstalled/llavanext-uninstalled.pc is missing" >&2
    exit 1
fi
export PKG_CONFIG_PATH="$build/meson-uninstalled${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LLAVANEXT_TEST_DATA="${LLAVANEXT_TEST_DATA:-$src/tests/data}"

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "$0: '$1' not found on PATH: $2 (or configure with -Dbindings=false)" >&2
        exit 1
    fi
}
