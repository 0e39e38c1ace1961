"""What single modules compute, against hand-derived values or plain NumPy re-implementations."""

import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from quant_assets.domain.arrays import FloatArray, Int8Array
from quant_assets.strategy.baselines.breakouts import DonchianBreakoutBaseline, TsmomBaseline
from quant_assets.strategy.baselines.reversion import ZscoreReversionBaseline
from quant_assets.strategy.executions.atr import AtrStopExecution, ChandelierExecution
from quant_assets.strategy.filters.activity import VolatilityRegimeFilter
from quant_assets.strategy.filters.gates import TimeOfDayFilter
from quant_assets.strategy.filters.trend import HigherTimeframeTrendFilter
from quant_assets.strategy.risks.sizing import CappedKellyRisk, VolatilityTargetRisk
from quant_assets_tests.strategy.conftest import HandBars

HOURS_PER_YEAR = 8_760


def windows(values: FloatArray, length: int) -> list[tuple[int, FloatArray]]:
    # (last index, window) for every full trailing window.
    return [(end, values[end - length + 1 : end + 1]) for end in range(length - 1, len(values))]


def test_donchian_breaks_out_of_the_prior_channel_and_exits_on_the_short_one(
    make_bars: HandBars,
) -> None:
    # Arrange: bars with high = low = close. Entry channel 5, exit channel 2.
    # Entries: bar 5: 13 > max(10, 11, 12, 11, 10) = 12 -> long; bar 8: 9 < min(11, 10, 13,
    # 12, 11) = 10 -> short; bar 9: 8 < min(10, 13, 12, 11, 9) = 9 -> short again.
    # Long exits (close < min of the 2 bars before): 4 (10 < 11), 7 (11 < 12), 8, 9.
    # Short exits (close > max of the 2 bars before): 2 (12 > 11), 5 (13 > 11), 10 (10 > 9).
    closes = [10.0, 11.0, 12.0, 11.0, 10.0, 13.0, 12.0, 11.0, 9.0, 8.0, 10.0]
    bars = make_bars([(close, close, close, close) for close in closes])
    baseline = DonchianBreakoutBaseline(entry_lookback_bars=5, exit_lookback_bars=2)

    # Act
    signals = baseline.signals(bars)

    # Assert
    assert signals.long_exits is not None
    assert signals.short_exits is not None
    assert np.flatnonzero(signals.entries).tolist() == [5, 8, 9]
    assert signals.entries[[5, 8, 9]].tolist() == [1, -1, -1]
    assert np.flatnonzero(signals.long_exits).tolist() == [4, 7, 8, 9]
    assert np.flatnonzero(signals.short_exits).tolist() == [2, 5, 10]


def test_zscore_reversion_matches_a_numpy_zscore(btc_bars: pl.DataFrame) -> None:
    # Arrange
    baseline = ZscoreReversionBaseline(lookback_bars=30, entry_z=1.5, exit_z=0.25)
    closes = btc_bars["close"].to_numpy()
    zscore = np.full(len(closes), np.nan)
    for end, window in windows(closes, 30):
        zscore[end] = (closes[end] - window.mean()) / window.std()  # population std

    # Act
    signals = baseline.signals(btc_bars)

    # Assert
    expected = np.where(zscore < -1.5, 1, np.where(zscore > 1.5, -1, 0))
    np.testing.assert_array_equal(signals.entries, expected)
    assert signals.long_exits is not None
    np.testing.assert_array_equal(signals.long_exits, zscore >= -0.25)
    assert (expected != 0).sum() > 100


def test_tsmom_matches_a_numpy_momentum_state(btc_bars: pl.DataFrame) -> None:
    # Arrange: state = sign of log(c_t / c_{t-n}) / (std of the last n log returns * sqrt(n))
    # beyond the threshold; entries on state changes, exits when the state leaves a side.
    lookback, threshold = 48, 0.5
    baseline = TsmomBaseline(lookback_bars=lookback, threshold=threshold)
    closes = btc_bars["close"].to_numpy()
    log_returns = np.concatenate(([np.nan], np.diff(np.log(closes))))
    state = np.full(len(closes), np.nan)
    for end in range(lookback, len(closes)):
        sigma = log_returns[end - lookback + 1 : end + 1].std(ddof=1)
        move = math.log(closes[end] / closes[end - lookback]) / (sigma * math.sqrt(lookback))
        state[end] = 1.0 if move > threshold else (-1.0 if move < -threshold else 0.0)
    before = np.concatenate(([np.nan], state[:-1]))
    changed = (state != before) & ~np.isnan(before) & (state != 0.0)

    # Act
    signals = baseline.signals(btc_bars)

    # Assert
    np.testing.assert_array_equal(signals.entries, np.where(changed, state, 0).astype(np.int8))
    assert signals.long_exits is not None
    np.testing.assert_array_equal(signals.long_exits, (before == 1.0) & (state < 1.0))
    assert np.count_nonzero(signals.entries) > 20


