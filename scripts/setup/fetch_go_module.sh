#!/usr/bin/env bash
# Fetch a Go module at a pinned version from the Go module proxy and copy one of its folders
# (an upstream chart, a set of CRDs) into DEST/<that folder's name>. Go checks the module
# against its checksum database; this script also checks it against the pinned h1: sum, so
# what the tests validate against and what `make kind-up` installs is exactly that release.
# Usage: scripts/setup/fetch_go_module.sh MODULE@VERSION H1_SUM FOLDER DEST   (run through make)
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 MODULE@VERSION H1_SUM FOLDER DEST (run it through make)" >&2; exit 2; }
module="$1" want_sum="$2" folder="$3" dest="$4"
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
[ -d "$dir/$folder" ] || { echo "$module has no folder $folder" >&2; exit 1; }

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
cp -R "$dir/$folder" "$dest.tmp/"
chmod -R u+w "$dest.tmp"  # the module cache is read-only
printf '%s %s\n' "$module" "$sum" >"$dest.tmp/SOURCE"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$folder of $module ready in $dest ($sum)"
