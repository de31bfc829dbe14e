#!/usr/bin/env bash
# The README's "run" command. Until the inference server lands (issue 4) the main
# job is gradserve-model on the example model repository: build, generate the
# example saved models, show the digits MLP and run it on a few random images.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GRADSERVE_BUILD_DIR:-$ROOT/build}"
VENV="${GRADSERVE_VENV:-$ROOT/.venv}"

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh"

MODEL="$ROOT/configs/models/digits_mlp/1"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$BUILD/tools/gradserve-model" show --model "$MODEL"
"$VENV/bin/python" -c "
import numpy as np
np.save('$WORK/pixels.npy', np.random.default_rng().uniform(0, 16, (4, 64)).astype(np.float32))"
"$BUILD/tools/gradserve-model" run --model "$MODEL" --input "pixels=$WORK/pixels.npy" \
  --output-dir "$WORK/out"
"$VENV/bin/python" -c "
import numpy as np
p = np.load('$WORK/out/probabilities.npy')
print('probabilities', p.shape, 'row sums', p.sum(axis=1).round(5), 'argmax', p.argmax(axis=1))"
