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
  python3 python3-pytest python3-numpy
  libdnnl-dev abigail-tools clang libclang-dev libclang-rt-14-dev valgrind
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

builddir=${BUILDDIR:-build}
if [ ! -f "$builddir/build.ninja" ]; then
  meson setup "$builddir" --buildtype=release -Dwerror=true
fi
ninja -C "$builddir"
