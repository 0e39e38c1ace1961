"""Oscillators: RSI, MACD, Stochastic, CCI, ROC, time-series momentum, z-score and Aroon."""

import polars as pl

from quant_assets.domain.errors import SpecValidationError
from quant_assets.features._expressions import (
    apply_float_kernel,
    log_returns,
    output_name,
    require_at_least,
    safe_divide,
    seeded_ema,
    sma_seeded_ema,
    wilder_mean,
)
from quant_assets.features._numba_helpers import bars_since_extreme_nb


def rsi(*, lookback_bars: int = 14, column: str = "close") -> pl.Expr:
    """Return Wilder's relative strength index in [0, 100].

    Average gain and loss are Wilder means (alpha = 1 / lookback_bars) seeded with the simple mean
    of the first `lookback_bars` one-bar changes, so the first value is on row lookback_bars
    (TA-Lib's convention). A window without any change reads 50 (TA-Lib writes 0 there).

    Args:
        lookback_bars: Wilder smoothing length.
        column: Input column.

    Returns:
        The expression named `rsi_<lookback_bars>`.
    """
    require_at_least("rsi", "lookback_bars", lookback_bars, 1)
    change = pl.col(column).diff()
    average_gain = wilder_mean(change.clip(lower_bound=0.0), lookback_bars=lookback_bars)
    # Wilder smoothing is linear, so mean gain + mean loss is the smoothed absolute change.
    average_move = wilder_mean(change.abs(), lookback_bars=lookback_bars)
    value = safe_divide(100.0 * average_gain, average_move, fallback=50.0)
    # The clip only removes rounding past the bounds (100 * g / g can round above 100).
    return value.clip(0.0, 100.0).alias(output_name("rsi", column, lookback_bars))


def macd(
    *, fast_span_bars: int = 12, slow_span_bars: int = 26, signal_span_bars: int = 9
) -> list[pl.Expr]:
    """Return the MACD line, its signal line and their difference (histogram) on close.

    Seed convention (TA-Lib's MACD): both EMAs start on row slow_span_bars - 1, the slow one
    from the mean of the first `slow_span_bars` closes and the fast one from the mean of the
    `fast_span_bars` closes ending on that row. The signal is an EMA of the MACD line seeded with
    the mean of its first `signal_span_bars` values (first on row slow + signal - 2).

    Args:
        fast_span_bars: Fast EMA span, below the slow span.
        slow_span_bars: Slow EMA span.
        signal_span_bars: Signal EMA span.

    Returns:
        `macd_<f>_<s>_<g>`, `macd_signal_<f>_<s>_<g>` and `macd_histogram_<f>_<s>_<g>`.

    Raises:
        SpecValidationError: if the fast span is not below the slow span.
    """
    require_at_least("macd", "fast_span_bars", fast_span_bars, 1)
    require_at_least("macd", "signal_span_bars", signal_span_bars, 1)
    if fast_span_bars >= slow_span_bars:
        raise SpecValidationError(
            f"feature 'macd': fast_span_bars was {fast_span_bars}, not below slow_span_bars "
            f"{slow_span_bars}; choose a fast span shorter than the slow span"
        )
    close = pl.col("close")
    slow = sma_seeded_ema(close, span_bars=slow_span_bars)
    fast = seeded_ema(
        close,
        alpha=2.0 / (fast_span_bars + 1.0),
        seed_count=slow_span_bars,
        seed_window=fast_span_bars,
    )
    line = fast - slow
    signal = sma_seeded_ema(line, span_bars=signal_span_bars)
    suffix = f"{fast_span_bars}_{slow_span_bars}_{signal_span_bars}"
    return [
        line.alias(f"macd_{suffix}"),
        signal.alias(f"macd_signal_{suffix}"),
        (line - signal).alias(f"macd_histogram_{suffix}"),
    ]


def stochastic(
    *, lookback_bars: int = 14, smooth_k_bars: int = 3, smooth_d_bars: int = 3
) -> list[pl.Expr]:
    """Return the stochastic oscillator %K and %D in [0, 100] (TA-Lib STOCH with SMA smoothing).

    Raw %K = 100 * (close - lowest low) / (highest high - lowest low) over `lookback_bars` bars
    including the current one (50 when the range is zero; TA-Lib writes 0); %K is its SMA over
    `smooth_k_bars` (1 gives the fast stochastic) and %D the SMA of %K over `smooth_d_bars`.

    Args:
        lookback_bars: High/low window.
        smooth_k_bars: Smoothing of raw %K.
        smooth_d_bars: Smoothing of %K into %D.

    Returns:
        `stochastic_k_<n>_<k>_<d>` and `stochastic_d_<n>_<k>_<d>`.
    """
    require_at_least("stochastic", "lookback_bars", lookback_bars, 1)
    require_at_least("stochastic", "smooth_k_bars", smooth_k_bars, 1)
    require_at_least("stochastic", "smooth_d_bars", smooth_d_bars, 1)
    highest = pl.col("high").rolling_max(lookback_bars)
    lowest = pl.col("low").rolling_min(lookback_bars)
    raw_k = safe_divide(100.0 * (pl.col("close") - lowest), highest - lowest, fallback=50.0)
    # Rolling means of values on a bound can round past it; the clips only remove that.
    percent_k = raw_k.rolling_mean(smooth_k_bars).clip(0.0, 100.0)
    percent_d = percent_k.rolling_mean(smooth_d_bars).clip(0.0, 100.0)
    suffix = f"{lookback_bars}_{smooth_k_bars}_{smooth_d_bars}"
    return [percent_k.alias(f"stochastic_k_{suffix}"), percent_d.alias(f"stochastic_d_{suffix}")]


