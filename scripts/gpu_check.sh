#!/usr/bin/env bash
# The GPU check of the CUDA device (issue 6), in two steps:
#
#   scripts/gpu_check.sh build   HERE (the CUDA toolkit, no GPU): configures
#       build-gpu/ with GRADSERVE_CUDA=ON, builds gradserve_cuda_tests and
#       cuda_bench, and bundles them, stripped, with the non-CUDA shared
#       libraries they load into gpu_carry/bundle.tar.xz (git-ignored; carry
#       it: the GPU machine has CUDA 13 but none of our Debian packages).
#   scripts/gpu_check.sh run     ON THE GPU MACHINE (no internet): unpacks the
#       bundle, runs the CUDA tests and the benchmark, prints a short table;
#       well inside 8 minutes. Writes the full logs to $OUT when set.
#
# E.g. with the device tool: run(command="scripts/gpu_check.sh run",
# carry=["gpu_carry"], timeout_s=480).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$ROOT/gpu_carry"

case "${1:-}" in
build)
  export CCACHE_BASEDIR="$(dirname "$ROOT")" CCACHE_NOHASHDIR=1
  cmake -S "$ROOT" -B "$ROOT/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGRADSERVE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="80;90" >/dev/null
  cmake --build "$ROOT/build-gpu" -j "${GRADSERVE_JOBS:-2}" --target gradserve_cuda_tests cuda_bench
  stage="$(mktemp -d)"
  mkdir -p "$stage/bin" "$stage/lib"
  for b in "$ROOT/build-gpu/tests/gradserve_cuda_tests" "$ROOT/build-gpu/bench/cuda_bench"; do
    install -m 0755 "$b" "$stage/bin/"
    strip "$stage/bin/$(basename "$b")"
    # Our Debian libraries, not CUDA's (the GPU machine has those) nor glibc's.
    ldd "$b" | awk '/=> \//{print $3}' |
      grep -v -E '/(libcuda|libcudart|libcublas|libcublasLt|libc|libm|libdl|librt|libpthread|ld-linux-x86-64)\.so' |
      while read -r lib; do cp -L "$lib" "$stage/lib/"; done
  done
  strip --strip-unneeded "$stage"/lib/*.so* 2>/dev/null || true
  mkdir -p "$CARRY"
  tar -C "$stage" -cJf "$CARRY/bundle.tar.xz" .
  rm -rf "$stage"
  echo "gpu_check: $(du -h "$CARRY/bundle.tar.xz" | cut -f1) in gpu_carry/bundle.tar.xz; on the GPU machine: scripts/gpu_check.sh run"
  ;;
run)
  [[ -f "$CARRY/bundle.tar.xz" ]] || { echo "gpu_check: no gpu_carry/bundle.tar.xz (run 'build' here and carry gpu_carry)" >&2; exit 1; }
  work="$(mktemp -d)"
  tar -C "$work" -xJf "$CARRY/bundle.tar.xz"
  cuda_lib="$(dirname "$(ldconfig -p | awk '/libcublas\.so\.13/{print $NF; exit}')" 2>/dev/null || true)"
  export LD_LIBRARY_PATH="$work/lib:${cuda_lib:-/usr/local/cuda/lib64}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  out="${OUT:-$work}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /' || true
  status=0
  timeout 300 "$work/bin/gradserve_cuda_tests" >"$out/cuda_tests.log" 2>&1 || status=$?
  grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED) *\]' "$out/cuda_tests.log" | sed 's/^/tests: /'
  timeout 180 "$work/bin/cuda_bench" | tee "$out/cuda_bench.log" | sed 's/^/bench: /' || status=$?
  echo "gpu_check: tests exit status $status"
  exit "$status"
  ;;
*)
  echo "usage: scripts/gpu_check.sh build | run" >&2
  exit 2
  ;;
esac
