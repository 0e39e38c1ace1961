"""A static PNG of a run's out-of-sample equity vs buy-and-hold over its underwater curve.

Rendered with matplotlib's Agg canvas directly (no pyplot, no global backend), so importing
this module changes no matplotlib state and works without a display. The Dagster UI shows the
PNG inline from the asset's markdown metadata.
"""

import base64
import io
from typing import Final

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from quant_assets.backtest.metrics import drawdown_curve

WIDTH_PX: Final = 900
HEIGHT_PX: Final = 500
_DPI: Final = 100


def _times(frame: pl.DataFrame) -> np.ndarray:
    # Naive UTC datetime64 (matplotlib would otherwise convert to the local zone).
    return frame["ts"].dt.replace_time_zone(None).to_numpy()


def equity_chart_png(curve: pl.DataFrame, buy_and_hold: pl.DataFrame, initial_cash: float) -> bytes:
    """Return a 900 x 500 PNG: equity vs buy-and-hold on top, drawdown below.

    Args:
        curve: The out-of-sample equity frame (ts, equity, exposure).
        buy_and_hold: Equal-weight buy-and-hold equity (ts, equity) over the same bars.
        initial_cash: Account value before the first bar (the drawdown's first peak).

    Returns:
        The PNG file's bytes.
    """
    figure = Figure(figsize=(WIDTH_PX / _DPI, HEIGHT_PX / _DPI), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    top.plot(_times(curve), curve["equity"].to_numpy(), color="#1f77b4", lw=1.2, label="strategy")
    top.plot(
        _times(buy_and_hold),
        buy_and_hold["equity"].to_numpy(),
        color="#7f7f7f",
        lw=1.0,
        label="buy and hold",
    )
    top.set_ylabel("equity")
    top.set_title("Out-of-sample equity vs equal-weight buy and hold (UTC)", fontsize=10)
    top.legend(loc="upper left", fontsize=8, frameon=False)
    top.grid(alpha=0.3)
    drawdown = drawdown_curve(curve, initial_cash=initial_cash)
    bottom.fill_between(_times(drawdown), drawdown["drawdown"].to_numpy(), 0.0, color="#d62728")
    bottom.set_ylabel("drawdown")
    bottom.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    bottom.grid(alpha=0.3)
    locator = AutoDateLocator()
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    return buffer.getvalue()


def png_markdown(png: bytes, alt_text: str = "equity and drawdown") -> str:
    """Return markdown showing a PNG inline, as a base64 data URI (no file server needed)."""
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{alt_text}](data:image/png;base64,{encoded})"
