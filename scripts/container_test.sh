#!/usr/bin/env bash
# Build the real Dockerfile with podman and start the image, where no image registry can be reached.
#
# The Dockerfile says FROM python:3.11-slim-bookworm. No registry is reachable here, but Debian's
# packages are, so this script makes a stand-in for that base with debootstrap (bookworm ships
# Python 3.11), tags it with the same name in podman's local storage, and builds the unmodified
# Dockerfile with --isolation=chroot. Then it checks what a self-hoster relies on: the image size,
# a non-root user, the models inside the image, `photodetective analyze` with no network, and
# /healthz and /readyz from `photodetective run`.
#
# Test-only: the Dockerfile stays the standard one. Needs root (apt-get, debootstrap); prints
# "container test skipped: ..." and exits 0 where podman or debootstrap cannot be had.
# CONTAINER_TEST=skip skips it on purpose. The stand-in base is cached in $CACHE_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
CACHE_DIR=${CONTAINER_CACHE_DIR:-/var/cache/photodetective}
BASE_TAG=docker.io/library/python:3.11-slim-bookworm
IMAGE=localhost/photodetective:test
MAX_IMAGE_MB=${MAX_IMAGE_MB:-700}
PORT=${CONTAINER_TEST_PORT:-18080}
BASE_TARBALL=$CACHE_DIR/bookworm-python-slim-v2.tar.gz  # bump the name when make_base changes
STORAGE=(--storage-driver vfs)  # overlay needs kernel support this sandbox may lack; vfs always works

skip() { echo "container test skipped: $*"; exit 0; }
step() { echo "== $*"; }

[ "${CONTAINER_TEST:-}" = skip ] && skip "CONTAINER_TEST=skip"

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  [ "$(id -u)" = 0 ] || skip "podman/debootstrap missing and not root (apt-get install podman debootstrap)"
  step "installing podman and debootstrap"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman debootstrap runc) >/dev/null 2>&1 \
    || skip "apt-get could not install podman and debootstrap"
fi
[ "$(id -u)" = 0 ] || skip "debootstrap needs root"

# Rootful podman inside a sandbox: no systemd, no default ulimits, and cgroups that may be a v1/v2
# hybrid, which crun refuses ("cgroups in hybrid mode not supported"). runc accepts it; see below.
CONF_DIR=$(mktemp -d)
trap 'rm -rf "$CONF_DIR"' EXIT
cat >"$CONF_DIR/containers.conf" <<'EOF2'
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF2
export CONTAINERS_CONF="$CONF_DIR/containers.conf"
pod() { podman "${STORAGE[@]}" "$@"; }

# --- the stand-in base image -------------------------------------------------------------------
make_base() {
  local root="$CACHE_DIR/bookworm-root"
  step "debootstrap bookworm (cold: a few minutes; cached in $CACHE_DIR)"
  rm -rf "$root" && mkdir -p "$root"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    bookworm "$root" http://deb.debian.org/debian >"$CACHE_DIR/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE_DIR/debootstrap.log"; return 1; }
  # pip in the build reaches PyPI through the same CA bundle as this machine (it may add a proxy's CA).
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  # What the official image provides and Dockerfiles rely on: python/pip on PATH under /usr/local/bin.
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python3"
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  chroot "$root" apt-get clean
  # What Debian's "slim" images leave out (docs, man pages, translations), as the real base does.
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/usr/share/doc" "$root/usr/share/man" \
    "$root/usr/share/info" "$root/usr/share/locale/"*
  tar -C "$root" -c . | gzip -1 >"$BASE_TARBALL.tmp"
  mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
  rm -rf "$root"
}

mkdir -p "$CACHE_DIR"
if ! pod image exists "$BASE_TAG"; then
  [ -s "$BASE_TARBALL" ] || make_base || skip "debootstrap failed (see $CACHE_DIR/debootstrap.log)"
  step "importing the stand-in as $BASE_TAG"
  pod import --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$BASE_TARBALL" "$BASE_TAG" >/dev/null
fi

# --- build ---------------------------------------------------------------------------------------
step "podman build --isolation=chroot"
started=$(date +%s)
pod build --isolation=chroot --pull=never --network=host -t "$IMAGE" . >"$CACHE_DIR/build.log" 2>&1 \
  || { tail -40 "$CACHE_DIR/build.log"; echo "container test FAILED: the image did not build"; exit 1; }
echo "built in $(($(date +%s) - started)) s"

size_mb=$(($(pod image inspect "$IMAGE" --format '{{.Size}}') / 1000000))
echo "image size: ${size_mb} MB (limit ${MAX_IMAGE_MB} MB)"
[ "$size_mb" -le "$MAX_IMAGE_MB" ] || { echo "container test FAILED: image larger than ${MAX_IMAGE_MB} MB"; exit 1; }

