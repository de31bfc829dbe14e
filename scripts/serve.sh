#!/usr/bin/env bash
# The README's "serve" command: installs what is missing, builds (which also
# trains the example models into configs/models), then runs the gradserve
# inference server on the example model repository in the foreground with the
# default ports: gRPC 8001, REST 8000, Prometheus metrics 8002. Ctrl-C (SIGINT)
# or SIGTERM stops it gracefully.
#   scripts/serve.sh [extra gradserve flags...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GRADSERVE_BUILD_DIR:-$ROOT/build}"

"$ROOT/scripts/setup.sh"
"$ROOT/scripts/build.sh"
exec "$BUILD/serving/gradserve" --model-repository="$ROOT/configs/models" "$@"
