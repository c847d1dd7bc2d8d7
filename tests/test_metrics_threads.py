"""Metrics from several threads: each thread counts in a shard of its own, without a lock, and a scrape adds the
shards up, a finished thread's included."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.telemetry import Metrics

CALLS = 500


def _calls(metrics: Metrics, model: str) -> None:
    for i in range(CALLS):
        metrics.call(
            task="fast",
            model=model,
            provider="groq",
            error="" if i % 5 else "rate_limited",
            seconds=0.05,
            input_tokens=10,
            output_tokens=20,
            cost=0.001,
            first_chunk_seconds=None,
            retry=False,
            hedged=False,
            retirement=None,
        )
        metrics.request(task="fast", ending="answered", seconds=0.05, fallback_model=None)


def test_every_thread_s_counts_are_added_up_at_scrape():
    metrics = Metrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    threads = [threading.Thread(target=_calls, args=(metrics, f"model-{n % 2}")) for n in range(4)]
    for thread in threads:
        thread.start()
    _calls(metrics, "model-0")  # this thread too
    for thread in threads:
        thread.join()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    requests = samples[("taskrouter_requests_total", (("taskrouter_ending", "answered"), ("taskrouter_task", "fast")))]
    assert requests == 5 * CALLS
    failed = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "taskrouter_provider_calls_total" and ("taskrouter_outcome", "failure") in labels
    }
    assert sorted(failed.values()) == [2 * CALLS / 5, 3 * CALLS / 5]  # model-1: two threads, model-0: three
    assert metrics.counter("taskrouter.cost")[("fast", "model-0")] == pytest.approx(3 * CALLS * 0.001)
    counts = metrics.histogram("gen_ai.client.operation.duration")
    assert sum(count for _, _, count in counts.values()) == 5 * CALLS
