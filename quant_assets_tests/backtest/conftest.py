"""Fixtures for the backtest tests: shipped BTC bars and hand-made bar sequences."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from quant_assets.market.canonical import to_canonical

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
BTC_1H_INSTRUMENT = "binance.BTC-USDT.1h"
HAND_BARS_START = datetime(2024, 1, 1, tzinfo=UTC)

Ohlc = tuple[float, float, float, float]
BarsFactory = Callable[[Sequence[Ohlc]], pl.DataFrame]


def hand_bars(rows: Sequence[Ohlc], *, spacing: timedelta = timedelta(hours=1)) -> pl.DataFrame:
    """Return canonical bars from (open, high, low, close) rows, one per hour from 2024-01-01."""
    frame = pl.DataFrame(
        {
            "ts": [HAND_BARS_START + spacing * index for index in range(len(rows))],
            "open": [row[0] for row in rows],
            "high": [row[1] for row in rows],
            "low": [row[2] for row in rows],
            "close": [row[3] for row in rows],
            "volume": [1.0] * len(rows),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    return to_canonical(frame, "test.HAND.1h")


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
