"""`streams.gc_policy`: with a large long-lived state and batch-lived garbage, the worker's
collector settings make full collections rarer and keep them off the frozen objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from streams import gc_policy


@pytest.fixture
def restored_gc() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.collect()
    yield
    gc.set_threshold(*saved)
    gc.unfreeze()
    gc.collect()


def _full_collections(work: Any) -> tuple[int, int]:
    """(full collections, most objects one of them walked) while `work` runs."""
    seen: list[int] = []

    def hook(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(len(gc.get_objects()))  # what this collection walks: every generation

    gc.callbacks.append(hook)
    try:
        work()
    finally:
        gc.callbacks.remove(hook)
    return len(seen), max(seen, default=0)


def _batches() -> None:
    """Batch-lived objects: each batch's dicts and lists die when the next batch starts."""
    for _ in range(300):
        batch = [{"id": i, "members": [i, str(i)]} for i in range(2_000)]
        del batch


def test_batch_garbage_triggers_fewer_full_collections_that_skip_the_state(
    restored_gc: None,
) -> None:
    state = [[i, {"k": [i]}] for i in range(200_000)]  # long-lived, tracked
    default_full, default_walked = _full_collections(_batches)
    gc_policy.apply()
    assert gc.get_threshold() == gc_policy.THRESHOLDS
    assert gc.get_freeze_count() >= len(state)
    policy_full, _ = _full_collections(_batches)
    assert policy_full < default_full, (policy_full, default_full)
    # a full collection that does run walks what came after the freeze, not the state
    _, forced_walked = _full_collections(gc.collect)
    assert forced_walked < len(state) < default_walked
    del state
