"""Plotly figures of a walk-forward tear sheet and the series behind them.

Curves are frames with `ts` (bar open, UTC) and `equity`; the out-of-sample curve starts from
`initial_cash`, so its first bar's return is measured from it (`backtest.metrics`). Returns are
fractions; percent is only how the figures show them.
"""

import math
from typing import Final, Literal

import numpy as np
import plotly.graph_objects as go
import polars as pl

from quant_assets.backtest.metrics import drawdown_curve, per_bar_returns

MONTH_NAMES: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
ROLLING_SHARPE_DAYS: Final = 30
PLOT_POINTS: Final = 4000
"""Most points a line figure draws: longer curves are thinned (a 7-year hourly curve has 60,000)."""
_TEMPLATE: Final = "plotly_white"
_HEIGHT_PX: Final = 360
_STRATEGY_COLOR: Final = "#1f77b4"
_BENCHMARK_COLOR: Final = "#7f7f7f"
_LOSS_COLOR: Final = "#d62728"


def _times(frame: pl.DataFrame) -> np.ndarray:
    # Naive UTC datetime64: plotly writes ISO text without an offset; the axes say UTC.
    return frame["ts"].dt.replace_time_zone(None).to_numpy()


def thinned(frame: pl.DataFrame, value: str, keep: Literal["last", "min"]) -> pl.DataFrame:
    """Return at most about PLOT_POINTS rows of a curve, one per run of consecutive bars.

    `last` keeps each run's last bar (an equity curve's close); `min` keeps each run's lowest
    value (a drawdown's trough, which thinning must not hide).
    """
    if frame.height <= PLOT_POINTS:
        return frame
    step = math.ceil(frame.height / PLOT_POINTS)
    runs = frame.with_row_index("_row").with_columns((pl.col("_row") // step).alias("_run"))
    if keep == "last":
        picked = runs.group_by("_run", maintain_order=True).agg(pl.all().last())
    else:
        picked = runs.sort(value).group_by("_run").agg(pl.all().first()).sort("_run")
    return picked.drop("_row", "_run")


def _layout(figure: go.Figure, title: str, y_title: str, y_format: str = "") -> go.Figure:
    figure.update_layout(
        title=title,
        template=_TEMPLATE,
        height=_HEIGHT_PX,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        legend={"orientation": "h", "y": 1.02, "x": 1.0, "xanchor": "right", "yanchor": "bottom"},
    )
    figure.update_yaxes(title_text=y_title, tickformat=y_format)
    return figure


def monthly_returns(curve: pl.DataFrame, initial_cash: float) -> pl.DataFrame:
    """Return each calendar month's compounded return of an equity curve (UTC months).

    Args:
        curve: Equity frame (ts, equity).
        initial_cash: Account value before the first bar.

    Returns:
        A frame with columns year, month (1-12) and monthly_return, one row per month with bars.
    """
    returns = per_bar_returns(curve, initial_cash=initial_cash)
    return (
        returns.group_by(
            pl.col("ts").dt.year().alias("year"), pl.col("ts").dt.month().alias("month")
        )
        .agg((pl.col("bar_return") + 1.0).product().sub(1.0).alias("monthly_return"))
        .sort("year", "month")
    )


def rolling_window_bars(periods_per_year: float, n_bars: int) -> int:
    """Return the rolling Sharpe window: about 30 days of bars, at most half the curve, >= 2."""
    days = round(periods_per_year * ROLLING_SHARPE_DAYS / 365.0)
    return max(2, min(days, n_bars // 2))


def rolling_sharpe(
    curve: pl.DataFrame, initial_cash: float, periods_per_year: float, window_bars: int
) -> pl.DataFrame:
    """Return the annualized Sharpe of each trailing window of bar returns.

    Same convention as `EvalReport.sharpe`: mean / std (ddof 1) * sqrt(periods_per_year), zero
    risk-free rate. Bars before the first full window and flat windows are left out.

    Returns:
        A frame with columns ts and rolling_sharpe.
    """
    returns = per_bar_returns(curve, initial_cash=initial_cash)["bar_return"]
    mean = returns.rolling_mean(window_bars)
    std = returns.rolling_std(window_bars, ddof=1)
    sharpe = (mean / std * math.sqrt(periods_per_year)).alias("rolling_sharpe")
    frame = pl.DataFrame({"ts": curve["ts"], "rolling_sharpe": sharpe})
    return frame.filter(
        pl.col("rolling_sharpe").is_not_null() & pl.col("rolling_sharpe").is_finite()
    )


def equity_figure(curve: pl.DataFrame, buy_and_hold: pl.DataFrame) -> go.Figure:
    """Return the out-of-sample equity curve beside equal-weight buy-and-hold."""
    curve, buy_and_hold = thinned(curve, "equity", "last"), thinned(buy_and_hold, "equity", "last")
    figure = go.Figure()
    figure.add_scatter(
        x=_times(curve),
        y=curve["equity"].to_numpy(),
        name="strategy (OOS)",
        line={"color": _STRATEGY_COLOR, "width": 1.5},
    )
    figure.add_scatter(
        x=_times(buy_and_hold),
        y=buy_and_hold["equity"].to_numpy(),
        name="buy and hold (equal weight)",
        line={"color": _BENCHMARK_COLOR, "width": 1.2},
    )
    return _layout(figure, "Out-of-sample equity vs buy and hold", "equity", ",.0f")


def drawdown_figure(curve: pl.DataFrame, initial_cash: float) -> go.Figure:
    """Return the underwater curve: equity / running peak - 1, the peak starting at the cash."""
    drawdown = thinned(drawdown_curve(curve, initial_cash=initial_cash), "drawdown", "min")
    figure = go.Figure()
    figure.add_scatter(
        x=_times(drawdown),
        y=drawdown["drawdown"].to_numpy(),
        name="drawdown",
        fill="tozeroy",
        line={"color": _LOSS_COLOR, "width": 1.0},
    )
    return _layout(figure, "Underwater (drawdown from the running peak)", "drawdown", ".1%")


def monthly_returns_figure(monthly: pl.DataFrame) -> go.Figure:
    """Return a year x month heatmap of monthly returns (blank where the curve has no bars)."""
    years = sorted(set(monthly["year"].to_list()))
    cells: dict[tuple[int, int], float] = {
        (year, month): value
        for year, month, value in monthly.select("year", "month", "monthly_return").iter_rows()
    }
    z = [[cells.get((year, month)) for month in range(1, 13)] for year in years]
    text = [["" if value is None else f"{value:.2%}" for value in row] for row in z]
    figure = go.Figure(
        go.Heatmap(
            x=list(MONTH_NAMES),
            y=[str(year) for year in years],
            z=z,
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0.0,
            hoverongaps=False,
            colorbar={"tickformat": ".1%"},
        )
    )
    figure = _layout(figure, "Monthly returns (out of sample, UTC months)", "year")
    figure.update_yaxes(type="category", autorange="reversed")
    return figure


def rolling_sharpe_figure(rolling: pl.DataFrame, window_bars: int) -> go.Figure:
    """Return the rolling annualized Sharpe of the out-of-sample curve."""
    rolling = thinned(rolling, "rolling_sharpe", "last")
    figure = go.Figure()
    figure.add_scatter(
        x=_times(rolling),
        y=rolling["rolling_sharpe"].to_numpy(),
        name=f"Sharpe over {window_bars} bars",
        line={"color": _STRATEGY_COLOR, "width": 1.2},
    )
    figure.add_hline(y=0.0, line={"color": _BENCHMARK_COLOR, "width": 1, "dash": "dot"})
    title = f"Rolling Sharpe ({window_bars} bars, about {ROLLING_SHARPE_DAYS} days, annualized)"
    return _layout(figure, title, "Sharpe")


def trade_pnl_figure(trades: pl.DataFrame) -> go.Figure:
    """Return a histogram of out-of-sample trade PnL (account currency, after fees)."""
    pnl = trades["pnl"].cast(pl.Float64).to_numpy()
    counts, edges = np.histogram(pnl, bins="auto")
    centers, widths = (edges[:-1] + edges[1:]) / 2.0, np.diff(edges)
    colors = [_LOSS_COLOR if center < 0 else _STRATEGY_COLOR for center in centers]
    figure = go.Figure(
        go.Bar(
            x=centers,
            y=counts.astype(np.int64),
            width=widths,
            marker={"color": colors},
            name="trades",
        )
    )
    return _layout(figure, f"Trade PnL ({pnl.size} trades)", "trades")


def exit_reasons_figure(trades: pl.DataFrame) -> go.Figure:
    """Return how many out-of-sample trades ended by each exit reason, most frequent first."""
    counts = trades["exit_reason"].value_counts(sort=True, name="trades")
    counts = counts.sort(["trades", "exit_reason"], descending=[True, False])
    figure = go.Figure(
        go.Bar(
            x=counts["exit_reason"].to_list(),
            y=counts["trades"].cast(pl.Int64).to_numpy(),
            marker={"color": _STRATEGY_COLOR},
            name="trades",
        )
    )
    return _layout(figure, "Exit reasons", "trades")
