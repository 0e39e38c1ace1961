"""Compose a baseline, filters, an execution and a risk module into engine inputs.

The pipeline per bar (all vectorised): baseline candidates -> each filter in order (a rejected
candidate is counted under the first filter that rejects it) -> risk size (0 rejects, counted
as `risk:<name>`; sizes are capped at 1, no leverage) -> the execution's exit plan. Exits reach
the engine only when the plan allows signal exits; side-specific baseline exits are resolved
here against the side the surviving entries imply (see `resolve_exits`).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from quant_assets.domain.arrays import BoolArray, FloatArray, Int8Array, Int64Array
from quant_assets.domain.backtest import BacktestConfig, StepSummary
from quant_assets.domain.errors import BacktestInputError, SpecValidationError
from quant_assets.strategy.modules import (
    Baseline,
    BaselineSignals,
    Execution,
    ExitPlan,
    Filter,
    Risk,
)
from quant_assets.strategy.risks.sizing import MAX_SIZE

RISK_PREFIX = "risk:"


@dataclass(frozen=True)
class ComposedInputs:
    """Engine inputs of one strategy on one instrument's bars, with the pre-engine counts.

    Attributes:
        entries: Candidates that passed every filter and got a size (+1, -1, 0 per bar).
        exits: Position-agnostic signal exits for the engine, or None (none or not allowed).
        size: Per-bar fraction of equity (NaN while the risk module warms up).
        plan: The execution's exit plan (rules and per-bar distances).
        candidates: Bars where the baseline proposed an entry.
        rejections: Candidates rejected before the engine, by filter name and `risk:<name>`.
    """

    entries: Int8Array
    exits: BoolArray | None
    size: FloatArray
    plan: ExitPlan
    candidates: int
    rejections: dict[str, int]


def compose(
    bars: pl.DataFrame,
    baseline: Baseline,
    filters: Sequence[Filter],
    execution: Execution,
    risk: Risk,
) -> ComposedInputs:
    """Return the engine inputs of the four modules on `bars`, with rejection counts.

    Raises:
        BacktestInputError: if a module returns arrays of the wrong length or values.
        SpecValidationError: if the baseline gives side-specific exits and the execution
            forbids reversals (the exits could then not be resolved exactly).
    """
    signals = baseline.signals(bars)
    entries = _entries_of(signals, bars.height, baseline.name)
    candidates = int(np.count_nonzero(entries))
    rejections: dict[str, int] = {}
    for module in filters:
        passed = _per_bar(module.passes(bars, entries), bars.height, module.name, np.bool_)
        rejected = (entries != 0) & ~passed
        rejections[module.name] = rejections.get(module.name, 0) + int(np.count_nonzero(rejected))
        entries[rejected] = 0
    sizes = _per_bar(risk.sizes(bars, entries), bars.height, risk.name, np.float64)
    size = np.minimum(sizes, MAX_SIZE)
    rejected = (entries != 0) & (size == 0.0)
    rejections[RISK_PREFIX + risk.name] = int(np.count_nonzero(rejected))
    entries[rejected] = 0
    plan = execution.plan(bars)
    exits = None
    if plan.use_signal_exits:
        if not plan.allow_reversal and _has_side_exits(signals):
            raise SpecValidationError(
                f"baseline '{baseline.name}' gives side-specific exits, which need reversals, "
                f"but execution '{execution.name}' forbids them; pick an execution that allows "
                "reversals or a baseline without side-specific exits"
            )
        exits = resolve_exits(signals, np.where(_tradable(size, plan), entries, 0))
    return ComposedInputs(entries, exits, size, plan, candidates, rejections)


def configure(config: BacktestConfig, plan: ExitPlan) -> BacktestConfig:
    """Return `config` with the plan's exit rules and reversal policy (the plan wins)."""
    return config.model_copy(update={"exits": plan.rules, "allow_reversal": plan.allow_reversal})


