#!/usr/bin/env bash
# Build the local stand-in for the Lambda python3.13 base image that `sam local invoke`
# runs the functions on (--invoke-image), for this machine's architecture:
#   Debian 13 (minbase, Python 3.13) + awslambdaric and boto3 from PyPI + /var/runtime/bootstrap.
# The image is labelled with a hash of its inputs (this script, requirements/lambda-image.txt,
# the architecture, the mirror): a run with the same inputs does nothing.
# Prints the image's name. Needs root (debootstrap), docker and network access to a
# Debian mirror and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=trixie
PYTHON_VERSION=3.13
REQUIREMENTS=requirements/lambda-image.txt
PIP=${PIP:-.venv/bin/pip}

case "$(uname -m)" in
  x86_64 | amd64) ARCH=x86_64 PLATFORM=manylinux2014_x86_64 ;;
  aarch64 | arm64) ARCH=arm64 PLATFORM=manylinux2014_aarch64 ;;
  *) echo "lambda-image: unsupported machine architecture $(uname -m)" >&2; exit 1 ;;
esac
IMAGE=${LAMBDA_IMAGE:-amirun-lambda-python:${PYTHON_VERSION}-${ARCH}}

# The Debian mirror apt already uses here (a deb822 URIs: line or a one-line `deb` entry).
mirror() {
  local found
  found=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' | grep -v security | head -n 1 || true)
  if [ -z "$found" ]; then
    found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" && $2 ~ /^https?:/ {print $2}' | grep -v security | head -n 1 || true)
  fi
  echo "${found:-http://deb.debian.org/debian}"
}
MIRROR=${DEBIAN_MIRROR:-$(mirror)}

docker info > /dev/null 2>&1 || {
  echo "lambda-image: Docker does not answer (start dockerd, or run make invoke, which does)" >&2; exit 1; }
[ -x "$PIP" ] || { echo "lambda-image: no pip at $PIP (make invoke creates .venv; or set PIP)" >&2; exit 1; }

RECIPE=$( { cat "$0" "$REQUIREMENTS"; echo "$ARCH $MIRROR $SUITE"; } | sha256sum | cut -c1-16)
if [ "$(docker image inspect --format '{{index .Config.Labels "amirun.recipe"}}' "$IMAGE" 2>/dev/null)" = "$RECIPE" ]; then
  echo "$IMAGE"
  exit 0
fi

command -v debootstrap >/dev/null || {
  echo "lambda-image: debootstrap is not installed (apt-get install -y debootstrap)" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/amirun-lambda-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOTFS=$WORK/rootfs

echo "lambda-image: building $IMAGE from $MIRROR ($SUITE, $ARCH)" >&2
debootstrap --variant=minbase --include=python3,ca-certificates \
  "$SUITE" "$ROOTFS" "$MIRROR" > "$WORK/debootstrap.log" 2>&1 || {
  tail -n 20 "$WORK/debootstrap.log" >&2; echo "lambda-image: debootstrap failed" >&2; exit 1; }

# Wheels for the image's Python and architecture, installed without running anything in it.
"$PIP" install --quiet --no-compile --only-binary=:all: \
  --python-version "$PYTHON_VERSION" --implementation cp --platform "$PLATFORM" \
  --target "$ROOTFS/var/runtime" -r "$REQUIREMENTS"

# Byte-compiled once here, as in Lambda's runtime, instead of at every cold start.
chroot "$ROOTFS" /usr/bin/python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
  /var/runtime > /dev/null

cat > "$ROOTFS/var/runtime/bootstrap" <<'BOOTSTRAP'
#!/bin/sh
# Started by the runtime interface emulator: run the handler named in $_HANDLER.
# Lambda's search path: the function, then its layers, then the runtime's libraries.
export PYTHONPATH="${LAMBDA_TASK_ROOT:-/var/task}:/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime"
exec /usr/bin/python3 -m awslambdaric "$_HANDLER"
BOOTSTRAP
chmod 755 "$ROOTFS/var/runtime/bootstrap"
mkdir -p "$ROOTFS/var/task" "$ROOTFS/opt"
rm -rf "$ROOTFS/var/cache/apt/archives"/*.deb "$ROOTFS/var/lib/apt/lists"/*

tar -C "$ROOTFS" -c . | docker import \
  --change "ENV LANG=C.UTF-8 LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime" \
  --change "WORKDIR /var/task" \
  --change "LABEL amirun.recipe=$RECIPE" \
  - "$IMAGE" > /dev/null
echo "$IMAGE"
