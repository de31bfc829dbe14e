#!/usr/bin/env bash
# gradserve-cli and gradserve-perf end to end against a real gradserve: a
# temporary repository holding a copy of digits_mlp, served on 127.0.0.1 at a
# free port (explicit model control, so load and unload are exercised). Every
# cli command runs; inference results are checked with NumPy against
# `gradserve-model run` on the same input (identical floats); errors must exit
# 1 with the server's code and message, bad flags 2. The training commands
# train digits_mlp on .npy files (one step per call, generations 1, 2, 3),
# checkpoint, export a version that is then served, and roll back. A short
# gradserve-perf sweep must write a CSV with two levels of positive
# throughput. SIGTERM must stop the server with exit status 0.
#   cli_test.sh GRADSERVE GRADSERVE_CLI GRADSERVE_PERF GRADSERVE_MODEL PYTHON MODELS_DIR
set -euo pipefail
SERVER="$1"
CLI="$2"
PERF="$3"
MODEL_TOOL="$4"
PY="$5"
MODELS="$6"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- server log:" >&2
  cat "$WORK/server.log" >&2 || true
  exit 1
}

mkdir -p "$WORK/repo"
cp -r "$MODELS/digits_mlp" "$WORK/repo/"
"$SERVER" --model-repository="$WORK/repo" --address=127.0.0.1 --grpc-port=0 --http-port=0 \
  --metrics-port=0 --model-control-mode=explicit --load-model=digits_mlp \
  >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

