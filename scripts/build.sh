#!/usr/bin/env bash
# Configures and builds gradserve into build/ (Release, Ninja, ccache).
#   scripts/build.sh [extra cmake args...]
# GRADSERVE_BUILD_TARGETS="gradserve example_models ..." builds only those targets
# (the container image's build stage); default: everything.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GRADSERVE_BUILD_DIR:-$ROOT/build}"
JOBS="${GRADSERVE_JOBS:-$(nproc)}"

# A fresh clone in another folder must still hit the compiler cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(dirname "$ROOT")}"
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

VENV="${GRADSERVE_VENV:-$ROOT/.venv}"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGRADSERVE_PYTHON="$VENV/bin/python" "$@" >/dev/null
read -r -a targets <<<"${GRADSERVE_BUILD_TARGETS:-all}"
cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"
