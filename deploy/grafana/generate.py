"""Generate the Grafana dashboards and the generated tables of docs/sre.md.

    .venv/bin/python deploy/grafana/generate.py          # write
    .venv/bin/python deploy/grafana/generate.py --check  # exit 1 if anything is stale

Dashboards only use metric names from `agents/ports/metrics.py` (checked by tests/sre). The
operations dashboard's "Incidents by place" panels query ClickHouse (`incident_hours`) through
the provisioned ClickHouse datasource; their SQL is named in `agents/ports/sql/incident_hours.py`
and tests/storage runs it on both ClickHouse versions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agents.ports import metrics  # noqa: E402
from agents.ports.sql import incident_hours  # noqa: E402
from streams.settings import Settings  # noqa: E402

DASHBOARDS = Path(__file__).resolve().parent / "dashboards"
DOC = ROOT / "docs" / "sre.md"
DS = {"type": "prometheus", "uid": "vigie-prometheus"}
DS_CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "vigie-clickhouse"}
RI = "$__rate_interval"


class Board:
    """Lays panels out on Grafana's 24-column grid, row by row."""

    def __init__(self, uid: str, title: str, tags: list[str]) -> None:
        self.uid, self.title, self.tags = uid, title, tags
        self.panels: list[dict[str, Any]] = []
        self._x = 0
        self._y = 0
        self._row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": len(self.panels) + 1,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
            self._x, self._row_h = 0, 0

    def _place(self, w: int, h: int) -> dict[str, int]:
        """The grid position of the next panel of `w` x `h` (a new line when it is full)."""
        if self._x + w > 24:
            self._newline()
        pos = {"h": h, "w": w, "x": self._x, "y": self._y}
        self._x += w
        self._row_h = max(self._row_h, h)
        return pos

    def panel(
        self,
        title: str,
        targets: list[tuple[str, str]],
        *,
        unit: str = "short",
        kind: str = "timeseries",
        w: int = 8,
        h: int = 8,
        description: str = "",
        thresholds: list[tuple[float, str]] | None = None,
        instant: bool = False,
    ) -> None:
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        steps += [{"color": color, "value": value} for value, color in thresholds or []]
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DS,
            "gridPos": self._place(w, h),
            "fieldConfig": {
                "defaults": {
                    "unit": unit,
                    "thresholds": {"mode": "absolute", "steps": steps},
                },
                "overrides": [],
            },
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [
                {
                    "refId": chr(ord("A") + i),
                    "datasource": DS,
                    "expr": expr,
                    "legendFormat": legend,
                    "instant": instant,
                    "range": not instant,
                }
                for i, (expr, legend) in enumerate(targets)
            ],
        }
        if thresholds and kind == "timeseries":
            panel["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
        self.panels.append(panel)

    def sql_panel(
        self,
        title: str,
        sql: str,
        *,
        kind: str = "table",
        w: int = 8,
        h: int = 8,
        description: str = "",
    ) -> None:
        """A panel of one ClickHouse query (Grafana macros: `$__timeFilter(column)`)."""
        series = kind == "timeseries"
        self.panels.append(
            {
                "id": len(self.panels) + 1,
                "type": kind,
                "title": title,
                "description": description,
                "datasource": DS_CLICKHOUSE,
                "gridPos": self._place(w, h),
                "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {
                        "refId": "A",
                        "datasource": DS_CLICKHOUSE,
                        "editorType": "sql",
                        "format": 0 if series else 1,
                        "queryType": "timeseries" if series else "table",
                        "rawSql": " ".join(sql.split()),
                    }
                ],
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "tags": self.tags,
            "timezone": "Europe/Paris",
            "schemaVersion": 39,
            "version": 1,
            "editable": True,
            "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": []},
            "annotations": {"list": []},
            "panels": self.panels,
        }


def quantiles(stage: str) -> list[tuple[str, str]]:
    bucket = f'vigie_end_to_end_latency_seconds_bucket{{stage="{stage}"}}'
    return [
        (f"histogram_quantile({q}, sum by (le) (rate({bucket}[{RI}])))", f"p{int(q * 100)}")
        for q in (0.5, 0.95, 0.99)
    ]


