"""Distances, the candidate search grid, the H3 r9 cell and the coarse partition key."""

from __future__ import annotations

import math

import h3

from agents.core.record import ReportRecord

CORRELATION_RES = 9
DEFAULT_PARTITION_RES = 5
_M_PER_DEG = 111_320.0
# degrees -> radians: `math.radians`'s own factor (x * _RAD == math.radians(x), bit for
# bit): with `math.cos`, compiled C arithmetic in the native build (`agents.core.native`),
# where `math.radians` is a call on a boxed float. (`math.hypot` stays: `math.sqrt(x * x +
# y * y)` may differ from it in the last bit, which moves a decision at a gate's edge.)
_RAD = math.pi / 180.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance (exact to < 0.1 % at a few km, much cheaper than haversine)."""
    x = (lon2 - lon1) * math.cos(0.5 * (lat1 + lat2) * _RAD)
    return _M_PER_DEG * math.hypot(x, lat2 - lat1)


def distance_floor_m(
    lat: float, lon: float, lat_min: float, lat_max: float, lon_min: float, lon_max: float
) -> float:
    """A lower bound of `distance_m` from (lat, lon) to every point of a box: the smallest
    gaps in latitude and longitude, the longitude gap at the smallest cosine of the mid
    latitudes the box allows (the cosine's least value on an interval of latitudes is at
    one of its ends). Exact arithmetic would make it at most the least distance; rounding
    may exceed it by a few units in the last place, so callers compare it with a margin."""
    dlat = lat_min - lat if lat < lat_min else (lat - lat_max if lat > lat_max else 0.0)
    dlon = lon_min - lon if lon < lon_min else (lon - lon_max if lon > lon_max else 0.0)
    cos = min(math.cos(0.5 * (lat + lat_min) * _RAD), math.cos(0.5 * (lat + lat_max) * _RAD))
    return _M_PER_DEG * math.hypot(dlon * cos, dlat)


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
_DISC_MARGIN = 1.0 + 1e-9  # `grid_disc`: its extent's relative margin over rounding
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
            dr * _ROW + dc for dr in range(-n_lat, n_lat + 1) for dc in range(-n_lon, n_lon + 1)
        )
    return offsets


def grid_box(lat: float, lon: float, radius_m: float) -> list[GridCell]:
    """The grid cells holding every point within `radius_m` of (lat, lon)."""
    centre = grid_cell(lat, lon)
    return [centre + off for off in box_offsets(*grid_span(lat, radius_m))]


def grid_disc(lat: float, lon: float, radius_m: float) -> list[GridCell]:
    """The grid cells holding every point within `radius_m` (`distance_m`) of (lat, lon):
    those the disc's latitude and longitude extent crosses, from the point itself (at most
    (2 x radius / `GRID_M` + 1)^2 of them, often fewer: `grid_box` spans the worst case of
    any point of the cell). A point within the radius is at most radius / `_M_PER_DEG`
    degrees of latitude away, and of longitude that over the least cosine of the mid
    latitudes it may have; the margin covers rounding."""
    dlat = radius_m / _M_PER_DEG * _DISC_MARGIN
    edge = min(abs(lat) + dlat, 89.0)
    dlon = radius_m / (_M_PER_DEG * math.cos(math.radians(edge))) * _DISC_MARGIN
    rows = range(
        math.floor((lat - dlat) / _GRID_LAT_DEG), math.floor((lat + dlat) / _GRID_LAT_DEG) + 1
    )
    c0 = math.floor((lon - dlon) / _GRID_LON_DEG)
    c1 = math.floor((lon + dlon) / _GRID_LON_DEG) + 1
    return [row * _ROW + col for row in rows for col in range(c0, c1)]


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