# The port is in the log ("serving gRPC on 127.0.0.1:PORT"); ready follows the load.
PORT=""
for _ in $(seq 300); do
  PORT=$(sed -n 's/.*serving gRPC on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log")
  if [[ -n "$PORT" ]] && grep -q "gradserve: ready" "$WORK/server.log"; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited at start"
  sleep 0.1
done
grep -q "gradserve: ready" "$WORK/server.log" || fail "the server did not get ready in 30 s"
URL="127.0.0.1:$PORT"
cli() { "$CLI" "$1" --url "$URL" "${@:2}"; }
# expect_fail RC PATTERN COMMAND...: the command exits RC and stderr matches PATTERN.
expect_fail() {
  local want_rc="$1" pattern="$2" rc=0
  shift 2
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
  [[ $rc == "$want_rc" ]] || fail "$* exited $rc, not $want_rc: $(cat "$WORK/stderr")"
  grep -qE -- "$pattern" "$WORK/stderr" || fail "$*: stderr lacks '$pattern': $(cat "$WORK/stderr")"
}

# health, metadata, config, index.
cli health >"$WORK/out.txt"
grep -qx "live: true" "$WORK/out.txt" && grep -qx "ready: true" "$WORK/out.txt" ||
  fail "health: $(cat "$WORK/out.txt")"
cli health --model digits_mlp | grep -qx "model digits_mlp ready: true" || fail "model health"
cli metadata | grep -qx "name: gradserve" || fail "server metadata has no name"
cli metadata --model digits_mlp >"$WORK/out.txt"
grep -qx "  pixels FP32 \[-1,64\]" "$WORK/out.txt" || fail "metadata: $(cat "$WORK/out.txt")"
grep -qx "  probabilities FP32 \[-1,10\]" "$WORK/out.txt" || fail "metadata lacks outputs"
cli config --model digits_mlp >"$WORK/out.txt"
grep -qx 'name: "digits_mlp"' "$WORK/out.txt" && grep -qx "max_batch_size: 64" "$WORK/out.txt" ||
  fail "config: $(cat "$WORK/out.txt")"
cli index | grep -qE "^digits_mlp +1 +READY" || fail "index does not list digits_mlp READY"
cli index --ready | grep -qE "^digits_mlp +1 +READY" || fail "index --ready"

# infer from .npy: the same floats as gradserve-model run on the same input.
"$PY" - "$WORK" <<'PYEOF'
import json, sys, numpy as np
rng = np.random.default_rng(12)
x = rng.uniform(0, 16, (5, 64)).astype(np.float32)
np.save(sys.argv[1] + "/pixels.npy", x)
np.save(sys.argv[1] + "/bad.npy", x[:, :63].copy())
body = {"id": "json-1",
        "inputs": [{"name": "pixels", "shape": list(x.shape), "datatype": "FP32",
                    "data": x.tolist()}],
        "outputs": [{"name": "probabilities"}]}
json.dump(body, open(sys.argv[1] + "/body.json", "w"))
PYEOF
"$MODEL_TOOL" run --model "$WORK/repo/digits_mlp/1" --input "pixels=$WORK/pixels.npy" \
  --output-dir "$WORK/ref" >/dev/null
cli infer --model digits_mlp --input "pixels=$WORK/pixels.npy" --output-dir "$WORK/got" \
  >"$WORK/out.txt"
grep -q "wrote $WORK/got/probabilities.npy (FP32 \[5,10\])" "$WORK/out.txt" ||
  fail "infer did not say what it wrote: $(cat "$WORK/out.txt")"
cli infer --model digits_mlp --input "pixels=$WORK/pixels.npy" >"$WORK/printed.txt"
cli infer --model digits_mlp --json "$WORK/body.json" --output-dir "$WORK/json"
"$PY" - "$WORK" <<'PYEOF'
import sys, numpy as np
w = sys.argv[1]
for name in ("logits", "probabilities"):
    ref, got = np.load(f"{w}/ref/{name}.npy"), np.load(f"{w}/got/{name}.npy")
    assert ref.dtype == got.dtype == np.float32 and ref.shape == got.shape == (5, 10), name
    assert np.array_equal(ref, got), (name, np.abs(ref - got).max())
# Printed values are the shortest exact forms: they parse back to the same floats.
lines = open(f"{w}/printed.txt").read().splitlines()
i = lines.index("probabilities FP32 [5,10]")
printed = np.array([[np.float32(v) for v in l.split()] for l in lines[i + 1:i + 6]])
assert np.array_equal(printed, np.load(f"{w}/ref/probabilities.npy")), "printed values differ"
# JSON: only the requested output, the same floats.
import os
assert sorted(os.listdir(f"{w}/json")) == ["probabilities.npy"], os.listdir(f"{w}/json")
assert np.array_equal(np.load(f"{w}/json/probabilities.npy"), np.load(f"{w}/ref/probabilities.npy"))
PYEOF

# Errors: the server's code and message, exit 1; bad flags, exit 2.
expect_fail 1 "^error: INVALID_ARGUMENT: .*pixels.*\[5,63\]" \
  cli infer --model digits_mlp --input "pixels=$WORK/bad.npy"
expect_fail 1 "^error: NOT_FOUND: .*no_such_model" \
  cli infer --model no_such_model --input "pixels=$WORK/pixels.npy"
expect_fail 1 "^error: NOT_FOUND: .*no_such_model" cli config --model no_such_model
expect_fail 1 "^error: NOT_FOUND: .*missing.npy" \
  cli infer --model digits_mlp --input "pixels=$WORK/missing.npy"
expect_fail 2 "no-such-flag" cli infer --model digits_mlp --no-such-flag
expect_fail 2 "--model is required" cli config
expect_fail 2 "either --input flags or --json" cli infer --model digits_mlp
expect_fail 2 "unknown command 'frobnicate'" "$CLI" frobnicate
expect_fail 2 "" "$CLI"
"$CLI" --help | grep -qE "^  training-status +" || fail "--help does not list training-status"

# stats counts what ran (3 requests of 5 rows so far).
cli stats --model digits_mlp >"$WORK/out.txt"
grep -qE "^digits_mlp version 1: 15 inferences in [0-9]+ executions" "$WORK/out.txt" ||
  fail "stats: $(cat "$WORK/out.txt")"
grep -qE "^  success +3, avg" "$WORK/out.txt" || fail "stats success: $(cat "$WORK/out.txt")"

# Training: digits_mlp trains out of the box (batch_size 32), so one request of
# 8 examples is one step of its own, a new weights generation. Steps continue
# the saved model's global step (STEP0).
"$PY" - "$WORK" <<'PYEOF'
import sys, numpy as np
rng = np.random.default_rng(7)
np.save(sys.argv[1] + "/train_pixels.npy", rng.uniform(0, 1, (8, 64)).astype(np.float32))
labels = rng.integers(0, 10, 8).astype(np.int64)
np.save(sys.argv[1] + "/train_labels.npy", labels)
labels[3] = 12
np.save(sys.argv[1] + "/bad_labels.npy", labels)
PYEOF
TRAIN_INPUTS=(--input "pixels=$WORK/train_pixels.npy" --input "labels=$WORK/train_labels.npy")
cli training-status --model digits_mlp >"$WORK/out.txt"
grep -qx "enabled: true" "$WORK/out.txt" && grep -qx "weights_generation: 0" "$WORK/out.txt" &&
  grep -qx "batch_size: 32" "$WORK/out.txt" || fail "training-status: $(cat "$WORK/out.txt")"
STEP0=$(sed -n 's/^step: \([0-9]*\)$/\1/p' "$WORK/out.txt")
[[ -n "$STEP0" ]] || fail "training-status shows no step: $(cat "$WORK/out.txt")"
for generation in 1 2; do
  cli train --model digits_mlp "${TRAIN_INPUTS[@]}" --id "t$generation" >"$WORK/out.txt"
  grep -qx "step: $((STEP0 + generation))" "$WORK/out.txt" &&
    grep -qx "weights_generation: $generation" "$WORK/out.txt" &&
    grep -qx "examples_in_step: 8" "$WORK/out.txt" && grep -qx "id: t$generation" "$WORK/out.txt" &&
    grep -qE "^loss: [0-9.e+-]+$" "$WORK/out.txt" || fail "train: $(cat "$WORK/out.txt")"
done
expect_fail 1 "^error: INVALID_ARGUMENT: .*not a class index" \
  cli train --model digits_mlp --input "pixels=$WORK/train_pixels.npy" \
  --input "labels=$WORK/bad_labels.npy"
expect_fail 2 "--input is required" cli train --model digits_mlp
expect_fail 2 "expected NAME=FILE.npy" cli train --model digits_mlp --input "$WORK/bad.npy"

# checkpoint after 2 steps, export it, train once more, roll back to it.
STEP2=$((STEP0 + 2))
cli checkpoint --model digits_mlp >"$WORK/out.txt"
grep -qx "step: $STEP2" "$WORK/out.txt" && grep -qx "weights_generation: 2" "$WORK/out.txt" ||
  fail "checkpoint: $(cat "$WORK/out.txt")"
CKPT_NAME=$(sed -n 's/^checkpoint: //p' "$WORK/out.txt")
CKPT_PATH=$(sed -n 's/^path: //p' "$WORK/out.txt")
[[ -n "$CKPT_NAME" && -f "$CKPT_PATH" ]] || fail "checkpoint file missing: $(cat "$WORK/out.txt")"
cli export --model digits_mlp >"$WORK/out.txt"
grep -qx "exported_version: 2" "$WORK/out.txt" && grep -qx "step: $STEP2" "$WORK/out.txt" ||
  fail "export: $(cat "$WORK/out.txt")"
EXPORT_PATH=$(sed -n 's/^path: //p' "$WORK/out.txt")
[[ -f "$EXPORT_PATH/saved_model.pb" && -d "$WORK/repo/digits_mlp/2" ]] ||
  fail "export did not write version 2: $(cat "$WORK/out.txt")"
expect_fail 1 "^error: ALREADY_EXISTS: .*version 2" \
  cli export --model digits_mlp --export-version 2
cli train --model digits_mlp "${TRAIN_INPUTS[@]}" >"$WORK/out.txt"
grep -qx "weights_generation: 3" "$WORK/out.txt" || fail "third train: $(cat "$WORK/out.txt")"
cli rollback --model digits_mlp --checkpoint "$CKPT_NAME" >"$WORK/out.txt"
grep -qx "restored: $CKPT_NAME" "$WORK/out.txt" && grep -qx "step: $STEP2" "$WORK/out.txt" &&
  grep -qx "weights_generation: 4" "$WORK/out.txt" || fail "rollback: $(cat "$WORK/out.txt")"
cli training-status --model digits_mlp --version 1 >"$WORK/out.txt"
grep -qx "step: $STEP2" "$WORK/out.txt" && grep -qx "steps_applied: 3" "$WORK/out.txt" &&
  grep -qF "  $CKPT_NAME step $STEP2, " "$WORK/out.txt" ||
  fail "training-status after rollback: $(cat "$WORK/out.txt")"
expect_fail 1 "^error: NOT_FOUND: .*no_such_model" cli training-status --model no_such_model
expect_fail 1 "^error: NOT_FOUND" cli training-status --model digits_mlp --version 9
expect_fail 1 "^error: NOT_FOUND: .*no_such_model" cli checkpoint --model no_such_model

# unload, then load again.
cli unload --model digits_mlp | grep -qx "unloaded digits_mlp" || fail "unload"
expect_fail 1 "not ready" cli health --model digits_mlp
cli index | grep -qE "^digits_mlp +1 +READY" && fail "index still lists digits_mlp READY"
expect_fail 1 "^error: [A-Z_]+: .*digits_mlp" \
  cli infer --model digits_mlp --input "pixels=$WORK/pixels.npy"
cli load --model digits_mlp | grep -qx "loaded digits_mlp" || fail "load"
cli health --model digits_mlp >/dev/null || fail "digits_mlp not ready after load"
# The exported version is the highest, so the one served now.
cli index | grep -qE "^digits_mlp +2 +READY" || fail "the exported version 2 is not served"

# gradserve-perf: two levels (1 and 4), short windows, a CSV row each.
"$PERF" --url "$URL" -m digits_mlp --concurrency-range 1:4:3 --measurement-interval-ms 500 \
  --max-trials 6 --csv "$WORK/perf.csv" >"$WORK/perf.txt" 2>"$WORK/perf.err" ||
  fail "gradserve-perf failed: $(cat "$WORK/perf.err")"
cat "$WORK/perf.txt"
"$PY" - "$WORK/perf.csv" <<'PYEOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["concurrency"] for r in rows] == ["1", "4"], rows
for r in rows:
    assert float(r["requests_per_s"]) > 0 and float(r["p99_us"]) > 0, r
    assert int(r["errors"]) == 0 and int(r["server_requests"]) > 0, r
    assert float(r["server_avg_batch_size"]) >= 1, r
PYEOF
expect_fail 2 "--model is required" "$PERF" --url "$URL"
expect_fail 1 "^error: NOT_FOUND" "$PERF" --url "$URL" -m no_such_model

# SIGTERM: the server drains and exits 0.
kill -TERM "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[[ $rc == 0 ]] || fail "the server exited $rc after SIGTERM"
grep -q "received SIGTERM" "$WORK/server.log" || fail "the server did not log SIGTERM"
expect_fail 1 "^error: UNAVAILABLE" cli health --timeout-ms 2000
echo "PASS"
