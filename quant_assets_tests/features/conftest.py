"""Shared fixtures for the feature tests: real shipped bars from data/sample/."""

from pathlib import Path

import polars as pl
import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
# Rows 30000..33999 of the BTC-USDT 1h sample (2021-06 to 2021-11): trends, crashes, quiet spells.
SAMPLE_OFFSET = 30_000
SAMPLE_ROWS = 4_000


def load_sample(stem: str) -> pl.DataFrame:
    """Return a shipped sample file with `symbol` renamed to the canonical `instrument`."""
    return pl.read_parquet(SAMPLE_DIR / f"{stem}.parquet").rename({"symbol": "instrument"})


@pytest.fixture(scope="session")
def btc_hourly() -> pl.DataFrame:
    return load_sample("binance_BTC-USDT_1h")


@pytest.fixture(scope="session")
def eth_hourly() -> pl.DataFrame:
    return load_sample("binance_ETH-USDT_1h")


@pytest.fixture(scope="session")
def feature_bars(btc_hourly: pl.DataFrame) -> pl.DataFrame:
    return btc_hourly.slice(SAMPLE_OFFSET, SAMPLE_ROWS)
