"""The module contract: Baseline, Filter, Execution and Risk, with typed, bounded parameters.

Modules produce numpy arrays from closed bars; the kernel is the only per-bar loop that trades.
"""

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar, Literal

import numpy as np
import polars as pl

from quant_assets.domain.arrays import BoolArray, FloatArray, Int8Array
from quant_assets.domain.backtest import ExitRules
from quant_assets.domain.errors import QuantAssetsError, SpecValidationError
from quant_assets.domain.market import InstrumentKey, Timeframe
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


def int_def(default: int, low: int, high: int, description: str) -> ParamDef:
    """Return the definition of an int parameter (a bar count unless described otherwise)."""
    return ParamDef("int", default, low, high, description=description)


def float_def(default: float, low: float, high: float, description: str) -> ParamDef:
    """Return the definition of a float parameter."""
    return ParamDef("float", default, low, high, description=description)


def choice_def(default: str, choices: tuple[str, ...], description: str) -> ParamDef:
    """Return the definition of a choice parameter."""
    return ParamDef("choice", default, choices=choices, description=description)


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

    def int_param(self, name: str) -> int:
        """Return the resolved value of an int parameter."""
        return int(self.values[name])

    def float_param(self, name: str) -> float:
        """Return the resolved value of a float parameter."""
        return float(self.values[name])

    def choice_param(self, name: str) -> str:
        """Return the resolved value of a choice parameter."""
        return str(self.values[name])

    def require_below(self, lower: str, upper: str, fix: str) -> None:
        """Raise unless parameter `lower` is strictly below parameter `upper` (a cross rule).

        Raises:
            SpecValidationError: naming the module, both parameters, their values and `fix`.
        """
        low, high = self.values[lower], self.values[upper]
        if not low < high:  # type: ignore[operator]
            raise SpecValidationError(
                f"{self.role.value} '{self.name}': parameter '{lower}' was {low!r}, not below "
                f"'{upper}' {high!r}; {fix}"
            )


@dataclass(frozen=True)
class BaselineSignals:
    """Entry candidates (+1 long, -1 short, 0 none; decided at each bar's close) and exits.

    `exits` closes whatever position is open (non-zero = exit, as `run_backtest`'s exits);
    `long_exits` / `short_exits` close only a long / only a short. Side-specific exits are
    resolved by `quant_assets.strategy.compose` against the side the entries imply (an entry
    on a bar wins over a side-specific exit of its own side on that bar).
    """

    entries: Int8Array
    exits: Int8Array | None = None
    long_exits: BoolArray | None = None
    short_exits: BoolArray | None = None


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


def feature_arrays(bars: pl.DataFrame, exprs: Sequence[pl.Expr]) -> list[FloatArray]:
    """Return each expression evaluated on `bars` as a writable float64 array, nulls as NaN.

    The expressions run in one `select`, so polars can share their common sub-expressions.
    Inside `caching_features(cache)`, expressions over a frame the cache holds are evaluated
    once and later calls get copies of the stored arrays.
    """
    cache = _ACTIVE_FEATURE_CACHE.get()
    if cache is not None and cache.holds(bars):
        return cache.arrays(bars, exprs)
    frame = bars.select(exprs)
    return [
        frame.to_series(index).cast(pl.Float64).fill_null(np.nan).to_numpy(writable=True)
        for index in range(frame.width)
    ]


