"""The per-model series are bounded: beyond the cap, models share model="other"."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import OTHER, PROCESS_REGISTRY, ModelSeries


def inference_counts(prefix: str) -> dict[str, float]:
    text = generate_latest(PROCESS_REGISTRY).decode()
    return {
        sample.labels["model"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "dnn_model_inferences_total"
        and sample.labels["outcome"] == "ok"
        and sample.labels["route"] == "<none>"
        and (sample.labels["model"].startswith(prefix) or sample.labels["model"] == OTHER)
    }


def test_series_beyond_the_cap_aggregate_under_other() -> None:
    series = ModelSeries(cap=3)
    before = inference_counts("capped-").get(OTHER, 0.0)
    for index in range(10):
        for _ in range(2):
            series.record(f"id-{index}", f"capped-{index}", 1, True, 0.001)
    counts = inference_counts("capped-")
    assert {name: counts[name] for name in counts if name != OTHER} == {
        "capped-0": 2.0,
        "capped-1": 2.0,
        "capped-2": 2.0,
    }
    assert counts[OTHER] - before == 14.0
    assert series.series() == 3
    # A model that had its own series keeps it after the cap is reached.
    series.record("id-1", "capped-1", 1, True, 0.001)
    assert inference_counts("capped-")["capped-1"] == 3.0
