"""The served area as the simulator sees it: communes, jurisdictions and point pools.

Per-message shapely calls are avoided: each commune gets a pool of points sampled
once (vectorised rejection sampling in its polygon), each with its distance to the edge
of the served area. Any later displacement of a point (GPS noise, a rodeo's path, an
outbreak disc) is kept shorter than that distance, so a valid report never falls
outside the area.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

M_PER_DEG_LAT = 111_320.0

# Fallback jurisdictions (areas built without the project's mapping): the 14 police
# districts (CSP) of Essonne and some gendarmerie brigades; communes of >=
# POLICE_ZONE_MIN_POP inhabitants are in a police
# zone (nearest CSP), the others in a gendarmerie zone (nearest brigade).
CSP_SEATS = (
    "Arpajon",
    "Brunoy",
    "Corbeil-Essonnes",
    "Draveil",
    "Étampes",
    "Évry-Courcouronnes",
    "Juvisy-sur-Orge",
    "Massy",
    "Montgeron",
    "Palaiseau",
    "Les Ulis",
    "Sainte-Geneviève-des-Bois",
    "Savigny-sur-Orge",
    "Yerres",
)
GENDARMERIE_SEATS = (
    "Étampes",
    "Dourdan",
    "Milly-la-Forêt",
    "Mennecy",
    "La Ferté-Alais",
    "Limours",
    "Angerville",
    "Saint-Chéron",
    "Montlhéry",
    "Étréchy",
)
POLICE_ZONE_MIN_POP = 8000


def slug(name: str) -> str:
    """`Évry-Courcouronnes` -> `evry-courcouronnes` (organisation ids)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class SimCommune:
    insee: str
    name: str
    population: int
    area_km2: float
    lat: float  # representative point
    lon: float
    police_kind: str = "gendarmerie"  # police_nationale | gendarmerie
    police_org: str = "bgta-91"


@dataclass
class SimArea:
    """Communes plus, per commune, `pool_size` points and their distance to the area's edge.

    `pool_lat`, `pool_lon`, `pool_dist_m` have shape (n_communes, pool_size).
    `shape` is the served area (union of the communes), kept for tests and checks.
    """

    communes: list[SimCommune]
    pool_lat: np.ndarray
    pool_lon: np.ndarray
    pool_dist_m: np.ndarray
    shape: BaseGeometry
    aliases: frozenset[str] = frozenset()  # former/delegated codes the geocoder resolves
    polygons: Sequence[BaseGeometry] = ()  # each commune's, in the order of `communes`
    _tree: shapely.STRtree | None = field(default=None, init=False, repr=False)

    def commune_at(self, lat: float, lon: float, fallback: int) -> int:
        """Index of the commune containing (`lat`, `lon`): the lowest of two on their
        border, `fallback` when none holds it (a gap between polygons, or an area built
        without them).

        A point moved from where it was drawn (an outbreak's incidents around its centre, a
        chronic place's around the place, a twin beside its incident) can cross into the
        neighbouring commune: its true commune is where it lies, as a geocoder would say."""
        tree = self._polygon_tree()
        if tree is None:
            return fallback
        hits = tree.query(shapely.Point(lon, lat), predicate="intersects")
        return int(hits.min()) if len(hits) else fallback

    def communes_along(self, lat: float, lon: float, lat2: float, lon2: float) -> list[int]:
        """Indexes of the communes the segment from (`lat`, `lon`) to (`lat2`, `lon2`)
        crosses, in ascending order (a mobile incident's path)."""
        tree = self._polygon_tree()
        if tree is None:
            return []
        line = shapely.LineString([(lon, lat), (lon2, lat2)])
        return sorted(int(i) for i in tree.query(line, predicate="intersects"))

    def _polygon_tree(self) -> shapely.STRtree | None:
        if self._tree is None and self.polygons:
            self._tree = shapely.STRtree(list(self.polygons))
        return self._tree

    @property
    def known_insee(self) -> frozenset[str]:
        """Codes a geocoder accepts (current communes and aliases)."""
        return frozenset(c.insee for c in self.communes) | self.aliases

    def contains(self, lat: float, lon: float) -> bool:
        return bool(shapely.contains_xy(self.shape, lon, lat))


