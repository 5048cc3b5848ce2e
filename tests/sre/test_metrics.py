"""agents.ports.metrics: names and labels follow the conventions, helpers move the right series."""

from __future__ import annotations

import re

import pytest

from agents.ports import metrics as metrics_module
from tests.conftest import MetricsSince

FORBIDDEN_LABELS = {
    "report_id",
    "incident_id",
    "alert_id",
    "cell",
    "h3",
    "h3_r7",
    "h3_r8",
    "h3_r9",
    "lat",
    "lon",
    "insee",
    "commune",
    "contact",
    "description",
}


def test_every_metric_is_documented_and_follows_naming(metrics: MetricsSince) -> None:
    docs = metrics.describe()
    assert len(docs) >= 20
    for doc in docs:
        assert doc.name.startswith("vigie_"), doc.name
        assert re.fullmatch(r"vigie_[a-z0-9_]+", doc.name), doc.name
        assert doc.help, doc.name
        assert not FORBIDDEN_LABELS & set(doc.labels), (doc.name, doc.labels)
        if doc.type == "counter":
            assert doc.name.endswith("_total"), doc.name
        else:
            assert not doc.name.endswith("_total"), doc.name
        if "latency" in doc.name or "duration" in doc.name:
            assert doc.name.endswith("_seconds"), doc.name
        assert not re.search(r"_(ms|milliseconds|minutes|hours|kb|mb)(_|$)", doc.name), doc.name


def test_required_metrics_exist(metrics: MetricsSince) -> None:
    names = {d.name for d in metrics.describe()}
    for name in (
        "vigie_reports_received_total",
        "vigie_reports_accepted_total",
        "vigie_reports_rejected_total",
        "vigie_reports_redelivered_dropped_total",
        "vigie_enrichment_failures_total",
        "vigie_incidents_total",
        "vigie_alerts_total",
        "vigie_end_to_end_latency_seconds",
        "vigie_clickhouse_insert_rows_total",
        "vigie_clickhouse_insert_batches_total",
        "vigie_clickhouse_insert_duration_seconds",
        "vigie_clickhouse_insert_failures_total",
        "vigie_clickhouse_insert_retries_total",
        "vigie_clickhouse_insert_batch_rows",
        "vigie_consumer_lag_messages",
        "vigie_state_entries",
        "vigie_detector_run_duration_seconds",
        "vigie_detector_last_success_timestamp_seconds",
        "vigie_build_info",
        "vigie_ready",
    ):
        assert name in names, name


def test_observe_insert_and_retries(metrics: MetricsSince) -> None:
    metrics.observe_insert("reports", 120, 0.03)
    metrics.observe_insert("reports", 80, 0.2)
    metrics.observe_insert_retry("reports")
    metrics.observe_insert_failure("incidents")
    s = metrics.sample
    assert s("vigie_clickhouse_insert_rows_total", table="reports") == 200
    assert s("vigie_clickhouse_insert_batches_total", table="reports") == 2
    assert s("vigie_clickhouse_insert_duration_seconds_count", table="reports") == 2
    assert s("vigie_clickhouse_insert_duration_seconds_sum", table="reports") == pytest.approx(0.23)
    assert s("vigie_clickhouse_insert_duration_seconds_bucket", table="reports", le="0.05") == 1
    assert s("vigie_clickhouse_insert_batch_rows_bucket", table="reports", le="100.0") == 1
    assert s("vigie_clickhouse_insert_retries_total", table="reports") == 1
    assert s("vigie_clickhouse_insert_failures_total", table="reports") == 1
    assert s("vigie_clickhouse_insert_failures_total", table="incidents") == 1
    assert s("vigie_clickhouse_insert_retries_total", table="incidents") == 0


def test_accepted_reports_and_latency_buckets(metrics: MetricsSince) -> None:
    metrics.observe_accepted("gendarmerie", "vol", 0.7)
    metrics.observe_accepted("citizen", "vol", 45.0)
    metrics.observe_accepted("citizen", "rodeo", -1.0)  # clock skew: clamped to 0
    s = metrics.sample
    assert s("vigie_reports_accepted_total", source_kind="citizen") == 2
    assert s("vigie_reports_accepted_by_category_total", category="vol") == 2
    bucket = "vigie_end_to_end_latency_seconds_bucket"
    assert s(bucket, stage="stored", le="0.1") == 1
    assert s(bucket, stage="stored", le="1.0") == 2
    assert s(bucket, stage="stored", le="30.0") == 2
    assert s(bucket, stage="stored", le="60.0") == 3
    assert s("vigie_end_to_end_latency_seconds_count", stage="incident") == 0


