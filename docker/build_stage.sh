#!/usr/bin/env bash
# The image build stage, shared by docker/Dockerfile and docker/Dockerfile.cuda:
# the README's set-up script (build packages only; no test virtual environment)
# and its CMake build, limited to what the image ships, then the artifacts
# staged in /out:
#   /out/bin/gradserve, /out/bin/gradserve-cli   the server and its CLI
#   /out/models/                                 the example model repository
#
#   docker/build_stage.sh [extra cmake args...]   (run from the source root)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
scripts/setup.sh --no-venv
GRADSERVE_BUILD_TARGETS="gradserve gradserve_cli example_models" scripts/build.sh "$@"
install -D -m 0755 build/serving/gradserve /out/bin/gradserve
install -D -m 0755 build/clients/gradserve-cli /out/bin/gradserve-cli
mkdir -p /out/models
cp -r configs/models/. /out/models/
# Checkpoints of a previous run on the build machine are not part of the image.
find /out/models -type d -name checkpoints -prune -exec rm -rf {} +