def merge_steps(inputs: ComposedInputs, engine: StepSummary) -> StepSummary:
    """Return the step summary of the whole pipeline from the engine's and the pre-engine counts.

    Candidates are the baseline's; rejections hold the filter and risk counts next to the
    engine's outcomes, so candidates = fills + sum(rejections).
    """
    return StepSummary(
        candidates=inputs.candidates,
        fills=engine.fills,
        rejections={**inputs.rejections, **engine.rejections},
    )


def resolve_exits(signals: BaselineSignals, entries: Int8Array) -> BoolArray | None:
    """Return engine exits from the baseline's exits, given the entries the engine will take.

    Side-specific exits become position-agnostic ones on the bars where the side the entries
    imply is the exit's side. That implied side (the last entry, until an exit of its side)
    equals the engine's position whenever the engine holds one: the engine opens only on these
    entries and otherwise only goes flat (stops, time exits). With no side-specific exits the
    baseline's `exits` pass through unchanged.

    Args:
        signals: The baseline's output.
        entries: The entries the engine will act on (filtered, sized, warm-up NaN removed).
    """
    size = entries.shape[0]
    agnostic = None if signals.exits is None else _flags(signals.exits, size)
    if not _has_side_exits(signals):
        return agnostic
    also = agnostic if agnostic is not None else np.zeros(size, dtype=np.bool_)
    long_exits = _flags(signals.long_exits, size) | also
    short_exits = _flags(signals.short_exits, size) | also
    # An entry wins over a same-side exit on its bar (the engine would open, not close).
    long_exits &= ~(entries > 0)
    short_exits &= ~(entries < 0)
    held = implied_side(entries, long_exits, short_exits)
    before = np.concatenate((np.zeros(1, dtype=np.int8), held[:-1]))
    return (long_exits & (before > 0)) | (short_exits & (before < 0))


def implied_side(entries: Int8Array, long_exits: BoolArray, short_exits: BoolArray) -> Int8Array:
    """Return the side held after each bar's signals if every entry filled and nothing stopped.

    The side is that of the last entry, unless an exit of that side came after it.
    """
    index = np.arange(entries.shape[0])
    last_entry = _last_index(entries != 0, index)
    side = np.where(last_entry >= 0, entries[np.maximum(last_entry, 0)], 0)
    last_long_exit = _last_index(long_exits, index)
    last_short_exit = _last_index(short_exits, index)
    closed = np.where(side > 0, last_long_exit > last_entry, last_short_exit > last_entry)
    return np.where(closed, 0, side).astype(np.int8)


def _last_index(flags: BoolArray, index: Int64Array) -> Int64Array:
    return np.maximum.accumulate(np.where(flags, index, -1))


def _has_side_exits(signals: BaselineSignals) -> bool:
    return signals.long_exits is not None or signals.short_exits is not None


def _tradable(size: FloatArray, plan: ExitPlan) -> BoolArray:
    # The engine rejects an entry whose size or exit distances are NaN (warm-up).
    tradable = ~np.isnan(size)
    for distance in (plan.stop_loss_distance, plan.take_profit_distance, plan.trailing_distance):
        if distance is not None:
            tradable &= ~np.isnan(distance)
    return tradable


def _entries_of(signals: BaselineSignals, size: int, name: str) -> Int8Array:
    entries = _per_bar(signals.entries, size, name, np.int8)
    if size and (int(entries.min()) < -1 or int(entries.max()) > 1):
        raise BacktestInputError(
            f"baseline '{name}' returned entries from {entries.min()} to {entries.max()}; a "
            "baseline must return +1, -1 or 0 per bar"
        )
    return entries.copy()


def _flags(values: np.ndarray | None, size: int) -> BoolArray:
    if values is None:
        return np.zeros(size, dtype=np.bool_)
    return np.asarray(values) != 0


def _per_bar(values: np.ndarray, size: int, name: str, dtype: type[np.generic]) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (size,):
        raise BacktestInputError(
            f"module '{name}' returned shape {array.shape} for {size} bars; a module must "
            "return one value per bar"
        )
    return array.astype(dtype, copy=False)
