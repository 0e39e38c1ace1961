"""Regime labels: trailing data only, the fixed label set, and values checked by hand."""

import math

import numpy as np
import polars as pl
import pytest

from quant_assets.features.regimes import (
    REGIME_DTYPE,
    REGIME_LABELS,
    regime_label,
    trend_regime,
    volatility_regime,
)

LABEL = regime_label(
    trend_lookback_bars=48,
    volatility_lookback_bars=24,
    volatility_history_bars=240,
    trend_threshold=1.0,
)


def test_regime_label_rewriting_the_future_leaves_the_past_unchanged(
    feature_bars: pl.DataFrame,
) -> None:
    # Arrange
    cut = 2_000
    later = pl.int_range(pl.len()) > cut
    # After the cut: prices halve and swing +-10% bar to bar, volumes are reversed.
    swing = pl.when(pl.int_range(pl.len()) % 2 == 0).then(1.1).otherwise(0.9)
    rewritten = feature_bars.with_columns(
        *(
            pl.when(later).then(pl.col(name) * 0.5 * swing).otherwise(pl.col(name))
            for name in ("open", "high", "low", "close")
        ),
        pl.when(later).then(pl.col("volume").reverse()).otherwise(pl.col("volume")),
    )

    # Act
    original = feature_bars.select(LABEL).to_series()
    changed = rewritten.select(LABEL).to_series()

    # Assert
    assert original.head(cut + 1).equals(changed.head(cut + 1))
    assert not original.slice(cut + 1).equals(changed.slice(cut + 1)), "the rewrite must matter"


def test_regime_label_uses_only_the_six_labels_and_all_occur(btc_hourly: pl.DataFrame) -> None:
    # Act
    labels = btc_hourly.select(regime_label()).to_series()

    # Assert
    assert labels.dtype == REGIME_DTYPE
    assert set(labels.drop_nulls().unique().to_list()) == set(REGIME_LABELS)


@pytest.mark.parametrize("row", [400, 1_234, 2_999, 3_998])
def test_regime_label_matches_trailing_numpy_computation(
    feature_bars: pl.DataFrame, row: int
) -> None:
    # Arrange
    close = feature_bars["close"].to_numpy()
    returns = np.diff(np.log(close), prepend=np.nan)  # returns[i] = log(close[i] / close[i-1])
    # Trend: 48-bar log move over (std of the last 24 returns * sqrt(48)), threshold 1.
    sigma = np.std(returns[row - 23 : row + 1], ddof=1)
    momentum = math.log(close[row] / close[row - 48]) / (sigma * math.sqrt(48))
    trend = "up" if momentum > 1.0 else "down" if momentum < -1.0 else "sideways"
    # Volatility: that sigma against the median of the last 240 such sigmas (current included).
    history = [np.std(returns[bar - 23 : bar + 1], ddof=1) for bar in range(row - 239, row + 1)]
    volatility = "high_vol" if sigma > np.median(history) else "low_vol"

    # Act
    labels = feature_bars.select(LABEL).to_series()

    # Assert
    assert labels[row] == f"{trend}_{volatility}"


def test_trend_and_volatility_regimes_agree_with_the_label(feature_bars: pl.DataFrame) -> None:
    # Act
    frame = feature_bars.select(
        trend_regime(lookback_bars=48, volatility_lookback_bars=24, threshold=1.0).alias("t"),
        volatility_regime(lookback_bars=24, history_bars=240).alias("v"),
        LABEL.alias("label"),
    ).drop_nulls()

    # Assert
    names = {1: "up", 0: "sideways", -1: "down"}
    rebuilt = [
        f"{names[t]}_{'high_vol' if v == 1 else 'low_vol'}"
        for t, v in zip(frame["t"], frame["v"], strict=True)
    ]
    assert rebuilt == frame["label"].to_list()
    assert frame.height > 3_000
