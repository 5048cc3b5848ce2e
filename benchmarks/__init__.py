"""Throughput and quality benchmarks (`make bench`)."""
