#!/usr/bin/env bash
# The serving benchmark: gradserve over loopback gRPC, driven by gradserve-perf
# (closed loop), on digits_mlp and the 784-512-512-10 MLP (fashion_mlp), at
# concurrency 1, 8 and 64, with batching off and on; then the server's overhead
# per request at concurrency 1 = client round trip - in-process Session::Run
# of the same MLP at batch 1 (build/bench/mlp_bench, BM_Mlp/batch:1).
#
#   bench/serving/run.sh [BUILD_DIR]        (default: build/)
#
# Batching configurations (temporary repository copies; each config.pbtxt is
# rewritten, the version folders are the example models'):
#   none      max_batch_size 0: no batch dimension, every request runs alone
#   off       max_batch_size 64, no dynamic_batching: requests are never
#             combined (Triton's default scheduler), each runs as sent
#   dyn200    max_batch_size 64, dynamic_batching max_queue_delay 200 us
#   dyn1000   max_batch_size 64, dynamic_batching max_queue_delay 1000 us
# Goals (the issue): at concurrency 64 batching gives >= 4x the throughput of
# no batching on the 784-512-512-10 MLP; overhead at concurrency 1 <= 100 us.
#
# Environment: GRADSERVE_BENCH_THREADS (intra-op threads of the server and of
# the in-process figure, default 1), GRADSERVE_PERF_ASYNC (1, the default: the
# load generator uses gRPC callbacks, which cost it about half the CPU of a
# thread per client; 0: threads), GRADSERVE_PERF_INTERVAL_MS (window,
# default 2000), GRADSERVE_PERF_MAX_TRIALS (default 6), GRADSERVE_BENCH_CONFIGS,
# GRADSERVE_BENCH_CONCURRENCY (default 1,8,64).
# Writes bench/serving/out/results.csv (one row per model, config and level)
# and prints a table; asserts nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
OUT="$ROOT/bench/serving/out"
THREADS="${GRADSERVE_BENCH_THREADS:-1}"
INTERVAL_MS="${GRADSERVE_PERF_INTERVAL_MS:-2000}"
MAX_TRIALS="${GRADSERVE_PERF_MAX_TRIALS:-6}"
CONFIGS="${GRADSERVE_BENCH_CONFIGS:-none off dyn200 dyn1000}"
CONCURRENCY="${GRADSERVE_BENCH_CONCURRENCY:-1,8,64}"
ASYNC=()
[[ "${GRADSERVE_PERF_ASYNC:-1}" == 1 ]] && ASYNC=(--async)
MODELS=(digits_mlp fashion_mlp)
SERVER="$BUILD/serving/gradserve"
PERF="$BUILD/clients/gradserve-perf"
MLP_BENCH="$BUILD/bench/mlp_bench"
for f in "$SERVER" "$PERF" "$MLP_BENCH"; do
  [[ -x "$f" ]] || { echo "run.sh: $f is missing; build first (scripts/build.sh)" >&2; exit 1; }
done
for m in "${MODELS[@]}"; do
  [[ -f "$ROOT/configs/models/$m/1/saved_model.pb" ]] ||
    { echo "run.sh: configs/models/$m/1 is missing (target example_models)" >&2; exit 1; }
done

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$OUT"

# config_pbtxt MODEL CONFIG: the model's config.pbtxt under CONFIG.
config_pbtxt() {
  local model="$1" config="$2"
  echo "name: \"$model\""
  echo 'platform: "gradserve_savedmodel"'
  case "$config" in
    none) echo "max_batch_size: 0" ;;
    off) echo "max_batch_size: 64" ;;
    dyn*)
      echo "max_batch_size: 64"
      echo "dynamic_batching {"
      echo "  max_queue_delay_microseconds: ${config#dyn}"
      echo "  default_queue_policy { max_queue_size: 1024 }"
      echo "}" ;;
    *) echo "run.sh: unknown config $config" >&2; exit 1 ;;
  esac
  echo "instance_group [{ kind: KIND_CPU, count: 1 }]"
  echo "version_policy { latest { num_versions: 1 } }"
}

