#!/usr/bin/env bash
# Prints source line counts per folder and fails when a file is over budget
# (STYLE: aim under 500 lines, never over 1,000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LIMIT=1000
status=0
for dir in proto graph autodiff runtime serving clients tools tests bench scripts; do
  [[ -d "$dir" ]] || continue
  files=$(git ls-files "$dir" | grep -E '\.(h|cc|cu|cuh|proto|py|sh)$' || true)
  [[ -n "$files" ]] || continue
  total=$(cat $files | wc -l)
  printf '%-10s %6d lines in %3d files\n' "$dir" "$total" "$(echo "$files" | wc -l)"
  while read -r f; do
    n=$(wc -l <"$f")
    if ((n > LIMIT)); then
      echo "  over budget: $f has $n lines (limit $LIMIT)"
      status=1
    fi
  done <<<"$files"
done
exit $status
