"""Walk-forward: window planning, no look-ahead, determinism, memoized windows, stitched OOS.

Runs use shipped BTC/ETH 1h bars from 2021 and the small spec of `walkforward_fixtures`
(three 1,500/400-bar windows of 10 trials; about half a second per run).
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from quant_assets.backtest.metrics import compute_report
from quant_assets.backtest.walkforward import (
    InMemoryWindowCache,
    WalkForwardOutcome,
    plan_windows,
    run_walkforward,
    spec_warmup_bars,
    window_cache_key,
)
from quant_assets.backtest.windows import shutdown_process_pools
from quant_assets.domain.errors import BacktestInputError, ConfigurationError, SpecValidationError
from quant_assets.domain.strategy import WalkForwardConfig
from quant_assets.domain.walkforward import WalkForwardRun, WindowBounds, WindowResult
from quant_assets.features.regimes import regime_label
from quant_assets.strategy.spec_io import load_spec_yaml
from quant_assets_tests.backtest.walkforward_fixtures import (
    BASE_BARS,
    BTC,
    ETH,
    PROJECT_DIR,
    START,
    TEST_BARS,
    TRAIN_BARS,
    TRIALS,
    WARMUP_BARS,
    bars_until,
    copied,
    sample_bars,
    small_spec,
)

INITIAL_CASH = 10_000.0
BARS_PER_YEAR = 8_760.0
ROLLING = WalkForwardConfig(train_bars=100, test_bars=20, embargo_bars=5)


@dataclass
class RecordingProgress:
    updates: list[tuple[int, int, str]] = field(default_factory=list)

    def update(self, done: int, total: int, message: str) -> None:
        self.updates.append((done, total, message))


@pytest.fixture(scope="module")
def full_bars() -> dict[str, pl.DataFrame]:
    return sample_bars()


@pytest.fixture(scope="module")
def base_bars(full_bars: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return bars_until(full_bars, BASE_BARS)


@pytest.fixture(scope="module")
def base_run(
    base_bars: dict[str, pl.DataFrame],
) -> tuple[WalkForwardOutcome, InMemoryWindowCache]:
    cache = InMemoryWindowCache()
    return run_walkforward(small_spec(), base_bars, cache=cache, workers=1), cache


@pytest.fixture(scope="module")
def base(base_run: tuple[WalkForwardOutcome, InMemoryWindowCache]) -> WalkForwardOutcome:
    return base_run[0]


@pytest.fixture
def base_cache(base_run: tuple[WalkForwardOutcome, InMemoryWindowCache]) -> InMemoryWindowCache:
    outcome, cache = base_run
    return copied(cache, [window.cache_key for window in outcome.run.windows])


def window_summary(window: WindowResult) -> tuple[object, ...]:
    return (window.bounds, window.best_params, window.best_value, window.oos_curve, window.trials)


# Planning -------------------------------------------------------------------------------------


def test_plan_windows_rolling_hand_example_matches_bounds() -> None:
    # Arrange: 200 bars, warm-up 10: window i trains on [10 + 20i, 110 + 20i), embargo 5,
    # tests on [115 + 20i, 135 + 20i); 135 + 20 * 3 = 195 <= 200 < 215, so four windows.

    # Act
    windows = plan_windows(200, ROLLING, 10)

    # Assert
    assert len(windows) == 4
    spans = [
        (w.warmup_start, w.train_start, w.train_end, w.test_start, w.test_end) for w in windows
    ]
    assert spans[0] == (0, 10, 110, 115, 135)
    assert spans[3] == (60, 70, 170, 175, 195)


def test_plan_windows_anchored_keeps_train_start_and_grows_train() -> None:
    # Arrange
    config = ROLLING.model_copy(update={"anchored": True})

    # Act
    windows = plan_windows(200, config, 10)

    # Assert: every train span starts after the warm-up; ends move by the test length.
    assert [(w.warmup_start, w.train_start) for w in windows] == [(0, 10)] * 4
    assert [w.train_end for w in windows] == [110, 130, 150, 170]
    assert [w.test_end for w in windows] == [135, 155, 175, 195]


def test_plan_windows_step_shorter_than_test_overlaps_tests() -> None:
    # Arrange: step 10 < test 20, so (200 - 135) // 10 + 1 = 7 windows.
    config = ROLLING.model_copy(update={"step_bars": 10})

    # Act
    windows = plan_windows(200, config, 10)

    # Assert
    assert len(windows) == 7
    assert [w.test_start for w in windows[:3]] == [115, 125, 135]


@pytest.mark.parametrize("anchored", [False, True])
@pytest.mark.parametrize(("n_bars", "warmup"), [(135, 0), (500, 10), (1_000, 37)])
def test_plan_windows_never_read_after_test_end_and_appending_keeps_them(
    n_bars: int, warmup: int, anchored: bool
) -> None:
    # Arrange
    config = ROLLING.model_copy(update={"anchored": anchored, "embargo_bars": 3})

    # Act
    windows = plan_windows(n_bars, config, warmup)
    longer = plan_windows(n_bars + 123, config, warmup)

    # Assert
    for window in windows:
        assert window.train_start - window.warmup_start == warmup or anchored
        assert window.warmup_start == 0 or not anchored
        assert window.test_start - window.train_end == 3
        assert window.test_end - window.test_start == 20
        assert window.test_end <= n_bars
    assert longer[: len(windows)] == windows
    assert len(longer) > len(windows)


def test_plan_windows_with_times_names_first_and_last_bars() -> None:
    # Arrange
    times = pl.datetime_range(START, START.replace(day=12), "1h", eager=True)

    # Act
    first = plan_windows(times, ROLLING, 10)[0]

    # Assert
    assert first.warmup_first_at == times[0]
    assert first.train_first_at == times[10]
    assert first.train_last_at == times[109]
    assert first.test_first_at == times[115]
    assert first.test_last_at == times[134]


def test_plan_windows_too_few_bars_plan_nothing() -> None:
    # Act / Assert: 10 + 100 + 5 + 20 = 135 bars make the first window.
    assert plan_windows(134, ROLLING, 10) == []
    assert len(plan_windows(135, ROLLING, 10)) == 1


def test_window_bounds_out_of_order_raise_naming_the_rule() -> None:
    # Act / Assert
    with pytest.raises(ValidationError, match="train end <= test start"):
        WindowBounds(
            index=0, warmup_start=0, train_start=10, train_end=50, test_start=40, test_end=60
        )


def test_spec_warmup_bars_takes_the_longest_module_over_the_search_space() -> None:
    # Arrange: the example spec's risk lookback (720) beats its slowest span (300); the small
    # spec's slowest span, 120, is below its risk lookback of 168; a 500-bar span beats both.
    example = load_spec_yaml(PROJECT_DIR / "specs" / "ema_trend_adx_btc_eth_1h.yaml")
    wide = small_spec(
        search_space={
            "baseline.fast_span_bars": {"low": 5, "high": 60, "kind": "int"},
            "baseline.slow_span_bars": {"low": 50, "high": 500, "kind": "int"},
        }
    )

    # Act / Assert
    assert spec_warmup_bars(example) == 720
    assert spec_warmup_bars(small_spec()) == WARMUP_BARS
    assert spec_warmup_bars(wide) == 500


# One run: windows, stitching, reports, regimes -------------------------------------------------


def test_run_walkforward_plans_three_windows_with_all_trials(base: WalkForwardOutcome) -> None:
    # Arrange
    run = base.run

    # Assert
    assert [w.bounds.index for w in run.windows] == [0, 1, 2]
    assert [w.bounds.train_start for w in run.windows] == [168, 568, 968]
    assert all(w.trials == TRIALS for w in run.windows)
    assert (run.trials_total, run.trials_executed) == (3 * TRIALS, 3 * TRIALS)
    assert (run.windows_recomputed, run.windows_reused) == (3, 0)
    assert base.backtests_executed == 3 * (TRIALS + 2)
    assert set(run.data_versions) == {BTC, ETH}


def test_run_walkforward_best_value_is_the_in_sample_report_metric(
    base: WalkForwardOutcome,
) -> None:
    # Assert: the lean trial objective and compute_report on the best params' full IS run.
    for window in base.run.windows:
        assert window.best_value == pytest.approx(window.is_report.sharpe, rel=1e-12)
        assert window.is_report.bars == TRAIN_BARS
        assert window.is_report.n_trials == TRIALS


def test_run_walkforward_oos_trades_stay_inside_their_test_window(
    base: WalkForwardOutcome,
) -> None:
    for window in base.run.windows:
        bounds = window.bounds
        assert window.oos_report.bars == TEST_BARS
        assert window.oos_report.start == bounds.test_first_at
        assert window.oos_report.end == bounds.test_last_at
        for trade in window.oos_trades:
            assert bounds.test_first_at <= trade.entry_ts <= trade.exit_ts
            assert trade.exit_ts <= bounds.test_last_at  # open positions close at the end
            assert bounds.test_start <= trade.entry_bar < bounds.test_end


def test_run_walkforward_stitched_oos_chains_the_windows(base: WalkForwardOutcome) -> None:
    # Arrange: each window's OOS report measures its own run from the initial cash.
    windows = base.run.windows
    growth = math.prod(1.0 + window.oos_report.total_return for window in windows)

    # Assert
    assert base.oos_equity.height == 3 * TEST_BARS
    assert base.oos_equity["ts"].is_sorted()
    assert base.oos_equity["equity"][-1] / INITIAL_CASH == pytest.approx(growth, rel=1e-12)
    assert base.oos_trades.height == sum(window.oos_report.trades for window in windows)
    assert base.run.oos_report.trades == base.oos_trades.height
    assert base.run.oos_report.total_return == pytest.approx(growth - 1.0, rel=1e-12)


def test_run_walkforward_stitched_in_sample_counts_each_train_bar_once(
    base: WalkForwardOutcome,
) -> None:
    # Assert: window 0 gives its 1,500 train bars, each later window the 400 bars (one step)
    # that no later window trains on: 1,500 + 2 x 400 = 2,300.
    assert base.run.is_report.bars == 2_300
    assert [len(w.is_curve.ts_us) for w in base.run.windows] == [1_500, 400, 400]
    assert base.run.is_report.n_trials == 3 * TRIALS


def test_run_walkforward_deflated_sharpe_counts_every_trial(base: WalkForwardOutcome) -> None:
    # Arrange
    def dsr(n_trials: int) -> float:
        report = compute_report(
            base.oos_equity,
            base.oos_trades,
            initial_cash=INITIAL_CASH,
            periods_per_year=BARS_PER_YEAR,
            n_trials=n_trials,
        )
        return report.deflated_sharpe

    # Act
    values = [dsr(n) for n in (1, base.run.trials_total, 10 * base.run.trials_total)]

    # Assert
    assert base.run.deflated_sharpe == values[1]
    assert values[0] > values[1] > values[2]


def test_run_walkforward_regimes_add_up_to_the_stitched_curve(base: WalkForwardOutcome) -> None:
    # Arrange
    regimes = base.run.regimes
    growth = base.oos_equity["equity"][-1] / INITIAL_CASH

    # Assert
    assert sum(stats.bars for stats in regimes) == base.oos_equity.height
    assert math.prod(1.0 + stats.total_return for stats in regimes) == pytest.approx(growth)


def test_run_walkforward_regime_returns_match_labels_of_the_full_history(
    base: WalkForwardOutcome, full_bars: dict[str, pl.DataFrame]
) -> None:
    # Arrange: labels from BTC's whole history (the run reads fewer bars) and bar returns
    # computed here from the stitched curve.
    labels = full_bars[BTC].select(
        "ts",
        regime_label(
            trend_lookback_bars=168, volatility_lookback_bars=24, volatility_history_bars=720
        )
        .cast(pl.String)
        .alias("regime"),
    )
    equity = base.oos_equity.with_columns(
        (pl.col("equity") / pl.col("equity").shift(1, fill_value=INITIAL_CASH)).alias("growth")
    ).join(labels, on="ts", how="left")
    expected = {
        row["regime"]: (row["bars"], row["total_return"])
        for row in equity.group_by("regime")
        .agg(pl.len().alias("bars"), (pl.col("growth").product() - 1.0).alias("total_return"))
        .iter_rows(named=True)
    }

    # Assert
    for stats in base.run.regimes:
        bars, total_return = expected.get(stats.regime, (0, 0.0))
        assert stats.bars == bars
        assert stats.total_return == pytest.approx(total_return, rel=1e-9, abs=1e-12)


def test_walkforward_run_json_round_trip_is_equal(base: WalkForwardOutcome) -> None:
    # Act
    restored = WalkForwardRun.model_validate_json(base.run.model_dump_json())

    # Assert
    assert restored == base.run


def test_run_walkforward_reports_trial_progress_to_the_total() -> None:
    # Arrange
    progress = RecordingProgress()
    bars = bars_until(sample_bars(), BASE_BARS - 400)  # two windows

    # Act
    run_walkforward(small_spec(), bars, workers=1, progress=progress)

    # Assert
    assert progress.updates[0][:2] == (0, 2 * TRIALS)
    assert progress.updates[-1][:2] == (2 * TRIALS, 2 * TRIALS)
    assert "2 of 2 window(s)" in progress.updates[-1][2]
    assert [done for done, _, _ in progress.updates] == sorted(d for d, _, _ in progress.updates)


# Look-ahead and determinism --------------------------------------------------------------------


def test_run_walkforward_windows_ignore_bars_after_their_test_end(
    base: WalkForwardOutcome, full_bars: dict[str, pl.DataFrame]
) -> None:
    # Arrange: cut the data right after window 1's test span, so window 2 vanishes.
    cut = base.run.windows[1].bounds.test_end
    truncated = bars_until(full_bars, cut)

    # Act
    run = run_walkforward(small_spec(), truncated, workers=1).run

    # Assert
    assert len(run.windows) == 2
    assert [window_summary(w) for w in run.windows] == [
        window_summary(w) for w in base.run.windows[:2]
    ]


@pytest.fixture
def process_pools() -> Iterator[None]:
    yield
    shutdown_process_pools()


@pytest.mark.usefixtures("process_pools")
@pytest.mark.parametrize(
    ("workers", "parallelism"), [(1, "threads"), (2, "threads"), (2, "processes")]
)
def test_run_walkforward_same_inputs_give_identical_results(
    base: WalkForwardOutcome,
    base_bars: dict[str, pl.DataFrame],
    workers: int,
    parallelism: str,
) -> None:
    # Act
    again = run_walkforward(
        small_spec(),
        base_bars,
        workers=workers,
        parallelism="processes" if parallelism == "processes" else "threads",
    )

    # Assert
    assert again.run.run_id == base.run.run_id
    assert again.run.windows == base.run.windows
    assert_frame_equal(again.oos_equity, base.oos_equity)
    assert_frame_equal(again.oos_trades, base.oos_trades)


# Memoization -----------------------------------------------------------------------------------


def test_run_walkforward_no_change_runs_no_backtest(
    base: WalkForwardOutcome,
    base_bars: dict[str, pl.DataFrame],
    base_cache: InMemoryWindowCache,
) -> None:
    # Act
    again = run_walkforward(small_spec(), base_bars, cache=base_cache, workers=2)

    # Assert
    assert again.backtests_executed == 0
    assert (again.run.windows_recomputed, again.run.windows_reused) == (0, 3)
    assert (again.run.trials_executed, again.run.trials_total) == (0, 3 * TRIALS)
    assert again.run.run_id == base.run.run_id
    assert again.run.deflated_sharpe == base.run.deflated_sharpe
    assert_frame_equal(again.oos_equity, base.oos_equity)


def test_run_walkforward_appended_month_recomputes_only_windows_reading_it(
    base: WalkForwardOutcome,
    full_bars: dict[str, pl.DataFrame],
    base_cache: InMemoryWindowCache,
) -> None:
    # Arrange: 31 more days of bars; the new windows are those the longer plan adds.
    longer = bars_until(full_bars, BASE_BARS + 31 * 24)
    n_bars = longer[BTC].filter(pl.col("ts") >= START).height
    config = small_spec().walk_forward
    new_windows = plan_windows(n_bars, config, WARMUP_BARS)[len(base.run.windows) :]
    assert len(new_windows) == 2  # (3,694 - 2,092) // 400 + 1 = 5 windows, 3 before

    # Act
    outcome = run_walkforward(small_spec(), longer, cache=base_cache, workers=2)

    # Assert
    run = outcome.run
    recomputed = [w.bounds.index for w in run.windows if w.bounds.index >= 3]
    assert recomputed == [w.index for w in new_windows]
    assert (run.windows_recomputed, run.windows_reused) == (len(new_windows), 3)
    assert outcome.backtests_executed == len(new_windows) * (TRIALS + 2)
    assert run.windows[:3] == base.run.windows
    assert run.trials_total == 5 * TRIALS


def test_run_walkforward_revised_bar_recomputes_the_windows_that_read_it(
    base: WalkForwardOutcome,
    base_bars: dict[str, pl.DataFrame],
    base_cache: InMemoryWindowCache,
) -> None:
    # Arrange: raise one BTC close (and high) by 1% at row 2,200 of the period: windows read
    # [warm-up start, test end): window 0 [0, 2,092) does not, 1 [400, 2,492) and 2 do.
    row = 2_200
    revised_ts = base_bars[BTC].filter(pl.col("ts") >= START)["ts"][row]
    is_revised = pl.col("ts") == revised_ts
    revised = dict(base_bars)
    revised[BTC] = base_bars[BTC].with_columns(
        pl.when(is_revised).then(pl.col("close") * 1.01).otherwise(pl.col("close")).alias("close"),
        pl.when(is_revised)
        .then(pl.max_horizontal("high", pl.col("close") * 1.01))
        .otherwise(pl.col("high"))
        .alias("high"),
    )
    readers = [
        w.bounds.index for w in base.run.windows if w.bounds.warmup_start <= row < w.bounds.test_end
    ]

    # Act
    outcome = run_walkforward(small_spec(), revised, cache=base_cache, workers=2)

    # Assert
    assert readers == [1, 2]
    assert outcome.run.windows_recomputed == len(readers)
    assert outcome.backtests_executed == len(readers) * (TRIALS + 2)
    assert outcome.run.windows[0] == base.run.windows[0]
    assert outcome.run.data_versions[BTC] != base.run.data_versions[BTC]
    assert outcome.run.data_versions[ETH] == base.run.data_versions[ETH]


def test_run_walkforward_changed_module_param_recomputes_that_spec_only(
    base_bars: dict[str, pl.DataFrame], base_cache: InMemoryWindowCache
) -> None:
    # Arrange: a second spec (BTC alone) shares the cache with the base spec's windows.
    other = small_spec(
        data={
            "instruments": [BTC],
            "timeframe": "1h",
            "start": START.isoformat(),
            "end": "2025-09-01T00:00:00Z",
        }
    )
    run_walkforward(other, base_bars, cache=base_cache, workers=2)
    changed_risk = small_spec().risk.model_dump(mode="json")
    changed_risk["params"]["target_annual_volatility"] = 0.3
    changed = small_spec(risk=changed_risk)

    # Act
    changed_outcome = run_walkforward(changed, base_bars, cache=base_cache, workers=2)
    other_outcome = run_walkforward(other, base_bars, cache=base_cache, workers=2)

    # Assert
    assert changed_outcome.run.windows_recomputed == 3
    assert changed_outcome.backtests_executed == 3 * (TRIALS + 2)
    assert other_outcome.run.windows_recomputed == 0
    assert other_outcome.backtests_executed == 0


def test_run_walkforward_renamed_spec_reuses_its_windows(
    base: WalkForwardOutcome,
    base_bars: dict[str, pl.DataFrame],
    base_cache: InMemoryWindowCache,
) -> None:
    # Arrange: name, hypothesis and lineage do not change what a window computes.
    renamed = small_spec(name="renamed", hypothesis="Same modules, other words.")

    # Act
    outcome = run_walkforward(renamed, base_bars, cache=base_cache, workers=2)

    # Assert
    assert outcome.backtests_executed == 0
    assert outcome.run.spec_id != base.run.spec_id
    assert outcome.run.windows == base.run.windows


def test_window_cache_key_depends_on_bounds_and_bars_hash() -> None:
    # Arrange
    spec = small_spec()
    first, second = plan_windows(3_000, spec.walk_forward, WARMUP_BARS)[:2]

    # Act
    keys = {
        window_cache_key(spec, first, "a"),
        window_cache_key(spec, first, "b"),
        window_cache_key(spec, second, "a"),
    }

    # Assert
    assert len(keys) == 3
    assert window_cache_key(spec, first, "a") == window_cache_key(small_spec(), first, "a")


# Bad input ---------------------------------------------------------------------------------------


def test_run_walkforward_missing_instrument_raises_naming_it(
    base_bars: dict[str, pl.DataFrame],
) -> None:
    # Act / Assert
    with pytest.raises(SpecValidationError, match=r"no bars for instrument\(s\) \['binance.ETH"):
        run_walkforward(small_spec(), {BTC: base_bars[BTC]}, workers=1)


def test_run_walkforward_too_little_history_raises_with_bars_needed(
    full_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange: 168 + 1,500 + 24 + 400 = 2,092 bars are needed; give 2,000.
    bars = bars_until(full_bars, 2_000)

    # Act / Assert
    with pytest.raises(BacktestInputError, match=r"its 2000 bars .* needs 2092 bars"):
        run_walkforward(small_spec(), bars, workers=1)


def test_run_walkforward_zero_workers_raise_configuration_error(
    base_bars: dict[str, pl.DataFrame],
) -> None:
    # Act / Assert
    with pytest.raises(ConfigurationError, match="workers was 0"):
        run_walkforward(small_spec(), base_bars, workers=0)


def test_bars_fixture_has_no_gap_in_the_test_period(base_bars: dict[str, pl.DataFrame]) -> None:
    # Assert: the hand-derived row numbers above assume identical BTC and ETH times.
    btc, eth = (base_bars[key].filter(pl.col("ts") >= START)["ts"] for key in (BTC, ETH))
    assert btc.equals(eth)
    assert btc.len() == BASE_BARS
    assert np.all(np.diff(btc.dt.epoch("s").to_numpy()) > 0)
