"""The fault-injection suite: the producer and both Spark jobs run as real subprocesses
(processes.py), supervised together (pipeline.py), through kills, outages and resends; each
test ends with the end-state check (end_state.py) against the producer's ledger."""
