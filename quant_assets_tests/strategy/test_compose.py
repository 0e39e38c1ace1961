"""Composition: filters and risk reject by name, exit plans reach the kernel, exits resolve."""

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.engine import BacktestResult
from quant_assets.backtest.run_spec import run_composed
from quant_assets.domain.arrays import BoolArray, FloatArray, Int8Array
from quant_assets.domain.backtest import BacktestConfig, CostModel
from quant_assets.domain.errors import BacktestInputError, SpecValidationError
from quant_assets.domain.strategy import ModuleRole
from quant_assets.strategy.baselines.breakouts import DonchianBreakoutBaseline
from quant_assets.strategy.compose import ComposedInputs, compose, implied_side
from quant_assets.strategy.executions.atr import AtrStopExecution
from quant_assets.strategy.executions.fixed import SignalExitOnlyExecution
from quant_assets.strategy.filters.gates import DirectionFilter, TimeOfDayFilter
from quant_assets.strategy.modules import (
    Baseline,
    BaselineSignals,
    Execution,
    ExitPlan,
    Filter,
    Risk,
)
from quant_assets.strategy.risks.sizing import CappedKellyRisk, FixedFractionRisk
from quant_assets_tests.hand_bars import Ohlc
from quant_assets_tests.strategy.conftest import HandBars

FREE = CostModel(commission_rate=0.0, slippage_bps=0.0)
FLAT: Ohlc = (100.0, 101.0, 99.0, 100.0)


def flags(rows: int, bars: Sequence[int]) -> BoolArray:
    values = np.zeros(rows, dtype=np.bool_)
    values[list(bars)] = True
    return values


