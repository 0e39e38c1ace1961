"""Long curves are thinned for plotting without hiding their trough or their last value."""

import polars as pl

from quant_assets.backtest.metrics import drawdown_curve
from quant_assets.reports.figures import PLOT_POINTS, drawdown_figure, thinned


def _btc_equity(sample_bars: pl.DataFrame) -> pl.DataFrame:
    # The shipped BTC closes as an equity curve (67,078 hourly bars).
    return sample_bars.select("ts", pl.col("close").alias("equity"), pl.lit(1.0).alias("exposure"))


def test_thinned_equity_keeps_few_points_ordered_and_the_last_value(
    sample_bars: pl.DataFrame,
) -> None:
    # Arrange
    curve = _btc_equity(sample_bars)

    # Act
    thin = thinned(curve, "equity", "last")

    # Assert
    assert curve.height > 10 * PLOT_POINTS
    assert PLOT_POINTS // 2 <= thin.height <= PLOT_POINTS
    assert thin["ts"].is_sorted()
    assert thin.row(-1) == curve.row(-1)
    assert set(thin["ts"].to_list()) <= set(curve["ts"].to_list())


def test_thinned_drawdown_keeps_the_deepest_trough(sample_bars: pl.DataFrame) -> None:
    # Arrange
    curve = _btc_equity(sample_bars)
    initial = float(curve["equity"][0])
    drawdown = drawdown_curve(curve, initial_cash=initial)

    # Act
    figure = drawdown_figure(curve, initial)

    # Assert
    (trace,) = figure.data
    assert len(trace.y) <= PLOT_POINTS
    assert min(trace.y) == drawdown["drawdown"].min()


def test_a_short_curve_is_drawn_whole(sample_bars: pl.DataFrame) -> None:
    # Arrange
    curve = _btc_equity(sample_bars).head(PLOT_POINTS)

    # Act / Assert
    assert thinned(curve, "equity", "last").equals(curve)
