"""Trend strength and trend-following lines: ADX/+DI/-DI, SuperTrend and Ehlers' TrendFlex."""

import polars as pl

from quant_assets.features._expressions import (
    apply_float_kernel,
    param_suffix,
    require_at_least,
    safe_divide,
    seeded_ema,
    valid_count,
    wilder_mean,
)
from quant_assets.features._numba_helpers import supertrend_nb, trendflex_nb
from quant_assets.features.volatility import average_true_range, true_range


def _wilder_sum(values: pl.Expr, lookback_bars: int) -> pl.Expr:
    # TA-Lib's ADX smoothing: S = sum of the first n - 1 values, then S_t = S_{t-1} * (1 - 1/n)
    # + v_t, which is an EMA with alpha = 1/n over n * v_t seeded with that sum.
    return seeded_ema(
        values * float(lookback_bars),
        alpha=1.0 / lookback_bars,
        seed_count=lookback_bars - 1,
        seed_scale=1.0 / lookback_bars,
    )


def directional_movement(*, lookback_bars: int = 14) -> list[pl.Expr]:
    """Return Wilder's ADX, +DI and -DI, all in [0, 100] (TA-Lib's ADX, PLUS_DI, MINUS_DI).

    +DM = up move if it exceeds the down move and is positive, else 0 (and symmetrically for
    -DM). DM and true range are Wilder sums seeded with the sum of their first n - 1 values, so
    the DIs start on row n; DX = 100 * |+DI - -DI| / (+DI + -DI) (0 when both are 0), and ADX is
    Wilder's mean of DX seeded with the mean of its first n values, so it starts on row 2n - 1.

    Args:
        lookback_bars: Wilder smoothing length n (at least 2).

    Returns:
        `adx_<n>`, `plus_di_<n>` and `minus_di_<n>`.
    """
    require_at_least("directional_movement", "lookback_bars", lookback_bars, 2)
    up_move = pl.col("high").diff()
    down_move = -pl.col("low").diff()
    has_previous = up_move.is_not_null()
    plus_dm = (
        pl.when(has_previous)
        .then(pl.when((up_move > down_move) & (up_move > 0.0)).then(up_move).otherwise(0.0))
        .otherwise(None)
    )
    minus_dm = (
        pl.when(has_previous)
        .then(pl.when((down_move > up_move) & (down_move > 0.0)).then(down_move).otherwise(0.0))
        .otherwise(None)
    )
    plus_sum = _wilder_sum(plus_dm, lookback_bars)
    minus_sum = _wilder_sum(minus_dm, lookback_bars)
    range_sum = _wilder_sum(true_range(), lookback_bars)
    # The seed row (n - 1) holds a partial sum; TA-Lib's first DI is on row n.
    ready = valid_count(up_move) >= lookback_bars
    plus_di = safe_divide(100.0 * plus_sum, range_sum, fallback=0.0)
    minus_di = safe_divide(100.0 * minus_sum, range_sum, fallback=0.0)
    # The true-range sum cancels out of DX, so it is computed from the DM sums directly.
    dx = safe_divide(100.0 * (plus_sum - minus_sum).abs(), plus_sum + minus_sum, fallback=0.0)
    adx = wilder_mean(pl.when(ready).then(dx).otherwise(None), lookback_bars=lookback_bars)
    # The clips only remove rounding past the [0, 100] bounds.
    return [
        adx.clip(0.0, 100.0).alias(f"adx_{lookback_bars}"),
        pl.when(ready).then(plus_di.clip(0.0, 100.0)).alias(f"plus_di_{lookback_bars}"),
        pl.when(ready).then(minus_di.clip(0.0, 100.0)).alias(f"minus_di_{lookback_bars}"),
    ]


def supertrend(*, atr_bars: int = 10, multiplier: float = 3.0) -> list[pl.Expr]:
    """Return the SuperTrend line and its direction (+1 up, -1 down) (stateful; Numba kernel).

    Bands are hl2 +/- multiplier * ATR, where the ATR is `average_true_range(atr_bars)` (Wilder,
    TA-Lib seed), so the first value is on row atr_bars. The final upper band ratchets down and
    the final lower band ratchets up until the previous close breaks them; the direction turns
    up when the close exceeds the final upper band and down when it falls below the final lower
    band; the line is the lower band in an up trend and the upper band in a down trend. The first
    bar starts down (TradingView's `ta.supertrend`, which this matches given the same ATR).

    Args:
        atr_bars: ATR length.
        multiplier: Band distance in ATRs.

    Returns:
        `supertrend_<a>_<m>` (price) and `supertrend_direction_<a>_<m>` (Int8, +1 or -1).
    """
    require_at_least("supertrend", "atr_bars", atr_bars, 1)
    require_at_least("supertrend", "multiplier", multiplier, 0.0)
    inputs = [
        pl.col("high"),
        pl.col("low"),
        pl.col("close"),
        average_true_range(lookback_bars=atr_bars),
    ]
    line = apply_float_kernel(
        inputs,
        lambda arrays: supertrend_nb(arrays[0], arrays[1], arrays[2], arrays[3], multiplier)[0],
    )
    direction = apply_float_kernel(
        inputs,
        lambda arrays: supertrend_nb(arrays[0], arrays[1], arrays[2], arrays[3], multiplier)[1],
    ).cast(pl.Int8)
    suffix = param_suffix(atr_bars, multiplier)
    return [
        line.alias(f"supertrend{suffix}"),
        direction.alias(f"supertrend_direction{suffix}"),
    ]


def trendflex(*, lookback_bars: int = 20) -> pl.Expr:
    """Return Ehlers' TrendFlex on close, in [-5, 5] (stateful; Numba kernel).

    Definition, seeds and bound: see `_numba_helpers.trendflex_nb` (super smoother with half the
    look-back as its period, seeded with the close on the first two rows; mean-square
    normalizer seeded at 0). The first value is on row lookback_bars.

    Args:
        lookback_bars: TrendFlex length (at least 2).

    Returns:
        The expression named `trendflex_<lookback_bars>`.
    """
    require_at_least("trendflex", "lookback_bars", lookback_bars, 2)
    return apply_float_kernel(
        [pl.col("close")], lambda arrays: trendflex_nb(arrays[0], lookback_bars)
    ).alias(f"trendflex_{lookback_bars}")