def test_volatility_target_size_matches_numpy(btc_bars: pl.DataFrame) -> None:
    # Arrange: size = min(0.5 / (std(last 100 log returns) * sqrt(8760)), 0.8).
    risk = VolatilityTargetRisk(target_annual_volatility=0.5, lookback_bars=100, max_fraction=0.8)
    log_returns = np.diff(np.log(btc_bars["close"].to_numpy()))
    expected = np.full(btc_bars.height, np.nan)
    for end, window in windows(log_returns, 100):
        expected[end + 1] = min(0.5 / (window.std(ddof=1) * math.sqrt(HOURS_PER_YEAR)), 0.8)

    # Act
    size = risk.sizes(btc_bars, np.ones(btc_bars.height, dtype=np.int8))

    # Assert
    np.testing.assert_allclose(size, expected, rtol=1e-9)
    # The sample's annualized volatility runs from 0.42 to 1.38: the cap binds only sometimes.
    assert 0.3 < np.nanmin(size) < np.nanmax(size) == 0.8


def test_capped_kelly_size_matches_numpy_for_both_sides(btc_bars: pl.DataFrame) -> None:
    # Arrange: size = clip(0.25 * side * mean / var of the last 200 simple returns, 0, 0.6).
    risk = CappedKellyRisk(lookback_bars=200, kelly_fraction=0.25, max_fraction=0.6)
    closes = btc_bars["close"].to_numpy()
    returns = closes[1:] / closes[:-1] - 1.0
    sides: Int8Array = np.resize(np.array([1, -1, 0], dtype=np.int8), btc_bars.height)
    expected = np.full(btc_bars.height, np.nan)
    for end, window in windows(returns, 200):
        kelly = sides[end + 1] * window.mean() / window.var(ddof=1)
        expected[end + 1] = min(max(0.25 * kelly, 0.0), 0.6)

    # Act
    size = risk.sizes(btc_bars, sides)

    # Assert
    np.testing.assert_allclose(size, expected, rtol=1e-7, atol=1e-12)
    decided = size[~np.isnan(size)]
    assert (decided == 0.0).any()
    assert (decided > 0.0).any()


def test_higher_timeframe_trend_uses_only_the_last_closed_day(btc_bars: pl.DataFrame) -> None:
    # Arrange: a plain walk over days. The daily close is the close of the day's last hour;
    # the EMA (span 3) is seeded with the mean of the first 3 daily closes. An hourly bar sees
    # the latest day that ended at or before its open.
    span = 3
    module = HigherTimeframeTrendFilter(timeframe="1d", span_bars=span)
    days = btc_bars.group_by(pl.col("ts").dt.date().alias("day"), maintain_order=True).agg(
        pl.col("close").last()
    )
    daily_close = dict(days.iter_rows())
    ordered = sorted(daily_close)
    daily_ema, level = {}, math.nan
    for index, day in enumerate(ordered):
        if index == span - 1:
            level = sum(daily_close[d] for d in ordered[:span]) / span
        elif index >= span:
            level = level + 2.0 / (span + 1.0) * (daily_close[day] - level)
        daily_ema[day] = level
    expected_long = []
    for ts in btc_bars["ts"].to_list():
        seen = (ts - timedelta(days=1)).date()
        close, ema = daily_close.get(seen, math.nan), daily_ema.get(seen, math.nan)
        expected_long.append(close > ema)

    # Act
    longs = module.passes(btc_bars, np.ones(btc_bars.height, dtype=np.int8))
    shorts = module.passes(btc_bars, -np.ones(btc_bars.height, dtype=np.int8))

    # Assert: the sample's first day starts at 00:00, so every day is complete.
    np.testing.assert_array_equal(longs, expected_long)
    assert not (longs & shorts).any()
    assert 500 < longs.sum() < btc_bars.height - 500


def test_volatility_regime_low_and_high_split_every_defined_bar(btc_bars: pl.DataFrame) -> None:
    # Arrange
    candidates = np.ones(btc_bars.height, dtype=np.int8)
    modules = {
        allow: VolatilityRegimeFilter(lookback_bars=24, history_bars=240, allow=allow)
        for allow in ("low", "high", "any")
    }

    # Act
    passed = {allow: module.passes(btc_bars, candidates) for allow, module in modules.items()}

    # Assert: after the warm-up each bar is exactly one of low / high; `any` passes all bars.
    warmup = modules["low"].warmup_bars()
    assert not (passed["low"] | passed["high"])[:warmup].any()
    assert (passed["low"] ^ passed["high"])[warmup:].all()
    assert passed["any"].all()
    assert modules["any"].warmup_bars() == 0


def test_time_of_day_reads_the_close_hour_of_daily_bars(spy_bars: pl.DataFrame) -> None:
    # Arrange: SPY daily bars open at 00:00 UTC and close at 00:00 the next day (hour 0).
    candidates = np.ones(spy_bars.height, dtype=np.int8)

    # Act
    midnight = TimeOfDayFilter(start_hour=0, end_hour=1).passes(spy_bars, candidates)
    afternoon = TimeOfDayFilter(start_hour=13, end_hour=24).passes(spy_bars, candidates)

    # Assert
    assert midnight.all()
    assert not afternoon.any()


@pytest.mark.parametrize("module", [AtrStopExecution(atr_bars=3), ChandelierExecution(atr_bars=3)])
def test_atr_execution_on_flat_bars_gives_no_zero_distance(
    module: AtrStopExecution | ChandelierExecution, make_bars: HandBars
) -> None:
    # Arrange: no range at all, so the ATR is 0 and no stop distance can be placed.
    bars = make_bars([(100.0, 100.0, 100.0, 100.0)] * 10)

    # Act
    plan = module.plan(bars)

    # Assert: NaN (no trade) rather than a zero distance, which the engine would refuse.
    for distance in (plan.stop_loss_distance, plan.take_profit_distance, plan.trailing_distance):
        assert distance is None or np.isnan(distance).all()