def test_latency_buckets_cover_the_targets(metrics: MetricsSince) -> None:
    for target in (1, 10, 60, 3600):
        assert target in metrics.LATENCY_BUCKETS
    assert min(metrics.LATENCY_BUCKETS) <= 0.1
    assert max(metrics.LATENCY_BUCKETS) > 3600


def test_incidents_and_alerts_reject_unknown_labels(metrics: MetricsSince) -> None:
    metrics.count_incident("opened", "vol", latency_seconds=12.0)
    metrics.count_incident("updated", "vol")
    metrics.count_alert("open", latency_seconds=1800.0)
    with pytest.raises(ValueError):
        metrics.count_incident("merged-ish", "vol")
    with pytest.raises(ValueError):
        metrics.count_alert("acked")
    s = metrics.sample
    assert s("vigie_incidents_total", event="opened", category="vol") == 1
    assert s("vigie_incidents_total", event="updated", category="vol") == 1
    assert s("vigie_end_to_end_latency_seconds_count", stage="incident") == 1
    assert s("vigie_end_to_end_latency_seconds_bucket", stage="alert", le="1200.0") == 0
    assert s("vigie_end_to_end_latency_seconds_bucket", stage="alert", le="1800.0") == 1
    assert s("vigie_alerts_total", status="open") == 1


def test_consumer_lags_replace_revoked_partitions(metrics: MetricsSince) -> None:
    def lag(consumer: str, partition: str) -> float | None:
        return metrics.REGISTRY.get_sample_value(
            "vigie_consumer_lag_messages",
            {"consumer": consumer, "topic": "t", "partition": partition},
        )

    metrics.set_consumer_lags([("t", 0, 10), ("t", 1, 20)], consumer="ingest")
    metrics.set_consumer_lags([("t", 0, 7)], consumer="correlate")
    assert lag("ingest", "1") == 20
    metrics.set_consumer_lags([("t", 0, 5)], consumer="ingest")  # partition 1 revoked
    assert lag("ingest", "0") == 5
    assert lag("ingest", "1") is None
    assert lag("correlate", "0") == 7  # another consumer's series are left alone
    metrics.set_consumer_lag("t", 0, -3, consumer="ingest")  # end offset racing the commit
    assert lag("ingest", "0") == 0


def test_detector_build_info_state_and_readiness(metrics: MetricsSince) -> None:
    metrics.observe_detector_run(2.5, ok=True, now=1_700_000_000.0)
    metrics.observe_detector_run(0.5, ok=False, now=1_700_000_060.0)
    s = metrics_module.sample  # gauges: absolute values
    assert s("vigie_detector_last_success_timestamp_seconds") == 1_700_000_000.0
    assert metrics.sample("vigie_detector_runs_total", outcome="error") == 1
    assert metrics.sample("vigie_detector_run_duration_seconds_count") == 2
    metrics.set_state_size("open_incidents", 42)
    assert s("vigie_state_entries", table="open_incidents") == 42

    metrics.set_build_info("1.2.3")
    text = metrics.render().decode()
    assert re.search(r'^vigie_build_info\{python="[0-9.]+",version="1\.2\.3"\} 1\.0$', text, re.M)
    assert text.count("vigie_build_info{") == 1

    ready = {"value": False}
    metrics.track_readiness(lambda: ready["value"])
    assert s("vigie_ready") == 0
    ready["value"] = True
    assert s("vigie_ready") == 1  # evaluated at collection time


def test_render_is_prometheus_text_with_process_metrics(metrics: MetricsSince) -> None:
    metrics.REPORTS_IN.labels(topic="test.render").inc(3)  # a series of this test only
    text = metrics.render().decode()
    assert 'vigie_reports_received_total{topic="test.render"} 3.0' in text
    assert "# TYPE vigie_end_to_end_latency_seconds histogram" in text
    assert "process_start_time_seconds" in text
    assert "_created" not in text
    assert metrics.CONTENT_TYPE.startswith("text/plain")


def test_markdown_table_lists_every_metric(metrics: MetricsSince) -> None:
    table = metrics.markdown_table()
    for doc in metrics.describe():
        assert f"| `{doc.name}` | {doc.type} |" in table
