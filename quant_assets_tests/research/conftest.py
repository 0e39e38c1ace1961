"""Fixtures of the research tests: the shipped catalog and the shipped goal."""

from pathlib import Path

import pytest

from quant_assets.domain.research import ResearchGoal
from quant_assets.research.goals import load_goal
from quant_assets.strategy.catalog.loader import Catalog, load_catalog

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """Return the shipped template catalog."""
    return load_catalog()


@pytest.fixture(scope="session")
def goal(catalog: Catalog) -> ResearchGoal:
    """Return the shipped goal, goals/btc_eth_trend_1h.yaml."""
    return load_goal(PROJECT_DIR / "goals" / "btc_eth_trend_1h.yaml", catalog)
