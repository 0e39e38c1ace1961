"""The module contract: Baseline, Filter, Execution and Risk, with typed, bounded parameters.

Modules produce numpy arrays from closed bars; the kernel is the only per-bar loop that trades.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
import polars as pl

from quant_assets.domain.arrays import BoolArray, FloatArray, Int8Array
from quant_assets.domain.backtest import ExitRules
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import ModuleRole, ParamValue


@dataclass(frozen=True)
class ParamDef:
    """One parameter of a module: its kind, inclusive bounds (or choices) and default."""

    kind: Literal["int", "float", "bool", "choice"]
    default: ParamValue
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    description: str = ""


class StrategyModule(ABC):
    """A registered, parameterised building block of a strategy."""

    name: ClassVar[str]
    role: ClassVar[ModuleRole]
    description: ClassVar[str]
    params: ClassVar[Mapping[str, ParamDef]] = {}

    def __init__(self, **values: ParamValue) -> None:
        self.values: dict[str, ParamValue] = resolve_params(type(self), values)

    def warmup_bars(self) -> int:
        """Return how many leading bars the module needs before its output is meaningful."""
        return 0


@dataclass(frozen=True)
class BaselineSignals:
    """Entry candidates (+1 long, -1 short, 0 none; decided at each bar's close) and exits."""

    entries: Int8Array
    exits: Int8Array | None = None


class Baseline(StrategyModule):
    """Proposes entry candidates per bar and optional signal exits."""

    @abstractmethod
    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return per-bar entry candidates (and exits) from closed bars only."""


class Filter(StrategyModule):
    """Passes or rejects each entry candidate (a rejection is recorded with the filter's name)."""

    @abstractmethod
    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return per bar whether a candidate on that bar may proceed (True = pass)."""


@dataclass(frozen=True)
class ExitPlan:
    """How a position is managed after entry, as kernel parameters and per-bar arrays."""

    rules: ExitRules = field(default_factory=ExitRules)
    stop_loss_distance: FloatArray | None = None
    take_profit_distance: FloatArray | None = None
    trailing_distance: FloatArray | None = None
    use_signal_exits: bool = True
    allow_reversal: bool = True


class Execution(StrategyModule):
    """Decides how positions are exited (stops, targets, trailing, time, signals, reversals)."""

    @abstractmethod
    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return the exit plan for these bars."""


class Risk(StrategyModule):
    """Approves and sizes each entry as a fraction of equity (0 rejects it)."""

    @abstractmethod
    def sizes(self, bars: pl.DataFrame, entries: Int8Array) -> FloatArray:
        """Return per-bar target size as a fraction of equity in [0, 1]."""


def resolve_params(
    module: type[StrategyModule], values: Mapping[str, ParamValue]
) -> dict[str, ParamValue]:
    """Return the module's full parameter values: defaults overlaid by `values`, checked.

    Raises:
        SpecValidationError: naming the module, the parameter, the value, the rule and the fix.
    """
    unknown = sorted(set(values) - set(module.params))
    if unknown:
        raise SpecValidationError(
            f"{module.role.value} '{module.name}': unknown parameter(s) {unknown}; "
            f"its parameters are {sorted(module.params)}"
        )
    resolved: dict[str, ParamValue] = {}
    for name, definition in module.params.items():
        resolved[name] = _checked_value(
            module, name, definition, values.get(name, definition.default)
        )
    return resolved


def _checked_value(
    module: type[StrategyModule], name: str, definition: ParamDef, value: ParamValue
) -> ParamValue:
    where = f"{module.role.value} '{module.name}': parameter '{name}' was {value!r}"
    if definition.kind == "choice":
        if value not in definition.choices:
            raise SpecValidationError(f"{where}, not one of {list(definition.choices)}; pick one")
        return value
    if definition.kind == "bool":
        if not isinstance(value, bool):
            raise SpecValidationError(f"{where}, not true/false; write true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise SpecValidationError(f"{where}, not a finite number; write a number")
    if definition.kind == "int" and float(value) != int(value):
        raise SpecValidationError(f"{where}, not a whole number; round it")
    low, high = definition.low, definition.high
    if (low is not None and value < low) or (high is not None and value > high):
        raise SpecValidationError(
            f"{where}, outside the module's bounds [{low}, {high}]; choose a value inside them"
        )
    return int(value) if definition.kind == "int" else float(value)
