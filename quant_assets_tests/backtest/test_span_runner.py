"""Span runs: the trial path equals the engine path, runs start flat, indicators are shared."""

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.run_spec import build_spec_modules, run_spec
from quant_assets.backtest.span_runner import SpanRunner
from quant_assets.features.moving_averages import ema
from quant_assets.strategy.modules import FeatureCache, caching_features, feature_arrays
from quant_assets_tests.backtest.walkforward_fixtures import (
    BTC,
    ETH,
    START,
    sample_bars,
    small_spec,
)

PARAMS = {
    "baseline.fast_span_bars": 9,
    "baseline.slow_span_bars": 60,
    "filters.adx_strength.min_adx": 18.0,
    "execution.stop_atr": 2.5,
}
WARMUP, TRADED, LATER = 200, 1_500, 300


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    # Warm-up, traded and later rows of BTC and ETH from 2021.
    return {
        key: frame.filter(pl.col("ts") >= START).head(WARMUP + TRADED + LATER)
        for key, frame in sample_bars().items()
    }


def runner(frames: dict[str, pl.DataFrame], end: int = WARMUP + TRADED) -> SpanRunner:
    rows = dict.fromkeys(frames, (WARMUP, end))
    return SpanRunner(small_spec(), frames, rows, initial_cash=10_000.0)


def test_span_runner_trial_equity_equals_full_run_equity(frames: dict[str, pl.DataFrame]) -> None:
    # Arrange
    span = runner(frames)
    modules = build_spec_modules(small_spec(), PARAMS)

    # Act
    trial = span.simulate(modules)
    full = span.run(modules)

    # Assert
    np.testing.assert_array_equal(trial.equity, full.equity["equity"].to_numpy())
    assert trial.trades == full.trades.height == full.report.trades
    assert full.equity.height == TRADED


def test_span_runner_starts_flat_at_the_first_traded_bar(frames: dict[str, pl.DataFrame]) -> None:
    # Arrange
    span = runner(frames)

    # Act
    full = span.run(build_spec_modules(small_spec(), PARAMS))

    # Assert: nothing is held at the open of the span; every entry is decided inside it.
    assert full.equity["equity"][0] == 10_000.0
    assert int(full.trades["entry_bar"].to_numpy().min()) >= 1
    assert full.report.start == frames[BTC]["ts"][WARMUP]
    # Every candidate counted lies in the span: each one filled or was rejected by name.
    assert full.steps.candidates == full.steps.fills + sum(full.steps.rejections.values())


def test_span_runner_later_rows_do_not_change_a_span(frames: dict[str, pl.DataFrame]) -> None:
    # Arrange: the same traded rows on frames with and without 300 later rows.
    cut = {key: frame.head(WARMUP + TRADED) for key, frame in frames.items()}
    modules = build_spec_modules(small_spec(), PARAMS)

    # Act
    with_later = runner(frames).run(modules)
    without = runner(cut).run(modules)

    # Assert
    assert with_later.equity.equals(without.equity)
    assert with_later.trades.equals(without.trades)


def test_span_runner_whole_frame_equals_run_spec(frames: dict[str, pl.DataFrame]) -> None:
    # Arrange: trading from row 0 is what run_spec does on the same bars.
    cut = {key: frame.head(WARMUP + TRADED) for key, frame in frames.items()}
    span = SpanRunner(
        small_spec(), cut, dict.fromkeys(cut, (0, WARMUP + TRADED)), initial_cash=10_000.0
    )

    # Act
    full = span.run(build_spec_modules(small_spec(), PARAMS))
    reference = run_spec(small_spec(), cut, PARAMS)

    # Assert
    assert full.equity.equals(reference.equity)
    assert full.report == reference.report
    assert full.steps == reference.steps


def test_feature_cache_evaluates_each_expression_once_per_frame(
    frames: dict[str, pl.DataFrame],
) -> None:
    # Arrange
    cache = FeatureCache(frames.values())
    btc, eth = frames[BTC], frames[ETH]

    # Act
    with caching_features(cache):
        first = feature_arrays(btc, [ema(span_bars=20), ema(span_bars=50).alias("slow")])
        again = feature_arrays(btc, [ema(span_bars=20)])
        feature_arrays(eth, [ema(span_bars=20)])
    outside = feature_arrays(btc, [ema(span_bars=20)])

    # Assert: ema_20 on BTC and ETH and the aliased ema_50 on BTC: three evaluations.
    assert cache.evaluations == 3
    np.testing.assert_array_equal(first[0], outside[0])
    np.testing.assert_array_equal(again[0], outside[0])


def test_feature_cache_returns_writable_copies(frames: dict[str, pl.DataFrame]) -> None:
    # Arrange
    cache = FeatureCache([frames[BTC]])

    # Act
    with caching_features(cache):
        (first,) = feature_arrays(frames[BTC], [ema(span_bars=20)])
        first[:] = -1.0
        (second,) = feature_arrays(frames[BTC], [ema(span_bars=20)])

    # Assert
    assert not np.any(second == -1.0)


def test_feature_cache_ignores_frames_it_does_not_hold(frames: dict[str, pl.DataFrame]) -> None:
    # Arrange: an equal frame that is another object is not cached.
    cache = FeatureCache([frames[BTC]])
    other = frames[BTC].clone()

    # Act
    with caching_features(cache):
        feature_arrays(other, [ema(span_bars=20)])

    # Assert
    assert cache.evaluations == 0
    assert not cache.holds(other)
