"""The correlator's late path: a valid report older than the allowed lateness still finds its
incident, whether the engine still holds it or evicted it.

An engine keeps a closed incident until its clock is `allowed_lateness_s` past the
incident's close; then the incident leaves the state (and the changelog). A report that
arrives further behind the clock than that (a partner's late upload, a replay of an old
topic) would found a new incident beside its own. Before such a report is merged,
`LatePath.readmit` asks the store for the incidents it could belong to:

1. the incidents with a version whose time span reaches the report's `occurred_at` within
   the longest join window of any category, centred within the widest search reach of its
   category (`late.NEAR_INCIDENTS`), and not in the engine;
2. their current version (`late.CURRENT_VERSIONS`) and member reports (`late.MEMBERS`,
   the enriched rows of `reports`), from which their state is rebuilt in the changelog form
   (`Incident.from_dict`: identity, version, status, times, members; the derived fields and
   search cells are recomputed on restore) and put back in the engine
   (`Correlator.restore`), only those that belong to this engine: one of their members is in
   the report's area (`partition_key`), hence on the same internal partition;
3. the engine's ordinary rules then decide: the report joins one of them (its next version
   follows the stored one) or founds an incident. An incident put back and not joined is
   closed, and past its eviction time: the next clock move evicts it again.

A report that one of those stored incidents already lists (the incident it would found,
`incident_id_for`, is asked too) is *known*: it is not merged again. This is a worker killed
after its correlator merged reports that its ingest had forwarded but not stored: the next
ingest forwards them again, behind the restored clock, and stores them only after. Their
incident cannot be rebuilt meanwhile (a member not stored), and a founder merged again would
found it anew under the same id at version 1, whose next versions would replace the stored
versions of the same numbers (members of those then in no current version).

Replays stay deterministic: a replayed batch asks the same store. If the first attempt had
already stored the report's new version, the rebuilt incident lists the report, which the
engine then ignores as known (the version already published stands). A rebuilt member's
accuracy weight is its stated accuracy (the source's learnt dispersion at the time it
joined is not stored): the rebuilt centre can differ from the evicted one by that much.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from agents.core.correlation import CorrelationConfig, Correlator, StateDict, partition_key
from agents.core.correlation.engine import MAX_WIDEN
from agents.core.correlation.incident import Member, incident_id_for
from agents.core.record import ReportRecord, member_keys
from agents.ingest import lookup_chunks
from agents.ports import metrics
from agents.ports.blocking import BlockingRunner
from agents.ports.health import Health
from agents.ports.retry import RetryPolicy
from agents.ports.sql import late
from agents.ports.sql.query import Query
from agents.ports.store import Store
from agents.sink import query_confirmed

log = logging.getLogger(__name__)

NEAR_LIMIT = 200  # incidents asked about per late report (a dense spot holds a few dozen)
# Reach of a commune-only report: its position is its commune's point, its incident's
# centre may be anywhere in the commune.
COMMUNE_REACH_M = 10_000.0
LOG_EVERY_S = 60.0  # at most one log line a minute about late reports
_M_PER_DEG = 111_320.0


class LatePath:
    """Looks up and re-admits the incidents of reports past the allowed lateness."""

    def __init__(
        self,
        *,
        store: Store,
        retry: RetryPolicy,
        run_blocking: BlockingRunner,
        config: CorrelationConfig,
        health: Health | None = None,
        area_key: Callable[[ReportRecord], str] = partition_key,
        clock: Callable[[], float] = time.monotonic,  # paces the log line
    ) -> None:
        self.store = store
        self.retry = retry
        self.run_blocking = run_blocking
        self.config = config
        self.health = health
        self.area_key = area_key
        self.clock = clock
        categories = list(config.categories())
        self._reach_s = max(
            config.pair_params(a, b, chronic).window_s
            for a in categories
            for b in categories
            for chronic in (False, True)
        )
        self._radius_m: dict[str, float] = {}
        self._logged_at = -math.inf
        self._unlogged: dict[str, int] = {}
        self._worst = 0.0

    def is_late(self, engine: Correlator, record: ReportRecord) -> bool:
        return engine.watermark - record.reported_at > self.config.allowed_lateness_s

    def radius_m(self, record: ReportRecord) -> float:
        if record.precision != "point":
            return COMMUNE_REACH_M
        radius = self._radius_m.get(record.category)
        if radius is None:
            cfg = self.config
            radius = self._radius_m[record.category] = MAX_WIDEN * max(
                cfg.search_radius_m(record.category, other) for other in cfg.categories()
            )
        return radius

    async def readmit(self, engine: Correlator, record: ReportRecord) -> str:
        """Put back in `engine` the stored incidents `record` may join; returns the outcome
        (`readmitted`, `none`, `known`: a stored incident already lists the report, which
        is then not merged again, or `failed`: the lookup failed, the engine decides
        alone)."""
        lateness = engine.watermark - record.reported_at
        try:
            states, known = await self._lookup(engine, record)
            if states:
                engine.restore(states, watermark=engine.watermark)
            outcome = "known" if known else "readmitted" if states else "none"
        except Exception as exc:  # never lose the report for its lookup
            log.warning("late report lookup failed", extra={"error": type(exc).__name__})
            outcome = "failed"
        metrics.LATE_RECORDS.labels(outcome=outcome).inc()
        self._note(outcome, lateness)
        return outcome

    def _note(self, outcome: str, lateness: float) -> None:
        """One JSON log line a minute at most: how many reports came past the lateness."""
        self._unlogged[outcome] = self._unlogged.get(outcome, 0) + 1
        self._worst = max(self._worst, lateness)
        now = self.clock()
        if now - self._logged_at < LOG_EVERY_S:
            return
        log.warning(
            "reports past the allowed lateness",
            extra={
                "reports": sum(self._unlogged.values()),
                **self._unlogged,
                "max_lateness_s": round(self._worst),
                "allowed_lateness_s": self.config.allowed_lateness_s,
            },
        )
        self._logged_at, self._unlogged, self._worst = now, {}, 0.0

    async def _query(self, query: Query, table: str, **values: Any) -> list[dict[str, Any]]:
        return await query_confirmed(
            self.store,
            query.sql,
            query.bind(**values),
            table=table,
            retry=self.retry,
            run_blocking=self.run_blocking,
            health=self.health,
        )

    async def _lookup(
        self, engine: Correlator, record: ReportRecord
    ) -> tuple[list[StateDict], bool]:
        """The states of the stored incidents around `record` that can be rebuilt, and
        whether a stored incident not in `engine` already lists `record` (the incident it
        would found, `incident_id_for`, is always asked: a founder's incident may lie
        outside the box or the limit)."""
        if record.lat is None or record.lon is None:
            return [], False
        t, radius = record.occurred_at, self.radius_m(record)
        dlat = radius / _M_PER_DEG
        dlon = radius / (_M_PER_DEG * max(math.cos(math.radians(record.lat)), 0.01))
        near = await self._query(
            late.NEAR_INCIDENTS,
            "incidents",
            lo=t - self._reach_s,
            hi=t + self._reach_s,
            south=record.lat - dlat,
            north=record.lat + dlat,
            west=record.lon - dlon,
            east=record.lon + dlon,
            limit=NEAR_LIMIT,
        )
        asked = {r["incident_id"] for r in near} | {incident_id_for(record)}
        ids = tuple(sorted(iid for iid in asked if iid not in engine))
        if not ids:
            return [], False
        versions = await self._query(late.CURRENT_VERSIONS, "incidents", ids=ids)
        if any(lists(version, record) for version in versions):
            # merged before (a re-delivery of a report forwarded by a worker killed before
            # it stored it): its incident's members may not all be stored yet, so the
            # incident may not be rebuilt, and merging the report again would found its
            # incident anew under the same id, whose next versions would replace the
            # stored ones of the same numbers
            return [], True
        report_ids = sorted({rid for v in versions for rid in v["report_ids"]})
        rows: list[dict[str, Any]] = []
        for chunk in lookup_chunks(report_ids):
            rows += await self._query(late.MEMBERS, "reports", ids=chunk)
        stored = {(r["source_kind"], r["source_org"], r["report_id"]): r for r in rows}
        by_id: dict[str, dict[str, Any]] = {}
        for r in rows:
            by_id.setdefault(r["report_id"], r)
        area = self.area_key(record)
        out: list[StateDict] = []
        for version in versions:
            members = list(_members(version, stored, by_id))
            if len(members) != len(version["report_ids"]):
                continue  # a member not stored (yet): no partial incident in state
            if not any(self.area_key(m) == area for m in members):
                continue  # another engine's incident
            out.append(state_of(version, members))
        return out, False


def lists(version: Mapping[str, Any], record: ReportRecord) -> bool:
    """Whether a stored incident version lists `record` among its members (by identity when
    the version names the sources, else by report id)."""
    keys = member_keys(version)
    if keys:
        return record.key in keys
    return record.report_id in version["report_ids"]


def _members(
    version: Mapping[str, Any],
    stored: Mapping[tuple[str, str, str], dict[str, Any]],
    by_id: Mapping[str, dict[str, Any]],
) -> Iterable[ReportRecord]:
    """The incident's member reports, in its order (by identity when the version names the
    sources, else by report id)."""
    keys = member_keys(version)
    rows = [stored.get(k) for k in keys] if keys else [by_id.get(r) for r in version["report_ids"]]
    for row in rows:
        if row is not None:
            yield record_of(row)


def record_of(row: Mapping[str, Any]) -> ReportRecord:
    """An enriched report from its `reports` row (`late.MEMBERS` columns)."""
    return ReportRecord(
        report_id=row["report_id"],
        source_kind=row["source_kind"],
        source_org=row["source_org"],
        source_channel=row["source_channel"],
        category=row["category"],
        occurred_at=float(row["occurred_at"]),
        reported_at=float(row["reported_at"]),
        lat=row["lat"],
        lon=row["lon"],
        accuracy_m=row["accuracy_m"],
        insee=row["insee"],
        severity=row["severity"],
        contact_hash=row["contact_hash"],
        description_hash=row["description_hash"],
        description_len=int(row["description_len"]),
        commune=row["commune"],
        jurisdiction=row["jurisdiction"],
        precision=row["precision"],
        h3_r7=row["h3_r7"],
        h3_r8=row["h3_r8"],
        h3_r9=row["h3_r9"],
    )


def state_of(version: Mapping[str, Any], members: Sequence[ReportRecord]) -> StateDict:
    """The changelog form of a stored incident (`Incident.from_dict` reads it; the derived
    fields are recomputed from the members)."""
    dicts = [Member.of(m, float(m.lat or 0.0), float(m.lon or 0.0)).to_dict() for m in members]
    last_seen = max(m.reported_at for m in members)
    updated = version.get("updated_at")
    first_seen = version.get("first_seen_at")
    return {
        "incident_id": version["incident_id"],
        "version": int(version["version"]),
        "status": version["status"],
        "members": dicts,
        "first_occurred_at": min(m.occurred_at for m in members),
        "last_occurred_at": max(m.occurred_at for m in members),
        "last_seen": last_seen,
        "updated_at": float(updated) if updated is not None else last_seen,
        "first_seen_at": (
            float(first_seen) if first_seen is not None else min(m.reported_at for m in members)
        ),
    }
