"""Batched geocoder: lat/lon → commune (+ jurisdiction) and H3 cells r7/r8/r9.

Point location uses a regular grid pre-index over the served area: a cell that no commune
border crosses answers with its commune (or "outside") by one array lookup; only points in
border cells get an exact point-in-polygon test (shapely STRtree). H3 r9 comes from the h3
C binding, one call a point; r8/r7 parents and the hex strings are derived with numpy bit
operations (the h3 v4 index layout), which is exact and much faster than per-point calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import repeat

import h3
import numpy as np
import shapely
from numpy.typing import NDArray

from agents.core.jurisdictions import Jurisdictions
from agents.core.record import ReportRecord
from agents.core.refdata import EARTH_RADIUS_KM, Commune, RefData
from agents.core.validation import Rejection
from schemas.rejection import RejectReason

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int32]
U64Array = NDArray[np.uint64]

OUTSIDE = -1
_BORDER = -2
DEFAULT_CELL_M = 100.0

# ---------------------------------------------------------------- H3 (vectorised helpers)

try:  # the Cython binding skips the API wrapper's conversions (about 2x faster)
    from h3._cy import latlng_to_cell as _latlng_to_cell_int
except ImportError:  # pragma: no cover - other h3 builds
    _latlng_to_cell_int = h3.api.basic_int.latlng_to_cell

_latlng_to_cell: Callable[[float, float, int], int] = _latlng_to_cell_int

_RES_SHIFT = 52
_RES_MASK = np.uint64(0xF << _RES_SHIFT)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(56, -1, -4, dtype=np.uint64)  # 15 nibbles, most significant first


def h3_cells(lats: FloatArray, lons: FloatArray, res: int) -> U64Array:
    """H3 cell ids (uint64) of each point at resolution `res`."""
    n = len(lats)
    it = map(_latlng_to_cell, lats.tolist(), lons.tolist(), repeat(res, n))
    return np.fromiter(it, dtype=np.uint64, count=n)


def h3_parents(cells: U64Array, res_from: int, res: int) -> U64Array:
    """Parents at `res` of cells at `res_from`: set the resolution field, blank lower digits."""
    fill = 0
    for r in range(res + 1, res_from + 1):
        fill |= 7 << ((15 - r) * 3)
    out = (cells & ~_RES_MASK) | np.uint64(res << _RES_SHIFT)
    return out | np.uint64(fill)


def h3_to_str(cells: U64Array) -> list[str]:
    """h3 v4 string ids (lowercase hex, 15 digits for cells) of uint64 cell ids."""
    if len(cells) == 0:
        return []
    nibbles = (cells[:, None] >> _NIBBLE_SHIFTS[None, :]) & np.uint64(0xF)
    text = _HEX[nibbles.astype(np.intp)].tobytes().decode("ascii")
    return [text[i : i + 15] for i in range(0, len(text), 15)]


# ---------------------------------------------------------------- sampling


def random_points_in(
    commune: Commune, rng: np.random.Generator, n: int
) -> tuple[FloatArray, FloatArray]:
    """`n` points uniform (by area, on the sphere) in the commune polygon."""
    xmin, ymin, xmax, ymax = commune.polygon.bounds
    s0, s1 = math.sin(math.radians(ymin)), math.sin(math.radians(ymax))
    lats = np.empty(0)
    lons = np.empty(0)
    while len(lats) < n:
        k = max(16, 2 * (n - len(lats)))
        lon = rng.uniform(xmin, xmax, k)
        lat = np.degrees(np.arcsin(rng.uniform(s0, s1, k)))
        inside = shapely.contains_xy(commune.polygon, lon, lat)
        lats = np.concatenate([lats, lat[inside]])
        lons = np.concatenate([lons, lon[inside]])
    return lats[:n], lons[:n]


def random_point_in(commune: Commune, rng: np.random.Generator) -> tuple[float, float]:
    """One point (lat, lon) uniform in the commune polygon."""
    lats, lons = random_points_in(commune, rng, 1)
    return float(lats[0]), float(lons[0])


# ---------------------------------------------------------------- point location


class _GridIndex:
    """Regular lon/lat grid: commune index, OUTSIDE, or _BORDER (needs an exact test)."""

    def __init__(self, polygons: list[shapely.Geometry], outline: shapely.Geometry, cell_m: float):
        xmin, ymin, xmax, ymax = outline.bounds
        lat0 = math.radians((ymin + ymax) / 2)
        m_per_deg = math.radians(1.0) * EARTH_RADIUS_KM * 1000.0
        self.dy = cell_m / m_per_deg
        self.dx = cell_m / (m_per_deg * math.cos(lat0))
        self.x0, self.y0 = xmin - self.dx, ymin - self.dy
        self.nx = math.ceil((xmax - self.x0) / self.dx) + 2
        self.ny = math.ceil((ymax - self.y0) / self.dy) + 2
        grid = np.full((self.ny, self.nx), OUTSIDE, dtype=np.int32)

        # 1. Candidate border cells: 3x3 around vertices of borders densified to < one cell.
        borders = shapely.segmentize(shapely.boundary(polygons), min(self.dx, self.dy) * 0.9)
        xy = shapely.get_coordinates(borders)
        ix, iy = self._cell_of(xy[:, 0], xy[:, 1])
        cand = np.zeros((self.ny, self.nx), dtype=bool)
        for ox in (-1, 0, 1):
            for oy in (-1, 0, 1):
                cand[np.clip(iy + oy, 0, self.ny - 1), np.clip(ix + ox, 0, self.nx - 1)] = True
        # 2. Exact: a candidate is a border cell iff its box intersects a commune border.
        cy, cx = np.nonzero(cand)
        boxes = shapely.box(
            self.x0 + cx * self.dx,
            self.y0 + cy * self.dy,
            self.x0 + (cx + 1) * self.dx,
            self.y0 + (cy + 1) * self.dy,
        )
        hit = np.unique(shapely.STRtree(boxes).query(borders, predicate="intersects")[1])
        border = np.zeros_like(cand)
        border[cy[hit], cx[hit]] = True
        # 3. Other cells lie wholly inside one commune or outside: classify by their centre.
        qy, qx = np.nonzero(~border)
        centres = shapely.points(self.x0 + (qx + 0.5) * self.dx, self.y0 + (qy + 0.5) * self.dy)
        tree = shapely.STRtree(polygons)
        pi, ti = tree.query(centres, predicate="intersects")
        grid[qy[pi], qx[pi]] = ti
        grid[border] = _BORDER
        self.grid = grid
        self.tree = tree
        self.border_fraction = float(border.sum() / max(1, (grid >= 0).sum() + border.sum()))

    def _cell_of(self, x: FloatArray, y: FloatArray) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        ix = np.floor((x - self.x0) / self.dx).astype(np.intp)
        iy = np.floor((y - self.y0) / self.dy).astype(np.intp)
        return ix, iy

    def locate(self, lats: FloatArray, lons: FloatArray) -> IntArray:
        lats = np.asarray(lats, dtype=np.float64)
        lons = np.asarray(lons, dtype=np.float64)
        fx = (lons - self.x0) / self.dx
        fy = (lats - self.y0) / self.dy
        ok = (fx >= 0) & (fx < self.nx) & (fy >= 0) & (fy < self.ny)  # False for NaN
        out = np.full(len(lats), OUTSIDE, dtype=np.int32)
        out[ok] = self.grid[fy[ok].astype(np.intp), fx[ok].astype(np.intp)]
        exact = np.nonzero(out == _BORDER)[0]
        if len(exact):
            out[exact] = OUTSIDE
            pts = shapely.points(lons[exact], lats[exact])
            pi, ti = self.tree.query(pts, predicate="intersects")
            # a point on a shared border belongs to the lowest commune index (deterministic)
            order = np.lexsort((ti, pi))
            pi, ti = pi[order], ti[order]
            first = np.ones(len(pi), dtype=bool)
            first[1:] = pi[1:] != pi[:-1]
            out[exact[pi[first]]] = ti[first]
        return out

    def locate_one(self, lat: float, lon: float) -> int:
        """`locate` of one point, without the arrays (an incident's centre, one at a time)."""
        fx = (lon - self.x0) / self.dx
        fy = (lat - self.y0) / self.dy
        if not (0.0 <= fx < self.nx and 0.0 <= fy < self.ny):  # also NaN
            return OUTSIDE
        found = int(self.grid[int(fy), int(fx)])
        if found != _BORDER:
            return found
        hits = self.tree.query(shapely.Point(lon, lat), predicate="intersects")
        # a point on a shared border belongs to the lowest commune index, as in `locate`
        return int(hits.min()) if len(hits) else OUTSIDE


# ---------------------------------------------------------------- geocoder


class Geocoder:
    """Enriches `ReportRecord`s in batches: commune, jurisdiction, precision, H3 r7/r8/r9."""

    def __init__(
        self, refdata: RefData, jurisdictions: Jurisdictions, *, cell_m: float = DEFAULT_CELL_M
    ) -> None:
        self.refdata = refdata
        self.codes: list[str] = refdata.codes
        communes = [refdata.communes[c] for c in self.codes]
        self.names = [c.name for c in communes]
        self.jurisdiction_ids = [jurisdictions.of(c).id for c in self.codes]
        self._index_of = {code: i for i, code in enumerate(self.codes)}
        self._rep_lat = np.array([c.rep_lat for c in communes])
        self._rep_lon = np.array([c.rep_lon for c in communes])
        self._grid = _GridIndex([c.polygon for c in communes], refdata.outline, cell_m)

    @property
    def border_fraction(self) -> float:
        """Share of the area's grid cells that need an exact test (for benchmarks)."""
        return self._grid.border_fraction

    def locate(self, lats: FloatArray, lons: FloatArray) -> IntArray:
        """Commune index (into `self.codes`) of each point, or -1 outside the served area."""
        return self._grid.locate(lats, lons)

    def insee_at(self, lat: float, lon: float) -> str | None:
        i = self._grid.locate_one(lat, lon)
        return self.codes[i] if i >= 0 else None

    def commune_at(self, lat: float, lon: float) -> tuple[str, str, str] | None:
        """(INSEE code, name, jurisdiction id) of the commune holding a point, None outside
        the served area (`agents.core.correlation.CommuneAt`: an incident's centre)."""
        i = self._grid.locate_one(lat, lon)
        if i < 0:
            return None
        return self.codes[i], self.names[i], self.jurisdiction_ids[i]

    def enrich_batch(self, records: list[ReportRecord]) -> list[ReportRecord | Rejection]:
        """Enrich records in place; same order out, a `Rejection` where geocoding fails."""
        results: list[ReportRecord | Rejection] = list(records)
        if not records:
            return results
        # None → NaN: one C-level conversion instead of a per-record loop
        lats = np.array([r.lat for r in records], dtype=np.float64)
        lons = np.array([r.lon for r in records], dtype=np.float64)
        is_point = ~(np.isnan(lats) | np.isnan(lons))
        idx = np.full(len(records), OUTSIDE, dtype=np.int32)
        idx[is_point] = self.locate(lats[is_point], lons[is_point])
        for pos in np.nonzero(~is_point)[0].tolist():
            rec = records[pos]
            code = self.refdata.resolve_insee(rec.insee) if rec.insee is not None else None
            if code is not None:
                i = self._index_of[code]
                idx[pos] = i
                lats[pos] = self._rep_lat[i]
                lons[pos] = self._rep_lon[i]
            elif rec.insee is not None:
                results[pos] = Rejection(
                    RejectReason.UNKNOWN_INSEE,
                    "location.insee is not a commune of the served area",
                    rec.report_id,
                )
            else:
                results[pos] = Rejection(
                    RejectReason.MISSING_FIELD,
                    "location has neither coordinates nor an INSEE code",
                    rec.report_id,
                )
        ok = np.nonzero(idx >= 0)[0]
        r9 = h3_cells(lats[ok], lons[ok], 9)
        s9 = h3_to_str(r9)
        s8 = h3_to_str(h3_parents(r9, 9, 8))
        s7 = h3_to_str(h3_parents(r9, 9, 7))
        codes, names, juris = self.codes, self.names, self.jurisdiction_ids
        point_flags = is_point[ok].tolist()
        for k, (pos, i) in enumerate(zip(ok.tolist(), idx[ok].tolist(), strict=True)):
            rec = records[pos]
            if point_flags[k]:
                rec.precision = "point"
            else:
                rec.lat = float(lats[pos])
                rec.lon = float(lons[pos])
                rec.precision = "commune"
            rec.insee = codes[i]
            rec.commune = names[i]
            rec.jurisdiction = juris[i]
            rec.h3_r9 = s9[k]
            rec.h3_r8 = s8[k]
            rec.h3_r7 = s7[k]
        for pos in np.nonzero(is_point & (idx < 0))[0].tolist():
            results[pos] = Rejection(
                RejectReason.OUT_OF_AREA, "point is outside the served area", records[pos].report_id
            )
        return results
