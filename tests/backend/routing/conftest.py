"""Shared builders for the routing tests (plain values, no fakes needed: routing is pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.regions import RegionIndex, RegionMatch
from backend.routing import CaseFacts, Contact, Policy, load_policy

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="session")
def regions() -> RegionIndex:
    return RegionIndex.load()


@pytest.fixture(scope="session")
def rotterdam(regions: RegionIndex) -> RegionMatch:
    match = regions.locate(51.9244, 4.4690)
    assert match is not None
    return match


@pytest.fixture()
def case() -> CaseFacts:
    """A Rotterdam case with every named contact."""
    return CaseFacts(
        case_id="case-1",
        home_police_unit="RE07",
        home_vr="VR17",
        home_vt_desk="VT4607",
        risk_level="high",
        contacts=(
            Contact("c-police", "police"),
            Contact("c-vt", "veilig_thuis"),
            Contact("c-vo", "vrouwenopvang"),
            Contact("c-3ro", "three_ro"),
            Contact("c-om", "om"),
        ),
        case_director_id="cd-1",
        victim_device_ids=("victim-dev-1",),
    )
