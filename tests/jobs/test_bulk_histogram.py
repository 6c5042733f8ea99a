"""BulkHistogram exposes exactly what prometheus_client's Histogram does for the same values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from jobs.metrics import LATENCY_BUCKETS, BulkHistogram

values = st.lists(
    st.one_of(st.sampled_from(LATENCY_BUCKETS), st.floats(min_value=-5, max_value=1000)), max_size=200
)


@given(batches=st.lists(values, max_size=5))
def test_the_exposition_equals_the_one_of_a_histogram_fed_value_by_value(batches):
    """Bucket bounds (a value equal to a bound falls in it), counts, sum and +Inf agree."""
    expected, ours = CollectorRegistry(), CollectorRegistry()
    reference = Histogram(
        "latency_seconds", "doc", ["job_name"], buckets=LATENCY_BUCKETS, registry=expected
    ).labels("j")
    bulk = BulkHistogram("latency_seconds", "doc", LATENCY_BUCKETS, {"job_name": "j"})
    ours.register(bulk)
    for batch in batches:
        for v in batch:
            reference.observe(v)
        bulk.observe_many(np.asarray(batch, dtype=float))
    ours_samples, expected_samples = samples(ours), samples(expected)
    sum_key = ("latency_seconds_sum", "")
    assert ours_samples.pop(sum_key) == pytest.approx(expected_samples.pop(sum_key), rel=1e-9, abs=1e-9)
    assert ours_samples == expected_samples


def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """(name, le) -> value of every sample but the creation time."""
    text = generate_latest(registry).decode()
    return {
        (s.name, s.labels.get("le", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }
