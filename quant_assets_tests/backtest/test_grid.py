"""Tests for the threaded parameter grid: same numbers as run_backtest, indicators computed once."""

import math
import threading
from collections import Counter
from collections.abc import Mapping

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.engine import run_backtest
from quant_assets.backtest.grid import (
    GridResult,
    IndicatorCache,
    SignalArrays,
    SignalBuilder,
    crossover_entries,
    run_grid,
)
from quant_assets.domain.backtest import BacktestConfig, CostModel, ExitRules, StopsFrom
from quant_assets.domain.errors import BacktestInputError, ConfigurationError
from quant_assets.features.moving_averages import ema

SPAN_PAIRS = [(5, 20), (10, 50), (20, 100), (50, 20), (20, 20)]
PARAM_SETS = [{"fast_span": fast, "slow_span": slow} for fast, slow in SPAN_PAIRS]


def ema_cross(cache: IndicatorCache, params: Mapping[str, int | float]) -> SignalArrays:
    fast = cache.feature(ema(span_bars=int(params["fast_span"])))
    slow = cache.feature(ema(span_bars=int(params["slow_span"])))
    return SignalArrays(entries=crossover_entries(fast, slow))


def ema_cross_with_distance_stops(
    cache: IndicatorCache, params: Mapping[str, int | float]
) -> SignalArrays:
    # Per-bar stop distances: 3% of the slow EMA, NaN during its warm-up.
    slow = cache.feature(ema(span_bars=int(params["slow_span"])))
    signals = ema_cross(cache, params)
    return SignalArrays(entries=signals.entries, stop_loss_distance=0.03 * slow)


def leveraged_ema_cross(cache: IndicatorCache, params: Mapping[str, int | float]) -> SignalArrays:
    # Eight times leverage with reversals: fast pairs ruin the account (equity <= 0).
    signals = ema_cross(cache, params)
    return SignalArrays(entries=signals.entries, size=np.full(signals.entries.shape[0], 8.0))


def _config(rules: ExitRules) -> BacktestConfig:
    return BacktestConfig(
        cost=CostModel(commission_rate=0.001, slippage_bps=2.0), exits=rules, n_trials=5
    )


@pytest.mark.parametrize(
    ("builder", "rules"),
    [
        (ema_cross, ExitRules()),
        (ema_cross, ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04)),
        (ema_cross, ExitRules(trailing_stop_rate=0.03, stops_from=StopsFrom.NEXT_BAR)),
        (ema_cross_with_distance_stops, ExitRules(take_profit_rate=0.05, max_bars_in_trade=48)),
        (leveraged_ema_cross, ExitRules()),
    ],
    ids=["reversals", "sl2_tp4", "trail3_next_bar", "distance_stop_time_exit", "leveraged"],
)
def test_run_grid_each_combination_equals_run_backtest_on_btc(
    btc_1h_bars: pl.DataFrame,
    builder: SignalBuilder,
    rules: ExitRules,
) -> None:
    # Arrange
    config = _config(rules)

    # Act
    results = run_grid(btc_1h_bars, PARAM_SETS, builder, config, workers=2, reports=True)

    # Assert: run_backtest, called alone with the same arrays, is the independent reference.
    assert [result.params for result in results] == PARAM_SETS
    for params, result in zip(PARAM_SETS, results, strict=True):
        signals = builder(IndicatorCache(btc_1h_bars), params)
        expected = run_backtest(
            btc_1h_bars,
            signals.entries,
            config,
            signals.exits,
            size=signals.size,
            stop_loss_distance=signals.stop_loss_distance,
            take_profit_distance=signals.take_profit_distance,
            trailing_distance=signals.trailing_distance,
        )
        report = expected.report
        assert result.final_equity == expected.equity["equity"][-1]
        assert result.trades == report.trades == expected.trades.height
        assert result.total_return == report.total_return
        assert result.sharpe == report.sharpe
        assert result.max_drawdown == report.max_drawdown
        assert result.exposure == report.exposure
        assert result.fees_paid == report.fees_paid
        assert result.report == report


