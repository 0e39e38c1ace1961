"""Multi-timeframe features: closed higher bars only, visible from their close on, never earlier."""

from bisect import bisect_right
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from quant_assets.domain.errors import DataQualityError, SpecValidationError
from quant_assets.features.lookahead import find_look_ahead
from quant_assets.features.moving_averages import ema
from quant_assets.features.oscillators import rsi
from quant_assets.features.resample import join_closed, resample_closed

FOUR_HOURS = timedelta(hours=4)


def four_hour_features(bars: pl.DataFrame) -> pl.DataFrame:
    higher = resample_closed(bars, timeframe="4h", bar_timeframe="1h")
    return higher.select("ts", "close", ema(span_bars=6), rsi(lookback_bars=6))


def test_resample_closed_aggregates_like_a_hand_loop(feature_bars: pl.DataFrame) -> None:
    # Arrange
    buckets: dict[datetime, list[tuple[float, float, float, float, float]]] = {}
    for ts, open_, high, low, close, volume in feature_bars.select(
        "ts", "open", "high", "low", "close", "volume"
    ).iter_rows():
        opened = ts.replace(hour=ts.hour - ts.hour % 4, minute=0, second=0, microsecond=0)
        buckets.setdefault(opened, []).append((open_, high, low, close, volume))
    last_close = feature_bars["ts"][-1] + timedelta(hours=1)
    expected = [
        (
            opened,
            rows[0][0],
            max(row[1] for row in rows),
            min(row[2] for row in rows),
            rows[-1][3],
            sum(row[4] for row in rows),
            len(rows),
        )
        for opened, rows in sorted(buckets.items())
        if opened + FOUR_HOURS <= last_close
    ]

    # Act
    higher = resample_closed(feature_bars, timeframe="4h")

    # Assert
    actual = higher.select("ts", "open", "high", "low", "close", "volume", "bar_count").rows()
    assert len(actual) == len(expected) > 900
    for got, want in zip(actual, expected, strict=True):
        assert got[:5] == want[:5]
        assert got[5] == pytest.approx(want[5], rel=1e-12)
        assert got[6] == want[6]


def test_resample_closed_drops_the_bucket_still_forming(btc_hourly: pl.DataFrame) -> None:
    # Arrange
    # 2018-01-01 00:00..05:00: the 04:00-08:00 bucket has only two of its four bars.
    bars = btc_hourly.head(6)

    # Act
    higher = resample_closed(bars, timeframe="4h")

    # Assert
    assert higher["ts"].to_list() == [datetime(2018, 1, 1, tzinfo=UTC)]
    assert higher["close"][0] == bars["close"][3]


def test_join_closed_4h_value_appears_exactly_at_the_4h_close(
    btc_hourly: pl.DataFrame,
) -> None:
    # Arrange
    bars = btc_hourly.head(6_000)
    higher = four_hour_features(bars)
    close_by_open = dict(zip(higher["ts"], higher["close"], strict=True))

    # Act
    joined = join_closed(bars, higher, timeframe="4h")

    # Assert
    # Hand check: the 00:00-04:00 bar (close = the 03:00 bar's close) is first seen at 04:00.
    first_day = joined.head(5)
    assert first_day["close_4h"].to_list()[:4] == [None] * 4
    assert first_day["close_4h"][4] == bars["close"][3]
    # Everywhere: each row shows the latest 4h bar that closed at or before its open.
    opens = sorted(close_by_open)
    closes = [opened + FOUR_HOURS for opened in opens]
    for row in joined.iter_rows(named=True):
        closed = bisect_right(closes, row["ts"])
        latest_closed = opens[closed - 1] if closed else None
        assert row["ts_4h"] == latest_closed
        if latest_closed is not None:
            assert row["close_4h"] == close_by_open[latest_closed]