def cci(*, lookback_bars: int = 20) -> pl.Expr:
    """Return the commodity channel index (TA-Lib's definition).

    Typical price tp = (high + low + close) / 3; CCI = (tp - SMA(tp)) / (0.015 * mean absolute
    deviation of the window's tp from that SMA), 0 when the deviation is zero. The deviation is a
    sum over `lookback_bars` lagged columns, so its cost grows with the window.

    Args:
        lookback_bars: Window length, current bar included.

    Returns:
        The expression named `cci_<lookback_bars>`.
    """
    require_at_least("cci", "lookback_bars", lookback_bars, 2)
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3.0
    mean = typical.rolling_mean(lookback_bars)
    deviations = [(typical.shift(lag) - mean).abs() for lag in range(lookback_bars)]
    # sum_horizontal skips nulls; the warm-up rows are nulled again through `mean`.
    mean_deviation = pl.sum_horizontal(deviations) / lookback_bars
    mean_deviation = pl.when(mean.is_null()).then(None).otherwise(mean_deviation)
    return safe_divide(typical - mean, 0.015 * mean_deviation, fallback=0.0).alias(
        f"cci_{lookback_bars}"
    )


def rate_of_change(*, lookback_bars: int = 10, column: str = "close") -> pl.Expr:
    """Return x_t / x_{t-lookback_bars} - 1 as a fraction (TA-Lib ROC / 100).

    Args:
        lookback_bars: Distance in bars to the reference value.
        column: Input column.

    Returns:
        The expression named `rate_of_change_<lookback_bars>`.
    """
    require_at_least("rate_of_change", "lookback_bars", lookback_bars, 1)
    values = pl.col(column)
    return (values / values.shift(lookback_bars) - 1.0).alias(
        output_name("rate_of_change", column, lookback_bars)
    )


def time_series_momentum(
    *, lookback_bars: int = 168, volatility_lookback_bars: int = 168
) -> pl.Expr:
    """Return volatility-scaled time-series momentum (a t-statistic of the trailing move).

    tsm_t = log(close_t / close_{t-n}) / (sigma_t * sqrt(n)), with sigma_t the sample standard
    deviation (ddof=1) of the last `volatility_lookback_bars` one-bar log returns; 0 when sigma is
    zero. Its sign is Moskowitz-Ooi-Pedersen's time-series momentum signal.

    Args:
        lookback_bars: Momentum horizon n.
        volatility_lookback_bars: Window of the per-bar volatility estimate.

    Returns:
        The expression named `time_series_momentum_<n>_<volatility_lookback_bars>`.
    """
    require_at_least("time_series_momentum", "lookback_bars", lookback_bars, 1)
    require_at_least(
        "time_series_momentum", "volatility_lookback_bars", volatility_lookback_bars, 2
    )
    close = pl.col("close")
    move = (close / close.shift(lookback_bars)).log()
    sigma = log_returns().rolling_std(volatility_lookback_bars, ddof=1)
    scale = sigma * (lookback_bars**0.5)
    return safe_divide(move, scale, fallback=0.0).alias(
        f"time_series_momentum_{lookback_bars}_{volatility_lookback_bars}"
    )


def zscore(*, lookback_bars: int = 20, column: str = "close") -> pl.Expr:
    """Return (x - rolling mean) / rolling population std (ddof=0) over `lookback_bars` bars.

    A flat window reads 0.

    Args:
        lookback_bars: Window length, current bar included.
        column: Input column.

    Returns:
        The expression named `zscore_<lookback_bars>`.
    """
    require_at_least("zscore", "lookback_bars", lookback_bars, 2)
    values = pl.col(column)
    mean = values.rolling_mean(lookback_bars)
    deviation = values.rolling_std(lookback_bars, ddof=0)
    return safe_divide(values - mean, deviation, fallback=0.0).alias(
        output_name("zscore", column, lookback_bars)
    )


def aroon(*, lookback_bars: int = 25) -> list[pl.Expr]:
    """Return Aroon up, Aroon down (both in [0, 100]) and the oscillator up - down.

    Over the current bar and the `lookback_bars` before it (TA-Lib's window), Aroon up is
    100 * (lookback_bars - bars since the highest high) / lookback_bars; ties take the most
    recent bar. Aroon down uses the lowest low.

    Args:
        lookback_bars: Look-back length.

    Returns:
        `aroon_up_<n>`, `aroon_down_<n>` and `aroon_oscillator_<n>`.
    """
    require_at_least("aroon", "lookback_bars", lookback_bars, 1)
    window_bars = lookback_bars + 1
    since_high = apply_float_kernel(
        [pl.col("high")], lambda arrays: bars_since_extreme_nb(arrays[0], window_bars, True)
    )
    since_low = apply_float_kernel(
        [pl.col("low")], lambda arrays: bars_since_extreme_nb(arrays[0], window_bars, False)
    )
    up = 100.0 * (lookback_bars - since_high) / lookback_bars
    down = 100.0 * (lookback_bars - since_low) / lookback_bars
    return [
        up.alias(f"aroon_up_{lookback_bars}"),
        down.alias(f"aroon_down_{lookback_bars}"),
        (up - down).alias(f"aroon_oscillator_{lookback_bars}"),
    ]