def sre_dashboard() -> Board:
    b = Board("vigie-sre", "Vigie — SRE", ["vigie", "sre"])
    b.row("Workers")
    b.panel("Workers up", [('sum(up{job="vigie"})', "up")], kind="stat", w=4, h=5)
    b.panel("Workers ready", [("sum(vigie_ready)", "ready")], kind="stat", w=4, h=5)
    b.panel(
        "Restarts (1 h)",
        [('sum(changes(process_start_time_seconds{job="vigie"}[1h]))', "restarts")],
        kind="stat",
        w=4,
        h=5,
        thresholds=[(1, "orange"), (3, "red")],
    )
    b.panel(
        "Resident memory",
        [('process_resident_memory_bytes{job="vigie"}', "{{instance}}")],
        unit="bytes",
        w=6,
        h=5,
    )
    b.panel(
        "CPU",
        [(f'rate(process_cpu_seconds_total{{job="vigie"}}[{RI}])', "{{instance}}")],
        unit="percentunit",
        w=6,
        h=5,
    )
    b.panel(
        "Share of time stopped by the garbage collector, by generation (2 = full)",
        [
            (
                f"sum by (instance, generation) (rate(vigie_gc_pause_seconds_sum[{RI}]))",
                "{{instance}} gen {{generation}}",
            )
        ],
        unit="percentunit",
        w=8,
        h=5,
    )
    b.panel(
        "Incident-state store memory (RocksDB), by part",
        [("sum by (instance, part) (vigie_table_store_memory_bytes)", "{{instance}} {{part}}")],
        unit="bytes",
        w=8,
        h=5,
    )
    b.panel(
        "Full garbage collections: pause p99",
        [
            (
                "histogram_quantile(0.99, sum by (le) "
                f'(rate(vigie_gc_pause_seconds_bucket{{generation="2"}}[{RI}])))',
                "p99",
            )
        ],
        unit="s",
        w=8,
        h=5,
    )

    b.row("Throughput")
    b.panel(
        "Reports received /s by topic",
        [(f"sum by (topic) (rate(vigie_reports_received_total[{RI}]))", "{{topic}}")],
        unit="reqps",
    )
    b.panel(
        "Reports accepted /s by source kind",
        [(f"sum by (source_kind) (rate(vigie_reports_accepted_total[{RI}]))", "{{source_kind}}")],
        unit="reqps",
    )
    b.panel(
        "Consumed batch size (p50, p95)",
        [
            (
                f"histogram_quantile({q}, sum by (le, agent) "
                f"(rate(vigie_consumer_batch_messages_bucket[{RI}])))",
                f"p{int(q * 100)} {{{{agent}}}}",
            )
            for q in (0.5, 0.95)
        ],
    )

    b.row("Consumer lag")
    b.panel(
        "Lag by topic",
        [("sum by (topic) (vigie_consumer_lag_messages)", "{{topic}}")],
        w=12,
        thresholds=[(1000, "orange")],
    )
    b.panel(
        "Lag by partition",
        [("vigie_consumer_lag_messages", "{{topic}}[{{partition}}] {{instance}}")],
        w=12,
    )

    b.row("End-to-end latency (reported_at →)")
    b.panel("→ stored (target 10 s)", quantiles("stored"), unit="s", thresholds=[(10, "red")])
    b.panel(
        "→ incident published (target 1 min)",
        quantiles("incident"),
        unit="s",
        thresholds=[(60, "red")],
    )
    b.panel(
        "→ alert published (target 1 h)",
        quantiles("alert"),
        unit="s",
        thresholds=[(3600, "red")],
    )

    b.row("Errors and rejections")
    b.panel(
        "Rejections /s by reason",
        [(f"sum by (reason) (rate(vigie_reports_rejected_total[{RI}]))", "{{reason}}")],
        unit="reqps",
    )
    b.panel(
        "Rejection ratio",
        [
            (
                f"sum(rate(vigie_reports_rejected_total[{RI}])) "
                f"/ sum(rate(vigie_reports_received_total[{RI}]))",
                "rejected / received",
            )
        ],
        unit="percentunit",
        thresholds=[(0.05, "red")],
    )
    b.panel(
        "Re-deliveries dropped and enrichment failures /s",
        [
            (f"sum(rate(vigie_reports_redelivered_dropped_total[{RI}]))", "re-deliveries"),
            (f"sum(rate(vigie_enrichment_failures_total[{RI}]))", "enrichment failures"),
        ],
        unit="reqps",
    )

    b.row("ClickHouse sink")
    b.panel(
        "Rows inserted /s by table",
        [(f"sum by (table) (rate(vigie_clickhouse_insert_rows_total[{RI}]))", "{{table}}")],
        unit="rowsps",
        w=6,
    )
    b.panel(
        "Insert duration p95 by table",
        [
            (
                "histogram_quantile(0.95, sum by (le, table) "
                f"(rate(vigie_clickhouse_insert_duration_seconds_bucket[{RI}])))",
                "{{table}}",
            )
        ],
        unit="s",
        w=6,
    )
    b.panel(
        "Rows per batch (mean) by table",
        [
            (
                f"sum by (table) (rate(vigie_clickhouse_insert_rows_total[{RI}])) "
                f"/ sum by (table) (rate(vigie_clickhouse_insert_batches_total[{RI}]))",
                "{{table}}",
            )
        ],
        w=6,
    )
    b.panel(
        "Failures and retries /s",
        [
            (
                f"sum by (table) (rate(vigie_clickhouse_insert_failures_total[{RI}]))",
                "failures {{table}}",
            ),
            (
                f"sum by (table) (rate(vigie_clickhouse_insert_retries_total[{RI}]))",
                "retries {{table}}",
            ),
        ],
        unit="reqps",
        w=6,
    )

    b.row("Detector and state")
    b.panel(
        "Since last successful detector run",
        [("time() - max(vigie_detector_last_success_timestamp_seconds)", "age")],
        unit="s",
        kind="stat",
        w=6,
        thresholds=[(180, "orange"), (300, "red")],
    )
    b.panel(
        "Detector run duration p95",
        [
            (
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(vigie_detector_run_duration_seconds_bucket[{RI}])))",
                "p95",
            )
        ],
        unit="s",
        w=6,
    )
    b.panel(
        "Detector runs by outcome (per hour)",
        [("sum by (outcome) (increase(vigie_detector_runs_total[1h]))", "{{outcome}}")],
        w=6,
    )
    b.panel(
        "State table entries",
        [("sum by (table) (vigie_state_entries)", "{{table}}")],
        w=6,
    )
    b.panel(
        "Alert threshold (scan score of the last calibration)",
        [("max(vigie_detector_threshold)", "threshold")],
        w=12,
    )
    b.panel(
        "Since the last calibration (detector clock; weekly by default)",
        [("time() - max(vigie_detector_calibrated_timestamp_seconds)", "age")],
        unit="s",
        kind="stat",
        w=12,
        thresholds=[(8 * 86400, "orange")],
    )
    b.panel(
        "Running versions",
        [("vigie_build_info", "{{instance}} {{version}} py{{python}}")],
        kind="table",
        w=24,
        h=5,
        instant=True,
    )

    # Every worker counts the whole outbox: max, not sum, across workers.
    b.row("Partner webhooks")
    b.panel(
        "Deliveries /s by outcome",
        [(f"sum by (outcome) (rate(vigie_webhook_deliveries_total[{RI}]))", "{{outcome}}")],
        unit="reqps",
        w=6,
    )
    b.panel(
        "Attempts /s by outcome",
        [(f"sum by (outcome) (rate(vigie_webhook_attempts_total[{RI}]))", "{{outcome}}")],
        unit="reqps",
        w=6,
    )
    b.panel(
        "Attempt duration p95",
        [
            (
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(vigie_webhook_delivery_duration_seconds_bucket[{RI}])))",
                "p95",
            )
        ],
        unit="s",
        w=6,
    )
    b.panel(
        "Pending and parked deliveries",
        [("max(vigie_webhook_pending)", "pending"), ("max(vigie_webhook_parked)", "parked")],
        w=6,
        description="Parked deliveries wait for an operator: `vigie webhooks list-parked`, "
        "then `vigie webhooks replay`",
        thresholds=[(1, "red")],
    )
    return b