user=$(pod image inspect "$IMAGE" --format '{{.Config.User}}')
[ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] \
  || { echo "container test FAILED: the image runs as root (User=$user)"; exit 1; }
echo "runs as user $user"

# --- run -----------------------------------------------------------------------------------------
# Find a way to start a container here: crun (podman's default) with cgroups off, else runc (installed
# when missing), which copes with hybrid cgroups. Say what worked; keep the build checks if neither does.
started_with=
for runtime in crun runc; do
  if [ "$runtime" = runc ] && ! command -v runc >/dev/null; then
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc) >/dev/null 2>&1 || continue
  fi
  extra=()
  [ "$runtime" = crun ] && extra=(--cgroups=disabled)
  if pod --runtime "$runtime" run --rm "${extra[@]}" --network=none --entrypoint python "$IMAGE" \
    -c 'print("ok")' >"$CACHE_DIR/run-$runtime.log" 2>&1; then
    started_with=$runtime
    break
  fi
done
if [ -z "$started_with" ]; then
  echo "container could not be started in this sandbox (the build checks passed):"
  tail -n 3 "$CACHE_DIR"/run-*.log
  exit 0
fi
echo "containers start with $started_with ${extra[*]}"
RUN=(run --rm "${extra[@]}")
pod() { podman "${STORAGE[@]}" --runtime "$started_with" "$@"; }

step "models inside the image, uid, analyze with no network"
pod "${RUN[@]}" -i --network=none --entrypoint python "$IMAGE" - <<'EOF'
import io, json, os, subprocess
from PIL import Image, ImageDraw

from core.recognizers.local import default_models_dir, local_models_installed

assert os.getuid() != 0, "running as root"
assert local_models_installed(default_models_dir()), f"models missing in {default_models_dir()}"
image = Image.new("RGB", (800, 600), (120, 170, 220))
draw = ImageDraw.Draw(image)
draw.rectangle((100, 350, 700, 560), fill=(60, 140, 60))
draw.rectangle((150, 100, 650, 220), fill="white")
draw.text((180, 130), "OFFLINE", fill="black", font_size=64)
image.save("/tmp/sample.jpg", quality=90)
out = subprocess.run(
    ["photodetective", "analyze", "/tmp/sample.jpg", "--json", "--backend", "local", "--features", "all",
     "--out", "/tmp/out"],
    capture_output=True, text=True, timeout=300, check=True,
).stdout
document = json.loads(out.splitlines()[0])
assert document["backend"] == "local", document.get("backend")
labels = [label["name"] for label in document.get("labels", [])][:5]
texts = [line["text"] for line in document.get("text", [])]
assert any("OFFLINE" in text for text in texts), texts
print("analyze ok: backend", document["backend"], "labels", labels, "text", texts)
EOF

step "photodetective run: /healthz and /readyz"
name=photodetective-test-$$
# The web page is the one platform that needs no token, so the bot has something to run.
pod run -d "${extra[@]}" --name "$name" --network=host -e PHOTODETECTIVE_HTTP_HOST=127.0.0.1 \
  -e PHOTODETECTIVE_HTTP_PORT="$PORT" -e PHOTODETECTIVE_DATA_DIR=/tmp/data -e PHOTODETECTIVE_WEB_ENABLED=true \
  "$IMAGE" run >/dev/null
cleanup_run() { pod rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$CONF_DIR"; }
trap cleanup_run EXIT
for path in healthz readyz; do
  ok=
  for _ in $(seq 60); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/$path', timeout=2)" 2>/dev/null; then
      ok=yes; break
    fi
    sleep 1
  done
  [ -n "$ok" ] || { pod logs "$name" | tail -20; echo "container test FAILED: /$path did not answer"; exit 1; }
  echo "/$path answered"
done
step "stop: one SIGTERM within the documented grace, never SIGKILL"
# The bot is process 1 here (no --init), the harder case: the kernel gives it no default SIGTERM
# action, so only its own handler can stop it. `podman stop -t 30` is docs/operating/stopping.md's.
started=$(date +%s)
pod stop -t 30 "$name" >/dev/null 2>"$CACHE_DIR/stop.log" || true
elapsed=$(( $(date +%s) - started ))
code=$(pod inspect --format '{{.State.ExitCode}}' "$name")
if grep -qi sigkill "$CACHE_DIR/stop.log" || [ "$code" = 137 ] || [ "$elapsed" -ge 30 ]; then
  cat "$CACHE_DIR/stop.log"; pod logs "$name" | tail -5
  echo "container test FAILED: stop took ${elapsed}s, exit code $code (SIGKILL needed)"; exit 1
fi
echo "stopped by one SIGTERM in ${elapsed}s, exit code $code"
echo "container test passed"
