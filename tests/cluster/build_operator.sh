#!/usr/bin/env bash
# Build the Kubeflow Spark operator from its pinned Go module (the version and go.sum hash of the
# Makefile) and load its image into localcluster as ticket-pipeline-standin/spark-operator:VERSION.
# The binary is compiled as upstream's `make build-operator` does (CGO_ENABLED=0, ./cmd/operator),
# with Go's caches in LOCALCLUSTER_CACHE so that a second run only relinks.
# Usage: build_operator.sh VERSION H1_SUM LC   (run by tests/cluster through make cluster-test)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 VERSION H1_SUM LC" >&2; exit 2; }
version="$1" want_sum="$2" lc="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${LOCALCLUSTER_CACHE:-/var/cache/localcluster}/ticket-pipeline"
module="github.com/kubeflow/spark-operator/v2@v$version"
image="ticket-pipeline-standin/spark-operator:$version"
mkdir -p "$cache/operator-context"

info="$(cd / && go mod download -json "$module")"
sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$info")"
dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")"
[ "$sum" = "$want_sum" ] || { echo "checksum mismatch for $module: got $sum, pinned $want_sum" >&2; exit 1; }

# Skip everything when the module, our Dockerfile and entrypoint, and the Spark stand-in it builds
# on (its inputs, as tests/cluster/build_images.sh stamps them) are those of the image lc holds.
stamp="$cache/image-inputs/${image//[\/:]/_}"
base="$(sed -n 's/^ARG SPARK_IMAGE=//p' "$here/images/spark-operator/Dockerfile")"
inputs="$(cat <(echo "$sum") "$here/images/spark-operator/Dockerfile" "$here/images/spark-operator/entrypoint.sh" \
  "$cache/image-inputs/${base//[\/:]/_}" 2>/dev/null | sha256sum | cut -d' ' -f1)"
# (lc's list goes through a variable: with pipefail, `lc images | grep -q` fails when grep stops
# reading early and lc gets SIGPIPE.)
present="$("$lc" images 2>/dev/null || true)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ] && grep -qxF "  docker.io/$image" <<<"$present"; then
  echo "spark-operator $image unchanged, kept"
  exit 0
fi
rm -f "$stamp"

started=$(date +%s)
echo "compiling $module ./cmd/operator (first time: several minutes)"
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=readonly GOCACHE="$cache/go-build" \
  go build -trimpath -o "$cache/operator-context/spark-operator" ./cmd/operator)
echo "compiled in $(( $(date +%s) - started )) s"
cp "$here/images/spark-operator/Dockerfile" "$here/images/spark-operator/entrypoint.sh" "$cache/operator-context/"
"$lc" build-image -t "$image" "$cache/operator-context"
mkdir -p "$(dirname "$stamp")"
echo "$inputs" > "$stamp"
