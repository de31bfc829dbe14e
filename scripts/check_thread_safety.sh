#!/usr/bin/env bash
# Compiles the files that share state across threads with clang's thread-safety
# analysis (-Wthread-safety), which checks the ABSL_GUARDED_BY / LOCKS_EXCLUDED
# annotations. Syntax-only: seconds, not a second full build.
#   scripts/check_thread_safety.sh BUILD_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
CLANG="$(command -v clang++ || command -v clang++-14 || true)"
if [[ -z "$CLANG" ]]; then
  echo "check_thread_safety: clang++ not installed (scripts/setup.sh installs it)" >&2
  exit 1
fi
cd "$ROOT"
files=$(grep -rl --include='*.cc' -E 'ABSL_GUARDED_BY|GUARDED_BY|absl::Mutex' graph runtime serving autodiff 2>/dev/null || true)
CUDA_INCLUDE=/usr/local/cuda/include
for f in $files; do
  extra=()
  if [[ "$f" == */cuda/* ]]; then
    # The CUDA device's files need the toolkit's headers (GRADSERVE_CUDA).
    if [[ ! -d "$CUDA_INCLUDE" ]]; then
      echo "thread-safety: $f skipped (no CUDA toolkit at $CUDA_INCLUDE)"
      continue
    fi
    extra=(-I "$CUDA_INCLUDE" -DGRADSERVE_HAVE_CUDA=1)
  fi
  echo "thread-safety: $f"
  "$CLANG" -std=c++20 -fsyntax-only -Wthread-safety -Werror=thread-safety \
    -DEIGEN_USE_THREADS -I "$ROOT" -I "$BUILD" -I /usr/include/eigen3 "${extra[@]}" "$f"
done
