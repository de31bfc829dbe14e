#!/usr/bin/env bash
# End-to-end checks of the gradserve-model CLI on the example models, with real
# files: show, run (outputs checked with NumPy), convert round trip, and the
# exit codes and messages of bad invocations.
#   gradserve_model_test.sh GRADSERVE_MODEL PYTHON MODELS_DIR
set -euo pipefail
TOOL="$1"
PY="$2"
MODELS="$3"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

MLP="$MODELS/digits_mlp/1"
"$TOOL" show --model "$MLP" >"$WORK/show.txt"
grep -q "serving_default" "$WORK/show.txt" || fail "show lists no serving_default"
grep -q "pixels" "$WORK/show.txt" || fail "show lists no pixels input"
grep -q "MatMul" "$WORK/show.txt" || fail "show lists no op counts"

"$PY" - "$WORK" <<'PYEOF'
import sys, numpy as np
rng = np.random.default_rng()
np.save(sys.argv[1] + "/pixels.npy", rng.uniform(0, 16, (5, 64)).astype(np.float32))
np.save(sys.argv[1] + "/bad.npy", rng.uniform(0, 16, (5, 63)).astype(np.float32))
PYEOF
"$TOOL" run --model "$MLP" --input "pixels=$WORK/pixels.npy" --output-dir "$WORK/out"
"$PY" - "$WORK/out" <<'PYEOF'
import sys, numpy as np
p = np.load(sys.argv[1] + "/probabilities.npy")
assert p.shape == (5, 10) and p.dtype == np.float32, (p.shape, p.dtype)
assert np.allclose(p.sum(axis=1), 1, atol=1e-5), p.sum(axis=1)
assert (p > 0).all()
PYEOF

# convert: saved model -> text -> binary gives the same model.
"$TOOL" convert --in "$MLP/saved_model.pb" --out "$WORK/model.pbtxt" --type saved_model
grep -q 'op: "MatMul"' "$WORK/model.pbtxt" || fail "text form has no MatMul"
"$TOOL" convert --in "$WORK/model.pbtxt" --out "$WORK/model.pb" --type saved_model
cmp -s <("$TOOL" show --model "$MLP" | grep -v "$MLP") \
       <(mkdir -p "$WORK/m2" && cp "$WORK/model.pb" "$WORK/m2/saved_model.pb" &&
         cp -r "$MLP/variables" "$WORK/m2/" && "$TOOL" show --model "$WORK/m2" | grep -v "$WORK/m2") ||
  fail "converted model differs"

# Bad input: wrong shape names the input; missing file is an error; bad flag exits 2.
set +e
msg=$("$TOOL" run --model "$MLP" --input "pixels=$WORK/bad.npy" --output-dir "$WORK/o2" 2>&1)
rc=$?
[[ $rc == 1 ]] || fail "wrong shape: exit $rc"
grep -q "pixels" <<<"$msg" || fail "wrong shape message does not name the input: $msg"
msg=$("$TOOL" run --model "$MLP" --input "pixels=$WORK/none.npy" --output-dir "$WORK/o3" 2>&1)
[[ $? == 1 ]] || fail "missing file did not fail"
grep -q "none.npy" <<<"$msg" || fail "missing-file message does not name the file: $msg"
"$TOOL" run --no-such-flag >/dev/null 2>&1
[[ $? == 2 ]] || fail "bad flag did not exit 2"
msg=$("$TOOL" show --model "$WORK/nowhere" 2>&1)
[[ $? == 1 ]] || fail "missing model did not fail"
set -e
echo "gradserve-model CLI: all checks passed"
