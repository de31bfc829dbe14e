#!/usr/bin/env bash
# End-to-end checks of the gradserve-model CLI on the example models, with real
# files: show, run (outputs checked with NumPy), convert round trip, train and
# evaluate on the shipped digits data, and the exit codes and messages of bad
# invocations.
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
np.save(sys.argv[1] + "/pixels.npy", rng.uniform(0, 1, (5, 64)).astype(np.float32))
np.save(sys.argv[1] + "/bad.npy", rng.uniform(0, 1, (5, 63)).astype(np.float32))
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

# train: digits_mlp for 2 epochs on the shipped digits into a new directory,
# which then loads and serves; evaluate agrees that it learned something.
DIGITS="$MODELS/../datasets/digits/digits.csv.gz"
"$TOOL" train --model "$MLP" --data "$DIGITS" --scale 1/16 --epochs 2 --seed 7 \
  --output "$WORK/trained" >"$WORK/train.txt" 2>"$WORK/train.err"
cat "$WORK/train.txt"
[[ ! -s "$WORK/train.err" ]] ||
  fail "train wrote to stderr that is not a TTY: $(cat "$WORK/train.err")"
[[ $(grep -c "^epoch [12]/2 .* accuracy .* test_accuracy " "$WORK/train.txt") == 2 ]] ||
  fail "train did not print two epoch lines with accuracies"
# 1438 training examples in batches of 64: 23 steps per epoch, 46 more steps.
START=$("$TOOL" show --model "$MLP" | sed -n 's/^ *checkpoint .*: step \([0-9]*\).*/\1/p')
[[ -n "$START" ]] || fail "show does not print the example model's step"
grep -q "^wrote $WORK/trained (step $((START + 46)))" "$WORK/train.txt" ||
  fail "train did not print the output"
"$TOOL" show --model "$WORK/trained" | grep -q "checkpoint .*: step $((START + 46))" ||
  fail "trained model does not show its step"
"$TOOL" run --model "$WORK/trained" --input "pixels=$WORK/pixels.npy" --output-dir "$WORK/out2"
"$PY" - "$WORK/out2" <<'PYEOF'
import sys, numpy as np
p = np.load(sys.argv[1] + "/probabilities.npy")
assert p.shape == (5, 10) and np.allclose(p.sum(axis=1), 1, atol=1e-5), p
PYEOF
"$TOOL" evaluate --model "$WORK/trained" --data "$DIGITS" --scale 0.0625 >"$WORK/eval.txt"
"$PY" - "$WORK/eval.txt" <<'PYEOF'
import sys
words = open(sys.argv[1]).read().split()
assert words[0] == "accuracy" and words[2] == "loss" and "(1797" in words, words
assert float(words[1]) > 0.5, f"accuracy {words[1]} after 2 epochs"
PYEOF

# Without --output: the next free version beside the model (on a copy).
mkdir -p "$WORK/repo/digits_mlp" && cp -r "$MLP" "$WORK/repo/digits_mlp/1"
"$TOOL" train --model "$WORK/repo/digits_mlp/1" --data "$DIGITS" --scale 1/16 --test-fraction 0 \
  >"$WORK/train2.txt"
grep -q "^wrote $WORK/repo/digits_mlp/2 " "$WORK/train2.txt" ||
  fail "default output is not version 2"
grep -q "^epoch 1/1 .* accuracy " "$WORK/train2.txt" || fail "no epoch line without a test set"
! grep -q "test_accuracy" "$WORK/train2.txt" || fail "test accuracy printed without a test set"

# train rejections: bad flags exit 2, failures exit 1, each naming the problem,
# and none of them writes the output directory.
expect() {  # expect STATUS PATTERN COMMAND...
  local want="$1" pattern="$2"
  shift 2
  set +e
  msg=$("$@" 2>&1)
  rc=$?
  set -e
  [[ $rc == "$want" ]] || fail "$* exited $rc, not $want: $msg"
  grep -q -- "$pattern" <<<"$msg" || fail "$* did not say '$pattern': $msg"
}
TRAIN=("$TOOL" train --model "$MLP" --scale 1/16)
expect 2 "unknown optimizer 'rmsprop'" "${TRAIN[@]}" --data "$DIGITS" --optimizer rmsprop \
  --output "$WORK/r1"
expect 1 "$WORK/none.csv: No such file" "${TRAIN[@]}" --data "$WORK/none.csv" --output "$WORK/r2"
expect 1 "into $WORK/trained: the directory exists and is not empty" \
  "${TRAIN[@]}" --data "$DIGITS" --output "$WORK/trained"
(gzip -dc "$DIGITS" | sed -n 1,20p; echo "$(seq -s, 1 64),12") >"$WORK/label12.csv"
expect 1 "label12.csv: label 12 (example 20, counting from 0) is out of range: the model" \
  "${TRAIN[@]}" --data "$WORK/label12.csv" --output "$WORK/r3"
expect 1 "label 12 (example 20" "$TOOL" evaluate --model "$MLP" --data "$WORK/label12.csv"
printf '1,2,3\n1,2\n' >"$WORK/ragged.csv"
expect 1 "ragged.csv:2: ragged rows" "${TRAIN[@]}" --data "$WORK/ragged.csv" --output "$WORK/r4"
expect 2 "give the data" "${TRAIN[@]}" --output "$WORK/r5"
expect 2 "--momentum applies to --optimizer momentum only" "${TRAIN[@]}" --data "$DIGITS" \
  --momentum 0.5
expect 2 "--idx takes IMAGES LABELS" "${TRAIN[@]}" --idx "$WORK/a"
expect 2 "--scale must be" "$TOOL" train --model "$MLP" --data "$DIGITS" --scale 1/0
for d in r1 r2 r3 r4 r5; do [[ ! -e "$WORK/$d" ]] || fail "a failed train created $d"; done
echo "gradserve-model CLI: all checks passed"
