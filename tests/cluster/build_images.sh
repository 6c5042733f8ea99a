#!/usr/bin/env bash
# Build the container images of the localcluster test with `lc build-image`, in dependency order:
#   1. stand-ins for the upstream images that cannot be pulled here (no registry), from
#      tests/cluster/images/: spark-base, python, postgres, kafka (their Dockerfiles say how each
#      differs from upstream);
#   2. ticket-pipeline's own images on top of them: images/spark, images/producer and
#      images/dashboard, tagged with the chart's appVersion, exactly as the chart names them.
# Every image lands in lc's buildah storage (usable in FROM) and in containerd (usable by pods).
# A second run is quick: an image whose inputs (Dockerfile, the files it copies, build options,
# its base's inputs) are those of its last build here, and which lc still holds, is skipped; any
# other image goes through `lc build-image`, where buildah's layer cache rebuilds only the changed
# steps (a fully cached build still costs 20-100 s of cache walk, export and containerd import).
#
# Usage: tests/cluster/build_images.sh [NAME...]   (as root; NAME among the seven above, default all)
# Environment:
#   LC           the localcluster tool (default: ../shared/localcluster/lc beside the clone,
#                or $LOCALCLUSTER_LC)
#   BUILD_CA_DIR CA certificates (*.crt) the builds must trust (default
#                /usr/local/share/ca-certificates, where Debian keeps locally added CAs; empty:
#                none). On a network whose proxy re-signs TLS (corporate or sandbox egress),
#                pip and Maven inside the builds reach PyPI and Maven Central only through that
#                CA. The folder is mounted read-only into every RUN step, so the stand-ins'
#                `apt-get install ca-certificates` adds it to their trust store (and, through
#                ca-certificates-java, to Java's): the images then trust it too.
#   FORCE=1      run `lc build-image` even for images whose inputs did not change
#   NO_CACHE=1   rebuild every step (buildah --no-cache; implies FORCE), e.g. to time a cold
#                build. It leaves a second copy of every layer in lc's vfs storage: mind the disk.
#   MIN_FREE_GB  after the builds, when the disk of lc's storage has less free space than this
#                (default 30), remove the images no tag points to any more (earlier builds'
#                layers). lc's buildah uses the vfs driver, where each layer is a full copy of its
#                file system: a few rebuilds of the Spark image take tens of GB, and the kubelet
#                evicts every pod when the disk runs low (nodefs.available < 5%). The next build
#                of a changed image then starts from its first changed step's base again.
# Each image's full build output goes to .local/logs/images/NAME.log.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
lc="${LC:-${LOCALCLUSTER_LC:-$(dirname "$repo")/shared/localcluster/lc}}"
standins="$repo/tests/cluster/images"
logs="$repo/.local/logs/images"

die() { echo "build_images: $*" >&2; exit 1; }

[ -x "$lc" ] || die "lc not found at $lc (set LC to the localcluster tool)"
ls "$repo/.local/jars/kafka"/kafka_2.13-*.jar >/dev/null 2>&1 \
  || die "no Kafka broker jars in .local/jars/kafka (the kafka stand-in is built from them): run make jars"

kafka_version="$(sed -n 's:.*<kafka\.broker\.version>\([^<]*\)</kafka\.broker\.version>.*:\1:p' \
  "$repo/images/jars/pom.xml")"
app_version="$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"[:space:]]*\)"\{0,1\}[[:space:]]*$/\1/p' \
  "$repo/charts/Chart.yaml")"
spark_version="$(sed -n 's:.*<spark\.version>\([^<]*\)</spark\.version>.*:\1:p' \
  "$repo/images/jars/pom.xml")"
[ -n "$spark_version" ] || die "no spark.version in images/jars/pom.xml"
[ -n "$kafka_version" ] || die "no kafka.broker.version in images/jars/pom.xml"
[ -n "$app_version" ] || die "no appVersion in charts/Chart.yaml"

common=()
ca_dir="${BUILD_CA_DIR-/usr/local/share/ca-certificates}"
ca_fingerprint=""
if [ -n "$ca_dir" ] && [ -n "$(find "$ca_dir" -name '*.crt' -print -quit 2>/dev/null)" ]; then
  common+=("--volume=$ca_dir:/usr/local/share/ca-certificates:ro")
  ca_fingerprint="$(find "$ca_dir" -name '*.crt' -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16)"
fi
force="${FORCE:-0}"
if [ "${NO_CACHE:-0}" = 1 ]; then
  common+=(--no-cache)
  force=1
fi

# Inputs of each image built here, by tag, machine-wide like lc's image stores.
stamps="${LOCALCLUSTER_CACHE:-/var/cache/localcluster}/ticket-pipeline/image-inputs"
declare -A fingerprint=()

# The files a build may COPY: with a <Dockerfile>.dockerignore of the form "*" plus "!path"
# lines, those paths; otherwise the whole context. Bytecode caches never count.
context_files() {
  local dockerfile="$1" context="$2" line
  local -a paths=()
  if [ -f "$dockerfile.dockerignore" ]; then
    while IFS= read -r line; do
      [[ "$line" == '!'* ]] && paths+=("$context/${line#!}")
    done < "$dockerfile.dockerignore"
  else
    paths=("$context")
  fi
  find "${paths[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z
}

