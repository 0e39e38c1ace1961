"""The passes behind the backtest metrics: one scan of the equity curve, the return moments.

`compute_report` (and the grid's summaries) run inside every backtest of a parameter search, so
the curve is read by a few compiled passes instead of a dozen NumPy and polars calls (a report
on a million bars takes about 3 ms instead of 10). Sums reproduce NumPy's pairwise summation
exactly (the same blocks, lanes and split points as `ndarray.sum`), so each sum NumPy computed
before is still the same float; the central moments, which polars computed, agree with polars'
to about 1e-13 relative.
"""

import math
from typing import Final, NamedTuple

import numpy as np
import polars as pl
from numba import literally, njit

from quant_assets.domain.arrays import FloatArray, Int64Array
from quant_assets.domain.errors import BacktestInputError

# NumPy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src): blocks of at most
# PW_BLOCKSIZE values are summed in 8 interleaved lanes; longer ranges split in two halves whose
# first one has a multiple of 8 values.
_BLOCK: Final = 128
_LANES: Final = 8
_MAX_DEPTH: Final = 64  # ranges halve at each level: 64 levels cover any array length
# Terms a pairwise sum can add up: the values, or the squares of their negative parts.
_VALUE: Final = 0
_LOSS_SQUARE: Final = 1
# Unsigned offsets: mixing int64 and uint64 would make Numba compute indices in float64.
_U1, _U2, _U3, _U4 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
_U5, _U6, _U7, _U8 = np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8)

_NORMAL_KURTOSIS: Final = 3.0
_EPSILON: Final = float(np.finfo(np.float64).eps)
_EQUITY_COLUMNS: Final = ("ts", "equity", "exposure")  # metrics.EQUITY_COLUMNS

CurveScan = tuple[float, bool, int, float, int, int]
Moments = tuple[float, float, float]


class ReturnStats(NamedTuple):
    """Moments of bar returns (see `return_statistics`)."""

    mean: float
    std: float  # ddof=1
    downside_deviation: float
    skewness: float
    kurtosis: float  # not excess


class DrawdownStats(NamedTuple):
    """The deepest drawdown and the longest drawdown spell (0 when there is none)."""

    max_drawdown: float
    duration_bars: int
    duration_seconds: float


class CurveStats(NamedTuple):
    """An equity frame's columns as arrays and what one scan of them found."""

    values: FloatArray
    ts_us: Int64Array
    returns: FloatArray  # bar returns from the scan's starting cash
    mean_equity: float
    exposed_bars: int
    drawdown: DrawdownStats


