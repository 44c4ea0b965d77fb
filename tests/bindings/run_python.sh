#!/bin/sh
# meson test: the Python binding's pytest suite (bindings/python/tests). Arguments after the
# four of common.sh go to pytest (default: the whole tests folder).
. "$(dirname "$0")/common.sh"
shift 4

# Prefer an interpreter that has numpy too (Debian's python3-numpy), so the zero-copy tests run.
python=${PYTHON:-}
if [ -z "$python" ]; then
    for cand in python3 /usr/bin/python3; do
        if "$cand" -c "import pytest, numpy" >/dev/null 2>&1; then
            python=$cand
            break
        fi
    done
fi
python=${python:-python3}
need "$python" "install Python 3"
if ! "$python" -c "import pytest" >/dev/null 2>&1; then
    echo "$0: pytest is not installed for $python (Debian: python3-pytest)" >&2
    exit 1
fi
export LLAVANEXT_LIBRARY="$lib"
export PYTHONDONTWRITEBYTECODE=1
# llavanext.batch's tests compare with the command-line program of this build
if [ -z "${LLAVANEXT_CLI:-}" ] && [ -x "$build/examples/llavanext-cli" ]; then
    export LLAVANEXT_CLI="$build/examples/llavanext-cli"
fi
[ $# -gt 0 ] || set -- tests
cd "$src/bindings/python"
set +e
"$python" -m pytest -p no:cacheprovider -ra "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
    echo "$0: pytest collected no tests" >&2
    exit 1
fi
exit $rc
