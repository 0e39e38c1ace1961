"""Tests of the indicator arrays computed without polars and of their per-frame cache."""

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from quant_assets.domain.arrays import FloatArray
from quant_assets.domain.errors import SpecValidationError
from quant_assets.features.moving_averages import ema
from quant_assets.strategy.baselines.crossovers import EmaCrossBaseline
from quant_assets.strategy.baselines.signals import crossed_above, crossed_below, sides
from quant_assets.strategy.filters.gates import TimeOfDayFilter
from quant_assets.strategy.indicator_arrays import ema_array
from quant_assets.strategy.modules import (
    FeatureCache,
    caching_features,
    computed_array,
    feature_arrays,
)


@pytest.mark.parametrize("span_bars", [1, 2, 3, 24, 25, 120, 2_999, 3_000, 3_001])
def test_ema_array_matches_the_polars_expression_bit_for_bit(
    btc_bars: pl.DataFrame, span_bars: int
) -> None:
    # Arrange: the feature library's expression is the reference (3,000 bars: the last two
    # spans leave one value and none).
    (expected,) = feature_arrays(btc_bars, [ema(span_bars=span_bars)])

    # Act
    actual = ema_array(btc_bars, span_bars=span_bars)

    # Assert
    np.testing.assert_array_equal(actual, expected)
    assert np.isnan(actual[: span_bars - 1]).all()


def test_ema_array_with_leading_nulls_matches_the_polars_expression() -> None:
    # Arrange: a derived column that starts with nulls (as a MACD line does).
    values = [None, None, 1.0, 2.0, 4.0, 3.0, 5.0, 8.0]
    frame = pl.DataFrame({"line": values}, schema={"line": pl.Float64})
    (expected,) = feature_arrays(frame, [ema(span_bars=3, column="line")])

    # Act
    actual = ema_array(frame, span_bars=3, column="line")

    # Assert: seeded on the third valid value (row 4) with (1 + 2 + 4) / 3 = 7/3; alpha 0.5
    # then gives 7/3 + 0.5 * (3 - 7/3) = 8/3 on row 5.
    np.testing.assert_array_equal(actual, expected)
    assert np.isnan(actual[:4]).all()
    np.testing.assert_allclose(actual[4:6], [7.0 / 3.0, 8.0 / 3.0])


def test_ema_array_span_below_one_raises() -> None:
    # Arrange
    frame = pl.DataFrame({"close": [1.0, 2.0]})

    # Act / Assert
    with pytest.raises(SpecValidationError, match="'span_bars' was 0"):
        ema_array(frame, span_bars=0)


def test_computed_array_inside_a_cache_computes_once_per_frame_and_name(
    btc_bars: pl.DataFrame, eth_bars: pl.DataFrame
) -> None:
    # Arrange
    calls: list[str] = []

    def closes(name: str) -> Callable[[pl.DataFrame], FloatArray]:
        def compute(bars: pl.DataFrame) -> FloatArray:
            calls.append(name)
            return bars["close"].to_numpy()

        return compute

    cache = FeatureCache([btc_bars, eth_bars])

    # Act
    with caching_features(cache):
        first = computed_array(btc_bars, "a", closes("a"))
        again = computed_array(btc_bars, "a", closes("a"))
        computed_array(btc_bars, "b", closes("b"))
        computed_array(eth_bars, "a", closes("a"))
    outside = computed_array(btc_bars, "a", closes("a"))

    # Assert: a on BTC, b on BTC, a on ETH, then once more outside the cache.
    assert calls == ["a", "b", "a", "a"]
    assert cache.evaluations == 3
    np.testing.assert_array_equal(first, btc_bars["close"].to_numpy())
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(outside, first)


def test_computed_array_returns_writable_copies(btc_bars: pl.DataFrame) -> None:
    # Arrange
    cache = FeatureCache([btc_bars])

    # Act
    with caching_features(cache):
        first = computed_array(btc_bars, "close", lambda bars: bars["close"].to_numpy())
        first[:] = -1.0
        second = computed_array(btc_bars, "close", lambda bars: bars["close"].to_numpy())

    # Assert
    assert first.flags.writeable
    assert not np.any(second == -1.0)


def test_computed_array_ignores_frames_the_cache_does_not_hold(btc_bars: pl.DataFrame) -> None:
    # Arrange: an equal frame that is another object is not cached.
    cache = FeatureCache([btc_bars])
    other = btc_bars.clone()

    # Act
    with caching_features(cache):
        values = computed_array(other, "close", lambda bars: bars["close"].to_numpy())

    # Assert
    assert cache.evaluations == 0
    np.testing.assert_array_equal(values, other["close"].to_numpy())


def test_time_of_day_filter_inside_a_cache_passes_the_close_hours(btc_bars: pl.DataFrame) -> None:
    # Arrange: an hourly bar opening at hh:00 closes in hour hh + 1 (mod 24), by hand.
    candidates = np.ones(btc_bars.height, dtype=np.int8)
    close_hours = np.array([(ts.hour + 1) % 24 for ts in btc_bars["ts"].to_list()])
    windows = [(0, 24), (12, 20), (0, 1), (23, 24)]

    # Act
    with caching_features(FeatureCache([btc_bars])):
        cached = [
            TimeOfDayFilter(start_hour=start, end_hour=end).passes(btc_bars, candidates)
            for start, end in windows
        ]
    uncached = [
        TimeOfDayFilter(start_hour=start, end_hour=end).passes(btc_bars, candidates)
        for start, end in windows
    ]

    # Assert
    for (start, end), inside, outside in zip(windows, cached, uncached, strict=True):
        expected = (close_hours >= start) & (close_hours < end)
        np.testing.assert_array_equal(inside, expected)
        np.testing.assert_array_equal(outside, expected)


@pytest.mark.parametrize(("fast", "slow"), [(3, 25), (10, 50), (24, 120)])
def test_ema_cross_signals_match_crossings_of_the_polars_emas(
    btc_bars: pl.DataFrame, fast: int, slow: int
) -> None:
    # Arrange: the crossings of the feature library's EMAs, outside any cache.
    fast_ema, slow_ema = feature_arrays(
        btc_bars, [ema(span_bars=fast).alias("f"), ema(span_bars=slow).alias("s")]
    )
    expected = sides(crossed_above(fast_ema, slow_ema), crossed_below(fast_ema, slow_ema))
    baseline = EmaCrossBaseline(fast_span_bars=fast, slow_span_bars=slow)

    # Act
    with caching_features(FeatureCache([btc_bars])):
        cached = baseline.signals(btc_bars).entries
    uncached = baseline.signals(btc_bars).entries

    # Assert
    assert np.count_nonzero(expected) > 10
    np.testing.assert_array_equal(cached, expected)
    np.testing.assert_array_equal(uncached, expected)
