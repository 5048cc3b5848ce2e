"""Distances, the candidate search grid, the H3 r9 cell and the coarse partition key."""

from __future__ import annotations

import math

import h3

from agents.core.record import ReportRecord

CORRELATION_RES = 9
DEFAULT_PARTITION_RES = 5
_M_PER_DEG = 111_320.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance (exact to < 0.1 % at a few km, much cheaper than haversine)."""
    x = (lon2 - lon1) * math.cos(math.radians(0.5 * (lat1 + lat2)))
    return _M_PER_DEG * math.hypot(x, lat2 - lat1)


# Candidate search grid: cells GRID_M metres tall (latitude) and GRID_M metres wide at
# GRID_REF_LAT (longitude step widened by 1 / cos(GRID_REF_LAT), so cells are square in
# Essonne; elsewhere they are only less square, and `grid_box` widens its span to stay
# exact). A cell is one int (`row * _ROW + col`), so a box is the centre's key plus offsets.
GRID_M = 500.0
GRID_REF_LAT = 48.5
_GRID_LAT_DEG = GRID_M / _M_PER_DEG
_GRID_LON_DEG = _GRID_LAT_DEG / math.cos(math.radians(GRID_REF_LAT))
_ROW = 1 << 20  # > twice the largest |col| (180 / _GRID_LON_DEG ~ 26,500)
GridCell = int
_OFFSETS: dict[tuple[int, int], tuple[int, ...]] = {}
_SPANS: dict[tuple[int, float], tuple[int, int]] = {}


def grid_cell(lat: float, lon: float) -> GridCell:
    return math.floor(lat / _GRID_LAT_DEG) * _ROW + math.floor(lon / _GRID_LON_DEG)


def grid_span(lat: float, radius_m: float) -> tuple[int, int]:
    """(rows, cols) a box must reach on each side of a cell at `lat` to hold every point
    within `radius_m` of any point of it (computed for the poleward edge of `lat`'s
    0.1-degree band, so one answer serves the whole band)."""
    band = math.floor(abs(lat) * 10.0) + 1
    span = _SPANS.get((band, radius_m))
    if span is None:
        n_lat = math.ceil(radius_m / GRID_M)
        # a cell is narrower in metres towards the poles: take the narrowest latitude reached
        edge = min(band / 10.0 + (n_lat + 1) * _GRID_LAT_DEG, 89.0)
        width_m = _GRID_LON_DEG * _M_PER_DEG * math.cos(math.radians(edge))
        span = _SPANS[(band, radius_m)] = (n_lat, math.ceil(radius_m / width_m))
    return span


def box_offsets(n_lat: int, n_lon: int) -> tuple[int, ...]:
    """Key offsets of the cells within `n_lat` rows and `n_lon` columns of a cell."""
    offsets = _OFFSETS.get((n_lat, n_lon))
    if offsets is None:
        offsets = _OFFSETS[(n_lat, n_lon)] = tuple(
            dr * _ROW + dc
            for dr in range(-n_lat, n_lat + 1)
            for dc in range(-n_lon, n_lon + 1)
        )
    return offsets


def grid_box(lat: float, lon: float, radius_m: float) -> list[GridCell]:
    """The grid cells holding every point within `radius_m` of (lat, lon)."""
    centre = grid_cell(lat, lon)
    return [centre + off for off in box_offsets(*grid_span(lat, radius_m))]


def cell_of(lat: float, lon: float) -> str:
    return str(h3.latlng_to_cell(lat, lon, CORRELATION_RES))


def partition_key(record: ReportRecord, res: int = DEFAULT_PARTITION_RES) -> str:
    """Coarse spatial key (H3 parent at `res` of the report's r9 cell): neighbouring cells land
    on one worker, so one engine sees every report an incident could merge. Reports near a
    key border may be split from their incident: `vigie eval` measures that share."""
    cell = record.h3_r9
    if not cell:
        if record.lat is None or record.lon is None:
            return ""
        cell = cell_of(record.lat, record.lon)
    return str(h3.cell_to_parent(cell, res))
