"""Shared inputs of the walk-forward tests: shipped BTC/ETH 1h bars and a small spec.

The spec is the example `ema_trend_adx` spec made small: a one-week volatility lookback,
spans that warm up in 168 bars, 1,500-bar train and 400-bar test windows, 10 trials each.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from quant_assets.backtest.walkforward import InMemoryWindowCache
from quant_assets.domain.strategy import StrategySpec
from quant_assets.market.canonical import to_canonical
from quant_assets.strategy.spec_io import load_spec_yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
BTC = "binance.BTC-USDT.1h"
ETH = "binance.ETH-USDT.1h"
START = datetime(2021, 1, 1, tzinfo=UTC)
WARMUP_BARS = 168  # the risk module's volatility lookback, longer than every searched span
TRAIN_BARS, TEST_BARS, EMBARGO_BARS, TRIALS = 1_500, 400, 24, 10
# 168 + 1,500 + 24 + 3 x 400 = 2,892 bars hold three windows; 58 bars are left over.
BASE_BARS = 2_950


def load_sample(key: str, stem: str) -> pl.DataFrame:
    """Return a shipped sample file as canonical bars."""
    return to_canonical(pl.read_parquet(PROJECT_DIR / "data" / "sample" / f"{stem}.parquet"), key)


def sample_bars() -> dict[str, pl.DataFrame]:
    """Return the full BTC and ETH 1h histories."""
    return {
        BTC: load_sample(BTC, "binance_BTC-USDT_1h"),
        ETH: load_sample(ETH, "binance_ETH-USDT_1h"),
    }


def bars_until(bars: Mapping[str, pl.DataFrame], n_bars: int) -> dict[str, pl.DataFrame]:
    """Return each instrument's bars before the `n_bars`-th bar from START."""
    first_ts = bars[BTC].filter(pl.col("ts") >= START)["ts"]
    cut = first_ts[n_bars] if n_bars < first_ts.len() else first_ts[-1] + timedelta(hours=1)
    return {key: frame.filter(pl.col("ts") < cut) for key, frame in bars.items()}


def small_spec(**changes: Any) -> StrategySpec:
    """Return the small spec; `changes` replace top-level fields (as plain data)."""
    example = load_spec_yaml(PROJECT_DIR / "specs" / "ema_trend_adx_btc_eth_1h.yaml")
    data = example.model_dump(mode="json")
    data.update(
        {
            "data": {
                "instruments": [BTC, ETH],
                "timeframe": "1h",
                "start": START.isoformat(),
                "end": "2025-09-01T00:00:00Z",
            },
            "risk": {
                "module": "volatility_target",
                "params": {
                    "target_annual_volatility": 0.4,
                    "lookback_bars": WARMUP_BARS,
                    "max_fraction": 1.0,
                },
            },
            "search_space": {
                "baseline.fast_span_bars": {"low": 5, "high": 20, "kind": "int"},
                "baseline.slow_span_bars": {"low": 50, "high": 120, "kind": "int"},
                "filters.adx_strength.min_adx": {"low": 15.0, "high": 35.0, "kind": "float"},
                "execution.stop_atr": {"low": 1.5, "high": 5.0, "kind": "float"},
            },
            "walk_forward": {
                "train_bars": TRAIN_BARS,
                "test_bars": TEST_BARS,
                "embargo_bars": EMBARGO_BARS,
                "trials_per_window": TRIALS,
                "min_trades": 2,
                "seed": 7,
            },
        }
    )
    data.update(changes)
    return StrategySpec.model_validate(data)


def copied(cache: InMemoryWindowCache, keys: list[str]) -> InMemoryWindowCache:
    """Return a new cache holding `cache`'s results under `keys`."""
    copy = InMemoryWindowCache()
    for key in keys:
        result = cache.get(key)
        assert result is not None
        copy.put(key, result)
    return copy
