"""Insert throughput of the reports table on both backends (printed; run with -s to see it).

The bound asserted is deliberately lower than the measured rates (see the storage report:
~55-85k rows/s in batches of 5,000 on 2 cores) so that a busy CI machine does not flake,
while a gross regression (per-row inserts, row-by-row conversion) still fails.
"""

from __future__ import annotations

import time

import pytest

from streams.storage import Store
from streams.storage.bench import make_report_rows
from streams.storage.queries import count_reports

ROWS = 100_000
BATCH = 5_000
MIN_ROWS_PER_SECOND = 20_000


@pytest.mark.slow
def test_reports_insert_rate(store: Store, store_url: str) -> None:
    batches = [make_report_rows(BATCH, start=s) for s in range(0, ROWS, BATCH)]
    started = time.perf_counter()
    for batch in batches:
        store.insert("reports", batch)
    rate = ROWS / (time.perf_counter() - started)
    print(f"\n{store_url.split(':')[0]}: {rate:,.0f} reports rows/s (batches of {BATCH})")
    assert count_reports(store) == ROWS
    assert rate >= MIN_ROWS_PER_SECOND
