"""Fixtures for the backtest tests: shipped BTC bars and hand-made bar sequences."""

from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl
import pytest

from quant_assets.market.canonical import to_canonical
from quant_assets_tests.hand_bars import Ohlc, hand_bars

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
BTC_1H_INSTRUMENT = "binance.BTC-USDT.1h"

BarsFactory = Callable[[Sequence[Ohlc]], pl.DataFrame]


@pytest.fixture(scope="session")
def btc_1h_bars() -> pl.DataFrame:
    """Return the shipped Binance BTC-USDT 1h history (67,078 bars) as canonical bars."""
    raw = pl.read_parquet(SAMPLE_DIR / "binance_BTC-USDT_1h.parquet")
    # to_canonical replaces the file's `symbol` column by `instrument` = the instrument key.
    return to_canonical(raw, BTC_1H_INSTRUMENT)


@pytest.fixture
def make_bars() -> BarsFactory:
    """Return a factory of hourly canonical bars from (open, high, low, close) rows."""
    return hand_bars
