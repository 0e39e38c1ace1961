"""Out-of-sample performance by market regime (trend x volatility), labels from trailing bars.

Each bar of an equity curve gets the regime label of a market instrument at that bar
(`features.regimes.regime_label`: up / sideways / down trend, i.e. bull / sideways / bear, x
low / high volatility), computed from that bar and earlier ones only; bars before the label
is defined count as `unlabeled`. A walk-forward window labels its own test bars from the bars
it reads (`regime_codes`, stored with the window), so a re-run needs no label computation.
Per regime: bars, compounded return of the curve's bar returns on those bars, and their
annualized Sharpe. The regimes' bars add up to the curve's, and the product of (1 + return)
over regimes is the curve's growth.
"""

import math
from datetime import datetime
from typing import Final

import numpy as np
import polars as pl

from quant_assets.backtest.metrics import per_bar_returns
from quant_assets.domain.report import RATIO_CAP
from quant_assets.domain.walkforward import RegimeStats
from quant_assets.features.regimes import REGIME_LABELS, regime_label

UNLABELED: Final = "unlabeled"
TREND_LOOKBACK_BARS: Final = 168
VOLATILITY_LOOKBACK_BARS: Final = 24
VOLATILITY_HISTORY_BARS: Final = 720
# Rows a label reads: the longer of the trend and volatility windows, plus the median history.
LABEL_HISTORY_BARS: Final = (
    max(TREND_LOOKBACK_BARS, VOLATILITY_LOOKBACK_BARS) + VOLATILITY_HISTORY_BARS + 1
)


def regime_labels(bars: pl.DataFrame, *, first_ts: datetime | None = None) -> pl.DataFrame:
    """Return ts and the regime label (String) of each bar, from trailing bars only.

    Args:
        bars: Canonical bars of the market instrument.
        first_ts: If given, labels are needed from this bar on: earlier bars
            beyond the labels' history are not read.

    Returns:
        A frame with ts and regime; `unlabeled` where the label is not yet defined.
    """
    if first_ts is not None:
        first_row = int(bars["ts"].search_sorted(first_ts, side="left"))
        bars = bars.slice(max(first_row - LABEL_HISTORY_BARS, 0))
    label = regime_label(
        trend_lookback_bars=TREND_LOOKBACK_BARS,
        volatility_lookback_bars=VOLATILITY_LOOKBACK_BARS,
        volatility_history_bars=VOLATILITY_HISTORY_BARS,
    )
    return bars.select("ts", label.cast(pl.String).fill_null(UNLABELED).alias("regime"))


def regime_codes(equity_ts: pl.Series, labels: pl.DataFrame) -> tuple[int, ...]:
    """Return each time's regime as its position in REGIME_LABELS (-1 when unlabeled).

    Args:
        equity_ts: The bar times to label (an equity curve's ts).
        labels: ts and regime per bar (from `regime_labels`).
    """
    joined = equity_ts.to_frame("ts").join(labels, on="ts", how="left")
    positions = {label: index for index, label in enumerate(REGIME_LABELS)}
    return tuple(positions.get(label, -1) for label in joined["regime"].to_list())


def labels_of(ts_us: np.ndarray, codes: np.ndarray) -> pl.DataFrame:
    """Return ts and regime names from bar times (microseconds) and regime codes."""
    names = pl.Series([*REGIME_LABELS, UNLABELED], dtype=pl.String)
    return pl.DataFrame(
        {
            "ts": pl.Series(ts_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "regime": names.gather(np.where(codes < 0, len(REGIME_LABELS), codes)),
        }
    )


def regime_breakdown(
    equity: pl.DataFrame,
    labels: pl.DataFrame,
    *,
    initial_cash: float,
    periods_per_year: float,
) -> list[RegimeStats]:
    """Return the curve's bars, return and Sharpe per regime (every label, then unlabeled).

    Args:
        equity: Equity frame (ts, equity, exposure).
        labels: ts and regime per bar (from `regime_labels`); bars without one are unlabeled.
        initial_cash: Equity before the curve's first bar.
        periods_per_year: Bars per year, to annualize the Sharpe ratio.

    Returns:
        One RegimeStats per label in REGIME_LABELS order (zero bars included), and one for
        `unlabeled` when any bar has no label.
    """
    returns = per_bar_returns(equity, initial_cash=initial_cash)
    joined = returns.join(labels.select("ts", "regime"), on="ts", how="left").with_columns(
        pl.col("regime").fill_null(UNLABELED)
    )
    values = joined["bar_return"].to_numpy()
    regimes = joined["regime"].to_numpy()
    names = list(REGIME_LABELS)
    if (regimes == UNLABELED).any():
        names.append(UNLABELED)
    return [_stats(name, values[regimes == name], periods_per_year) for name in names]


def _stats(regime: str, returns: np.ndarray, periods_per_year: float) -> RegimeStats:
    total_return = float(np.prod(1.0 + returns)) - 1.0 if returns.shape[0] else 0.0
    sharpe = 0.0
    if returns.shape[0] > 1:
        std = float(np.std(returns, ddof=1))
        if std > 0.0:
            sharpe = float(np.mean(returns)) / std * math.sqrt(periods_per_year)
    return RegimeStats(
        regime=regime,
        bars=int(returns.shape[0]),
        total_return=total_return,
        sharpe=max(-RATIO_CAP, min(RATIO_CAP, sharpe)),
    )
