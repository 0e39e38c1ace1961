"""Executions expressed as ExitRules rates: signal exits only, fixed stop/target, trailing, time."""

from collections.abc import Mapping
from typing import ClassVar, Final

import polars as pl

from quant_assets.domain.backtest import ExitRules, StopsFrom
from quant_assets.domain.strategy import ModuleRole
from quant_assets.strategy.modules import (
    Execution,
    ExitPlan,
    ParamDef,
    choice_def,
    float_def,
    int_def,
)

STOPS_FROM: Final[ParamDef] = choice_def(
    StopsFrom.ENTRY_BAR.value,
    tuple(member.value for member in StopsFrom),
    "First bar whose range can trigger the exit: the entry bar itself or the one after.",
)


class SignalExitOnlyExecution(Execution):
    """Exit only on the baseline's exits and reversals: no stop, target or time limit.

    Hypothesis: the baseline's own exit rule is the whole strategy (the pure form of a
    crossover or breakout system, as published).
    """

    name = "signal_exit_only"
    role = ModuleRole.EXECUTION
    description = "No stops; positions close on baseline exits and reversals only."

    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return the plan with no engine-managed exits."""
        return ExitPlan()


class FixedStopTargetExecution(Execution):
    """Exit at a fixed stop-loss and take-profit, as fractions of the entry price.

    Hypothesis: capping each loss and banking gains at a set reward/risk ratio improves the
    baseline's payoff (bracket orders). Levels are checked intrabar, stop first (DESIGN.md).
    """

    name = "fixed_stop_target"
    role = ModuleRole.EXECUTION
    description = "Stop-loss and take-profit at fixed rates of the entry price."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "stop_loss_rate": float_def(0.02, 0.002, 0.5, "Stop distance / entry price."),
        "take_profit_rate": float_def(0.04, 0.002, 2.0, "Target distance / entry price."),
        "stops_from": STOPS_FROM,
    }

    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return the plan with the fixed stop and target rates."""
        return ExitPlan(
            rules=ExitRules(
                stop_loss_rate=self.float_param("stop_loss_rate"),
                take_profit_rate=self.float_param("take_profit_rate"),
                stops_from=StopsFrom(self.choice_param("stops_from")),
            )
        )


class TrailingPctExecution(Execution):
    """Exit on a trailing stop a fixed fraction below the best price since entry (above, short).

    Hypothesis: letting winners run while locking in a share of the move beats a fixed target.
    The anchor starts at the fill price and follows each bar's high (low) after that bar's check.
    """

    name = "trailing_pct"
    role = ModuleRole.EXECUTION
    description = "Percent trailing stop from the best price since entry."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "trailing_stop_rate": float_def(0.03, 0.002, 0.5, "Trailing distance / anchor price."),
        "stops_from": STOPS_FROM,
    }

    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return the plan with the trailing stop rate."""
        return ExitPlan(
            rules=ExitRules(
                trailing_stop_rate=self.float_param("trailing_stop_rate"),
                stops_from=StopsFrom(self.choice_param("stops_from")),
            )
        )


class TimeExitExecution(Execution):
    """Exit a fixed number of bars after the entry fill.

    Hypothesis: the baseline's edge decays after N bars (short-horizon return predictability),
    so holding longer only adds noise. `stops_from` is accepted for uniformity; a time exit
    counts bars from the entry fill either way.
    """

    name = "time_exit"
    role = ModuleRole.EXECUTION
    description = "Close each position N bars after its entry fill."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "max_bars_in_trade": int_def(48, 1, 5000, "Bars from the entry fill to the exit fill."),
        "stops_from": STOPS_FROM,
    }

    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return the plan with the time exit."""
        return ExitPlan(
            rules=ExitRules(
                max_bars_in_trade=self.int_param("max_bars_in_trade"),
                stops_from=StopsFrom(self.choice_param("stops_from")),
            )
        )