def scan_equity(equity: pl.DataFrame, initial_cash: float | None) -> CurveStats:
    """Validate an equity frame and return its arrays, bar returns and drawdown statistics.

    Args:
        equity: Equity frame (ts, equity, exposure) from the engine.
        initial_cash: Account value before the first bar; None starts from the first equity.

    Returns:
        The curve's statistics (see CurveStats and `scan_curve_nb`).

    Raises:
        BacktestInputError: if the frame or initial_cash breaks compute_report's contract.
    """
    missing = [name for name in _EQUITY_COLUMNS if name not in equity.columns]
    if missing:
        raise BacktestInputError(
            f"equity frame lacks columns {missing} (it has {equity.columns}); the engine must "
            f"return {list(_EQUITY_COLUMNS)}"
        )
    if equity.height == 0:
        raise BacktestInputError(
            "equity frame has 0 rows; a report needs at least one bar, so run the backtest on "
            "a non-empty slice"
        )
    ts_dtype = equity.schema["ts"]
    if not isinstance(ts_dtype, pl.Datetime) or ts_dtype.time_zone != "UTC":
        raise BacktestInputError(
            f"equity column 'ts' was {ts_dtype}; it must be Datetime('us', 'UTC')"
        )
    nulls = {name: equity[name].null_count() for name in _EQUITY_COLUMNS}
    if any(nulls.values()):
        raise BacktestInputError(f"equity frame has nulls {nulls}; fill or drop those bars first")
    if initial_cash is not None and (not math.isfinite(initial_cash) or initial_cash <= 0.0):
        raise BacktestInputError(f"initial_cash was {initial_cash}; it must be finite and > 0")
    values = _kernel_view(equity["equity"].cast(pl.Float64).to_numpy(), np.float64)
    exposure = _kernel_view(equity["exposure"].cast(pl.Float64).to_numpy(), np.float64)
    ts = equity["ts"]
    if ts_dtype.time_unit != "us":
        ts = ts.dt.cast_time_unit("us")
    ts_us = _kernel_view(ts.to_numpy().view(np.int64), np.int64)  # zero-copy, to_physical copies
    start = float(values[0]) if initial_cash is None else initial_cash
    returns = np.empty_like(values)
    total, decreasing, exposed, min_ratio, spell_bars, spell_us = scan_curve_nb(
        values, exposure, ts_us, start, returns
    )
    # The sum of equity is NaN or infinite exactly when some value is (or it overflows).
    if not math.isfinite(total):
        raise BacktestInputError("equity column has NaN or infinite values; the engine is broken")
    if decreasing:
        raise BacktestInputError("equity column 'ts' is not sorted ascending; sort by ts first")
    max_drawdown = min(min_ratio - 1.0, 0.0)
    drawdown = DrawdownStats(0.0, 0, 0.0)
    if max_drawdown != 0.0:
        drawdown = DrawdownStats(max_drawdown, spell_bars, spell_us / 1e6)
    returns.flags.writeable = False  # read-only like every kernel input: one signature
    return CurveStats(values, ts_us, returns, total / len(values), exposed, drawdown)


