"""`bench_latency`'s per-slice worker figures: RSS at the end of each slice, CPU time in it."""

from __future__ import annotations

import os

from benchmarks.bench_latency import Sample, cpu_s, per_slice


def test_per_slice_assigns_each_sample_to_the_slice_it_ends() -> None:
    began = 1000.0
    samples: list[Sample] = [
        (began - 0.2, 100.0, 5.0),  # taken as sending starts
        (began + 59.8, 110.0, 17.0),
        (began + 119.9, 121.0, 31.5),
        (began + 180.1, None, None),  # the process could not be read
        (began + 240.0, 140.0, 60.0),
    ]
    rss, cpu = per_slice(samples, began, 60.0, 5)
    assert rss == [110.0, 121.0, None, 140.0, None]
    # CPU in a slice: from the sample before; unknown next to a sample that failed
    assert cpu == [12.0, 14.5, None, None, None]


def test_cpu_time_of_this_process_is_read() -> None:
    before = cpu_s(os.getpid())
    sum(i * i for i in range(300_000))  # some work
    after = cpu_s(os.getpid())
    assert before is not None and after is not None and after >= before
    assert cpu_s(2**22 + 17) is None  # no such process
