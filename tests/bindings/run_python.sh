#!/bin/sh
# meson test: the Python binding's pytest suite (bindings/python/tests).
. "$(dirname "$0")/common.sh"

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
cd "$src/bindings/python"
set +e
"$python" -m pytest -p no:cacheprovider -ra tests
rc=$?
set -e
if [ $rc -eq 5 ]; then
    echo "$0: pytest collected no tests" >&2
    exit 1
fi
exit $rc
