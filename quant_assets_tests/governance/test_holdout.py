"""The sealed holdout on real BTC 1h bars: unreadable before freezing, evaluated exactly once."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from pydantic import ValidationError

from quant_assets.backtest.metrics import compute_report
from quant_assets.backtest.run_spec import DEFAULT_INITIAL_CASH, run_spec
from quant_assets.domain.errors import ConfigurationError, HoldoutSealedError, LifecycleError
from quant_assets.domain.governance import HoldoutGuard, HoldoutPolicy, RecordState
from quant_assets.domain.strategy import DataSlice, ModuleRef, StrategySpec
from quant_assets.governance.holdout import (
    evaluate_holdout_once,
    freeze_record,
    goal_deflated_sharpe,
    goal_deflated_sharpe_of,
    goal_trial_count,
    holdout_guard,
    holdout_start,
)
from quant_assets.storage.archive import ArchiveStore
from quant_assets.storage.bars_reader import BarsReader
from quant_assets.storage.lake import Lake
from quant_assets_tests.governance.archive_builders import (
    GOAL,
    PINNED,
    T0,
    archive_in,
    make_store,
    walkforward_run,
)
from quant_assets_tests.governance.conftest import build_report

BTC = "binance.BTC-USDT.1h"
SLICE_START = datetime(2021, 6, 1, tzinfo=UTC)
SLICE_END = datetime(2021, 11, 1, tzinfo=UTC)
# 153 days x (1 - 0.15) = 130.05 days = 130 days 1h12m after June 1st (by hand).
SEAL = datetime(2021, 10, 9, 1, 12, tzinfo=UTC)
# Bars at or after the seal: Oct 9 02:00-23:00 (22) + Oct 10-31 (22 x 24 = 528) = 550.
HOLDOUT_BARS = 550
MONTHS = ["2021-06-01", "2021-07-01", "2021-08-01", "2021-09-01", "2021-10-01", "2021-11-01"]
FROZEN_AT = T0 + timedelta(days=2)


@pytest.fixture(scope="module")
def spec() -> StrategySpec:
    return StrategySpec(
        name="ema cross on BTC 1h",
        hypothesis="Hourly BTC trends persist for days.",
        template="ema_trend_adx",
        data=DataSlice(instruments=(BTC,), timeframe="1h", start=SLICE_START, end=SLICE_END),
        baseline=ModuleRef(module="ema_cross", params={"fast_span_bars": 10, "slow_span_bars": 50}),
    )


def _fill_lake(lake: Lake, bars: pl.DataFrame, months: list[str]) -> None:
    for month in months:
        first = datetime.fromisoformat(month).replace(tzinfo=UTC)
        after = (first + timedelta(days=32)).replace(day=1)
        part = bars.filter((pl.col("ts") >= first) & (pl.col("ts") < after))
        lake.write_partition(part, BTC, month)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, sample_bars: pl.DataFrame) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("lake"))
    _fill_lake(lake, sample_bars, MONTHS)
    return lake


@pytest.fixture
def store(tmp_path: Path) -> ArchiveStore:
    return make_store(tmp_path)


@pytest.fixture
def guard() -> HoldoutGuard:
    return holdout_guard(GOAL, SLICE_START, SLICE_END, HoldoutPolicy())


@pytest.fixture
def reader(lake: Lake, store: ArchiveStore, guard: HoldoutGuard) -> BarsReader:
    return BarsReader(lake, store, guard)


@pytest.fixture(scope="module")
def holdout_bars(sample_bars: pl.DataFrame) -> pl.DataFrame:
    """Return the holdout bars cut straight from the shipped sample (not through the reader)."""
    return sample_bars.filter((pl.col("ts") >= SEAL) & (pl.col("ts") < SLICE_END))


def test_holdout_start_default_seals_last_15_percent() -> None:
    # Act
    start = holdout_start(SLICE_START, SLICE_END, HoldoutPolicy())

    # Assert
    assert start == SEAL


def test_holdout_start_explicit_start_wins() -> None:
    # Arrange
    explicit = datetime(2021, 9, 1, tzinfo=UTC)

    # Act
    start = holdout_start(SLICE_START, SLICE_END, HoldoutPolicy(start=explicit, fraction=0.5))

    # Assert
    assert start == explicit


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (HoldoutPolicy(start=datetime(2021, 11, 1, tzinfo=UTC)), "outside the data slice"),
        (HoldoutPolicy(start=datetime(2021, 5, 1, tzinfo=UTC)), "outside the data slice"),
    ],
)
def test_holdout_start_explicit_start_outside_slice_raises(
    policy: HoldoutPolicy, expected: str
) -> None:
    # Act / Assert
    with pytest.raises(ConfigurationError, match=expected):
        holdout_start(SLICE_START, SLICE_END, policy)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_holdout_policy_fraction_outside_open_unit_interval_raises(fraction: float) -> None:
    # Act / Assert
    with pytest.raises(ValidationError, match="fraction"):
        HoldoutPolicy(fraction=fraction)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, SEAL + timedelta(microseconds=1)),
        (SLICE_START, SLICE_END),
        (SEAL, SLICE_END),
        (datetime(2021, 12, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC)),
    ],
)
def test_bars_reader_research_read_reaching_holdout_raises(
    reader: BarsReader, start: datetime | None, end: datetime
) -> None:
    # Act / Assert
    with pytest.raises(HoldoutSealedError, match="would reach its sealed holdout"):
        reader.read_bars(BTC, start, end)


def test_bars_reader_research_read_up_to_seal_returns_bars_before_it(
    reader: BarsReader, sample_bars: pl.DataFrame
) -> None:
    # Arrange
    expected = sample_bars.filter((pl.col("ts") >= SLICE_START) & (pl.col("ts") < SEAL))

    # Act
    bars = reader.read_bars(BTC, SLICE_START, SEAL)
    clipped = reader.read_research_bars(BTC, SLICE_START)

    # Assert
    assert bars.equals(expected)
    assert clipped.equals(expected)
    assert bars["ts"].max() == datetime(2021, 10, 9, 1, tzinfo=UTC)


def test_bars_reader_holdout_read_before_freezing_raises(
    reader: BarsReader, store: ArchiveStore, spec: StrategySpec
) -> None:
    # Arrange
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id)

    # Act / Assert
    with pytest.raises(HoldoutSealedError, match="is 'candidate'"):
        reader.read_holdout(candidate.record_id, [BTC])


def test_bars_reader_holdout_read_for_another_goals_record_raises(
    lake: Lake, store: ArchiveStore, spec: StrategySpec
) -> None:
    # Arrange
    frozen = archive_in(store, RecordState.FROZEN, spec_id=spec.spec_id, goal="other-goal")
    reader = BarsReader(lake, store, holdout_guard(GOAL, SLICE_START, SLICE_END, HoldoutPolicy()))

    # Act / Assert
    with pytest.raises(HoldoutSealedError, match=f"holdout of goal '{GOAL}'"):
        reader.read_holdout(frozen.record_id, [BTC])


def test_freeze_record_evaluates_last_window_params_on_holdout_once(
    store: ArchiveStore, reader: BarsReader, spec: StrategySpec, holdout_bars: pl.DataFrame
) -> None:
    # Arrange
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id, pinned=PINNED)
    expected = run_spec(spec, {BTC: holdout_bars}, PINNED[1]).report
    first_window = run_spec(spec, {BTC: holdout_bars}, PINNED[0]).report

    # Act
    frozen = freeze_record(
        store, candidate.record_id, spec, reader, goal_trials=800, reason="goal met", at=FROZEN_AT
    )

    # Assert
    assert frozen.state is RecordState.FROZEN
    assert frozen.holdout is not None
    assert (frozen.holdout.start, frozen.holdout.end) == (SEAL, SLICE_END)
    assert frozen.holdout.report.bars == holdout_bars.height == HOLDOUT_BARS
    assert frozen.holdout.report.start == datetime(2021, 10, 9, 2, tzinfo=UTC)
    assert (frozen.holdout.window_index, frozen.holdout.params) == (1, PINNED[1])
    assert frozen.holdout.report == expected
    assert frozen.holdout.report.total_return != first_window.total_return
    assert store.get(candidate.record_id) == frozen
    assert store.holdout_evaluation(GOAL) == (candidate.record_id, FROZEN_AT)
    assert [version.state for version in store.history(candidate.record_id)] == [
        RecordState.CANDIDATE,
        RecordState.FROZEN,
        RecordState.FROZEN,
    ]


def test_freeze_record_stamps_goal_level_deflated_sharpe(
    store: ArchiveStore, reader: BarsReader, spec: StrategySpec
) -> None:
    # Arrange
    oos = build_report(sharpe=1.5, n_trials=50)
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id, oos=oos)

    # Act
    frozen = freeze_record(
        store, candidate.record_id, spec, reader, goal_trials=800, reason="goal met", at=FROZEN_AT
    )

    # Assert
    assert frozen.goal_trials == 800
    assert frozen.goal_deflated_sharpe == goal_deflated_sharpe_of(oos, 800)
    assert frozen.goal_deflated_sharpe is not None
    assert frozen.goal_deflated_sharpe < goal_deflated_sharpe_of(oos, 50)


def test_evaluate_holdout_second_time_is_refused_and_changes_nothing(
    store: ArchiveStore, reader: BarsReader, spec: StrategySpec
) -> None:
    # Arrange
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id)
    frozen = freeze_record(
        store, candidate.record_id, spec, reader, goal_trials=800, reason="goal met", at=FROZEN_AT
    )
    history = store.history(candidate.record_id)

    # Act / Assert
    with pytest.raises(HoldoutSealedError, match="already evaluated on record"):
        evaluate_holdout_once(store, frozen, spec, reader)
    assert store.history(candidate.record_id) == history
    with pytest.raises(HoldoutSealedError, match="already evaluated"):
        reader.read_holdout(candidate.record_id, [BTC])


def test_evaluate_holdout_refusal_survives_a_new_process(
    tmp_path: Path, lake: Lake, guard: HoldoutGuard, spec: StrategySpec
) -> None:
    # Arrange: evaluate through one store, then open the same file afresh.
    first = make_store(tmp_path)
    candidate = archive_in(first, RecordState.CANDIDATE, spec_id=spec.spec_id)
    frozen = freeze_record(
        first,
        candidate.record_id,
        spec,
        BarsReader(lake, first, guard),
        goal_trials=800,
        reason="goal met",
        at=FROZEN_AT,
    )
    again = make_store(tmp_path)

    # Act / Assert: the marker is in the warehouse, not in memory.
    with pytest.raises(HoldoutSealedError, match="already evaluated"):
        evaluate_holdout_once(again, frozen, spec, BarsReader(lake, again, guard))


def test_freeze_second_record_of_same_goal_is_refused_before_freezing(
    store: ArchiveStore, reader: BarsReader, spec: StrategySpec
) -> None:
    # Arrange
    first = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id, pinned=PINNED)
    freeze_record(
        store, first.record_id, spec, reader, goal_trials=800, reason="goal met", at=FROZEN_AT
    )
    second = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id, pinned={0: PINNED[0]})

    # Act / Assert
    with pytest.raises(HoldoutSealedError, match=f"is not frozen: the holdout of goal '{GOAL}'"):
        freeze_record(store, second.record_id, spec, reader, goal_trials=900, reason="better")
    assert store.get(second.record_id) == second
    assert len(store.transitions(second.record_id)) == 1


def test_evaluate_holdout_of_candidate_raises(
    store: ArchiveStore, reader: BarsReader, spec: StrategySpec
) -> None:
    # Arrange
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id)

    # Act / Assert
    with pytest.raises(HoldoutSealedError, match="evaluated only when a record is frozen"):
        evaluate_holdout_once(store, candidate, spec, reader)
    assert store.holdout_evaluation(GOAL) is None


@pytest.mark.parametrize(
    ("goal_trials", "spec_name", "expected", "error"),
    [
        (49, None, "below the 50 trials", ConfigurationError),
        (800, "another spec", "pins spec", ConfigurationError),
    ],
)
def test_freeze_record_bad_arguments_raise_and_change_nothing(
    store: ArchiveStore,
    reader: BarsReader,
    spec: StrategySpec,
    goal_trials: int,
    spec_name: str | None,
    expected: str,
    error: type[Exception],
) -> None:
    # Arrange
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id)
    given = spec if spec_name is None else spec.model_copy(update={"name": spec_name})

    # Act / Assert
    with pytest.raises(error, match=expected):
        freeze_record(
            store, candidate.record_id, given, reader, goal_trials=goal_trials, reason="x"
        )
    assert store.history(candidate.record_id) == [candidate]


def test_freeze_record_of_frozen_record_raises(
    store: ArchiveStore, reader: BarsReader, spec: StrategySpec
) -> None:
    # Arrange
    frozen = archive_in(store, RecordState.FROZEN, spec_id=spec.spec_id)

    # Act / Assert
    with pytest.raises(LifecycleError, match="from 'frozen' to 'frozen'"):
        freeze_record(store, frozen.record_id, spec, reader, goal_trials=800, reason="again")


def test_freeze_without_holdout_bars_keeps_frozen_and_evaluation_can_retry(
    tmp_path: Path,
    store: ArchiveStore,
    guard: HoldoutGuard,
    spec: StrategySpec,
    sample_bars: pl.DataFrame,
) -> None:
    # Arrange: October and November are not ingested yet.
    lake = Lake(tmp_path / "partial")
    _fill_lake(lake, sample_bars, MONTHS[:4])
    reader = BarsReader(lake, store, guard)
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id=spec.spec_id)

    # Act
    with pytest.raises(ConfigurationError, match="holds too few bars"):
        freeze_record(store, candidate.record_id, spec, reader, goal_trials=800, reason="met")
    stuck = store.get(candidate.record_id)
    _fill_lake(lake, sample_bars, MONTHS[4:])
    evaluated = evaluate_holdout_once(store, stuck, spec, reader, at=FROZEN_AT)

    # Assert
    assert (stuck.state, stuck.holdout) == (RecordState.FROZEN, None)
    assert evaluated.holdout is not None
    assert evaluated.holdout.report.bars == HOLDOUT_BARS


def test_goal_deflated_sharpe_matches_compute_report(
    spec: StrategySpec, sample_bars: pl.DataFrame
) -> None:
    # Arrange: a real run; compute_report derives its DSR from the equity curve itself.
    bars = sample_bars.filter((pl.col("ts") >= SLICE_START) & (pl.col("ts") < SEAL))
    result = run_spec(spec, {BTC: bars}, n_trials=300)
    report = compute_report(
        result.equity,
        result.trades,
        initial_cash=DEFAULT_INITIAL_CASH,
        periods_per_year=result.report.periods_per_year,
        n_trials=1,
    )

    # Act
    goal_dsr = goal_deflated_sharpe_of(result.report, 300)
    single = goal_deflated_sharpe_of(result.report, 1)

    # Assert
    assert goal_dsr == pytest.approx(result.report.deflated_sharpe, abs=1e-9)
    assert single == pytest.approx(report.probabilistic_sharpe, abs=1e-9)


def test_goal_deflated_sharpe_falls_as_goal_trials_grow() -> None:
    # Arrange: per-bar Sharpe 0.05 over 2,000 bars, normal moments.
    values = [goal_deflated_sharpe(0.05, 2_000, 0.0, 3.0, trials) for trials in (1, 10, 1_000)]

    # Act / Assert: PSR(1 trial) = Phi(0.05 x sqrt(1999) / sqrt(1 + 0.5 x 0.0025)) = Phi(2.234).
    assert values[0] == pytest.approx(0.98727, abs=1e-4)
    assert values[0] > values[1] > values[2]


def test_goal_trial_count_sums_distinct_runs() -> None:
    # Arrange
    report = build_report()
    runs = [
        walkforward_run(report, params_per_window=[PINNED[0]], trials_total=50, run_id="a"),
        walkforward_run(report, params_per_window=[PINNED[0]], trials_total=30, run_id="b"),
        walkforward_run(report, params_per_window=[PINNED[0]], trials_total=50, run_id="a"),
    ]

    # Act / Assert
    assert goal_trial_count(runs) == 80
