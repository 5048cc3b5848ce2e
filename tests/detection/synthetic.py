"""Synthetic count streams for detector tests (no simulator needed)."""

from __future__ import annotations

import h3
import numpy as np

from agents.core.detection import CellIndex, InMemoryCountStore
from schemas.enums import CATEGORIES

CENTER = h3.latlng_to_cell(48.63, 2.44, 8)  # Évry-Courcouronnes
H0 = 475_000  # an hour bucket (2024-03-11)


def universe(n_rings: int = 12) -> CellIndex:
    cells = sorted(h3.grid_disk(CENTER, n_rings))
    return CellIndex.from_cells(
        (c, f"91{int(h3.cell_to_parent(c, 6), 16) % 7:03d}", 1.0) for c in cells
    )


def background(
    index: CellIndex,
    start_hour: int,
    hours: int,
    seed: int,
    daily_total: float = 300.0,
    chronic: tuple[tuple[str, str, float], ...] = (),
    store: InMemoryCountStore | None = None,
) -> InMemoryCountStore:
    """Poisson background with heterogeneous cells and a daily cycle, plus chronic spots
    (cell, category, incidents per day)."""
    rng = np.random.default_rng(seed)
    store = store or InMemoryCountStore()
    n = len(index)
    weights = rng.gamma(0.7, 1.0, size=n)
    weights /= weights.sum()
    shares = rng.dirichlet(np.ones(len(CATEGORIES)) * 3)
    for h in range(start_hour, start_hour + hours):
        cycle = 1.0 + 0.6 * np.sin(2 * np.pi * (h % 24) / 24)
        for ci, cat in enumerate(CATEGORIES):
            k = rng.poisson(daily_total / 24 * shares[ci] * cycle)
            for cell in rng.choice(n, size=k, p=weights):
                store.add(index.cells[int(cell)], cat, h, 1)
        for cell, cat, per_day in chronic:
            k = int(rng.poisson(per_day / 24))
            if k:
                store.add(cell, cat, h, k)
    return store
