"""Volatility and channels: returns, true range, ATR, Bollinger, Keltner, Donchian, realized vol."""

import polars as pl

from quant_assets.features._expressions import (
    log_returns,
    output_name,
    param_suffix,
    require_at_least,
    safe_divide,
    sma_seeded_ema,
    wilder_mean,
)


def log_return() -> pl.Expr:
    """Return the one-bar log return of the close, log(close_t / close_{t-1}); null on row 0.

    Returns:
        The expression named `log_return`.
    """
    return log_returns().alias("log_return")


def true_range() -> pl.Expr:
    """Return each bar's true range, using the previous close and never the next one.

    Null on the first bar, which has no previous close (TA-Lib's TRANGE convention).

    Returns:
        The expression named `true_range`.
    """
    high, low, prev_close = pl.col("high"), pl.col("low"), pl.col("close").shift(1)
    spans = [high - low, (high - prev_close).abs(), (low - prev_close).abs()]
    return (
        pl.when(prev_close.is_null())
        .then(None)
        .otherwise(pl.max_horizontal(spans))
        .alias("true_range")
    )


def average_true_range(*, lookback_bars: int = 14) -> pl.Expr:
    """Return Wilder's average true range.

    Seed convention (TA-Lib's ATR): the first value, on row lookback_bars, is the mean of the
    true ranges of rows 1..lookback_bars; then atr_t = atr_{t-1} + (tr_t - atr_{t-1}) / n.

    Args:
        lookback_bars: Wilder smoothing length n.

    Returns:
        The expression named `average_true_range_<lookback_bars>`.
    """
    require_at_least("average_true_range", "lookback_bars", lookback_bars, 1)
    return wilder_mean(true_range(), lookback_bars=lookback_bars).alias(
        f"average_true_range_{lookback_bars}"
    )


def bollinger_bands(
    *, lookback_bars: int = 20, width_stdevs: float = 2.0, column: str = "close"
) -> list[pl.Expr]:
    """Return Bollinger middle, upper and lower bands and the bandwidth (upper - lower) / middle.

    The middle band is the SMA; the bands sit `width_stdevs` population standard deviations
    (ddof=0, as TA-Lib's BBANDS) above and below it.

    Args:
        lookback_bars: Window length, current bar included.
        width_stdevs: Band distance in standard deviations.
        column: Input column.

    Returns:
        `bollinger_middle_<n>_<w>`, `bollinger_upper_<n>_<w>`, `bollinger_lower_<n>_<w>` and
        `bollinger_bandwidth_<n>_<w>`.
    """
    require_at_least("bollinger_bands", "lookback_bars", lookback_bars, 2)
    require_at_least("bollinger_bands", "width_stdevs", width_stdevs, 0.0)
    values = pl.col(column)
    middle = values.rolling_mean(lookback_bars)
    offset = width_stdevs * values.rolling_std(lookback_bars, ddof=0)
    upper, lower = middle + offset, middle - offset
    bandwidth = safe_divide(upper - lower, middle, fallback=0.0)
    return [
        middle.alias(output_name("bollinger_middle", column, lookback_bars, width_stdevs)),
        upper.alias(output_name("bollinger_upper", column, lookback_bars, width_stdevs)),
        lower.alias(output_name("bollinger_lower", column, lookback_bars, width_stdevs)),
        bandwidth.alias(output_name("bollinger_bandwidth", column, lookback_bars, width_stdevs)),
    ]


def keltner_channels(
    *, span_bars: int = 20, atr_bars: int = 10, width_atr: float = 2.0
) -> list[pl.Expr]:
    """Return Keltner middle (EMA of close), upper and lower (middle +/- width_atr * ATR).

    The EMA follows `moving_averages.ema`'s seed and the ATR `average_true_range`'s.

    Args:
        span_bars: EMA span of the middle line.
        atr_bars: ATR length.
        width_atr: Channel half-width in ATRs.

    Returns:
        `keltner_middle_<s>_<a>_<w>`, `keltner_upper_<s>_<a>_<w>` and `keltner_lower_<s>_<a>_<w>`.
    """
    require_at_least("keltner_channels", "span_bars", span_bars, 1)
    require_at_least("keltner_channels", "atr_bars", atr_bars, 1)
    require_at_least("keltner_channels", "width_atr", width_atr, 0.0)
    middle = sma_seeded_ema(pl.col("close"), span_bars=span_bars)
    offset = width_atr * wilder_mean(true_range(), lookback_bars=atr_bars)
    suffix = param_suffix(span_bars, atr_bars, width_atr)
    return [
        middle.alias(f"keltner_middle{suffix}"),
        (middle + offset).alias(f"keltner_upper{suffix}"),
        (middle - offset).alias(f"keltner_lower{suffix}"),
    ]


def donchian_channels(*, lookback_bars: int = 20) -> list[pl.Expr]:
    """Return the Donchian upper (highest high), lower (lowest low) and middle lines.

    The window includes the current bar, so a breakout rule must compare the close with the
    previous bar's channel (`.shift(1)`), which is still look-ahead safe.

    Args:
        lookback_bars: Window length, current bar included.

    Returns:
        `donchian_upper_<n>`, `donchian_lower_<n>` and `donchian_middle_<n>`.
    """
    require_at_least("donchian_channels", "lookback_bars", lookback_bars, 1)
    upper = pl.col("high").rolling_max(lookback_bars)
    lower = pl.col("low").rolling_min(lookback_bars)
    return [
        upper.alias(f"donchian_upper_{lookback_bars}"),
        lower.alias(f"donchian_lower_{lookback_bars}"),
        ((upper + lower) / 2.0).alias(f"donchian_middle_{lookback_bars}"),
    ]


def realized_volatility(*, lookback_bars: int = 24) -> pl.Expr:
    """Return the sample standard deviation (ddof=1) of the last `lookback_bars` log returns.

    Per bar, as a fraction; annualize by multiplying with sqrt(bars per year) when reporting.
    The first value is on row lookback_bars (row 0 has no return).

    Args:
        lookback_bars: Number of one-bar returns in the window.

    Returns:
        The expression named `realized_volatility_<lookback_bars>`.
    """
    require_at_least("realized_volatility", "lookback_bars", lookback_bars, 2)
    return (
        log_returns()
        .rolling_std(lookback_bars, ddof=1)
        .alias(f"realized_volatility_{lookback_bars}")
    )
