"""Settings of the console (`VIGIE_CONSOLE_*` environment variables).

The store URL, Kafka, reference data and jurisdiction files come from `streams.settings`.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_CONSOLE_", extra="ignore")

    tokens: SecretStr = Field(
        SecretStr(""),
        description="Bearer tokens: 'token:role:name' entries separated by commas "
        "(roles: viewer, operator). `vigie console --dev-tokens` prints a fresh value.",
    )
    stream_secret: SecretStr = Field(
        SecretStr(""),
        description="HMAC key of the short-lived SSE stream tokens (random per process if "
        "empty; set the same value on every replica behind a load balancer)",
    )
    host: str = Field("127.0.0.1", description="Console bind address (server mode)")
    port: int = Field(8080, description="Console port (server mode)")
    poll_seconds: float = Field(1.0, description="How often the console polls ClickHouse")
    partners_seed: str = Field(
        "",
        description="JSON list of partner entries registered at start when their org is not "
        "in the registry yet (the demo's partners; empty: none)",
    )
    max_streams: int = Field(
        200, ge=1, description="Live (SSE) streams open at once on this process; 429 beyond"
    )
    max_streams_per_principal: int = Field(
        10, ge=1, description="Live streams open at once per token name; 429 beyond"
    )
    auth_failure_burst: int = Field(
        10, ge=1, description="Failed authentications a client address may make in a row "
        "before it gets 429 (token bucket)",
    )
    auth_failures_per_minute: float = Field(
        6.0, gt=0, description="Refill rate of that bucket: failed authentications per minute"
    )


@lru_cache(maxsize=1)
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()  # values come from the environment