def test_join_closed_each_4h_bar_first_shows_on_the_bar_opening_at_its_close(
    btc_hourly: pl.DataFrame,
) -> None:
    # Arrange
    bars = btc_hourly.head(6_000)
    higher = four_hour_features(bars)
    lower_opens = set(bars["ts"])

    # Act
    joined = join_closed(bars, higher, timeframe="4h")
    first_seen = joined.group_by("ts_4h").agg(pl.col("ts").min().alias("first_seen"))

    # Assert
    checked = 0
    for opened, seen in first_seen.drop_nulls().iter_rows():
        closes_at = opened + FOUR_HOURS
        assert seen >= closes_at, f"4h bar {opened} visible at {seen}, before its close"
        if closes_at in lower_opens:
            assert seen == closes_at
            checked += 1
    assert checked > 1_400


def test_join_closed_pipeline_ignores_bars_after_t(btc_hourly: pl.DataFrame) -> None:
    # Arrange
    bars = btc_hourly.slice(10_000, 2_000)

    def compute(frame: pl.DataFrame) -> pl.DataFrame:
        return join_closed(frame, four_hour_features(frame), timeframe="4h").drop(bars.columns)

    # Act
    violations = find_look_ahead(compute, bars, cut_indices=[50, 401, 402, 403, 1_000, 1_998])

    # Assert
    assert violations == [], "\n".join(violation.describe() for violation in violations)


def test_join_closed_peeking_join_is_caught_by_the_truncation_check(
    btc_hourly: pl.DataFrame,
) -> None:
    # Arrange
    bars = btc_hourly.slice(10_000, 2_000)

    def peeking(frame: pl.DataFrame) -> pl.DataFrame:
        # Wrong on purpose: joins each 4h bar on its open, 4 hours before it has closed.
        higher = resample_closed(frame, timeframe="4h", bar_timeframe="1h")
        return frame.join_asof(higher.select("ts", "close"), on="ts", suffix="_4h").select(
            "close_4h"
        )

    # The first bar of a 4h bucket after rows 400 and 1000: there the bucket is still forming.
    cuts = [
        next(index for index in range(start, bars.height) if bars["ts"][index].hour % 4 == 0)
        for start in (400, 1_000)
    ]

    # Act
    violations = find_look_ahead(peeking, bars, cut_indices=cuts)

    # Assert
    assert [(violation.cut_index, violation.row_index) for violation in violations] == [
        (cut, cut) for cut in cuts
    ]


def test_resample_closed_keeps_instruments_apart(
    feature_bars: pl.DataFrame, eth_hourly: pl.DataFrame
) -> None:
    # Arrange
    btc = feature_bars.head(400)
    eth = eth_hourly.slice(30_000, 300)

    # Act
    together = resample_closed(pl.concat([btc, eth]), timeframe="4h")

    # Assert
    separate = pl.concat(
        [resample_closed(btc, timeframe="4h"), resample_closed(eth, timeframe="4h")]
    )
    assert together.sort("instrument", "ts").equals(separate.sort("instrument", "ts"))
    assert set(together["instrument"]) == {"BTC-USDT", "ETH-USDT"}


def test_resample_closed_timeframe_not_a_multiple_raises(feature_bars: pl.DataFrame) -> None:
    # Act / Assert
    with pytest.raises(SpecValidationError, match="'90m' is not a whole multiple"):
        resample_closed(feature_bars, timeframe="90m")


def test_resample_closed_single_bar_cannot_infer_timeframe(feature_bars: pl.DataFrame) -> None:
    # Act / Assert
    with pytest.raises(DataQualityError, match="pass bar_timeframe"):
        resample_closed(feature_bars.head(1), timeframe="4h")


def test_join_closed_existing_column_name_raises(feature_bars: pl.DataFrame) -> None:
    # Arrange
    higher = resample_closed(feature_bars, timeframe="4h").select("ts", "close")

    # Act / Assert
    with pytest.raises(SpecValidationError, match="already exist"):
        join_closed(feature_bars, higher, timeframe="4h", suffix="")