# start_server REPO: starts gradserve on a free loopback port; sets SERVER_PID, URL.
start_server() {
  "$SERVER" --model-repository="$1" --address=127.0.0.1 --grpc-port=0 --http-port=0 \
    --metrics-port=0 --intra-op-threads="$THREADS" --inter-op-threads=1 \
    >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do
    grep -q "gradserve: ready" "$WORK/server.log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
  done
  local port
  port=$(sed -n 's/.*serving gRPC on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/server.log")
  [[ -n "$port" ]] || { cat "$WORK/server.log" >&2; exit 1; }
  URL="127.0.0.1:$port"
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || echo "run.sh: the server exited $? on SIGTERM" >&2
  SERVER_PID=""
}

echo "serving benchmark: $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: --intra-op-threads=$THREADS --inter-op-threads=1; gradserve-perf ${ASYNC[*]:-sync}," \
     "windows of $INTERVAL_MS ms (at most $MAX_TRIALS per level); concurrency $CONCURRENCY"
for config in $CONFIGS; do
  repo="$WORK/repo_$config"
  for m in "${MODELS[@]}"; do
    mkdir -p "$repo/$m"
    cp -r "$ROOT/configs/models/$m/1" "$repo/$m/"
    config_pbtxt "$m" "$config" >"$repo/$m/config.pbtxt"
  done
  start_server "$repo"
  for m in "${MODELS[@]}"; do
    # Without a batch dimension the input's whole shape is given ([-1, features]).
    shape=()
    if [[ "$config" == none ]]; then
      features=$([[ "$m" == digits_mlp ]] && echo 64 || echo 784)
      shape=(--shape "pixels:1,$features")
    fi
    echo "== $m, batching $config"
    "$PERF" --url "$URL" -m "$m" --concurrency-range "$CONCURRENCY" "${shape[@]}" "${ASYNC[@]}" \
      --measurement-interval-ms "$INTERVAL_MS" --max-trials "$MAX_TRIALS" \
      --csv "$WORK/perf_${m}_${config}.csv" 2>/dev/null | grep -E '^ *(concurrency|[0-9])'
  done
  stop_server
done

# In-process Session::Run of the 784-512-512-10 MLP at batch 1, same thread count.
"$MLP_BENCH" --benchmark_filter="BM_Mlp/batch:1/threads:$THREADS/" --benchmark_min_time=2 \
  --benchmark_out="$WORK/mlp_bench.json" --benchmark_out_format=json >/dev/null 2>&1

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$WORK" "$OUT/results.csv" "$CONFIGS" <<'PYEOF'
import csv, glob, json, os, sys
work, out_path, configs = sys.argv[1], sys.argv[2], sys.argv[3].split()
bench = json.load(open(f"{work}/mlp_bench.json"))["benchmarks"][0]
in_process_us = bench["real_time"] * {"ns": 1e-3, "us": 1, "ms": 1e3}[bench["time_unit"]]
rows = []
for path in sorted(glob.glob(f"{work}/perf_*.csv")):
    model, config = os.path.basename(path)[5:-4].rsplit("_", 1)
    for r in csv.DictReader(open(path)):
        r = dict(model=model, config=config, **r)
        # The in-process figure is of the 784-512-512-10 MLP only.
        if model == "fashion_mlp":
            r["in_process_run_us"] = "%.1f" % in_process_us
            if float(r["concurrency"]) == 1:
                r["overhead_us"] = "%.1f" % (float(r["avg_us"]) - in_process_us)
        rows.append(r)
cols = ["model", "config", "concurrency", "requests_per_s", "avg_us", "p50_us", "p90_us", "p99_us",
        "server_avg_request_us", "server_avg_queue_us", "server_avg_compute_us",
        "server_avg_batch_size", "stable", "in_process_run_us", "overhead_us"]
with open(out_path, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)

def get(model, config, c):
    for r in rows:
        if r["model"] == model and r["config"] == config and float(r["concurrency"]) == c:
            return r

print("\n%-12s %-8s %5s %10s %9s %9s %9s %9s %9s %9s %6s" % (
    "model", "batching", "conc", "infer/s", "avg us", "p50 us", "p99 us", "srv us", "queue us",
    "comp us", "batch"))
for r in sorted(rows, key=lambda r: (r["model"], configs.index(r["config"]), float(r["concurrency"]))):
    print("%-12s %-8s %5s %10.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %6.2f%s" % (
        r["model"], r["config"], r["concurrency"], float(r["requests_per_s"]), float(r["avg_us"]),
        float(r["p50_us"]), float(r["p99_us"]), float(r["server_avg_request_us"]),
        float(r["server_avg_queue_us"]),
        float(r["server_avg_compute_us"]), float(r["server_avg_batch_size"]),
        "" if r["stable"] == "1" else "  (unstable)"))

print("\nThroughput at concurrency 64 relative to no batching (goal on fashion_mlp: >= 4x):")
for model in sorted({r["model"] for r in rows}):
    base = get(model, "none", 64)
    for config in configs:
        r = get(model, config, 64)
        if base and r and config != "none":
            print("  %-12s %-8s %6.2fx  (%.0f vs %.0f infer/s)" % (
                model, config, float(r["requests_per_s"]) / float(base["requests_per_s"]),
                float(r["requests_per_s"]), float(base["requests_per_s"])))

print("\nOverhead per request at concurrency 1, fashion_mlp (goal: <= 100 us):")
print("  in-process Session::Run, batch 1 (%s): %.1f us" % (bench["name"], in_process_us))
for config in configs:
    r = get("fashion_mlp", config, 1)
    if not r:
        continue
    avg, p50 = float(r["avg_us"]), float(r["p50_us"])
    server, queue = float(r["server_avg_request_us"]), float(r["server_avg_queue_us"])
    print("  %-8s round trip avg %.1f us (p50 %.1f): overhead %.1f us avg, %.1f us p50\n"
          "           split: outside the model server (gRPC, both stacks) %.1f us, in the "
          "server beyond Session::Run %.1f us (queue %.1f us)" % (
              config, avg, p50, avg - in_process_us, p50 - in_process_us, avg - server,
              server - in_process_us, queue))
print("\nwrote", out_path)
PYEOF