class FeatureCache:
    """Feature arrays of fixed bar frames, computed once and shared by repeated module calls.

    A parameter search builds its modules anew for every trial, and each trial asks for the
    same indicators (an EMA of one span, an ATR) again; with the cache active
    (`caching_features`) each distinct expression is evaluated once per frame. The key is the
    expression's full display, which includes every alias: the feature library names each
    output by all of its parameters (`ema_20`, `adx_14`), which is what tells apart Python
    kernels whose parameters the display does not show. Arrays computed without polars
    (`computed_array`) are kept apart, under the name their caller gives. Frames are matched by
    identity, so the cache serves only the frames it was built over, and it keeps them alive.
    """

    def __init__(self, frames: Iterable[pl.DataFrame]) -> None:
        """Create an empty cache over `frames` (features of other frames are not cached)."""
        self._frames = {id(frame): frame for frame in frames}
        self._values: dict[tuple[int, str], FloatArray] = {}
        self._arrays: dict[tuple[int, str], FloatArray] = {}  # computed_array's, by name
        self._lock = threading.Lock()
        self.evaluations = 0

    def holds(self, bars: pl.DataFrame) -> bool:
        """Return whether `bars` is one of the cache's frames (the same object)."""
        return self._frames.get(id(bars)) is bars

    def arrays(self, bars: pl.DataFrame, exprs: Sequence[pl.Expr]) -> list[FloatArray]:
        """Return `feature_arrays(bars, exprs)`, evaluating only expressions not seen before.

        Returns:
            Writable copies, so callers may change them without touching the cache.
        """
        keys = [(id(bars), str(expression)) for expression in exprs]
        with self._lock:
            stored = [self._values.get(key) for key in keys]
        missing = [index for index, values in enumerate(stored) if values is None]
        if missing:
            # Nulls become NaN inside polars (cheaper than in to_numpy); arrays are kept
            # read-only and handed out as copies.
            frame = bars.select(
                exprs[index].cast(pl.Float64).fill_null(np.nan) for index in missing
            )
            with self._lock:
                self.evaluations += len(missing)
                for column, index in enumerate(missing):
                    values = frame.to_series(column).to_numpy().view()
                    values.flags.writeable = False
                    stored[index] = self._values.setdefault(keys[index], values)
        return [values.copy() for values in stored if values is not None]

    def computed(
        self, bars: pl.DataFrame, name: str, compute: Callable[[pl.DataFrame], FloatArray]
    ) -> FloatArray:
        """Return `computed_array(bars, name, compute)`, calling `compute` once per frame.

        Returns:
            A writable copy, so callers may change it without touching the cache.
        """
        key = (id(bars), name)
        with self._lock:
            values = self._arrays.get(key)
        if values is None:
            fresh = np.array(compute(bars), dtype=np.float64)
            fresh.flags.writeable = False
            with self._lock:
                self.evaluations += 1
                values = self._arrays.setdefault(key, fresh)
        return values.copy()


def computed_array(
    bars: pl.DataFrame, name: str, compute: Callable[[pl.DataFrame], FloatArray]
) -> FloatArray:
    """Return `compute(bars)` as a writable float64 array, cached like `feature_arrays`.

    For features computed straight from the bars' columns by a NumPy or Numba function (a
    polars `select` costs a few hundred microseconds a call, more than a 10,000-bar EMA).
    Inside `caching_features(cache)`, `compute` runs once per frame the cache holds and name.

    Args:
        bars: The bars `compute` reads.
        name: Identifies the computation fully, as a feature's output name does (`ema_20`):
            two computations must never share a name.
        compute: Returns one value per bar, reading only current and earlier rows.
    """
    cache = _ACTIVE_FEATURE_CACHE.get()
    if cache is not None and cache.holds(bars):
        return cache.computed(bars, name, compute)
    return np.array(compute(bars), dtype=np.float64)


_ACTIVE_FEATURE_CACHE: ContextVar[FeatureCache | None] = ContextVar(
    "active_feature_cache", default=None
)


@contextmanager
def caching_features(cache: FeatureCache) -> Iterator[FeatureCache]:
    """Make `feature_arrays` use `cache` in this context (thread or task) until the block ends."""
    token = _ACTIVE_FEATURE_CACHE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE_FEATURE_CACHE.reset(token)


def bar_timeframe(bars: pl.DataFrame) -> Timeframe | None:
    """Return the bar length: from the instrument key in `instrument`, else the smallest step.

    Returns None when neither tells it (no parseable key and fewer than two bars).
    """
    if "instrument" in bars.columns and bars.height > 0:
        try:
            return InstrumentKey.parse(str(bars["instrument"][0])).bar
        except QuantAssetsError:
            pass  # not a key (e.g. a bare symbol): fall back to the bar spacing
    if bars.height < 2:
        return None
    step = bars["ts"].diff().min()
    if not isinstance(step, timedelta) or step <= timedelta(0):
        return None
    seconds = int(step.total_seconds())
    for unit, unit_seconds in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % unit_seconds == 0:
            return Timeframe.parse(f"{seconds // unit_seconds}{unit}")
    return None
