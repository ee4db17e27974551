"""The benchmark's target logic (the benchmarks themselves run with `make bench`)."""

from __future__ import annotations

from ridelake.bench import TARGETS, evaluate


def test_rates_must_reach_and_times_must_stay_below_their_targets():
    good = {"pipeline_seconds": 60.0, "pipeline_peak_rss_mb": 600.0, "generator_rows_per_second": 250_000.0,
            "generator_peak_rss_mb": 100.0}
    assert all(c["ok"] for c in evaluate(good).values())
    slow = dict(good, pipeline_seconds=TARGETS["pipeline_seconds"] + 1, generator_rows_per_second=10.0)
    checks = evaluate(slow)
    assert not checks["pipeline_seconds"]["ok"] and not checks["generator_rows_per_second"]["ok"]
    assert checks["pipeline_peak_rss_mb"]["ok"]
    assert set(checks) == set(TARGETS)
