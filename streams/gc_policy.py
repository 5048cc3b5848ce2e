"""How the worker's Python garbage collector runs (`apply`, called once the worker is built).

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
- The young generation is collected every `YOUNG_THRESHOLD` net allocations, long enough for
  a batch's objects to die first, so fewer are promoted and full collections are rarer.
  The thresholds of the older generations keep their meaning (collect generation 1 after
  that many young collections, generation 2 after that many of generation 1); CPython still
  holds a full collection back until the old generation has grown by a quarter.

The offline replay uses the same thresholds (`offline.replay`).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 50
OLD_THRESHOLD = 100
THRESHOLDS = (YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


def apply() -> None:
    """Freeze what exists now and set the worker's thresholds."""
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