class ScriptedBaseline(Baseline):
    """Test-only baseline replaying given entries and exits (bar -> side)."""

    name = "scripted"
    role = ModuleRole.BASELINE
    description = "Replays a script."

    def __init__(
        self,
        entries: Mapping[int, int],
        *,
        exits: Sequence[int] = (),
        long_exits: Sequence[int] | None = None,
        short_exits: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.script = (dict(entries), exits, long_exits, short_exits)

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return the scripted signals on bars.height bars."""
        entries_at, exits, long_exits, short_exits = self.script
        rows = bars.height
        entries = np.zeros(rows, dtype=np.int8)
        for bar, side in entries_at.items():
            entries[bar] = side
        return BaselineSignals(
            entries,
            exits=flags(rows, exits).view(np.int8) if exits else None,
            long_exits=None if long_exits is None else flags(rows, long_exits),
            short_exits=None if short_exits is None else flags(rows, short_exits),
        )


class ScriptedExecution(Execution):
    """Test-only execution returning a given plan."""

    name = "scripted_plan"
    role = ModuleRole.EXECUTION
    description = "Returns a fixed plan."

    def __init__(self, plan: ExitPlan) -> None:
        super().__init__()
        self.fixed_plan = plan

    def plan(self, bars: pl.DataFrame) -> ExitPlan:
        """Return the fixed plan."""
        return self.fixed_plan


class ConstantRisk(Risk):
    """Test-only risk sizing every bar the same."""

    name = "constant"
    role = ModuleRole.RISK
    description = "One size for all."

    def __init__(self, size: float) -> None:
        super().__init__()
        self.size = size

    def sizes(self, bars: pl.DataFrame, entries: Int8Array) -> FloatArray:
        """Return the constant size."""
        return np.full(bars.height, self.size)


def run(
    bars: pl.DataFrame,
    baseline: Baseline,
    filters: Sequence[Filter] = (),
    execution: Execution | None = None,
    risk: Risk | None = None,
) -> tuple[ComposedInputs, BacktestResult]:
    inputs = compose(
        bars,
        baseline,
        filters,
        execution or SignalExitOnlyExecution(),
        risk or FixedFractionRisk(),
    )
    return inputs, run_composed(bars, inputs, BacktestConfig(cost=FREE))


def trade_rows(result: BacktestResult) -> list[tuple[int, int, str, str]]:
    return [
        (row["entry_bar"], row["exit_bar"], row["side"], row["exit_reason"])
        for row in result.trades.iter_rows(named=True)
    ]


def test_compose_filter_rejections_are_counted_under_each_filter_name(make_bars: HandBars) -> None:
    # Arrange: hourly bars from 00:00, so bar i closes in hour i + 1. Candidates: long on 2 and
    # 8, short on 5 and 11. direction(long) rejects the shorts; time_of_day [0, 6) then
    # rejects the long on 8 (closes in hour 9). The short on 11 is counted once, by direction.
    bars = make_bars([FLAT] * 20)
    baseline = ScriptedBaseline({2: 1, 5: -1, 8: 1, 11: -1})
    filters = [DirectionFilter(allow="long"), TimeOfDayFilter(start_hour=0, end_hour=6)]

    # Act
    inputs, result = run(bars, baseline, filters)

    # Assert
    assert np.flatnonzero(inputs.entries).tolist() == [2]
    assert result.steps.candidates == 4
    assert result.steps.fills == 1
    assert result.steps.rejections["direction"] == 2
    assert result.steps.rejections["time_of_day"] == 1
    assert result.steps.rejections["risk:fixed_fraction"] == 0
    assert result.steps.candidates == result.steps.fills + sum(result.steps.rejections.values())
    assert trade_rows(result) == [(3, 19, "long", "end_of_data")]


def test_compose_zero_size_rejects_the_candidate_under_the_risk_name(make_bars: HandBars) -> None:
    # Arrange: closes alternate +0.3% / -0.1%, so every 50-return window has mean +0.1% and a
    # positive variance: a long has a positive Kelly edge (size > 0), a short a negative one
    # (size 0, rejected by risk). The long on bar 10 is still in the risk warm-up (NaN size):
    # the engine rejects it as warm_up_nan.
    closes = [100.0]
    for index in range(1, 70):
        closes.append(closes[-1] * (1.003 if index % 2 else 0.999))
    bars = make_bars([(close, close * 1.001, close * 0.999, close) for close in closes])
    baseline = ScriptedBaseline({10: 1, 55: -1, 60: 1})
    risk = CappedKellyRisk(lookback_bars=50)

    # Act
    inputs, result = run(bars, baseline, risk=risk)

    # Assert
    assert np.isnan(inputs.size[10])
    assert inputs.size[60] == pytest.approx(1.0)  # 0.5 * 0.001 / 4.1e-6 = 122, capped at 1
    assert np.flatnonzero(inputs.entries).tolist() == [10, 60]
    assert result.steps.rejections["risk:capped_kelly"] == 1
    assert result.steps.rejections["warm_up_nan"] == 1
    assert result.steps.fills == 1
    assert trade_rows(result) == [(61, 69, "long", "end_of_data")]


def test_compose_atr_stop_distance_reaches_the_kernel(make_bars: HandBars) -> None:
    # Arrange: flat bars (100, 101, 99, 100) have true range 2, so ATR(3) = 2 and a 1-ATR stop
    # sits 2 below the entry: long signalled on bar 5, filled at bar 6's open 100, stop 98.
    # Bar 8 trades down to 97, so the stop fills at 98: pnl = 100 units x -2 = -200.
    rows = [FLAT] * 12
    rows[8] = (100.0, 101.0, 97.0, 100.0)
    bars = make_bars(rows)
    execution = AtrStopExecution(atr_bars=3, stop_atr=1.0, target_atr=10.0)

    # Act
    inputs, result = run(bars, ScriptedBaseline({5: 1}), execution=execution)

    # Assert
    assert inputs.plan.stop_loss_distance is not None
    assert inputs.plan.stop_loss_distance[5] == pytest.approx(2.0)
    assert trade_rows(result) == [(6, 8, "long", "stop_loss")]
    assert result.trades["exit_price"][0] == pytest.approx(98.0)
    assert result.trades["pnl"][0] == pytest.approx(-200.0)


@pytest.mark.parametrize(
    ("use_signal_exits", "expected"),
    [(True, [(3, 7, "long", "signal")]), (False, [(3, 11, "long", "end_of_data")])],
)
def test_compose_signal_exits_reach_the_engine_only_when_the_plan_allows_them(
    make_bars: HandBars, use_signal_exits: bool, expected: list[tuple[int, int, str, str]]
) -> None:
    # Arrange: long on bar 2, a baseline exit on bar 6 (fills at bar 7's open).
    bars = make_bars([FLAT] * 12)
    execution = ScriptedExecution(ExitPlan(use_signal_exits=use_signal_exits))

    # Act
    inputs, result = run(bars, ScriptedBaseline({2: 1}, exits=[6]), execution=execution)

    # Assert
    assert (inputs.exits is not None) is use_signal_exits
    assert trade_rows(result) == expected


def test_compose_side_exits_close_only_positions_of_their_side(make_bars: HandBars) -> None:
    # Arrange: long on 2; a short exit on 4 must not close it, the long exit on 6 does. Short
    # on 9; a long exit on 11 must not close it, the short exit on 13 does. Exits fill at the
    # next open.
    bars = make_bars([FLAT] * 16)
    baseline = ScriptedBaseline({2: 1, 9: -1}, long_exits=[6, 11], short_exits=[4, 13])

    # Act
    inputs, result = run(bars, baseline)

    # Assert
    assert inputs.exits is not None
    assert np.flatnonzero(inputs.exits).tolist() == [6, 13]
    assert trade_rows(result) == [(3, 7, "long", "signal"), (10, 14, "short", "signal")]


def test_compose_entry_wins_over_a_same_side_exit_on_its_bar(make_bars: HandBars) -> None:
    # Arrange: a long entry and a long exit on bar 2: the entry is taken; the exit on 5 closes.
    bars = make_bars([FLAT] * 10)
    baseline = ScriptedBaseline({2: 1}, long_exits=[2, 5])

    # Act
    _, result = run(bars, baseline)

    # Assert
    assert trade_rows(result) == [(3, 6, "long", "signal")]


def test_compose_side_exits_follow_the_engine_position_on_real_data(
    btc_bars: pl.DataFrame,
) -> None:
    # Arrange: Turtle breakouts with tight ATR stops, so the engine is often flat (stopped out)
    # while the entries still imply a side.
    baseline = DonchianBreakoutBaseline(entry_lookback_bars=20, exit_lookback_bars=10)
    signals = baseline.signals(btc_bars)
    assert signals.long_exits is not None
    assert signals.short_exits is not None
    execution = AtrStopExecution(atr_bars=14, stop_atr=1.0, target_atr=20.0)

    # Act
    inputs, result = run(btc_bars, baseline, execution=execution)

    # Assert: a long held at a bar's close (exposure > 0) is signal-exited at the next bar
    # exactly when that bar has a long exit and no entry; likewise for shorts.
    exposure = result.equity["exposure"].to_numpy()[:-1]
    no_entry = inputs.entries[:-1] == 0
    long_exit_due = (exposure > 0) & signals.long_exits[:-1] & no_entry
    short_exit_due = (exposure < 0) & signals.short_exits[:-1] & no_entry
    signal_exits = result.trades.filter(pl.col("exit_reason") == "signal")
    long_exit_bars = signal_exits.filter(pl.col("side") == "long")["exit_bar"].to_list()
    short_exit_bars = signal_exits.filter(pl.col("side") == "short")["exit_bar"].to_list()
    assert long_exit_bars == (np.flatnonzero(long_exit_due) + 1).tolist()
    assert short_exit_bars == (np.flatnonzero(short_exit_due) + 1).tolist()
    assert len(long_exit_bars) > 10
    assert len(short_exit_bars) > 10
    assert (result.trades["exit_reason"] == "stop_loss").sum() > 10


def reference_implied_side(
    entries: Int8Array, long_exits: BoolArray, short_exits: BoolArray
) -> Int8Array:
    # The plain state machine: an entry sets its side (and wins over an exit on its bar);
    # otherwise an exit of the held side goes flat.
    side, held = 0, np.zeros(entries.shape[0], dtype=np.int8)
    for bar, entry in enumerate(entries.tolist()):
        if entry != 0:
            side = entry
        elif (side > 0 and long_exits[bar]) or (side < 0 and short_exits[bar]):
            side = 0
        held[bar] = side
    return held


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_implied_side_matches_a_bar_by_bar_state_machine(seed: int) -> None:
    # Arrange
    rng = np.random.default_rng(seed)
    rows = 2_000
    entries = rng.choice(np.array([-1, 0, 0, 0, 0, 1], dtype=np.int8), size=rows)
    long_exits = rng.random(rows) < 0.15
    short_exits = rng.random(rows) < 0.15

    # Act
    held = implied_side(entries, long_exits, short_exits)

    # Assert
    np.testing.assert_array_equal(held, reference_implied_side(entries, long_exits, short_exits))


def test_compose_side_exits_with_reversals_forbidden_raise(make_bars: HandBars) -> None:
    # Arrange
    bars = make_bars([FLAT] * 10)
    execution = ScriptedExecution(ExitPlan(allow_reversal=False))
    baseline = ScriptedBaseline({2: 1}, long_exits=[5])

    # Act / Assert
    with pytest.raises(SpecValidationError, match="forbids them; pick an execution"):
        compose(bars, baseline, [], execution, FixedFractionRisk())


def test_compose_caps_sizes_at_one(make_bars: HandBars) -> None:
    # Arrange: a risk module asking for 2x leverage gets 1x: 10,000 cash buys 100 units at 100.
    bars = make_bars([FLAT] * 6)

    # Act
    inputs, result = run(bars, ScriptedBaseline({1: 1}), risk=ConstantRisk(2.0))

    # Assert
    assert inputs.size.max() == 1.0
    assert result.trades["qty"][0] == pytest.approx(100.0)


def test_compose_module_output_of_the_wrong_length_names_the_module(
    make_bars: HandBars,
) -> None:
    # Arrange
    class ShortRisk(ConstantRisk):
        name = "short_risk"

        def sizes(self, bars: pl.DataFrame, entries: Int8Array) -> FloatArray:
            return np.ones(bars.height - 1)

    bars = make_bars([FLAT] * 6)

    # Act / Assert
    with pytest.raises(BacktestInputError, match="module 'short_risk' returned shape"):
        compose(bars, ScriptedBaseline({1: 1}), [], SignalExitOnlyExecution(), ShortRisk(1.0))
