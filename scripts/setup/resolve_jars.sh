#!/usr/bin/env bash
# Resolve the JVM jars listed in images/jars/pom.xml into a local folder:
#   <dest>/spark  the Kafka connector and JDBC driver for the Spark jobs
#   <dest>/kafka  an Apache Kafka broker (KRaft) for the embedded stack and tests
# Usage: scripts/setup/resolve_jars.sh [dest]   (default .local/jars)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$(realpath -m "${1:-$here/.local/jars}")"
command -v mvn >/dev/null || { echo "Maven is required to resolve the jars: apt-get install maven" >&2; exit 1; }
command -v java >/dev/null || { echo "Java 17 is required: apt-get install openjdk-17-jre-headless" >&2; exit 1; }
for profile in spark:spark broker:kafka; do
  name="${profile%%:*}"; folder="$dest/${profile##*:}"
  rm -rf "$folder.tmp"
  echo "resolving the '$name' jars into $folder"
  mvn --batch-mode --quiet -Dstyle.color=never -s "$here/images/jars/settings.xml" -f "$here/images/jars/pom.xml" \
    -P "$name" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$folder.tmp"
  rm -rf "$folder"; mv "$folder.tmp" "$folder"
done
echo "jars ready: $(ls "$dest/spark" | wc -l) for Spark, $(ls "$dest/kafka" | wc -l) for the broker"
