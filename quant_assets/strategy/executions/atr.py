"""Executions with per-bar ATR distances: ATR stop/target and the chandelier trailing stop."""

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from quant_assets.domain.arrays import FloatArray
from quant_assets.domain.backtest import ExitRules, StopsFrom
from quant_assets.domain.strategy import ModuleRole
from quant_assets.features import volatility
from quant_assets.strategy.executions.fixed import STOPS_FROM
from quant_assets.strategy.modules import (
    Execution,
    ExitPlan,
    ParamDef,
    feature_arrays,
    float_def,
    int_def,
)


def _atr(bars: pl.DataFrame, atr_bars: int) -> FloatArray:
    # Wilder ATR (TA-Lib seed), first value on bar atr_bars. A zero ATR (a flat stretch) gives
    # no usable distance: NaN rejects the entry instead of placing a stop at the entry price.
    (atr,) = feature_arrays(bars, [volatility.average_true_range(lookback_bars=atr_bars)])
    atr[~(atr > 0.0)] = np.nan
    return atr


class AtrStopExecution(Execution):
    """Exit at a stop and a target set in multiples of the ATR at the signal bar.

    Hypothesis: risk scales with volatility, so stops should too (Wilder 1978; the Turtles'
    2N stop). Distances are fixed from the signal bar's ATR and measured from the entry fill.
    """

    name = "atr_stops"
    role = ModuleRole.EXECUTION
    description = "Stop-loss and take-profit at multiples of the signal bar's ATR."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "atr_bars": int_def(14, 3, 100, "ATR length."),
        "stop_atr": float_def(2.0, 0.25, 10.0, "Stop distance in ATRs."),
        "target_atr": float_def(4.0, 0.25, 20.0, "Target distance in ATRs."),
        "stops_from": STOPS_FROM,
    }

    def warmup_bars(self) -> int:
        """Return atr_bars, the first bar with an ATR."""
        return self.int_param("atr_bars")

    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return per-bar stop and target distances (NaN in warm-up)."""
        atr = _atr(bars, self.int_param("atr_bars"))
        return ExitPlan(
            rules=ExitRules(stops_from=StopsFrom(self.choice_param("stops_from"))),
            stop_loss_distance=self.float_param("stop_atr") * atr,
            take_profit_distance=self.float_param("target_atr") * atr,
        )


class ChandelierExecution(Execution):
    """Exit on a trailing stop a multiple of the ATR below the highest high since entry.

    Hypothesis: a volatility-sized trailing stop keeps a trend trade until a real reversal.
    Source: Chuck LeBeau's chandelier exit (Alexander Elder, "Come into My Trading Room", 2002);
    the distance is fixed from the signal bar's ATR.
    """

    name = "chandelier"
    role = ModuleRole.EXECUTION
    description = "Trailing stop at multiplier x ATR from the best price since entry."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "atr_bars": int_def(22, 3, 100, "ATR length."),
        "multiplier": float_def(3.0, 0.5, 10.0, "Trailing distance in ATRs."),
        "stops_from": STOPS_FROM,
    }

    def warmup_bars(self) -> int:
        """Return atr_bars, the first bar with an ATR."""
        return self.int_param("atr_bars")

    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return per-bar trailing distances (NaN in warm-up)."""
        atr = _atr(bars, self.int_param("atr_bars"))
        return ExitPlan(
            rules=ExitRules(stops_from=StopsFrom(self.choice_param("stops_from"))),
            trailing_distance=self.float_param("multiplier") * atr,
        )
