"""Regime breakdown: per-label bars, compounded return and Sharpe of a curve's bar returns."""

import math

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.engine import EQUITY_SCHEMA
from quant_assets.backtest.regimes import (
    LABEL_HISTORY_BARS,
    UNLABELED,
    labels_of,
    regime_breakdown,
    regime_codes,
    regime_labels,
)
from quant_assets.features.regimes import REGIME_LABELS
from quant_assets_tests.backtest.walkforward_fixtures import BTC, load_sample


def frame(equity: list[float]) -> pl.DataFrame:
    start = pl.datetime(2024, 1, 1, time_zone="UTC")
    ts = pl.datetime_range(start, start + pl.duration(hours=len(equity) - 1), "1h", eager=True)
    return pl.DataFrame(
        {"ts": ts, "equity": equity, "exposure": [0.0] * len(equity)}, schema=EQUITY_SCHEMA
    )


def test_regime_breakdown_hand_example_per_label() -> None:
    # Arrange: cash 100; equity 110, 99, 99, 108.9 -> returns +10%, -10%, 0%, +10%.
    # Bars 0 and 3 are up_low_vol (1.1 * 1.1 - 1 = 0.21), bar 1 down_high_vol (-0.1),
    # bar 2 has no label.
    equity = frame([110.0, 99.0, 99.0, 108.9])
    labels = pl.DataFrame(
        {"ts": equity["ts"], "regime": ["up_low_vol", "down_high_vol", None, "up_low_vol"]}
    )

    # Act
    stats = {
        s.regime: s
        for s in regime_breakdown(equity, labels, initial_cash=100.0, periods_per_year=8_760.0)
    }

    # Assert
    assert list(stats) == [*REGIME_LABELS, UNLABELED]
    assert stats["up_low_vol"].bars == 2
    assert stats["up_low_vol"].total_return == pytest.approx(0.21)
    assert stats["up_low_vol"].sharpe == 0.0  # two equal returns: no variance
    assert stats["down_high_vol"].bars == 1
    assert stats["down_high_vol"].total_return == pytest.approx(-0.1)
    assert (stats[UNLABELED].bars, stats[UNLABELED].total_return) == (1, 0.0)
    assert stats["sideways_low_vol"].bars == 0


def test_regime_breakdown_sharpe_is_annualized_mean_over_std() -> None:
    # Arrange: returns +2%, -1%, +2% in one regime: mean 0.01, sample std 0.017320508.
    equity = frame([102.0, 100.98, 102.9996])
    labels = pl.DataFrame({"ts": equity["ts"], "regime": ["sideways_high_vol"] * 3})

    # Act
    stats = regime_breakdown(equity, labels, initial_cash=100.0, periods_per_year=252.0)

    # Assert
    sideways = next(s for s in stats if s.regime == "sideways_high_vol")
    assert sideways.sharpe == pytest.approx(0.01 / math.sqrt(0.0003) * math.sqrt(252.0), rel=1e-6)
    assert UNLABELED not in {s.regime for s in stats}


def test_regime_labels_from_a_later_bar_equal_labels_of_the_full_history() -> None:
    # Arrange
    bars = load_sample(BTC, "binance_BTC-USDT_1h").head(6_000)
    first_ts = bars["ts"][4_000]

    # Act
    full = regime_labels(bars)
    late = regime_labels(bars, first_ts=first_ts)

    # Assert: only the label history before first_ts is read, and labels agree from there.
    assert late.height == 6_000 - 4_000 + LABEL_HISTORY_BARS
    tail = full.filter(pl.col("ts") >= first_ts)
    assert late.filter(pl.col("ts") >= first_ts).equals(tail)
    assert full["regime"][0] == UNLABELED
    assert set(tail["regime"].unique()) <= set(REGIME_LABELS)


def test_regime_codes_and_labels_of_round_trip() -> None:
    # Arrange: three bars, the middle one without a label.
    equity = frame([100.0, 100.0, 100.0])
    labels = pl.DataFrame({"ts": equity["ts"][[0, 2]], "regime": ["up_low_vol", "down_high_vol"]})

    # Act
    codes = regime_codes(equity["ts"], labels)
    back = labels_of(equity["ts"].dt.epoch("us").to_numpy(), np.asarray(codes))

    # Assert: positions in REGIME_LABELS (up_low_vol first, down_high_vol last), -1 unlabeled.
    assert codes == (0, -1, 5)
    assert back["regime"].to_list() == ["up_low_vol", UNLABELED, "down_high_vol"]
    assert back["ts"].equals(equity["ts"])
