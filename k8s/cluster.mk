# The chart on a real Kubernetes cluster: included by the top Makefile (`-include k8s/cluster.mk`).
#
#   make cluster-test   bring ../shared/localcluster up (or reuse it), build and load every image,
#                       build and install the Spark operator from its Go module, install the
#                       chart, then check the live cluster (tests/cluster/test_cluster.py);
#                       a cluster it brought up goes down at the end (`lc down`), one it reused
#                       stays up
#
# Skipped, with the reason, where ../shared/localcluster is absent or cannot run (not root).
# Builds are cached in LOCALCLUSTER_CACHE (default /var/cache/localcluster).

.PHONY: cluster-test

##@ Kubernetes (a real cluster)

cluster-test: install jars spark-operator ## The chart on a real cluster (../shared/localcluster); skipped without it
	TICKET_PIPELINE_CLUSTER_TEST=1 $(PY) -m pytest tests/cluster -v -rs -s -p no:cacheprovider $(PYTEST_ARGS)
