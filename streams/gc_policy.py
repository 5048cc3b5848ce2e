"""How the worker's Python garbage collector runs (`apply`, called once the worker is built,
and `Schedule`, ticked by the worker's event loop).

The worker holds a large long-lived state (reference data and geometry, open incidents, place
memory) and allocates many objects that live for one batch. With CPython's default thresholds
(700, 10, 10) the young generation is collected every 700 net allocations, so a batch's
objects are still alive at a collection and get promoted; the old generation then fills with
objects that die soon after, and a full collection, which walks every tracked object (the
whole state), runs whenever that generation has grown by a quarter. Each one stops the event
loop and every thread for a time that grows with the state (`vigie_gc_pause_seconds`,
generation 2).

- Objects alive once the worker is built (reference data, geometry, the settings) are
  frozen: collections never walk them again. Reference counting still frees them; only a
  reference cycle among them would never be collected, and they live as long as the worker.
- CPython starts a young collection when allocations minus deallocations of tracked objects
  pass the young threshold. Every object freed counts, old or young: once the state's old
  incidents die as fast as new ones are made, that count hardly rises, young collections get
  rarer, and each walks every young object made since the last one (120,000-190,000 in a
  dense replay, pauses of 0.2-0.36 s). So the worker collects the young generation by time
  (`Schedule`, every `young_interval_s`): a pause is bounded by what one interval allocates
  (the report rate), not by how the state turns over.
- An explicit collection resets the counts that start CPython's own collections, and those
  are the only ones that reach the older generations. So the schedule also collects them,
  with CPython's rules: generation 1 after `MIDDLE_THRESHOLD` young collections, a full one
  after `OLD_THRESHOLD` of generation 1 and once the process's allocated blocks have grown
  by a quarter since the last full one (CPython's guard against quadratic full collections,
  which counts the objects promoted to the old generation instead; this counts
  `sys.getallocatedblocks`, which it can read).
- CPython's own collections stay on, at the thresholds below, for what the schedule misses:
  more than `YOUNG_THRESHOLD` net allocations within one interval (a burst, a catch-up), or
  an event loop that does not get to its tick.

The offline replay uses the same thresholds (`offline.replay`) without the schedule: it has
no latency to keep.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 50
OLD_THRESHOLD = 100
THRESHOLDS = (YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
YOUNG_INTERVAL_S = 1.0
OLD_GROWTH = 0.25


def apply() -> None:
    """Freeze what exists now and set the worker's thresholds."""
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@dataclass
class Schedule:
    """Which generation each tick collects (`tick`, every `YOUNG_INTERVAL_S` of the event
    loop): the youngest collection is every tick's, the older ones follow CPython's rules
    (module docstring). `collect`, `count` and `blocks` are `gc.collect`, `gc.get_count` and
    `sys.getallocatedblocks`, given for tests."""

    middle_threshold: int = MIDDLE_THRESHOLD
    old_threshold: int = OLD_THRESHOLD
    old_growth: float = OLD_GROWTH
    collect: Callable[[int], int] = gc.collect
    count: Callable[[], tuple[int, int, int]] = gc.get_count
    blocks: Callable[[], int] = sys.getallocatedblocks
    after_full: int = field(init=False, default=0)
    """Allocated blocks after the last full collection (or at the start)."""

    def __post_init__(self) -> None:
        self.after_full = self.blocks()

    def due(self) -> int:
        """The generation the next tick collects (and every younger one with it)."""
        _, young_collections, middle_collections = self.count()
        if (middle_collections >= self.old_threshold
                and self.blocks() > (1 + self.old_growth) * self.after_full):
            return 2
        return 1 if young_collections >= self.middle_threshold else 0

    def tick(self) -> int:
        """Collect the generation `due` names; returns it."""
        generation = self.due()
        self.collect(generation)
        if generation == 2:
            self.after_full = self.blocks()
        return generation
