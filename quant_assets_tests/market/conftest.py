"""Fixtures for the market tests: shipped Binance bars and a local Binance stub serving them."""

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from quant_assets_tests.stubs.binance_stub import BinanceStub

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"


@pytest.fixture(scope="session")
def shipped_binance_bars() -> dict[str, pl.DataFrame]:
    """Return the shipped Binance 1h bars per ccxt symbol (BTC/USDT, ETH/USDT)."""
    return {
        f"{base}/USDT": pl.read_parquet(SAMPLE_DIR / f"binance_{base}-USDT_1h.parquet")
        for base in ("BTC", "ETH")
    }


@pytest.fixture
def exchange_stub(shipped_binance_bars: dict[str, pl.DataFrame]) -> Iterator[BinanceStub]:
    """Yield a running Binance stub on 127.0.0.1 serving the shipped bars, 100 rows per page."""
    with BinanceStub(shipped_binance_bars, interval="1h", page_cap=100) as stub:
        yield stub
