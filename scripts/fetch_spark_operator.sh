#!/usr/bin/env bash
# Fetch the Kubeflow Spark operator's Go module at a pinned version from the Go module proxy and
# copy its Helm chart (CRDs included) into DEST/spark-operator-chart. Go checks the module
# against its checksum database; this script also checks it against the pinned h1: sum, so what
# the tests validate against and what `make kind-up` installs is exactly that release.
# Usage: scripts/fetch_spark_operator.sh VERSION H1_SUM DEST   (run through make; see Makefile)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 VERSION H1_SUM DEST (run it through 'make spark-operator')" >&2; exit 2; }
version="$1" want_sum="$2" dest="$3"
module="github.com/kubeflow/spark-operator/v2@v$version"
command -v go >/dev/null || { echo "Go 1.26+ is required to fetch $module (https://go.dev/dl/)" >&2; exit 1; }

echo "fetching $module from the Go module proxy"
status=0
info="$(cd / && go mod download -json "$module")" || status=$?
field() { sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\{0,1\}$/\\1/p" <<<"$info"; }
if [ "$status" -ne 0 ] || [ -n "$(field Error)" ]; then
  echo "go mod download $module failed: $(field Error)" >&2
  exit 1
fi
sum="$(field Sum)" dir="$(field Dir)"
if [ "$sum" != "$want_sum" ]; then
  echo "checksum mismatch for $module: got $sum, pinned $want_sum" >&2
  exit 1
fi

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
cp -R "$dir/charts/spark-operator-chart" "$dest.tmp/"
chmod -R u+w "$dest.tmp"  # the module cache is read-only
printf '%s %s\n' "$module" "$sum" >"$dest.tmp/SOURCE"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "spark-operator chart $version ready in $dest ($sum)"
