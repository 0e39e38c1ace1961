"""The base feature slice every strategy reuses: returns, ATR, realized volatility, regimes."""

from typing import Final

import polars as pl

from quant_assets.domain.ids import digest_of
from quant_assets.features.regimes import regime_label
from quant_assets.features.volatility import average_true_range, log_return, realized_volatility

# Bump when the slice's columns or their definitions change: stored slices then recompute.
BASE_SLICE_VERSION: Final = "1"


def base_feature_exprs() -> list[pl.Expr]:
    """Return the base features, named without parameters for stable column names."""
    return [
        log_return().alias("log_return"),
        average_true_range(lookback_bars=14).alias("atr_14"),
        realized_volatility(lookback_bars=24).alias("realized_volatility_24"),
        regime_label().alias("regime"),
    ]


def base_feature_slice(bars: pl.DataFrame) -> pl.DataFrame:
    """Return ts plus the base features of one instrument's canonical bars (sorted by ts)."""
    return bars.sort("ts").select("ts", *base_feature_exprs())


def slice_input_digest(bars_digest: str) -> str:
    """Return the version of a slice computed from bars whose manifest digest is `bars_digest`."""
    return digest_of([f"base_slice_v{BASE_SLICE_VERSION}", bars_digest])
