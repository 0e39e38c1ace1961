"""Stitch per-window curves and trades into one chained curve (walk-forward OOS or IS).

Each window's run starts from its own base equity; stitching chains the windows' bar returns,
which for fractional quantities is the same as scaling each window's run by the stitched
equity at its start. Trades are scaled by the same factor (qty, pnl, fees; prices and return
rates unchanged), so they stay consistent with the curve.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import polars as pl

from quant_assets.backtest.engine import EQUITY_SCHEMA, TS_DTYPE
from quant_assets.backtest.span_runner import TRADES_WITH_INSTRUMENT
from quant_assets.domain.walkforward import WindowCurve, WindowTrade

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


@dataclass(frozen=True)
class CurvePart:
    """One window's share of a stitched curve.

    Attributes:
        curve: The window's stored curve.
        trades: The trades of that curve.
        cut_us: Bars at or after this time (microseconds) are left to the next window; None
            keeps the whole curve.
    """

    curve: WindowCurve
    trades: Sequence[WindowTrade]
    cut_us: int | None = None


@dataclass(frozen=True)
class StitchedCurve:
    """A chained curve: ts, equity, exposure; and its trades (instrument + TRADES_SCHEMA)."""

    equity: pl.DataFrame
    trades: pl.DataFrame


def stitch(parts: Sequence[CurvePart], *, initial_cash: float) -> StitchedCurve:
    """Return the parts chained from `initial_cash`, in the order given (sorted by time).

    A ruined account stays ruined: once the stitched equity is at or below zero (or a part's
    run was ruined before it starts), later parts add flat bars at that equity and no trades.

    Args:
        parts: The windows' curves, earliest first, times not overlapping once cut.
        initial_cash: Equity before the first bar.

    Returns:
        The stitched equity frame and the scaled trades.
    """
    ts_parts: list[np.ndarray] = []
    equity_parts: list[np.ndarray] = []
    exposure_parts: list[np.ndarray] = []
    trade_rows: list[tuple[Any, ...]] = []
    level = initial_cash
    for part in parts:
        ts = np.asarray(part.curve.ts_us, dtype=np.int64)
        keep = np.ones(ts.shape[0], dtype=np.bool_) if part.cut_us is None else ts < part.cut_us
        ts = ts[keep]
        if ts.shape[0] == 0:
            continue
        ts_parts.append(ts)
        if part.curve.base_equity <= 0.0:
            level = min(level, 0.0)  # the window's run was ruined before its share began
        if level <= 0.0:
            equity_parts.append(np.full(ts.shape[0], level))
            exposure_parts.append(np.zeros(ts.shape[0]))
            continue
        scale = level / part.curve.base_equity
        equity_parts.append(np.asarray(part.curve.equity, dtype=np.float64)[keep] * scale)
        exposure_parts.append(np.asarray(part.curve.exposure, dtype=np.float64)[keep])
        trade_rows += _scaled(part.trades, scale, part.cut_us)
        level = float(equity_parts[-1][-1])
    frame = pl.DataFrame(
        {
            "ts": pl.Series(_concat(ts_parts, np.int64)).cast(pl.Datetime("us")),
            "equity": _concat(equity_parts, np.float64),
            "exposure": _concat(exposure_parts, np.float64),
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC").cast(TS_DTYPE))
    trades = pl.DataFrame(trade_rows, schema=TRADES_WITH_INSTRUMENT, orient="row")
    return StitchedCurve(frame.cast(EQUITY_SCHEMA), trades.sort("entry_ts", maintain_order=True))


def _scaled(
    trades: Sequence[WindowTrade], scale: float, cut_us: int | None
) -> list[tuple[Any, ...]]:
    rows = []
    for trade in trades:
        if cut_us is not None and (trade.entry_ts - _EPOCH) // _MICROSECOND >= cut_us:
            continue
        rows.append(
            (
                trade.instrument,
                trade.entry_ts,
                trade.exit_ts,
                trade.entry_bar,
                trade.exit_bar,
                trade.bars_held,
                trade.side.value,
                trade.qty * scale,
                trade.entry_price,
                trade.exit_price,
                trade.pnl * scale,
                trade.fees * scale,
                trade.return_rate,
                trade.exit_reason.value,
            )
        )
    return rows


def _concat(arrays: list[np.ndarray], dtype: type[np.generic]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)
