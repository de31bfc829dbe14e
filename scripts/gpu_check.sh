#!/usr/bin/env bash
# The GPU check of the CUDA device (issue 6), in two steps:
#
#   scripts/gpu_check.sh build   HERE (the CUDA toolkit, no GPU): configures
#       build-gpu/ with GRADSERVE_CUDA=ON, builds gradserve_cuda_tests,
#       cuda_bench and gpu_serving_bench, and bundles them, stripped, with the
#       non-CUDA shared libraries they load into gpu_carry/bundle.tar.xz
#       (git-ignored; carry it: the GPU machine has CUDA 13 but none of our
#       Debian packages). cuBLAS is not among them: the binaries load
#       libcublas.so.13 with dlopen (runtime/cuda/cublas_loader.cc), from the
#       GPU machine's CUDA.
#   scripts/gpu_check.sh run     ON THE GPU MACHINE (no internet): unpacks the
#       bundle, finds libcublas.so.13 for LD_LIBRARY_PATH, runs the CUDA tests
#       and the two benchmarks, prints their tables (lines prefixed tests:,
#       bench:, serving:). Every step has a timeout and the steps together
#       stay under 8 minutes. Writes the full logs to $OUT when set.
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
  cmake --build "$ROOT/build-gpu" -j "${GRADSERVE_JOBS:-2}" --target gradserve_cuda_tests cuda_bench gpu_serving_bench
  stage="$(mktemp -d)"
  mkdir -p "$stage/bin" "$stage/lib"
  for b in "$ROOT/build-gpu/tests/gradserve_cuda_tests" "$ROOT/build-gpu/bench/cuda_bench" \
           "$ROOT/build-gpu/bench/gpu_serving_bench"; do
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
  # Timeouts: tests 210 s, benches 100 + 150 s, each cut to what is left of
  # 465 s from the start, so the whole run stays under 8 minutes.
  end=$((SECONDS + 465))
  limit() { local left=$((end - SECONDS)); ((left > 1)) || left=1; echo $(($1 < left ? $1 : left)); }
  [[ -f "$CARRY/bundle.tar.xz" ]] || { echo "gpu_check: no gpu_carry/bundle.tar.xz (run 'build' here and carry gpu_carry)" >&2; exit 1; }
  work="$(mktemp -d)"
  tar -C "$work" -xJf "$CARRY/bundle.tar.xz"
  # libcublas.so.13 (and libcublasLt beside it), which the binaries dlopen:
  # where ldconfig knows it, else the usual toolkit folders.
  cublas_dir=""
  for d in "$(ldconfig -p 2>/dev/null | awk '/libcublas\.so\.13 /{print $NF; exit}' | xargs -r dirname)" \
           /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64 \
           /usr/lib/x86_64-linux-gnu; do
    if [[ -n "$d" && -e "$d/libcublas.so.13" ]]; then cublas_dir="$d"; break; fi
  done
  echo "gpu_check: libcublas.so.13 in ${cublas_dir:-(not found; the tests and benches will say so)}"
  export LD_LIBRARY_PATH="$work/lib${cublas_dir:+:$cublas_dir}:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  out="${OUT:-$work}"
  export GRADSERVE_TESTS_DIR="$ROOT/tests"  # the digits data of the GPU training test
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /' || true
  status=0
  timeout "$(limit 210)" "$work/bin/gradserve_cuda_tests" >"$out/cuda_tests.log" 2>&1 || status=$?
  grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED) *\]' "$out/cuda_tests.log" | sed 's/^/tests: /' || true
  echo "tests: exit status $status"
  timeout "$(limit 100)" "$work/bin/cuda_bench" 2>&1 | tee "$out/cuda_bench.log" | sed 's/^/bench: /' || status=$?
  timeout "$(limit 150)" "$work/bin/gpu_serving_bench" 2>&1 | tee "$out/gpu_serving_bench.log" |
    sed 's/^/serving: /' || status=$?
  echo "gpu_check: exit status $status (tests, then the benchmarks)"
  exit "$status"
  ;;
*)
  echo "usage: scripts/gpu_check.sh build | run" >&2
  exit 2
  ;;
esac
