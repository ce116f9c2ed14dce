#!/usr/bin/env bash
# Installs whatever Grove needs that is missing (Debian packages), then
# configures and builds it.
#
#   scripts/setup.sh [BUILD_DIR] [extra cmake arguments...]
#
# BUILD_DIR defaults to "build". As root, missing packages are installed with
# apt-get; otherwise the one "sudo apt-get install ..." line is printed and
# the script stops. Environment: GROVE_SANITIZER (address,undefined | thread)
# is passed through to CMake; GROVE_BUILD_TARGETS (space-separated) builds
# only those targets instead of everything.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${1:-build}
shift || true

# libsqlite3-dev: the job queue example's store. netcat-openbsd: the chat
# example's smoke test talks to it with nc, as its README does. tmux: the
# observer test looks at grove top's live screen in a real terminal.
# erlang-dev: erl_interface, for Erlang distribution (dist/); erlang-base:
# the erl and epmd its tests talk to.
packages=(gcc make cmake pkg-config libev-dev libmsgpack-dev libsqlite3-dev netcat-openbsd
  tmux erlang-base erlang-dev)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "Grove needs these Debian packages. Install them with:"
    echo "  sudo apt-get install ${missing[*]}"
    exit 1
  fi
fi

cmake_args=(-S . -B "$build_dir")
if [[ -n ${GROVE_SANITIZER:-} ]]; then
  cmake_args+=(-DGROVE_SANITIZER="$GROVE_SANITIZER" -DGROVE_BUILD_BENCH=OFF)
fi
cmake "${cmake_args[@]}" "$@" >/dev/null
targets=()
for t in ${GROVE_BUILD_TARGETS:-}; do
  targets+=(--target "$t")
done
cmake --build "$build_dir" -j "$(nproc)" "${targets[@]}"
