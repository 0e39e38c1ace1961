"""Crossover baselines: moving-average crosses, MACD, TrendFlex and Aroon threshold crosses.

All are always-in-market trend followers: each cross is an entry that reverses the position,
and none gives separate exits (the opposite cross is the exit).
"""

from collections.abc import Mapping
from typing import ClassVar

import polars as pl

from quant_assets.domain.strategy import ModuleRole, ParamValue
from quant_assets.features import moving_averages, oscillators, trend
from quant_assets.strategy.baselines.signals import crossed_above, crossed_below, sides
from quant_assets.strategy.indicator_arrays import ema_array
from quant_assets.strategy.modules import (
    Baseline,
    BaselineSignals,
    ParamDef,
    feature_arrays,
    float_def,
    int_def,
)


class EmaCrossBaseline(Baseline):
    """Go long when the fast EMA crosses above the slow one, short when it crosses below.

    Hypothesis: trends persist, so a short average leaving a long one marks a new trend.
    Source: the dual moving-average crossover (Donchian 1960s; Brock, Lakonishok and LeBaron
    1992). EMAs are seeded with the SMA of their first span (TA-Lib), so the slow EMA starts on
    bar slow - 1 and the first cross can be decided on bar slow.
    """

    name = "ema_cross"
    role = ModuleRole.BASELINE
    description = "Fast/slow EMA crossover; always in the market, reversing on each cross."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "fast_span_bars": int_def(10, 2, 200, "Span of the fast EMA."),
        "slow_span_bars": int_def(50, 5, 500, "Span of the slow EMA."),
    }

    def __init__(self, **values: ParamValue) -> None:
        super().__init__(**values)
        self.require_below(
            "fast_span_bars", "slow_span_bars", "choose a fast span shorter than the slow span"
        )

    def warmup_bars(self) -> int:
        """Return the slow span: its EMA starts on bar slow - 1 and a cross needs one more."""
        return self.int_param("slow_span_bars")

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return +1 / -1 on the bars where the fast EMA crosses above / below the slow one."""
        # `moving_averages.ema`'s values without a polars call per span (a search tries many).
        fast = ema_array(bars, span_bars=self.int_param("fast_span_bars"))
        slow = ema_array(bars, span_bars=self.int_param("slow_span_bars"))
        return BaselineSignals(sides(crossed_above(fast, slow), crossed_below(fast, slow)))


class SmaCrossBaseline(Baseline):
    """Go long when the fast SMA crosses above the slow one, short when it crosses below.

    Hypothesis and source as `ema_cross` (the classic 50/200-day "golden cross" uses SMAs).
    """

    name = "sma_cross"
    role = ModuleRole.BASELINE
    description = "Fast/slow SMA crossover; always in the market, reversing on each cross."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "fast_window_bars": int_def(20, 2, 200, "Window of the fast SMA."),
        "slow_window_bars": int_def(100, 5, 500, "Window of the slow SMA."),
    }

    def __init__(self, **values: ParamValue) -> None:
        super().__init__(**values)
        self.require_below(
            "fast_window_bars",
            "slow_window_bars",
            "choose a fast window shorter than the slow window",
        )

    def warmup_bars(self) -> int:
        """Return the slow window: its SMA starts on bar slow - 1 and a cross needs one more."""
        return self.int_param("slow_window_bars")

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return +1 / -1 on the bars where the fast SMA crosses above / below the slow one."""
        fast, slow = feature_arrays(
            bars,
            [
                moving_averages.sma(span_bars=self.int_param("fast_window_bars")).alias("fast"),
                moving_averages.sma(span_bars=self.int_param("slow_window_bars")).alias("slow"),
            ],
        )
        return BaselineSignals(sides(crossed_above(fast, slow), crossed_below(fast, slow)))


