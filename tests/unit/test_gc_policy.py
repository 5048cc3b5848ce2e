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


# --- the worker's schedule: young collections by time, the older ones by CPython's rules ---


class _Gc:
    """A fake collector: the counts `gc.get_count` would give, and the collections asked."""

    def __init__(self, counts: tuple[int, int, int], blocks: int) -> None:
        self.counts = counts
        self.blocks_now = blocks
        self.collected: list[int] = []

    def schedule(self, **kwargs: Any) -> gc_policy.Schedule:
        return gc_policy.Schedule(collect=self.collect, count=lambda: self.counts,
                                  blocks=lambda: self.blocks_now, **kwargs)

    def collect(self, generation: int) -> int:
        self.collected.append(generation)
        return 0


def test_the_schedule_collects_the_young_generation_then_the_older_ones_by_cpython_rules() -> None:
    fake = _Gc((10, 0, 0), blocks=1_000)
    schedule = fake.schedule(middle_threshold=5, old_threshold=3)
    assert schedule.tick() == 0
    fake.counts = (0, 5, 0)  # five young collections since the last of generation 1
    assert schedule.tick() == 1
    fake.counts = (0, 5, 3)  # and three of generation 1: a full one only if the heap grew
    fake.blocks_now = 1_250
    assert schedule.tick() == 1  # a quarter is not more than a quarter
    fake.blocks_now = 1_251
    assert schedule.tick() == 2
    assert schedule.after_full == 1_251
    fake.counts = (0, 0, 3)
    fake.blocks_now = 1_500  # grown, but less than a quarter since that full collection
    assert schedule.tick() == 0
    assert fake.collected == [0, 1, 1, 2, 0]


def _young_walked(work: Any) -> list[int]:
    """How many objects each young collection walked while `work` ran."""
    walked: list[int] = []

    def hook(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            walked.append(len(gc.get_objects(generation=0)))

    gc.callbacks.append(hook)
    try:
        work()
    finally:
        gc.callbacks.remove(hook)
    return walked


def _turn_over(state: list[Any], replacements: int, every: int, tick: Any) -> None:
    """Replace the state's oldest entries one by one (an old one dies as a new one comes), as
    a live worker's incidents do once its state has filled; `tick` every `every` of them."""
    for i in range(replacements):
        state[i % len(state)] = [i, {"k": [i]}]
        if tick is not None and i % every == every - 1:
            tick()


def test_a_turning_over_state_leaves_young_collections_to_the_schedule(restored_gc: None) -> None:
    """CPython counts the old objects freed against the young generation's allocations: with
    the state turning over, its young collections stop and the young generation grows
    without bound. The schedule's collect what one interval made."""
    state = [[i, {"k": [i]}] for i in range(50_000)]
    gc_policy.apply()
    walked = _young_walked(lambda: _turn_over(state, 150_000, 1, None))
    assert walked == []  # not one young collection in 150,000 new objects
    assert len(gc.get_objects(generation=0)) > 100_000
    gc.collect()
    schedule = gc_policy.Schedule()
    walked = _young_walked(lambda: _turn_over(state, 150_000, 5_000, schedule.tick))
    assert len(walked) == 30
    assert max(walked) < 20_000  # each 5,000 entries: 3 objects apiece and the loop's own


def test_cyclic_garbage_that_outlives_a_young_collection_is_still_collected(
    restored_gc: None,
) -> None:
    """An explicit collection resets the count that starts CPython's own; the schedule must
    reach generation 1 itself or garbage promoted there stays for good."""
    import weakref

    class Node:
        def __init__(self) -> None:
            self.me = self

    gc_policy.apply()
    schedule = gc_policy.Schedule(middle_threshold=4)
    survivor = Node()
    gone = weakref.ref(survivor)
    assert schedule.tick() == 0  # alive at the young collection: promoted to generation 1
    del survivor  # now cyclic garbage in generation 1
    ticks = [schedule.tick() for _ in range(3)]
    assert ticks == [0, 0, 0] and gone() is not None  # young collections do not see it
    assert schedule.tick() == 1
    assert gone() is None
