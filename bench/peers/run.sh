#!/usr/bin/env bash
# Peer figures for the MLP inference benchmark (ONNX Runtime and PyTorch on CPU), or with
# `train` first for the training-step benchmark (PyTorch), beside gradserve's own when its
# benchmark binary is given.
#
#   bench/peers/run.sh                                         peers only
#   bench/peers/run.sh --gradserve-bench BUILD/bench/mlp_bench  with gradserve and ratios
#   bench/peers/run.sh train --gradserve-bench BUILD/bench/train_bench
#
# Arguments go to mlp_peers.py, or to train_peers.py after `train` (--help lists them).
# The peers live in their own virtual environment, bench/peers/.venv (git-ignored),
# created on first use from PyPI; torch from PyPI brings its CUDA libraries too (a few
# GB) although only its CPU path is used.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT=mlp_peers.py
if [[ "${1:-}" == train ]]; then
  SCRIPT=train_peers.py
  shift
fi
VENV="$HERE/.venv"
PY_PACKAGES=(
  "numpy>=1.26,<3"
  "onnx>=1.16"
  "onnxruntime>=1.20"
  "torch>=2.4"
)

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "run.sh: creating $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi
want=()
for spec in "${PY_PACKAGES[@]}"; do
  name="${spec%%[<>=]*}"
  if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.version('$name')" 2>/dev/null; then
    want+=("$spec")
  fi
done
if ((${#want[@]})); then
  echo "run.sh: pip installing ${want[*]}"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${want[@]}"
fi

# This workplace sets OPENBLAS_CORETYPE=Haswell, which halves OpenBLAS on this CPU; a
# benchmark must not inherit it (tests and CI keep it).
if [[ -n "${OPENBLAS_CORETYPE+set}" ]]; then
  echo "run.sh: unsetting OPENBLAS_CORETYPE (was '$OPENBLAS_CORETYPE') for the benchmark"
fi
exec env -u OPENBLAS_CORETYPE "$VENV/bin/python" "$HERE/$SCRIPT" "$@"
