"""Numba kernels for the few genuinely stateful or windowed-argmax features (private).

Each kernel reads row t only from rows <= t, takes contiguous float64 arrays, returns a fresh
float64 array with NaN for rows without a value, and ends in `_nb` (STYLE.md section 4).
"""

import math

import numpy as np
from numba import njit

from quant_assets.domain.arrays import FloatArray


@njit(cache=True, nogil=True)
def first_finite_index_nb(values: FloatArray) -> int:
    """Return the index of the first non-NaN value, or len(values) if there is none."""
    for index in range(values.shape[0]):
        if not math.isnan(values[index]):
            return index
    return values.shape[0]


@njit(cache=True, nogil=True)
def seeded_ema_nb(
    values: FloatArray, alpha: float, seed_count: int, seed_window: int, seed_scale: float
) -> FloatArray:
    """Return y_t = (1 - alpha) * y_{t-1} + alpha * x_t started from an explicit seed.

    The seed row s is where the running count of non-NaN values reaches `seed_count`;
    y_s = seed_scale * (sum of the `seed_window` values ending on row s). Rows before s are NaN,
    and so is every row from the first NaN after s (inputs are NaN only as a leading warm-up).
    """
    size = values.shape[0]
    out = np.full(size, np.nan)
    start = first_finite_index_nb(values) + seed_count - 1
    if seed_count < 1 or seed_window < 1 or seed_window > seed_count or start >= size:
        return out
    total = 0.0
    for index in range(start - seed_window + 1, start + 1):
        total += values[index]
    level = seed_scale * total
    out[start] = level
    for t in range(start + 1, size):
        level = level + alpha * (values[t] - level)
        out[t] = level
    return out


@njit(cache=True, nogil=True)
def kama_nb(
    values: FloatArray, lookback_bars: int, fast_span_bars: int, slow_span_bars: int
) -> FloatArray:
    """Return Kaufman's adaptive moving average with TA-Lib's seed.

    KAMA_{s-1} = x_{s-1} with s = first + lookback_bars; from row s on,
    KAMA_t = KAMA_{t-1} + sc_t * (x_t - KAMA_{t-1}), sc_t = (ER_t * (f - w) + w)^2,
    f = 2 / (fast + 1), w = 2 / (slow + 1), ER_t = |x_t - x_{t-n}| / sum |x_i - x_{i-1}|
    over the last n steps (ER = 1 when that sum is zero or not above the change, as TA-Lib).
    """
    size = values.shape[0]
    out = np.full(size, np.nan)
    fastest = 2.0 / (fast_span_bars + 1.0)
    slowest = 2.0 / (slow_span_bars + 1.0)
    start = first_finite_index_nb(values) + lookback_bars
    if start >= size:
        return out
    kama = values[start - 1]
    for t in range(start, size):
        change = abs(values[t] - values[t - lookback_bars])
        path = 0.0
        for index in range(t - lookback_bars + 1, t + 1):
            path += abs(values[index] - values[index - 1])
        ratio = 1.0 if path <= change or path == 0.0 else change / path
        constant = (ratio * (fastest - slowest) + slowest) ** 2
        kama = kama + constant * (values[t] - kama)
        out[t] = kama
    return out


@njit(cache=True, nogil=True)
def bars_since_extreme_nb(values: FloatArray, window_bars: int, find_max: bool) -> FloatArray:
    """Return, per row, how many bars ago the window's extreme occurred (latest one on ties).

    The window is the current row and the `window_bars - 1` rows before it; rows without a full
    window are NaN. Ties resolve to the most recent bar, as TA-Lib's AROON does.
    """
    size = values.shape[0]
    out = np.full(size, np.nan)
    first = first_finite_index_nb(values)
    extreme_index = -1
    for t in range(first + window_bars - 1, size):
        trailing = t - window_bars + 1
        if extreme_index < trailing:
            # The previous extreme left the window: rescan it.
            extreme_index = trailing
            for index in range(trailing + 1, t + 1):
                if _is_at_least_as_extreme(values[index], values[extreme_index], find_max):
                    extreme_index = index
        elif _is_at_least_as_extreme(values[t], values[extreme_index], find_max):
            extreme_index = t
        out[t] = t - extreme_index
    return out