def _sample_in(poly: BaseGeometry, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    shapely.prepare(poly)
    minx, miny, maxx, maxy = poly.bounds
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    got = 0
    for _ in range(200):
        x = rng.uniform(minx, maxx, 4 * n)
        y = rng.uniform(miny, maxy, 4 * n)
        inside = shapely.contains_xy(poly, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        got += int(inside.sum())
        if got >= n:
            break
    if got < n:  # degenerate sliver: fall back to the representative point
        p = poly.representative_point()
        xs.append(np.full(n, p.x))
        ys.append(np.full(n, p.y))
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def _nearest_seat(c: SimCommune, seats: Sequence[SimCommune]) -> SimCommune:
    return min(seats, key=lambda s: (s.lat - c.lat) ** 2 + ((s.lon - c.lon) * 0.66) ** 2)


def assign_jurisdictions(communes: list[SimCommune]) -> list[SimCommune]:
    by_slug = {slug(c.name): c for c in communes}
    csp = [by_slug[slug(n)] for n in CSP_SEATS if slug(n) in by_slug]
    gend = [by_slug[slug(n)] for n in GENDARMERIE_SEATS if slug(n) in by_slug]
    out = []
    for c in communes:
        if c.population >= POLICE_ZONE_MIN_POP:
            seat = _nearest_seat(c, csp) if csp else c
            kind, org = "police_nationale", f"csp-{slug(seat.name)}"
        else:
            seat = _nearest_seat(c, gend) if gend else c
            kind, org = "gendarmerie", f"bgta-{slug(seat.name)}"
        out.append(
            SimCommune(c.insee, c.name, c.population, c.area_km2, c.lat, c.lon, kind, org[:64])
        )
    return out


def build_area(
    communes: Iterable[tuple[str, str, int, BaseGeometry]],
    *,
    pool_size: int = 256,
    seed: int = 0,
    outline: BaseGeometry | None = None,
    aliases: Iterable[str] = (),
) -> SimArea:
    """Build the simulator's area from `(insee, name, population, polygon lon/lat)` rows;
    `outline` is the served area (default: the union of the polygons)."""
    rows = sorted(communes, key=lambda r: r[0])
    rng = np.random.default_rng(seed)
    shape = outline if outline is not None else shapely.union_all([r[3] for r in rows])
    edge = shapely.simplify(shape.boundary, 0.0002)  # ~20 m, subtracted below
    lat0 = math.radians(float(shape.centroid.y))
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(lat0)
    lats, lons, dists, sims, polys = [], [], [], [], []
    for insee, name, population, poly in rows:
        polys.append(poly)
        x, y = _sample_in(poly, pool_size, rng)
        d_deg = shapely.distance(edge, shapely.points(x, y))
        # degrees -> metres, conservative (the smaller scale) minus the simplification
        d_m = np.maximum(d_deg * min(m_per_deg_lon, M_PER_DEG_LAT) - 25.0, 0.0)
        lats.append(y)
        lons.append(x)
        dists.append(d_m)
        rp = poly.representative_point()
        km2 = float(poly.area) * m_per_deg_lon * M_PER_DEG_LAT / 1e6
        sims.append(SimCommune(insee, name, int(population), km2, float(rp.y), float(rp.x)))
    return SimArea(
        communes=assign_jurisdictions(sims),
        pool_lat=np.vstack(lats),
        pool_lon=np.vstack(lons),
        pool_dist_m=np.vstack(dists),
        shape=shape,
        aliases=frozenset(aliases),
        polygons=polys,
    )


_ESSONNE_CACHE: dict[tuple[int, int], SimArea] = {}


def load_essonne_area(pool_size: int = 256, seed: int = 0) -> SimArea:
    """The 194 communes of Essonne from the project's reference data (cached per process)."""
    key = (pool_size, seed)
    if key not in _ESSONNE_CACHE:
        from agents.core.refdata import load_refdata

        ref = load_refdata()
        rows = [(c.insee, c.name, c.population, c.polygon) for c in ref.communes.values()]
        area = build_area(
            rows, pool_size=pool_size, seed=seed, outline=ref.outline, aliases=ref.aliases
        )
        _ESSONNE_CACHE[key] = _with_project_jurisdictions(area, ref)
    return _ESSONNE_CACHE[key]


def _with_project_jurisdictions(area: SimArea, ref: object) -> SimArea:
    """Police / gendarmerie orgs from the project's mapping (`VIGIE_JURISDICTIONS`)."""
    from agents.core.jurisdictions import load_jurisdictions
    from streams.settings import get_settings

    mapping = load_jurisdictions(get_settings().jurisdictions or None, ref)  # type: ignore[arg-type]
    communes = []
    for c in area.communes:
        j = mapping.of(c.insee)
        kind = "police_nationale" if j.force == "PN" else "gendarmerie"
        communes.append(
            SimCommune(c.insee, c.name, c.population, c.area_km2, c.lat, c.lon, kind, j.id[:64])
        )
    area.communes = communes
    return area
