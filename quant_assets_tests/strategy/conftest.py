"""Fixtures for the strategy tests: shipped BTC/ETH 1h and SPY 1d bars, hand-made bars."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from quant_assets.market.canonical import to_canonical
from quant_assets_tests.hand_bars import Ohlc, hand_bars

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
BTC_KEY = "binance.BTC-USDT.1h"
ETH_KEY = "binance.ETH-USDT.1h"
SPY_KEY = "yahoo.SPY.1d"
# 2021-06 to 2021-10 of the hourly sample (trends, a crash, quiet spells): 3,000 bars.
CRYPTO_START = datetime(2021, 6, 1, tzinfo=UTC)
CRYPTO_BARS = 3_000
SPY_BARS = 2_500  # the last ten years of SPY daily bars

HandBars = Callable[[Sequence[Ohlc]], pl.DataFrame]


def load_bars(stem: str, key: str) -> pl.DataFrame:
    """Return a shipped sample file as canonical bars of instrument `key`."""
    return to_canonical(pl.read_parquet(SAMPLE_DIR / f"{stem}.parquet"), key)


def crypto_slice(bars: pl.DataFrame) -> pl.DataFrame:
    """Return the CRYPTO_BARS bars from CRYPTO_START."""
    return bars.filter(pl.col("ts") >= CRYPTO_START).head(CRYPTO_BARS)


@pytest.fixture(scope="session")
def btc_full() -> pl.DataFrame:
    return load_bars("binance_BTC-USDT_1h", BTC_KEY)


@pytest.fixture(scope="session")
def btc_bars(btc_full: pl.DataFrame) -> pl.DataFrame:
    return crypto_slice(btc_full)


@pytest.fixture(scope="session")
def eth_bars() -> pl.DataFrame:
    return crypto_slice(load_bars("binance_ETH-USDT_1h", ETH_KEY))


@pytest.fixture(scope="session")
def spy_bars() -> pl.DataFrame:
    return load_bars("yahoo_SPY_1d", SPY_KEY).tail(SPY_BARS)


@pytest.fixture(scope="session")
def contract_bars(btc_bars: pl.DataFrame, spy_bars: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {"btc_1h": btc_bars, "spy_1d": spy_bars}


@pytest.fixture
def make_bars() -> HandBars:
    return hand_bars