def operations_dashboard() -> Board:
    b = Board("vigie-operations", "Vigie — operations overview", ["vigie", "operations"])
    b.row("Last 24 hours")
    b.panel(
        "Reports accepted",
        [("sum(increase(vigie_reports_accepted_total[24h]))", "reports")],
        kind="stat",
        w=6,
        h=5,
    )
    b.panel(
        "Incidents opened",
        [('sum(increase(vigie_incidents_total{event="opened"}[24h]))', "incidents")],
        kind="stat",
        w=6,
        h=5,
    )
    b.panel(
        "Alerts opened",
        [('sum(increase(vigie_alerts_total{status="open"}[24h]))', "alerts")],
        kind="stat",
        w=6,
        h=5,
    )
    b.panel(
        "Reports rejected",
        [("sum(increase(vigie_reports_rejected_total[24h]))", "rejected")],
        kind="stat",
        w=6,
        h=5,
    )

    b.row("Reports")
    b.panel(
        "Reports per hour by category",
        [
            (
                f"sum by (category) (rate(vigie_reports_accepted_by_category_total[{RI}])) * 3600",
                "{{category}}",
            )
        ],
        w=12,
    )
    b.panel(
        "Reports per hour by source",
        [
            (
                f"sum by (source_kind) (rate(vigie_reports_accepted_total[{RI}])) * 3600",
                "{{source_kind}}",
            )
        ],
        w=12,
    )
    b.panel(
        "Reports by category (24 h)",
        [
            (
                "sort_desc(sum by (category) "
                "(increase(vigie_reports_accepted_by_category_total[24h])))",
                "{{category}}",
            )
        ],
        kind="bargauge",
        w=24,
        instant=True,
    )

    b.row("Incidents and alerts")
    b.panel(
        "Incident events per hour",
        [(f"sum by (event) (rate(vigie_incidents_total[{RI}])) * 3600", "{{event}}")],
        w=12,
    )
    b.panel(
        "Incidents opened per hour by category",
        [
            (
                f'sum by (category) (rate(vigie_incidents_total{{event="opened"}}[{RI}])) * 3600',
                "{{category}}",
            )
        ],
        w=12,
    )
    b.panel(
        "Alert messages per hour by status",
        [(f"sum by (status) (rate(vigie_alerts_total[{RI}])) * 3600", "{{status}}")],
        w=12,
    )
    b.panel(
        "Incident and alert delay p95",
        [
            (
                "histogram_quantile(0.95, sum by (le, stage) "
                f'(rate(vigie_end_to_end_latency_seconds_bucket{{stage=~"incident|alert"}}[{RI}])))',
                "{{stage}}",
            )
        ],
        unit="s",
        w=12,
    )

    # From ClickHouse: each incident once, in the hour it was first reported, with the
    # category and place of its latest version (`incident_hours`, FINAL: latest version).
    b.row("Incidents by place (ClickHouse)")
    b.sql_panel(
        "New incidents per hour by category",
        incident_hours.GRAFANA_NEW_PER_HOUR.sql,
        kind="timeseries",
        w=24,
        description="Incidents by the hour they were first reported.",
    )
    b.sql_panel("New incidents by commune", incident_hours.GRAFANA_NEW_BY_COMMUNE.sql)
    b.sql_panel("New incidents by jurisdiction", incident_hours.GRAFANA_NEW_BY_JURISDICTION.sql)
    b.sql_panel(
        "Busiest H3 r8 cells",
        incident_hours.GRAFANA_BUSIEST_CELLS.sql,
        description=(
            "Cells of the detector (H3 resolution 8, about 0.7 km2); incidents known only"
            " by their commune are left out, as by the detector."
        ),
    )
    return b


