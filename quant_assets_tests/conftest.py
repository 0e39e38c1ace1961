"""Fixtures shared by every test: the shipped sample, a temp warehouse, a real Dagster instance."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quant_assets.defs.resources import WarehouseResource
from quant_assets.market.canonical import to_canonical

PROJECT_DIR = Path(__file__).resolve().parents[1]
SAMPLE_DIR = PROJECT_DIR / "data" / "sample"


@pytest.fixture(scope="session")
def project_dir() -> Path:
    """Return the repository root."""
    return PROJECT_DIR


@pytest.fixture(scope="session")
def sample_bars() -> pl.DataFrame:
    """Return the shipped BTC/USDT 1h bars (full history) in the canonical schema."""
    raw = pl.read_parquet(SAMPLE_DIR / "binance_BTC-USDT_1h.parquet")
    return to_canonical(raw, "binance.BTC-USDT.1h")


@pytest.fixture
def warehouse_resource(tmp_path: Path) -> WarehouseResource:
    """Return a resource whose lake and warehouse live in tmp_path, reading the shipped sample."""
    return WarehouseResource(
        project_dir=str(tmp_path),
        lake_dir=str(tmp_path / "lake"),
        warehouse_path=str(tmp_path / "warehouse.duckdb"),
        sample_dir=str(SAMPLE_DIR),
        instruments_file=str(PROJECT_DIR / "instruments.yaml"),
    )


@pytest.fixture
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """Yield a real, temporary on-disk Dagster instance (SQLite storage)."""
    with dg.instance_for_test() as instance:
        yield instance