@njit(cache=True, nogil=True)
def _is_at_least_as_extreme(candidate: float, current: float, find_max: bool) -> bool:
    if find_max:
        return candidate >= current
    return candidate <= current


@njit(cache=True, nogil=True)
def supertrend_nb(
    high: FloatArray, low: FloatArray, close: FloatArray, atr: FloatArray, multiplier: float
) -> tuple[FloatArray, FloatArray]:
    """Return the SuperTrend line and direction (+1 up, -1 down), NaN before the first ATR.

    Basic bands are hl2 +/- multiplier * ATR. The final upper band only moves down unless the
    previous close broke above it; the final lower band only moves up unless the previous close
    broke below it. In a down trend the trend turns up when the close exceeds the final upper
    band; in an up trend it turns down when the close falls below the final lower band. The
    line is the final lower band in an up trend, the final upper band in a down trend. The first
    bar with an ATR starts down on its basic bands, as TradingView's `ta.supertrend` does.
    """
    size = close.shape[0]
    line = np.full(size, np.nan)
    direction = np.full(size, np.nan)
    start = first_finite_index_nb(atr)
    if start >= size:
        return line, direction
    midpoint = (high[start] + low[start]) / 2.0
    upper = midpoint + multiplier * atr[start]
    lower = midpoint - multiplier * atr[start]
    trend = -1.0
    line[start] = upper
    direction[start] = trend
    for t in range(start + 1, size):
        midpoint = (high[t] + low[t]) / 2.0
        basic_upper = midpoint + multiplier * atr[t]
        basic_lower = midpoint - multiplier * atr[t]
        upper = basic_upper if basic_upper < upper or close[t - 1] > upper else upper
        lower = basic_lower if basic_lower > lower or close[t - 1] < lower else lower
        if trend < 0:
            trend = 1.0 if close[t] > upper else -1.0
        else:
            trend = -1.0 if close[t] < lower else 1.0
        line[t] = lower if trend > 0 else upper
        direction[t] = trend
    return line, direction


@njit(cache=True, nogil=True)
def trendflex_nb(close: FloatArray, lookback_bars: int) -> FloatArray:
    """Return Ehlers' TrendFlex (TASC, February 2020), NaN for the first `lookback_bars` rows.

    Super smoother with period lookback_bars / 2: a1 = exp(-sqrt(2) * pi / (lookback_bars / 2)),
    b1 = 2 * a1 * cos(sqrt(2) * pi / (lookback_bars / 2)), c2 = b1, c3 = -a1^2, c1 = 1 - c2 - c3,
    filt_t = c1 * (x_t + x_{t-1}) / 2 + c2 * filt_{t-1} + c3 * filt_{t-2}, seeded filt = x on the
    first two rows. sum_t = mean over k = 1..n of (filt_t - filt_{t-k}); ms_t = 0.04 * sum_t^2 +
    0.96 * ms_{t-1} with ms = 0 before the first output; TrendFlex = sum / sqrt(ms), or 0 when ms
    is 0. Because ms_t >= 0.04 * sum_t^2, the output lies in [-5, 5].
    """
    size = close.shape[0]
    out = np.full(size, np.nan)
    first = first_finite_index_nb(close)
    if first + lookback_bars >= size:
        return out
    half_period = lookback_bars / 2.0
    a1 = math.exp(-math.sqrt(2.0) * math.pi / half_period)
    c2 = 2.0 * a1 * math.cos(math.sqrt(2.0) * math.pi / half_period)
    c3 = -a1 * a1
    c1 = 1.0 - c2 - c3
    filt = np.empty(size)
    filt[first] = close[first]
    if first + 1 < size:
        filt[first + 1] = close[first + 1]
    for t in range(first + 2, size):
        filt[t] = c1 * (close[t] + close[t - 1]) / 2.0 + c2 * filt[t - 1] + c3 * filt[t - 2]
    mean_square = 0.0
    for t in range(first + lookback_bars, size):
        total = 0.0
        for lag in range(1, lookback_bars + 1):
            total += filt[t] - filt[t - lag]
        total /= lookback_bars
        mean_square = 0.04 * total * total + 0.96 * mean_square
        out[t] = total / math.sqrt(mean_square) if mean_square > 0.0 else 0.0
    return out
