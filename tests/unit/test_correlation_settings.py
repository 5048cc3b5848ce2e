"""Correlation parameters from `VIGIE_*` settings, the same for the worker and the backtest."""

from __future__ import annotations

import pytest

from agents.core.correlation.config import DEFAULT_COMPATIBLE
from streams.settings import Settings, correlation_config


def test_defaults_are_the_built_in_table_with_chronic_places() -> None:
    cfg = correlation_config(Settings())
    assert cfg.compatible_pairs == DEFAULT_COMPATIBLE
    assert cfg.chronic is not None
    assert cfg.allowed_lateness_s == 48 * 3600.0


def test_pairs_replace_the_table_and_chronic_places_can_be_turned_off() -> None:
    cfg = correlation_config(Settings(
        correlation_compatible=" rodeo:nuisance , cambriolage:vol",
        correlation_chronic_places=False,
        allowed_lateness_hours=12,
    ))
    assert cfg.compatible_pairs == (("rodeo", "nuisance"), ("cambriolage", "vol"))
    assert cfg.compatible("nuisance", "rodeo")
    assert not cfg.compatible("incendie", "degradation")  # no longer in the table
    assert cfg.chronic is None
    assert cfg.allowed_lateness_s == 12 * 3600.0


@pytest.mark.parametrize("bad", ["rodeo", "rodeo:nuisanse", "rodeo:nuisance,:vol"])
def test_a_malformed_pair_or_unknown_category_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="VIGIE_CORRELATION_COMPATIBLE"):
        correlation_config(Settings(correlation_compatible=bad))


def test_the_backtest_correlates_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from offline.replay import Replay
    from streams.settings import get_settings

    monkeypatch.setenv("VIGIE_ALLOWED_LATENESS_HOURS", "6")
    monkeypatch.setenv("VIGIE_CORRELATION_CHRONIC_PLACES", "false")
    get_settings.cache_clear()
    try:
        pipeline = Replay(loop=None)  # type: ignore[arg-type]
    finally:
        get_settings.cache_clear()
    assert pipeline.correlator.config.allowed_lateness_s == 6 * 3600.0
    assert pipeline.correlator.config.chronic is None
