"""The universe of detection cells (H3 r8): index, commune, weight, k-ring neighbourhoods."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import h3
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from agents.core.refdata import RefData

IntArray = npt.NDArray[np.int64]

UNKNOWN_COMMUNE = ""
EARTH_RADIUS_M = 6_371_008.8


class CellIndex:
    """Dense integer index of the cells the detector knows.

    Seeded from reference data (all cells of the served area, with commune and weight, e.g.
    population) or grown from observed incidents. Row `len(self)` of the ring matrices is a
    padding row standing for "no cell" (zero count, zero rate).
    """

    def __init__(self) -> None:
        self.cells: list[str] = []
        self.insee: list[str] = []
        self.weight: list[float] = []
        self._pos: dict[str, int] = {}
        self._rings: dict[int, IntArray] = {}
        self._ring_size = 0
        self.version = 0  # changes whenever a cell or a commune is added

    def __len__(self) -> int:
        return len(self.cells)

    def __contains__(self, cell: object) -> bool:
        return cell in self._pos

    @classmethod
    def from_cells(cls, cells: Iterable[tuple[str, str, float]]) -> CellIndex:
        """From (cell, insee, weight) triples."""
        index = cls()
        for cell, insee, weight in cells:
            index.ensure(cell, insee, weight)
        return index

    def ensure(self, cell: str, insee: str = UNKNOWN_COMMUNE, weight: float = 1.0) -> int:
        """Index of `cell`, adding it if new; fills in an unknown commune."""
        pos = self._pos.get(cell)
        if pos is not None:
            if insee and not self.insee[pos]:
                self.insee[pos] = insee
                self.version += 1
            return pos
        self.version += 1
        pos = len(self.cells)
        self._pos[cell] = pos
        self.cells.append(cell)
        self.insee.append(insee)
        self.weight.append(weight)
        return pos

    def position(self, cell: str) -> int | None:
        return self._pos.get(cell)

    def positions(self, cells: Iterable[str]) -> IntArray:
        """Index of each cell, -1 for an unknown one."""
        get = self._pos.get
        return np.asarray([get(c, -1) for c in cells], dtype=np.int64)

    def rings(self, k: int) -> IntArray:
        """(n_cells, 3k(k+1)+1) matrix: row i lists the cells within grid distance k of cell i,
        ordered by distance (so the first 3j(j+1)+1 columns are the j-ring, j <= k); unknown
        neighbours map to the padding row `n_cells`."""
        if self._ring_size != len(self.cells):
            self._rings.clear()
            self._ring_size = len(self.cells)
        ring = self._rings.get(k)
        if ring is None:
            pad = len(self.cells)
            size = 3 * k * (k + 1) + 1
            ring = np.full((pad, size), pad, dtype=np.int64)
            for i, cell in enumerate(self.cells):
                col = 0
                for j in range(k + 1):
                    for c in sorted(h3.grid_ring(cell, j)):
                        ring[i, col] = self._pos.get(c, pad)
                        col += 1
            self._rings[k] = ring
        return ring

    def zone_cells(self, center: int, k: int) -> list[str]:
        """Known cells of the zone (center, k)."""
        return sorted(c for c in h3.grid_disk(self.cells[center], k) if c in self._pos)

    def latlng(self, pos: int) -> tuple[float, float]:
        lat, lng = h3.cell_to_latlng(self.cells[pos])
        return float(lat), float(lng)


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1 = map(math.radians, a)
    lat2, lon2 = map(math.radians, b)
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def cells_center_radius(cells: Iterable[str]) -> tuple[tuple[float, float], float]:
    """Centroid of the cells' centres and the radius (m) of a disc covering the cells."""
    points = [h3.cell_to_latlng(c) for c in cells]
    if not points:
        return (0.0, 0.0), 0.0
    lat = sum(p[0] for p in points) / len(points)
    lon = sum(p[1] for p in points) / len(points)
    center = (float(lat), float(lon))
    edge = float(h3.average_hexagon_edge_length(8, unit="m"))
    radius = max(haversine_m(center, (float(p[0]), float(p[1]))) for p in points) + edge
    return center, radius


def cell_index_from_refdata(refdata: RefData, resolution: int = 8) -> CellIndex:
    """Every H3 cell overlapping a commune of the served area, with the INSEE code of the
    commune holding its centre (else the first overlapping one) and weight = that commune's
    population / its number of cells (cold-start spread)."""
    owner: dict[str, str] = {}
    for insee, commune in sorted(refdata.communes.items()):
        shape = h3.geo_to_h3shape(commune.polygon.__geo_interface__)
        for c in h3.h3shape_to_cells(shape, resolution):
            owner[c] = insee  # centre inside: this commune
        for c in h3.h3shape_to_cells_experimental(shape, resolution, contain="overlap"):
            owner.setdefault(c, insee)
        rep = h3.latlng_to_cell(commune.rep_lat, commune.rep_lon, resolution)
        owner.setdefault(rep, insee)
    per_commune: dict[str, int] = {}
    for insee in owner.values():
        per_commune[insee] = per_commune.get(insee, 0) + 1
    return CellIndex.from_cells(
        (c, insee, max(1.0, float(refdata.communes[insee].population)) / per_commune[insee])
        for c, insee in sorted(owner.items())
    )