def test_run_grid_trades_on_real_btc_combinations(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange: guard against a vacuous comparison above (e.g. a builder that never trades).
    config = _config(ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04))

    # Act
    results = run_grid(btc_1h_bars, PARAM_SETS, ema_cross, config)

    # Assert: on 67,078 bars every crossing pair trades hundreds of times; the equal-span pair
    # (20, 20) never crosses, so it never trades and keeps its cash.
    trades = {(r.params["fast_span"], r.params["slow_span"]): r.trades for r in results}
    assert all(count > 300 for pair, count in trades.items() if pair != (20, 20))
    flat = results[SPAN_PAIRS.index((20, 20))]
    assert (flat.trades, flat.final_equity, flat.sharpe) == (0, config.initial_cash, 0.0)


def test_run_grid_ruined_account_summary_equals_run_backtest(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange: EMA 10/20 at 8x leverage ends below zero on the BTC history (the engine's own
    # curve shows it), where returns after a non-positive bar are defined as 0.
    params = {"fast_span": 10, "slow_span": 20}
    config = _config(ExitRules())
    signals = leveraged_ema_cross(IndicatorCache(btc_1h_bars), params)
    expected = run_backtest(btc_1h_bars, signals.entries, config, size=signals.size)
    assert expected.equity["equity"].min() < 0.0  # type: ignore[operator]

    # Act
    [result] = run_grid(btc_1h_bars, [params], leveraged_ema_cross, config)

    # Assert
    assert (result.sharpe, result.max_drawdown) == (
        expected.report.sharpe,
        expected.report.max_drawdown,
    )
    assert result.final_equity == expected.equity["equity"][-1]


def test_run_grid_one_or_two_workers_give_identical_results(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange
    config = _config(ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04))
    params = [
        {"fast_span": fast, "slow_span": slow} for fast in (5, 15, 25) for slow in (30, 60, 90)
    ]

    # Act
    single = run_grid(btc_1h_bars, params, ema_cross, config, workers=1)
    threaded = run_grid(btc_1h_bars, params, ema_cross, config, workers=2)

    # Assert
    assert single == threaded
    assert len({result.final_equity for result in single}) == len(params)


def test_run_grid_computes_each_distinct_span_once(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange: count evaluations of each EMA expression; spans 5, 10, 20 (fast) x 20, 50
    # (slow) are six combinations over four distinct spans {5, 10, 20, 50}, 20 used both ways.
    calls: Counter[int] = Counter()
    lock = threading.Lock()

    def counted_ema(span: int) -> pl.Expr:
        def record(values: pl.Series) -> pl.Series:
            with lock:
                calls[span] += 1
            return values

        return ema(span_bars=span).map_batches(record, return_dtype=pl.Float64)

    def builder(cache: IndicatorCache, params: Mapping[str, int | float]) -> SignalArrays:
        fast = cache.feature(counted_ema(int(params["fast_span"])))
        slow = cache.feature(counted_ema(int(params["slow_span"])))
        return SignalArrays(entries=crossover_entries(fast, slow))

    params = [{"fast_span": fast, "slow_span": slow} for fast in (5, 10, 20) for slow in (20, 50)]
    cache = IndicatorCache(btc_1h_bars)

    # Act
    run_grid(btc_1h_bars, params, builder, _config(ExitRules()), workers=2, cache=cache)

    # Assert
    assert calls == {5: 1, 10: 1, 20: 1, 50: 1}
    assert sorted(str(key) for key in cache.computed_keys()) == sorted(
        str(("feature", f"ema_{span}")) for span in (5, 10, 20, 50)
    )


def test_indicator_cache_get_shares_one_read_only_array(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange
    cache = IndicatorCache(btc_1h_bars)
    computed: list[int] = []

    def compute(bars: pl.DataFrame) -> np.ndarray:
        computed.append(bars.height)
        return bars["close"].to_numpy() * 2.0

    # Act
    first = cache.get("double_close", compute)
    second = cache.get("double_close", compute)

    # Assert
    assert first is second
    assert computed == [67_078]
    assert not first.flags.writeable
    assert first[0] == 2.0 * btc_1h_bars["close"][0]


def test_indicator_cache_feature_turns_warm_up_nulls_into_nan(btc_1h_bars: pl.DataFrame) -> None:
    # Act
    values = IndicatorCache(btc_1h_bars).feature(ema(span_bars=4))

    # Assert: TA-Lib seed: rows 0-2 have no value, row 3 is the mean of the first 4 closes.
    closes = btc_1h_bars["close"].head(4).to_list()
    assert np.isnan(values[:3]).all()
    assert values[3] == pytest.approx(sum(closes) / 4, rel=1e-15)


def test_crossover_entries_hand_example_signals_on_crossing_bars() -> None:
    # Arrange: fast - slow = NaN, NaN, -1, +1, +2, -1, 0, +1; above = F, F, F, T, T, F, F, T.
    nan = math.nan
    fast = np.array([nan, 1.0, 1.0, 3.0, 4.0, 1.0, 2.0, 3.0])
    slow = np.array([nan, nan, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0])

    # Act
    entries = crossover_entries(fast, slow)

    # Assert: bar 2 has no valid previous bar; bar 3 crosses up, bar 5 down, bar 6 touches
    # (not above, no signal), bar 7 crosses up.
    assert entries.dtype == np.int8
    assert entries.tolist() == [0, 0, 0, 1, 0, -1, 0, 1]


def test_run_grid_empty_param_sets_return_empty_list(btc_1h_bars: pl.DataFrame) -> None:
    # Act
    results: list[GridResult] = run_grid(btc_1h_bars, [], ema_cross, _config(ExitRules()))

    # Assert
    assert results == []


def test_run_grid_zero_workers_raise_configuration_error(btc_1h_bars: pl.DataFrame) -> None:
    # Act / Assert
    with pytest.raises(ConfigurationError, match="workers was 0"):
        run_grid(btc_1h_bars, PARAM_SETS, ema_cross, _config(ExitRules()), workers=0)


def test_run_grid_cache_of_other_bars_raises_configuration_error(
    btc_1h_bars: pl.DataFrame,
) -> None:
    # Arrange
    other = IndicatorCache(btc_1h_bars.head(100))

    # Act / Assert
    with pytest.raises(ConfigurationError, match="another bar frame"):
        run_grid(btc_1h_bars, PARAM_SETS, ema_cross, _config(ExitRules()), cache=other)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (np.zeros(10, dtype=np.int8), r"shape \(10,\)"),
        (np.zeros(67_078, dtype=np.float64), "were float64 from 0.0 to 0.0"),
        (np.full(67_078, 2, dtype=np.int8), "were int8 from 2 to 2"),
    ],
    ids=["wrong_length", "float_dtype", "out_of_range"],
)
def test_run_grid_bad_builder_entries_raise_naming_params(
    btc_1h_bars: pl.DataFrame, entries: np.ndarray, message: str
) -> None:
    # Arrange
    def builder(cache: IndicatorCache, params: Mapping[str, int | float]) -> SignalArrays:
        return SignalArrays(entries=entries)

    # Act / Assert
    with pytest.raises(BacktestInputError, match=message) as raised:
        run_grid(btc_1h_bars, PARAM_SETS[:2], builder, _config(ExitRules()))
    assert "{'fast_span': 5, 'slow_span': 20}" in str(raised.value)


def test_run_grid_negative_stop_distance_raises(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange
    def builder(cache: IndicatorCache, params: Mapping[str, int | float]) -> SignalArrays:
        distance = np.full(btc_1h_bars.height, -1.0)
        return SignalArrays(entries=ema_cross(cache, params).entries, stop_loss_distance=distance)

    # Act / Assert
    with pytest.raises(BacktestInputError, match=r"stop_loss_distance .* at bar 0 was -1.0"):
        run_grid(btc_1h_bars, PARAM_SETS[:1], builder, _config(ExitRules()))