class MacdTrendBaseline(Baseline):
    """Go long when the MACD line crosses above its signal line, short when it crosses below.

    Hypothesis: momentum turns before price trends do. Source: Gerald Appel, "The Moving
    Average Convergence-Divergence Trading Method" (1979); TA-Lib's MACD seeds, so the signal
    line starts on bar slow + signal - 2.
    """

    name = "macd_trend"
    role = ModuleRole.BASELINE
    description = "MACD line / signal line crossover; always in the market."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "fast_span_bars": int_def(12, 2, 50, "Span of the fast EMA."),
        "slow_span_bars": int_def(26, 5, 200, "Span of the slow EMA."),
        "signal_span_bars": int_def(9, 2, 50, "Span of the signal line (EMA of the MACD line)."),
    }

    def __init__(self, **values: ParamValue) -> None:
        super().__init__(**values)
        self.require_below(
            "fast_span_bars", "slow_span_bars", "choose a fast span shorter than the slow span"
        )

    def warmup_bars(self) -> int:
        """Return slow + signal - 1: the signal line starts a bar earlier, a cross needs two."""
        return self.int_param("slow_span_bars") + self.int_param("signal_span_bars") - 1

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return +1 / -1 where the MACD line crosses above / below its signal line."""
        line_expr, signal_expr, _ = oscillators.macd(
            fast_span_bars=self.int_param("fast_span_bars"),
            slow_span_bars=self.int_param("slow_span_bars"),
            signal_span_bars=self.int_param("signal_span_bars"),
        )
        line, signal = feature_arrays(bars, [line_expr, signal_expr])
        return BaselineSignals(sides(crossed_above(line, signal), crossed_below(line, signal)))


class TrendflexBaseline(Baseline):
    """Go long when TrendFlex crosses above +threshold, short when it crosses below -threshold.

    Hypothesis: a trend indicator with little lag catches trend starts early. Source: John
    Ehlers, "Reflex: A New Zero-Lag Indicator" (TASC, February 2020).
    """

    name = "trendflex"
    role = ModuleRole.BASELINE
    description = "Ehlers TrendFlex crossing +/- a threshold; reverses on the opposite cross."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(20, 5, 200, "TrendFlex length."),
        "threshold": float_def(0.5, 0.0, 3.0, "Level (in TrendFlex units) a cross must pass."),
    }

    def warmup_bars(self) -> int:
        """Return lookback + 1: TrendFlex starts on bar lookback and a cross needs two bars."""
        return self.int_param("lookback_bars") + 1

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return +1 on crosses above +threshold and -1 on crosses below -threshold."""
        (value,) = feature_arrays(
            bars, [trend.trendflex(lookback_bars=self.int_param("lookback_bars"))]
        )
        threshold = self.float_param("threshold")
        return BaselineSignals(
            sides(crossed_above(value, threshold), crossed_below(value, -threshold))
        )


class AroonTrendBaseline(Baseline):
    """Go long when the Aroon oscillator crosses above +threshold, short below -threshold.

    Hypothesis: a recent new high (low) with no recent new low (high) starts a trend. Source:
    Tushar Chande, "Aroon" (1995); TA-Lib's window of lookback + 1 bars.
    """

    name = "aroon_trend"
    role = ModuleRole.BASELINE
    description = "Aroon oscillator crossing +/- a threshold; reverses on the opposite cross."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(25, 5, 200, "Aroon look-back."),
        "threshold": float_def(50.0, 0.0, 100.0, "Oscillator level (0..100) a cross must pass."),
    }

    def warmup_bars(self) -> int:
        """Return lookback + 1: Aroon starts on bar lookback and a cross needs two bars."""
        return self.int_param("lookback_bars") + 1

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return +1 on crosses above +threshold and -1 on crosses below -threshold."""
        _, _, oscillator_expr = oscillators.aroon(lookback_bars=self.int_param("lookback_bars"))
        (oscillator,) = feature_arrays(bars, [oscillator_expr])
        threshold = self.float_param("threshold")
        return BaselineSignals(
            sides(crossed_above(oscillator, threshold), crossed_below(oscillator, -threshold))
        )
