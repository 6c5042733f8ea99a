#!/bin/sh
# Run the operator under tini, which reaps the spark-submit processes it starts.
exec tini -s -- /usr/bin/spark-operator "$@"
