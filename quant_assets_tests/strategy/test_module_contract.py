"""Contract suite over every registered strategy module (STYLE.md section 7, Optuna's idea).

Each module, on real shipped bars (BTC 1h and SPY 1d): reads no future bar (truncation),
keeps its outputs inside the contract's bounds, is deterministic, gives no candidate before
`warmup_bars()` (nor on histories shorter than that), and runs at its defaults and at both
corners of its bounds. A planted look-ahead baseline proves the truncation test bites.
"""

from typing import Literal

import numpy as np
import polars as pl
import pytest

from quant_assets.domain.arrays import BoolArray, FloatArray, Int8Array
from quant_assets.domain.backtest import ExitRules
from quant_assets.domain.strategy import ModuleRole
from quant_assets.features.lookahead import LookAheadViolation, find_look_ahead
from quant_assets.strategy.modules import (
    Baseline,
    BaselineSignals,
    Execution,
    Filter,
    Risk,
    StrategyModule,
)
from quant_assets.strategy.registry import registered_modules

MODULES = registered_modules()
NUMERIC_MODULES = registered_modules(ModuleRole.RISK) + registered_modules(ModuleRole.EXECUTION)
DATASETS = ("btc_1h", "spy_1d")
# Deterministic candidates for filters and risks: both sides and gaps, independent of the data.
CANDIDATE_PATTERN = np.array([1, 0, -1, 0, 0, 1, -1], dtype=np.int8)


def module_id(module: type[StrategyModule]) -> str:
    return f"{module.role.value}-{module.name}"


def candidates_for(rows: int) -> Int8Array:
    return np.resize(CANDIDATE_PATTERN, rows)


def float_column(values: np.ndarray | None, rows: int) -> FloatArray:
    return np.full(rows, np.nan) if values is None else np.asarray(values, dtype=np.float64)


def module_outputs(module: StrategyModule, bars: pl.DataFrame) -> pl.DataFrame:
    """Return every per-bar output of the module as one frame (one row per bar)."""
    rows = bars.height
    if isinstance(module, Baseline):
        signals = module.signals(bars)
        return pl.DataFrame(
            {
                "entries": signals.entries,
                "exits": float_column(signals.exits, rows),
                "long_exits": float_column(signals.long_exits, rows),
                "short_exits": float_column(signals.short_exits, rows),
            }
        )
    if isinstance(module, Filter):
        return pl.DataFrame({"passes": module.passes(bars, candidates_for(rows))})
    if isinstance(module, Execution):
        plan = module.plan(bars)
        return pl.DataFrame(
            {
                "stop_loss_distance": float_column(plan.stop_loss_distance, rows),
                "take_profit_distance": float_column(plan.take_profit_distance, rows),
                "trailing_distance": float_column(plan.trailing_distance, rows),
            }
        )
    assert isinstance(module, Risk)
    return pl.DataFrame({"size": module.sizes(bars, candidates_for(rows))})


def candidate_mask(module: StrategyModule, bars: pl.DataFrame) -> BoolArray:
    """Return where the module lets something happen: an entry, a pass, a size or its levels."""
    rows = bars.height
    if isinstance(module, Baseline):
        return np.asarray(module.signals(bars).entries != 0)
    if isinstance(module, Filter):
        return module.passes(bars, candidates_for(rows))
    if isinstance(module, Risk):
        return np.asarray(~np.isnan(module.sizes(bars, candidates_for(rows))))
    assert isinstance(module, Execution)
    active = np.ones(rows, dtype=np.bool_)
    for distance in used_distances(module, bars):
        active &= ~np.isnan(distance)
    return active


def used_distances(module: Execution, bars: pl.DataFrame) -> list[FloatArray]:
    plan = module.plan(bars)
    arrays = (plan.stop_loss_distance, plan.take_profit_distance, plan.trailing_distance)
    return [array for array in arrays if array is not None]


