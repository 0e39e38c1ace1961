"""Mean-reversion baselines: Bollinger bands, Connors RSI and the rolling z-score."""

from collections.abc import Mapping
from typing import ClassVar

import polars as pl

from quant_assets.domain.strategy import ModuleRole, ParamValue
from quant_assets.features import moving_averages, oscillators, volatility
from quant_assets.strategy.baselines.signals import crossed_above, crossed_below, sides
from quant_assets.strategy.modules import (
    Baseline,
    BaselineSignals,
    ParamDef,
    feature_arrays,
    float_def,
    int_def,
)


class BollingerReversionBaseline(Baseline):
    """Fade closes outside the Bollinger bands once price comes back inside; exit at the mean.

    Hypothesis: moves beyond k standard deviations of the recent mean overshoot and revert.
    Source: John Bollinger, "Bollinger on Bollinger Bands" (2001). Long when the close crosses
    back above the lower band, short when it crosses back below the upper band; a long exits
    once the close is at or above the middle band, a short at or below it.
    """

    name = "bollinger_reversion"
    role = ModuleRole.BASELINE
    description = "Re-entry into the Bollinger bands from outside; exit at the middle band."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(20, 5, 300, "Window of the mean and standard deviation."),
        "width_stdevs": float_def(2.0, 0.5, 4.0, "Band distance in standard deviations."),
    }

    def warmup_bars(self) -> int:
        """Return the lookback: bands start on bar lookback - 1 and a cross needs two bars."""
        return self.int_param("lookback_bars")

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return band re-entry entries and middle-band exits."""
        middle_expr, upper_expr, lower_expr, _ = volatility.bollinger_bands(
            lookback_bars=self.int_param("lookback_bars"),
            width_stdevs=self.float_param("width_stdevs"),
        )
        close, middle, upper, lower = feature_arrays(
            bars, [pl.col("close"), middle_expr, upper_expr, lower_expr]
        )
        return BaselineSignals(
            sides(crossed_above(close, lower), crossed_below(close, upper)),
            long_exits=close >= middle,
            short_exits=close <= middle,
        )


class RsiReversionBaseline(Baseline):
    """Buy short-term oversold dips in an uptrend, sell overbought rallies in a downtrend.

    Hypothesis: short pullbacks inside a long trend revert. Source: Larry Connors and Cesar
    Alvarez, "Short Term Trading Strategies That Work" (2008), RSI(2) with a 200-bar SMA trend
    filter. Long when RSI < oversold and the close is above the trend SMA; short when
    RSI > overbought and the close is below it; a long exits once RSI is back above 50 and a
    short once it is back below 50 (the cross of 50 after the entry).
    """

    name = "rsi_reversion"
    role = ModuleRole.BASELINE
    description = "Connors RSI pullbacks with an SMA trend filter; exit when RSI crosses 50."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(2, 2, 50, "RSI length."),
        "oversold": float_def(10.0, 1.0, 50.0, "RSI level below which a long is taken."),
        "overbought": float_def(90.0, 50.0, 99.0, "RSI level above which a short is taken."),
        "trend_window_bars": int_def(200, 20, 500, "Window of the trend SMA."),
    }

    def warmup_bars(self) -> int:
        """Return the first bar with both RSI (lookback) and the trend SMA (window - 1)."""
        return max(self.int_param("lookback_bars"), self.int_param("trend_window_bars") - 1)

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return trend-aligned RSI extremes as entries and RSI back through 50 as exits."""
        close, rsi, trend = feature_arrays(
            bars,
            [
                pl.col("close"),
                oscillators.rsi(lookback_bars=self.int_param("lookback_bars")).alias("rsi"),
                moving_averages.sma(span_bars=self.int_param("trend_window_bars")).alias("trend"),
            ],
        )
        long = (rsi < self.float_param("oversold")) & (close > trend)
        short = (rsi > self.float_param("overbought")) & (close < trend)
        return BaselineSignals(sides(long, short), long_exits=rsi > 50.0, short_exits=rsi < 50.0)


class ZscoreReversionBaseline(Baseline):
    """Fade closes far from their rolling mean; exit once the z-score is back near zero.

    Hypothesis: deviations of more than entry_z standard deviations revert. Source: the
    statistical-arbitrage z-score rule (Gatev, Goetzmann and Rouwenhorst, "Pairs Trading", 2006)
    applied to one price. Short when z > entry_z, long when z < -entry_z; a long exits once
    z >= -exit_z and a short once z <= exit_z (both when |z| <= exit_z).
    """

    name = "zscore_reversion"
    role = ModuleRole.BASELINE
    description = "Rolling z-score of the close beyond +/- entry_z; exit inside +/- exit_z."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(48, 5, 500, "Window of the mean and standard deviation."),
        "entry_z": float_def(2.0, 0.5, 4.0, "Distance from the mean, in stdevs, to enter."),
        "exit_z": float_def(0.0, 0.0, 2.0, "Distance from the mean, in stdevs, to exit."),
    }

    def __init__(self, **values: ParamValue) -> None:
        super().__init__(**values)
        self.require_below(
            "exit_z", "entry_z", "choose an exit band inside the entry band (exit_z < entry_z)"
        )

    def warmup_bars(self) -> int:
        """Return lookback - 1: the z-score starts there and the rules read one bar."""
        return self.int_param("lookback_bars") - 1

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return z-score extremes as entries and the exit band as side-specific exits."""
        (zscore,) = feature_arrays(
            bars, [oscillators.zscore(lookback_bars=self.int_param("lookback_bars"))]
        )
        entry_z, exit_z = self.float_param("entry_z"), self.float_param("exit_z")
        return BaselineSignals(
            sides(zscore < -entry_z, zscore > entry_z),
            long_exits=zscore >= -exit_z,
            short_exits=zscore <= exit_z,
        )
