"""`vigie_gc_pause_seconds`: every collection of Python's garbage collector is timed under its
generation, and the hook comes off again."""

from __future__ import annotations

import gc

from agents.ports import metrics


def _count(generation: int) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "vigie_gc_pause_seconds_count", {"generation": str(generation)}
        )
        or 0.0
    )


def test_each_collection_is_timed_under_its_generation() -> None:
    remove = metrics.watch_gc_pauses()
    try:
        before = [_count(g) for g in range(3)]
        gc.collect(0)
        gc.collect(2)
        gc.collect(2)
        after = [_count(g) for g in range(3)]
    finally:
        remove()
    # automatic young collections may also happen meanwhile: at least the forced ones count
    assert after[0] - before[0] >= 1 and after[2] - before[2] >= 2
    total = metrics.REGISTRY.get_sample_value("vigie_gc_pause_seconds_sum", {"generation": "2"})
    assert total is not None and total > 0.0
    gc.collect(2)  # the hook is off: nothing more is counted
    assert _count(2) == after[2]
