"""Trend filters: ADX trend strength and the higher-timeframe trend."""

from collections.abc import Mapping
from functools import lru_cache
from typing import ClassVar, Final

import numpy as np
import polars as pl

from quant_assets.domain.arrays import BoolArray, Int8Array
from quant_assets.domain.strategy import ModuleRole
from quant_assets.features import moving_averages, trend
from quant_assets.features.resample import join_closed, resample_closed
from quant_assets.strategy.modules import (
    Filter,
    ParamDef,
    bar_timeframe,
    choice_def,
    feature_arrays,
    float_def,
    int_def,
)

# Timeframe labels of the filter -> resample labels (Timeframe knows m/h/d; a week is 7d,
# epoch-aligned, so weekly bars open on Thursdays 00:00 UTC).
_RESAMPLE_LABELS: Final = {"4h": "4h", "1d": "1d", "1w": "7d"}
_OHLCV: Final = ("ts", "open", "high", "low", "close", "volume")


class AdxStrengthFilter(Filter):
    """Pass candidates only while ADX says the market trends.

    Hypothesis: trend entries fail in ranges; ADX >= ~20-25 marks a trend. Source: J. Welles
    Wilder, "New Concepts in Technical Trading Systems" (1978); TA-Lib's ADX, first value on bar
    2 * lookback - 1.
    """

    name = "adx_strength"
    role = ModuleRole.FILTER
    description = "Pass when ADX >= min_adx (the market is trending)."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(14, 5, 100, "Wilder smoothing length of ADX."),
        "min_adx": float_def(20.0, 5.0, 60.0, "Lowest ADX (0..100) that passes."),
    }

    def warmup_bars(self) -> int:
        """Return 2 * lookback - 1, the first bar with an ADX value."""
        return 2 * self.int_param("lookback_bars") - 1

    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return whether ADX is at or above min_adx on each bar (False in warm-up)."""
        (adx,) = feature_arrays(bars, [_adx_expression(self.int_param("lookback_bars"))])
        return np.asarray(adx >= self.float_param("min_adx"))


@lru_cache(maxsize=128)
def _adx_expression(lookback_bars: int) -> pl.Expr:
    # Building the ADX expression costs more than a parameter-search trial's backtest; an
    # expression is immutable, so every call with one lookback can share it.
    adx, _, _ = trend.directional_movement(lookback_bars=lookback_bars)
    return adx


class HigherTimeframeTrendFilter(Filter):
    """Pass longs above, and shorts below, the higher-timeframe EMA of the last closed bar.

    Hypothesis: entries in the direction of the higher-timeframe trend work better (Alexander
    Elder's "Triple Screen", 1986). Higher bars are built from closed bars only and a value is
    visible from the first bar opening at or after its higher bar's close
    (`features.resample.resample_closed` and `join_closed`); the EMA is SMA-seeded.

    Warm-up: the EMA needs `span_bars` closed higher bars; `warmup_bars()` returns span_bars,
    which is exact when the bars already have the filter's timeframe and a lower bound
    otherwise (on 1h bars with timeframe 1d the filter rejects for up to 24 * span_bars bars).
    """

    name = "higher_timeframe_trend"
    role = ModuleRole.FILTER
    description = "Pass in the direction of the last closed higher-timeframe bar vs its EMA."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "timeframe": choice_def("1d", tuple(_RESAMPLE_LABELS), "The higher bar length."),
        "span_bars": int_def(20, 2, 200, "EMA span, in higher-timeframe bars."),
    }

    def warmup_bars(self) -> int:
        """Return span_bars (exact on bars of the filter's timeframe, else a lower bound)."""
        return self.int_param("span_bars")

    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return per bar whether the candidate's side agrees with the higher-timeframe trend.

        Raises:
            SpecValidationError: if the timeframe is not a whole multiple of the bars' one.
        """
        bar = bar_timeframe(bars)
        if bar is None or bars.height == 0:
            return np.zeros(bars.height, dtype=np.bool_)
        label = _RESAMPLE_LABELS[self.choice_param("timeframe")]
        higher = resample_closed(bars.select(_OHLCV), timeframe=label, bar_timeframe=bar.label)
        higher = higher.select(
            "ts",
            pl.col("close"),
            moving_averages.ema(span_bars=self.int_param("span_bars")).alias("ema"),
        )
        joined = join_closed(bars.select("ts"), higher, timeframe=label, suffix="_higher")
        close, ema = feature_arrays(joined, [pl.col("close_higher"), pl.col("ema_higher")])
        return np.where(entries > 0, close > ema, np.where(entries < 0, close < ema, False))