# inputs_fingerprint NAME DOCKERFILE CONTEXT BASE-NAME OPTIONS...
inputs_fingerprint() {
  local name="$1" dockerfile="$2" context="$3" base="$4"
  shift 4
  {
    printf '%s\n' "$name" "${fingerprint[$base]:-}" "$@"
    cat "$dockerfile"
    context_files "$dockerfile" "$context" | xargs -0 sha256sum | sed "s|  $context/|  |"
  } | sha256sum | cut -d' ' -f1
}

spark_base="ticket-pipeline-standin/spark:$spark_version"
python_base="ticket-pipeline-standin/python:3.11-bookworm"

# build NAME TAG DOCKERFILE CONTEXT BASE-NAME|- [lc build-image options...]
# A <Dockerfile>.dockerignore beside the Dockerfile limits what COPY takes from a repository-root
# context: buildah (1.28 here) reads it by itself, as BuildKit does.
build() {
  local name="$1" tag="$2" dockerfile="$3" context="$4" base="$5"
  shift 5
  local inputs stamp="$stamps/${tag//[\/:]/_}"
  inputs="$(inputs_fingerprint "$name" "$dockerfile" "$context" "$base" "$@")"
  fingerprint[$name]="$inputs"
  if [ ${#selected[@]} -gt 0 ] && ! [[ " ${selected[*]} " == *" $name "* ]]; then
    return 0
  fi
  if [ "$force" != 1 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ] \
    && grep -qxF "  docker.io/$tag" <<<"$present" && grep -qxF "  localhost/$tag" <<<"$present"; then
    printf '%-10s %-46s unchanged, kept\n' "$name" "$tag"
    return 0
  fi
  local -a options=(-t "$tag" -f "$dockerfile" "${common[@]}")
  local log="$logs/$name.log" started=$SECONDS
  rm -f "$stamp"
  if "$lc" build-image "${options[@]}" "$@" "$context" >"$log" 2>&1; then
    printf '%s\n' "$inputs" > "$stamp"
    printf '%-10s %-46s built in %4d s\n' "$name" "$tag" $((SECONDS - started))
  else
    tail -n 40 "$log" >&2
    die "building $tag failed after $((SECONDS - started)) s (full log: $log)"
  fi
}

known=" spark-base python postgres kafka spark producer dashboard "
selected=("$@")
for name in "${selected[@]}"; do
  [[ "$known" == *" $name "* ]] || die "unknown image $name (one of:$known)"
done
mkdir -p "$logs" "$stamps"
present="$("$lc" images 2>/dev/null || true)"
total_started=$SECONDS

# The stand-ins that install ca-certificates take the CAs' checksum as a build argument, so that
# buildah's cache never hands back a layer built with other CAs (or without any).
build spark-base "$spark_base" "$standins/spark-base/Dockerfile" "$standins/spark-base" - \
  --build-arg "SPARK_VERSION=$spark_version" --build-arg "BUILD_CA_FINGERPRINT=$ca_fingerprint"
build python "$python_base" "$standins/python/Dockerfile" "$standins/python" - \
  --build-arg "BUILD_CA_FINGERPRINT=$ca_fingerprint"
build postgres ticket-pipeline-standin/postgres:15-bookworm \
  "$standins/postgres/Dockerfile" "$standins/postgres" -
build kafka "ticket-pipeline-standin/kafka:$kafka_version" "$standins/kafka/Dockerfile" "$repo" -
build spark "ticket-pipeline/spark:$app_version" "$repo/images/spark/Dockerfile" "$repo" spark-base \
  --build-arg "SPARK_BASE=$spark_base"
build producer "ticket-pipeline/producer:$app_version" "$repo/images/producer/Dockerfile" "$repo" python \
  --build-arg "PYTHON_BASE=$python_base"
build dashboard "ticket-pipeline/dashboard:$app_version" "$repo/images/dashboard/Dockerfile" "$repo" python \
  --build-arg "PYTHON_BASE=$python_base"

# free_gb DIR: free space of DIR's file system, in whole GB.
free_gb() { df --output=avail -B1G "$1" | tail -n 1 | tr -d ' '; }

# lc keeps its buildah storage in $LOCALCLUSTER_HOME/buildah, driver vfs, and has no prune
# command: call buildah on that storage the way lc does.
prune_untagged_images() {
  local home="${LOCALCLUSTER_HOME:-/var/lib/localcluster}" before
  [ -d "$home/buildah/root" ] || return 0
  before="$(free_gb "$home")"
  [ "$before" -lt "${MIN_FREE_GB:-30}" ] || return 0
  echo "only $before GB free on the disk of $home (MIN_FREE_GB=${MIN_FREE_GB:-30}): removing untagged images"
  CONTAINERS_CONF="$home/etc/containers.conf" TMPDIR="$home/tmp" buildah --root "$home/buildah/root" \
    --runroot "$home/buildah/run" --storage-driver vfs rmi --prune >/dev/null \
    || die "buildah rmi --prune failed"
  echo "now $(free_gb "$home") GB free"
}

prune_untagged_images
echo "images ready in $((SECONDS - total_started)) s (lc images lists them)"