def cut_indices(warmup: int, rows: int) -> list[int]:
    # Around the warm-up boundary, then well inside and at the end.
    candidates = {1, warmup - 1, warmup, warmup + 1, warmup + 17, rows // 3, rows // 2, rows - 2}
    return sorted(cut for cut in candidates if 0 <= cut < rows)


def truncation_violations(module: StrategyModule, bars: pl.DataFrame) -> list[LookAheadViolation]:
    cuts = cut_indices(module.warmup_bars(), bars.height)
    return find_look_ahead(lambda frame: module_outputs(module, frame), bars, cut_indices=cuts)


def corner_values(
    module: type[StrategyModule], corner: Literal["low", "high"]
) -> dict[str, float | int | str]:
    values: dict[str, float | int | str] = {}
    for name, definition in module.params.items():
        if definition.kind == "choice":
            values[name] = definition.choices[0 if corner == "low" else -1]
            continue
        bound = definition.low if corner == "low" else definition.high
        assert bound is not None, f"{module.name}.{name} has no {corner} bound"
        values[name] = int(bound) if definition.kind == "int" else float(bound)
    return values


def assert_outputs_inside_bounds(module: StrategyModule, bars: pl.DataFrame) -> None:
    rows = bars.height
    if isinstance(module, Baseline):
        signals = module.signals(bars)
        assert signals.entries.dtype == np.int8
        assert signals.entries.shape == (rows,)
        assert set(np.unique(signals.entries).tolist()) <= {-1, 0, 1}
        for exits in (signals.long_exits, signals.short_exits):
            assert exits is None or (exits.dtype == np.bool_ and exits.shape == (rows,))
        assert signals.exits is None or signals.exits.shape == (rows,)
    elif isinstance(module, Filter):
        passed = module.passes(bars, candidates_for(rows))
        assert passed.dtype == np.bool_
        assert passed.shape == (rows,)
    elif isinstance(module, Execution):
        plan = module.plan(bars)
        assert isinstance(plan.rules, ExitRules)
        for distance in (plan.stop_loss_distance, plan.take_profit_distance):
            assert_distance(distance, rows)
        assert_distance(plan.trailing_distance, rows)
    else:
        assert isinstance(module, Risk)
        size = module.sizes(bars, candidates_for(rows))
        assert size.dtype == np.float64
        assert size.shape == (rows,)
        decided = size[~np.isnan(size)]
        assert ((decided >= 0.0) & (decided <= 1.0)).all(), (
            f"sizes {decided.min()}..{decided.max()}"
        )


def assert_distance(distance: FloatArray | None, rows: int) -> None:
    if distance is None:
        return
    assert distance.dtype == np.float64
    assert distance.shape == (rows,)
    decided = distance[~np.isnan(distance)]
    assert (decided > 0.0).all()
    assert np.isfinite(decided).all()


class PeekingBaseline(Baseline):
    """A planted look-ahead: goes long when the NEXT close is higher (shift(-1))."""

    name = "peeking"
    role = ModuleRole.BASELINE
    description = "Reads tomorrow's close; must be caught by the truncation test."

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return +1 before an up bar and -1 before a down bar."""
        move = bars.select(pl.col("close").shift(-1) - pl.col("close")).to_series()
        return BaselineSignals(np.sign(move.fill_null(0.0).to_numpy()).astype(np.int8))


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("module_type", MODULES, ids=module_id)
def test_module_outputs_ignore_future_bars(
    module_type: type[StrategyModule], dataset: str, contract_bars: dict[str, pl.DataFrame]
) -> None:
    # Arrange
    module = module_type()

    # Act
    violations = truncation_violations(module, contract_bars[dataset])

    # Assert
    assert not violations, "\n".join(violation.describe() for violation in violations)


def test_truncation_test_catches_a_planted_look_ahead_baseline(btc_bars: pl.DataFrame) -> None:
    # Arrange
    module = PeekingBaseline()

    # Act
    violations = truncation_violations(module, btc_bars)

    # Assert: the last row of every cut reads the bar after the cut.
    assert [violation.column for violation in violations] == ["entries"] * len(violations)
    assert len(violations) >= 5
    assert all(violation.row_index == violation.cut_index for violation in violations)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("module_type", MODULES, ids=module_id)
def test_module_outputs_stay_inside_the_contract_bounds(
    module_type: type[StrategyModule], dataset: str, contract_bars: dict[str, pl.DataFrame]
) -> None:
    # Arrange
    module = module_type()

    # Act / Assert
    assert_outputs_inside_bounds(module, contract_bars[dataset])


@pytest.mark.parametrize("module_type", MODULES, ids=module_id)
def test_module_outputs_are_deterministic(
    module_type: type[StrategyModule], btc_bars: pl.DataFrame
) -> None:
    # Arrange
    first, second = module_type(), module_type()

    # Act
    outputs = [module_outputs(first, btc_bars), module_outputs(second, btc_bars)]
    again = module_outputs(first, btc_bars)

    # Assert
    assert outputs[0].equals(outputs[1], null_equal=True)
    assert outputs[0].equals(again, null_equal=True)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("module_type", MODULES, ids=module_id)
def test_module_gives_no_candidate_before_its_warmup(
    module_type: type[StrategyModule], dataset: str, contract_bars: dict[str, pl.DataFrame]
) -> None:
    # Arrange
    module = module_type()
    bars = contract_bars[dataset]

    # Act
    active = candidate_mask(module, bars)

    # Assert: nothing before the warm-up, something after it (the data has signals).
    warmup = module.warmup_bars()
    assert not active[:warmup].any(), f"active on bar {np.flatnonzero(active)[0]} < {warmup}"
    assert active[warmup:].any()


@pytest.mark.parametrize("module_type", MODULES, ids=module_id)
@pytest.mark.parametrize("rows", [1, 3])
def test_module_on_a_history_shorter_than_its_warmup_gives_no_candidate(
    module_type: type[StrategyModule], rows: int, btc_bars: pl.DataFrame
) -> None:
    # Arrange: modules whose warm-up is shorter than the history are not concerned.
    module = module_type()
    bars = btc_bars.head(rows)

    # Act
    outputs = module_outputs(module, bars)
    active = candidate_mask(module, bars)

    # Assert
    assert outputs.height == rows
    if module.warmup_bars() >= rows:
        assert not active.any()


@pytest.mark.parametrize("module_type", MODULES, ids=module_id)
@pytest.mark.parametrize("corner", ["low", "high"])
def test_module_at_a_corner_of_its_bounds_runs_inside_the_contract(
    module_type: type[StrategyModule],
    corner: Literal["low", "high"],
    btc_bars: pl.DataFrame,
) -> None:
    # Arrange
    module = module_type(**corner_values(module_type, corner))

    # Act
    active = candidate_mask(module, btc_bars)

    # Assert
    assert_outputs_inside_bounds(module, btc_bars)
    assert not active[: module.warmup_bars()].any()


@pytest.mark.parametrize("module_type", NUMERIC_MODULES, ids=module_id)
def test_module_sizes_and_distances_are_defined_exactly_from_the_warmup(
    module_type: type[StrategyModule], btc_bars: pl.DataFrame
) -> None:
    # Arrange: per-bar numbers (sizes, distances) show the warm-up directly as NaN; baselines
    # and filters are checked against the feature registry in test_module_params.py.
    module = module_type()
    warmup = module.warmup_bars()

    # Act
    if isinstance(module, Risk):
        arrays = [module.sizes(btc_bars, candidates_for(btc_bars.height))]
    else:
        assert isinstance(module, Execution)
        arrays = used_distances(module, btc_bars)

    # Assert
    for values in arrays:
        assert np.isnan(values[:warmup]).all(), f"defined before bar {warmup}"
        assert not np.isnan(values[warmup:]).any(), f"undefined on or after bar {warmup}"
