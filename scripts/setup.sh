#!/usr/bin/env bash
# Installs what building and testing libllavanext needs on Debian 12 (as root, or with sudo),
# then configures the meson build directory. Idempotent: installs only what is missing and
# reconfigures only when needed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  gcc g++ pkg-config meson ninja-build
  libopenblas-dev libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
  libjansson-dev libcmocka-dev libjpeg-dev libpcre2-dev libutf8proc-dev
  python3 python3-pytest python3-numpy python3-pip
  libdnnl-dev abigail-tools clang libclang-dev libclang-rt-14-dev libomp-14-dev valgrind
  libmicrohttpd-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# From PyPI (not packaged in Debian 12): Dask's distributed scheduler and tqdm, for the Python
# binding's llavanext.batch and its tests. Installed for Debian's python3 (the one the tests
# use) and for the python3 first on PATH when that is another interpreter.
pythons=(/usr/bin/python3)
if command -v python3 >/dev/null 2>&1; then
  first=$(command -v python3)
  [ "$(readlink -f "$first")" = "$(readlink -f /usr/bin/python3)" ] || pythons+=("$first")
fi
for py in "${pythons[@]}"; do
  [ -x "$py" ] || continue
  if ! "$py" -c "import dask.distributed, tqdm" >/dev/null 2>&1; then
    echo "setup: installing dask[distributed] and tqdm from PyPI for $py"
    "$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      --break-system-packages \
      "dask[distributed]>=2023.6" "tqdm>=4.60"
  fi
done
# The server's tests drive it with the official OpenAI Python client (from PyPI), for the same
# interpreters.
for py in "${pythons[@]}"; do
  [ -x "$py" ] || continue
  if ! "$py" -c "import openai" >/dev/null 2>&1; then
    echo "setup: installing openai from PyPI for $py"
    "$py" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
      --break-system-packages openai
  fi
done

builddir=${BUILDDIR:-build}
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --buildtype=release -Dwerror=true
fi
ninja -C "$builddir"