def _kernel_view(array: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    # One read-only contiguous layout keeps each kernel at one compiled signature (polars hands
    # out read-only views of single-chunk columns and writable copies of the others).
    view = np.ascontiguousarray(array, dtype=dtype).view()
    view.flags.writeable = False
    return view


def return_statistics(returns: FloatArray) -> ReturnStats:
    """Return the mean, std, downside deviation, skewness and kurtosis of bar returns.

    The mean and the downside deviation's sum equal NumPy's (`returns.mean()`, the sum of
    squared losses) bit for bit; std(ddof=1), skewness and kurtosis (population moments, not
    excess) follow polars' definitions, including its rule that a spread below the mean's
    rounding has no skewness or kurtosis (NaN). Fewer than 2 returns or no spread give std 0.0,
    skewness 0.0 and kurtosis 3.0.
    """
    n_returns = len(returns)
    mean = pairwise_sum_nb(returns) / n_returns
    downside = math.sqrt(loss_square_sum_nb(returns) / n_returns)
    if n_returns < 2:
        return ReturnStats(mean, 0.0, downside, 0.0, _NORMAL_KURTOSIS)
    square_sum, cube_sum, fourth_sum = central_moments_nb(returns, mean)
    std = math.sqrt(square_sum / (n_returns - 1))
    if not std > 0.0:
        return ReturnStats(mean, 0.0, downside, 0.0, _NORMAL_KURTOSIS)
    m2, m3, m4 = square_sum / n_returns, cube_sum / n_returns, fourth_sum / n_returns
    if m2 <= (_EPSILON * mean) ** 2:
        return ReturnStats(mean, std, downside, math.nan, math.nan)
    skewness = m3 / m2**1.5 or 0.0
    kurtosis = m4 / (m2 * m2) or _NORMAL_KURTOSIS
    return ReturnStats(mean, std, downside, skewness, kurtosis)


@njit(cache=True, nogil=True, error_model="numpy")
def pairwise_sum_nb(values: FloatArray) -> float:
    """Return the sum of `values` in NumPy's pairwise order: `values.sum()` bit for bit."""
    return _pairwise_nb(values, _VALUE)


@njit(cache=True, nogil=True, error_model="numpy")
def loss_square_sum_nb(values: FloatArray) -> float:
    """Return the sum of min(value, 0)^2, equal to `np.square(np.minimum(values, 0)).sum()`."""
    return _pairwise_nb(values, _LOSS_SQUARE)


@njit(cache=True, nogil=True, error_model="numpy")
def _pairwise_nb(values: FloatArray, kind: int) -> float:
    literally(kind)  # one compiled copy per kind, the term's branch folded away
    count = values.shape[0]
    if count <= _BLOCK:
        return _block_sum_nb(values, 0, count, kind)
    # NumPy recurses: sum(range) = sum(left half) + sum(right half). Numba cannot reload a
    # cached recursive function, so the same tree is walked with a stack of open ranges, each
    # remembering its left half's sum once known.
    starts = np.empty(_MAX_DEPTH, dtype=np.int64)
    counts = np.empty(_MAX_DEPTH, dtype=np.int64)
    lefts = np.empty(_MAX_DEPTH)
    has_left = np.zeros(_MAX_DEPTH, dtype=np.bool_)
    depth = 0
    starts[0], counts[0] = 0, count
    while True:
        half = _left_count_nb(counts[depth])
        child_start, child_count = starts[depth], half
        if has_left[depth]:
            child_start, child_count = starts[depth] + half, counts[depth] - half
        if child_count > _BLOCK:
            depth += 1
            starts[depth], counts[depth], has_left[depth] = child_start, child_count, False
            continue
        total = _block_sum_nb(values, child_start, child_count, kind)
        while has_left[depth]:  # a right half is done: close its range, go up
            total = lefts[depth] + total
            if depth == 0:
                return total
            depth -= 1
        lefts[depth], has_left[depth] = total, True


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def central_moments_nb(values: FloatArray, mean: float) -> Moments:
    """Return the sums of d^2, d^3 and d^4 over `values`, d = value - mean.

    Blocks of 128 are summed in SIMD lanes (reassociated) and the block sums pairwise (a
    binary counter of partial sums), so each sum of positive terms stays within a few dozen
    ulps of the exact one.
    """
    partial = np.empty((_MAX_DEPTH, 3))
    sizes = np.empty(_MAX_DEPTH, dtype=np.int64)
    depth = 0
    count = values.shape[0]
    for block_start in range(0, count, _BLOCK):
        square_sum, cube_sum, fourth_sum = 0.0, 0.0, 0.0
        for index in range(np.uint64(block_start), np.uint64(min(block_start + _BLOCK, count))):
            deviation = values[index] - mean
            square = deviation * deviation
            square_sum += square
            cube_sum += square * deviation
            fourth_sum += square * square
        size = 1
        while depth > 0 and sizes[depth - 1] == size:  # merge equal-sized neighbours
            depth -= 1
            square_sum += partial[depth, 0]
            cube_sum += partial[depth, 1]
            fourth_sum += partial[depth, 2]
            size *= 2
        partial[depth, 0], partial[depth, 1], partial[depth, 2] = square_sum, cube_sum, fourth_sum
        sizes[depth] = size
        depth += 1
    square_sum, cube_sum, fourth_sum = 0.0, 0.0, 0.0
    for level in range(depth - 1, -1, -1):
        square_sum += partial[level, 0]
        cube_sum += partial[level, 1]
        fourth_sum += partial[level, 2]
    return square_sum, cube_sum, fourth_sum


@njit(cache=True, nogil=True, error_model="numpy")
def scan_curve_nb(
    equity: FloatArray,
    exposure: FloatArray,
    ts_us: Int64Array,
    initial_cash: float,
    returns_out: FloatArray,
) -> CurveScan:
    """Write the bar returns and return what the report needs from one equity curve.

    Bar returns are equity / previous equity - 1 (the first from initial_cash), 0.0 after a bar
    whose equity is <= 0 (no base for a return). The running peak starts at initial_cash; a bar
    at or above it is a peak mark, and the initial cash is mark -1, one bar spacing before the
    first ts. A drawdown spell runs from a mark to the next mark more than one bar later, or to
    the last bar.

    Returns:
        (sum of equity, whether ts ever decreases, bars with non-zero exposure, the lowest
        equity / running peak, the longest spell in bars, the longest spell in microseconds).
        Equity must be finite for the figures to mean anything; the sum tells whether it was.
    """
    n_bars = equity.shape[0]
    returns_out[0] = equity[0] / initial_cash - 1.0
    exposed = 1 if exposure[0] != 0.0 else 0
    decreasing = False
    for bar in range(1, n_bars):  # no loop-carried state but the counters: this vectorizes
        previous = equity[bar - 1]
        change = equity[bar] / previous - 1.0
        returns_out[bar] = change if previous > 0.0 else 0.0
        exposed += 1 if exposure[bar] != 0.0 else 0
        decreasing |= ts_us[bar] < ts_us[bar - 1]
    spacing = ts_us[1] - ts_us[0] if n_bars > 1 else 0
    # Division is monotonic, so the lowest ratio under one peak is its lowest equity / the peak:
    # one division per peak instead of one per bar, the same float as dividing every bar.
    peak, trough, min_ratio = initial_cash, math.inf, math.inf
    mark_bar, mark_us = -1, ts_us[0] - spacing
    longest_bars, longest_us = 0, 0
    for bar in range(n_bars):
        value = equity[bar]
        if value >= peak:
            if bar - mark_bar > 1:  # back at the peak after at least one bar below it
                longest_bars = max(longest_bars, bar - mark_bar)
                longest_us = max(longest_us, ts_us[bar] - mark_us)
            mark_bar, mark_us = bar, ts_us[bar]
            if value > peak:
                min_ratio = min(min_ratio, trough / peak)
                peak, trough = value, value
        trough = min(trough, value)
    if mark_bar < n_bars - 1:  # still under water at the end
        longest_bars = max(longest_bars, n_bars - 1 - mark_bar)
        longest_us = max(longest_us, ts_us[n_bars - 1] - mark_us)
    min_ratio = min(min_ratio, trough / peak)
    total = pairwise_sum_nb(equity)
    return total, decreasing, exposed, min_ratio, longest_bars, longest_us


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _left_count_nb(count: int) -> int:
    # NumPy's split: half the range, rounded down to a multiple of the lanes.
    half = count // 2
    return half - half % _LANES


@njit(cache=True, nogil=True, error_model="numpy")
def _term_nb(value: float, kind: int) -> float:
    if kind == _LOSS_SQUARE:
        lost = min(value, 0.0)
        return lost * lost
    return value


@njit(cache=True, nogil=True, error_model="numpy")
def _block_sum_nb(values: FloatArray, start: int, count: int, kind: int) -> float:
    # One block of at most _BLOCK terms in NumPy's order: 8 lanes, each started with its first
    # term (not 0.0 + it), folded as a tree, then the remainder added one by one. Unsigned
    # indices spare Numba's negative-index check on every load (3x faster here).
    first = np.uint64(start)
    stop = np.uint64(start + count)
    if count < _LANES:
        total = 0.0
        for item in range(first, stop):
            total += _term_nb(values[item], kind)
        return total
    lane0 = _term_nb(values[first], kind)
    lane1 = _term_nb(values[first + _U1], kind)
    lane2 = _term_nb(values[first + _U2], kind)
    lane3 = _term_nb(values[first + _U3], kind)
    lane4 = _term_nb(values[first + _U4], kind)
    lane5 = _term_nb(values[first + _U5], kind)
    lane6 = _term_nb(values[first + _U6], kind)
    lane7 = _term_nb(values[first + _U7], kind)
    end = np.uint64(start + count - count % _LANES)
    index = first + _U8
    while index < end:
        lane0 += _term_nb(values[index], kind)
        lane1 += _term_nb(values[index + _U1], kind)
        lane2 += _term_nb(values[index + _U2], kind)
        lane3 += _term_nb(values[index + _U3], kind)
        lane4 += _term_nb(values[index + _U4], kind)
        lane5 += _term_nb(values[index + _U5], kind)
        lane6 += _term_nb(values[index + _U6], kind)
        lane7 += _term_nb(values[index + _U7], kind)
        index += _U8
    total = ((lane0 + lane1) + (lane2 + lane3)) + ((lane4 + lane5) + (lane6 + lane7))
    while index < stop:
        total += _term_nb(values[index], kind)
        index += _U1
    return total
