"""Shared pytest fixtures for real infrastructure (ClickHouse, Kafka...)."""
