"""Moving averages: SMA, EMA, WMA, Hull and Kaufman adaptive, all trailing windows."""

import math

import polars as pl

from quant_assets.features._expressions import (
    apply_float_kernel,
    output_name,
    require_at_least,
    sma_seeded_ema,
    weighted_moving_average,
)
from quant_assets.features._numba_helpers import kama_nb


def sma(*, span_bars: int = 20, column: str = "close") -> pl.Expr:
    """Return the simple mean of the last `span_bars` values (null until the window is full).

    Args:
        span_bars: Window length, current bar included.
        column: Input column.

    Returns:
        The expression named `sma_<span_bars>`.
    """
    require_at_least("sma", "span_bars", span_bars, 1)
    return pl.col(column).rolling_mean(span_bars).alias(output_name("sma", column, span_bars))


def ema(*, span_bars: int = 20, column: str = "close") -> pl.Expr:
    """Return the exponential moving average with alpha = 2 / (span_bars + 1).

    Seed convention (TA-Lib's default): the first value, on row span_bars - 1, is the simple
    mean of the first `span_bars` values; after that ema_t = ema_{t-1} + alpha * (x_t - ema_{t-1}).

    Args:
        span_bars: EMA span in bars.
        column: Input column.

    Returns:
        The expression named `ema_<span_bars>`.
    """
    require_at_least("ema", "span_bars", span_bars, 1)
    values = pl.col(column)
    return sma_seeded_ema(values, span_bars=span_bars).alias(output_name("ema", column, span_bars))


def wma(*, span_bars: int = 20, column: str = "close") -> pl.Expr:
    """Return the linearly weighted mean, weights 1..span_bars from the oldest to the newest bar.

    Args:
        span_bars: Window length, current bar included.
        column: Input column.

    Returns:
        The expression named `wma_<span_bars>`.
    """
    require_at_least("wma", "span_bars", span_bars, 1)
    values = pl.col(column)
    return weighted_moving_average(values, span_bars=span_bars).alias(
        output_name("wma", column, span_bars)
    )


def hma(*, span_bars: int = 20, column: str = "close") -> pl.Expr:
    """Return the Hull moving average WMA(2 * WMA(x, n // 2) - WMA(x, n), floor(sqrt(n))).

    The first value is on row n - 1 + floor(sqrt(n)) - 1.

    Args:
        span_bars: Hull span n (at least 2, so that n // 2 >= 1).
        column: Input column.

    Returns:
        The expression named `hma_<span_bars>`.
    """
    require_at_least("hma", "span_bars", span_bars, 2)
    values = pl.col(column)
    half = weighted_moving_average(values, span_bars=span_bars // 2)
    full = weighted_moving_average(values, span_bars=span_bars)
    smoothing_bars = math.isqrt(span_bars)
    return weighted_moving_average(2.0 * half - full, span_bars=smoothing_bars).alias(
        output_name("hma", column, span_bars)
    )


def kama(
    *,
    lookback_bars: int = 10,
    fast_span_bars: int = 2,
    slow_span_bars: int = 30,
    column: str = "close",
) -> pl.Expr:
    """Return Kaufman's adaptive moving average (stateful; computed by a Numba kernel).

    Seed convention (TA-Lib's KAMA): the value before the first output is the price on row
    lookback_bars - 1; the first output is on row lookback_bars. The efficiency ratio is the net
    change over `lookback_bars` steps divided by the sum of absolute one-bar changes (1 when
    that sum is zero); the smoothing constant is (ER * (2/(fast+1) - 2/(slow+1)) + 2/(slow+1))^2.

    Args:
        lookback_bars: Efficiency-ratio window in bar-to-bar steps.
        fast_span_bars: EMA span used when the market trends perfectly.
        slow_span_bars: EMA span used when the market is pure noise.
        column: Input column.

    Returns:
        The expression named `kama_<lookback_bars>_<fast>_<slow>`.
    """
    require_at_least("kama", "lookback_bars", lookback_bars, 1)
    require_at_least("kama", "fast_span_bars", fast_span_bars, 1)
    require_at_least("kama", "slow_span_bars", slow_span_bars, fast_span_bars)
    name = output_name("kama", column, lookback_bars, fast_span_bars, slow_span_bars)
    return apply_float_kernel(
        [pl.col(column)],
        lambda arrays: kama_nb(arrays[0], lookback_bars, fast_span_bars, slow_span_bars),
    ).alias(name)
