#!/bin/sh
# Fails when the shared library exports any dynamic symbol that is not llavanext_*.
set -eu
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^llavanext_' | grep -v '^LLAVANEXT_' || true)
count=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -c '^llavanext_' || true)
if [ -n "$bad" ]; then
  echo "unexpected exported symbols:"; echo "$bad"; exit 1
fi
echo "exports: $count llavanext_* symbols, nothing else"
