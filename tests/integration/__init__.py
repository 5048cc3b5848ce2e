"""Integration tests against real services (Kafka broker, ClickHouse server)."""
