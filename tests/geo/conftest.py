"""Shared fixtures: the packaged Essonne reference data and a geocoder over it."""

from __future__ import annotations

import pytest

from agents.core.geo import Geocoder
from agents.core.jurisdictions import Jurisdictions, load_jurisdictions
from agents.core.refdata import RefData, load_refdata


@pytest.fixture(scope="session")
def refdata() -> RefData:
    return load_refdata()


@pytest.fixture(scope="session")
def jurisdictions(refdata: RefData) -> Jurisdictions:
    return load_jurisdictions(None, refdata)


@pytest.fixture(scope="session")
def geocoder(refdata: RefData, jurisdictions: Jurisdictions) -> Geocoder:
    return Geocoder(refdata, jurisdictions)
