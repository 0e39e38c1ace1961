"""Breakout and momentum baselines: Donchian, Keltner, SuperTrend and time-series momentum."""

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from quant_assets.domain.strategy import ModuleRole
from quant_assets.features import oscillators, trend, volatility
from quant_assets.strategy.baselines.signals import left_state, sides, state_changes
from quant_assets.strategy.modules import (
    Baseline,
    BaselineSignals,
    ParamDef,
    feature_arrays,
    float_def,
    int_def,
)


class DonchianBreakoutBaseline(Baseline):
    """Trade Turtle breakouts of the prior N-bar high / low, exiting on a shorter channel.

    Hypothesis: a close beyond the range of the last N bars starts a trend worth riding until a
    shorter counter-breakout. Source: the Turtle rules (Richard Dennis, 1983; Curtis Faith, "Way
    of the Turtle", 2007): long when the close is above the prior entry-lookback high, short
    below the prior low; exit a long when the close is below the prior exit-lookback low (a
    short above the prior exit-lookback high). "Prior" excludes the signal bar itself.
    """

    name = "donchian_breakout"
    role = ModuleRole.BASELINE
    description = "Turtle breakout of the prior N-bar high/low, exit on the prior M-bar channel."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "entry_lookback_bars": int_def(55, 5, 300, "Channel length of the entry breakout."),
        "exit_lookback_bars": int_def(20, 2, 200, "Channel length of the exit."),
    }

    def warmup_bars(self) -> int:
        """Return the entry lookback: the prior channel needs that many earlier bars."""
        return self.int_param("entry_lookback_bars")

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return breakout entries and the side-specific channel exits."""
        entry_upper, entry_lower, _ = volatility.donchian_channels(
            lookback_bars=self.int_param("entry_lookback_bars")
        )
        exit_upper, exit_lower, _ = volatility.donchian_channels(
            lookback_bars=self.int_param("exit_lookback_bars")
        )
        close, entry_high, entry_low, exit_high, exit_low = feature_arrays(
            bars,
            [
                pl.col("close"),
                entry_upper.shift(1).alias("entry_high"),
                entry_lower.shift(1).alias("entry_low"),
                exit_upper.shift(1).alias("exit_high"),
                exit_lower.shift(1).alias("exit_low"),
            ],
        )
        return BaselineSignals(
            sides(close > entry_high, close < entry_low),
            long_exits=close < exit_low,
            short_exits=close > exit_high,
        )


class KeltnerBreakoutBaseline(Baseline):
    """Go long above the upper Keltner channel, short below the lower; exit at the middle line.

    Hypothesis: a close more than k ATRs away from its EMA is a volatility breakout that
    continues. Source: Chester Keltner (1960), in Linda Raschke's EMA/ATR form.
    """

    name = "keltner_breakout"
    role = ModuleRole.BASELINE
    description = "Close beyond the Keltner channel (EMA +/- k ATR); exit back at the EMA."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "span_bars": int_def(20, 5, 300, "EMA span of the middle line."),
        "atr_bars": int_def(10, 3, 100, "ATR length."),
        "width_atr": float_def(2.0, 0.5, 6.0, "Channel half-width in ATRs."),
    }

    def warmup_bars(self) -> int:
        """Return the first bar with both the EMA (span - 1) and the ATR (atr_bars)."""
        return max(self.int_param("span_bars") - 1, self.int_param("atr_bars"))

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return channel-breakout entries and exits at the middle line."""
        middle_expr, upper_expr, lower_expr = volatility.keltner_channels(
            span_bars=self.int_param("span_bars"),
            atr_bars=self.int_param("atr_bars"),
            width_atr=self.float_param("width_atr"),
        )
        close, middle, upper, lower = feature_arrays(
            bars, [pl.col("close"), middle_expr, upper_expr, lower_expr]
        )
        return BaselineSignals(
            sides(close > upper, close < lower),
            long_exits=close < middle,
            short_exits=close > middle,
        )


class SupertrendBaseline(Baseline):
    """Go long when SuperTrend turns up, short when it turns down.

    Hypothesis: an ATR-band trailing line filters noise from trend changes. Source: Olivier
    Seban's SuperTrend (TradingView's `ta.supertrend`); direction starts down on its first bar.
    """

    name = "supertrend"
    role = ModuleRole.BASELINE
    description = "SuperTrend direction flips; always in the market."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "atr_bars": int_def(10, 3, 100, "ATR length."),
        "multiplier": float_def(3.0, 0.5, 8.0, "Band distance in ATRs."),
    }

    def warmup_bars(self) -> int:
        """Return atr_bars + 1: the direction starts on bar atr_bars and a flip needs two."""
        return self.int_param("atr_bars") + 1

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return the new direction on each bar where it flips."""
        _, direction_expr = trend.supertrend(
            atr_bars=self.int_param("atr_bars"), multiplier=self.float_param("multiplier")
        )
        (direction,) = feature_arrays(bars, [direction_expr])
        return BaselineSignals(state_changes(direction))


class TsmomBaseline(Baseline):
    """Hold the side of the volatility-scaled trailing move while it is beyond the threshold.

    Hypothesis: an asset's own past return predicts its next one (time-series momentum).
    Source: Moskowitz, Ooi and Pedersen, "Time Series Momentum" (JFE 2012). The state is +1 when
    the trailing log move over the lookback, in standard deviations of that horizon, is above
    `threshold`, -1 below -threshold, else 0; entries on each change into +1 / -1 and exits when
    the state leaves the held side. Volatility uses the same lookback as the move.
    """

    name = "tsmom"
    role = ModuleRole.BASELINE
    description = "Time-series momentum: side of the vol-scaled trailing move, on state changes."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(168, 10, 5000, "Momentum horizon (and volatility window)."),
        "threshold": float_def(0.0, 0.0, 3.0, "Move, in horizon standard deviations, to act."),
    }

    def warmup_bars(self) -> int:
        """Return lookback + 1: the momentum starts on bar lookback and a change needs two."""
        return self.int_param("lookback_bars") + 1

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return entries on changes of the momentum state and exits when it leaves a side."""
        lookback = self.int_param("lookback_bars")
        (momentum,) = feature_arrays(
            bars,
            [
                oscillators.time_series_momentum(
                    lookback_bars=lookback, volatility_lookback_bars=lookback
                )
            ],
        )
        threshold = self.float_param("threshold")
        state = np.where(momentum > threshold, 1.0, np.where(momentum < -threshold, -1.0, 0.0))
        state[np.isnan(momentum)] = np.nan
        return BaselineSignals(
            state_changes(state),
            long_exits=left_state(state, 1.0),
            short_exits=left_state(state, -1.0),
        )