# ---- docs/sre.md generated sections ------------------------------------------------------
def settings_table() -> str:
    lines = ["| env var | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        annotation = getattr(field.annotation, "__name__", str(field.annotation))
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = "(secret)" if default.get_secret_value() else "(secret: none)"
        lines.append(
            f"| `VIGIE_{name.upper()}` | {annotation} | `{default}` | {field.description or ''} |"
        )
    return "\n".join(lines)


def render_doc(text: str) -> str:
    for section, body in (("metrics", metrics.markdown_table()), ("settings", settings_table())):
        pattern = re.compile(
            rf"<!-- BEGIN GENERATED: {section} -->\n.*?<!-- END GENERATED: {section} -->", re.S
        )
        match = pattern.search(text)
        if match is None:
            raise SystemExit(f"{DOC}: markers for section {section!r} missing")
        block = f"<!-- BEGIN GENERATED: {section} -->\n{body}\n<!-- END GENERATED: {section} -->"
        text = text[: match.start()] + block + text[match.end() :]
    return text


def outputs() -> dict[Path, str]:
    files = {
        DASHBOARDS / f"{board.uid}.json": json.dumps(board.to_json(), indent=2) + "\n"
        for board in (sre_dashboard(), operations_dashboard())
    }
    files[DOC] = render_doc(DOC.read_text())
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if any output is stale")
    args = parser.parse_args()
    stale = []
    for path, content in outputs().items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path.relative_to(ROOT)))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
