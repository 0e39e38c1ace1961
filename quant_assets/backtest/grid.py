"""Parameter grids: many backtests of one bar frame, indicators shared, kernels on threads.

`run_grid` runs a signal builder once per parameter set and the Numba kernel on each result in a
thread pool (the kernel is `nogil=True`, so threads run it in parallel). Indicators live in an
`IndicatorCache`: each distinct indicator (an EMA of one span, say) is computed once for the
whole grid however many parameter sets read it. Each combination returns summary metrics taken
from the kernel's arrays without building polars frames; `reports=True` adds the full EvalReport.
Every number equals what `run_backtest` reports for the same signals (the tests compare them).
"""

import math
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from numba import njit

from quant_assets.backtest import kernel
from quant_assets.backtest.engine import (
    EQUITY_SCHEMA,
    PRICE_COLUMNS,
    TS_DTYPE,
    infer_periods_per_year,
    trades_frame_of,
)
from quant_assets.backtest.kernel_inputs import (
    FILL_MODE_CODES,
    NO_FLAGS,
    NO_FLOATS,
    SIMULATE,
    STOPS_FROM_CODES,
    rate_or_nan,
)
from quant_assets.backtest.metrics import annualized_sharpe, compute_report
from quant_assets.domain.arrays import FloatArray, Int8Array
from quant_assets.domain.backtest import BacktestConfig
from quant_assets.domain.errors import BacktestInputError, ConfigurationError
from quant_assets.domain.report import EvalReport

ParamSet = Mapping[str, int | float]


@dataclass(frozen=True)
class SignalArrays:
    """The per-bar arrays one parameter set trades on (the arguments of `run_backtest`).

    Attributes:
        entries: Per bar +1 (long), -1 (short) or 0, as an int8 array.
        exits: Per bar, non-zero closes the open position (bool or int8), or None.
        size: Per bar fraction of equity for an entry there, or None.
        stop_loss_distance: Per bar absolute stop distance, or None.
        take_profit_distance: Per bar absolute target distance, or None.
        trailing_distance: Per bar absolute trailing distance, or None.
    """

    entries: Int8Array
    exits: np.ndarray | None = None
    size: FloatArray | None = None
    stop_loss_distance: FloatArray | None = None
    take_profit_distance: FloatArray | None = None
    trailing_distance: FloatArray | None = None


@dataclass(frozen=True)
class GridResult:
    """Summary of one parameter set's backtest; each field equals run_backtest's report.

    Attributes:
        params: The parameter set.
        final_equity: Equity after the last bar (open positions closed at the last close).
        total_return: final_equity / initial cash - 1.
        sharpe: Annualized Sharpe ratio of bar returns (EvalReport.sharpe).
        max_drawdown: Deepest fall from a peak, a negative fraction (EvalReport.max_drawdown).
        exposure: Share of bars holding a position (EvalReport.exposure).
        trades: Closed round trips.
        fees_paid: Commission paid over all trades.
        report: The full EvalReport, when run_grid was asked for reports.
    """

    params: dict[str, int | float]
    final_equity: float
    total_return: float
    sharpe: float
    max_drawdown: float
    exposure: float
    trades: int
    fees_paid: float
    report: EvalReport | None = None


class IndicatorCache:
    """Compute each indicator of one bar frame once and share it, read-only, across threads."""

    def __init__(self, bars: pl.DataFrame) -> None:
        """Create an empty cache over `bars` (the frame every indicator is computed on)."""
        self.bars = bars
        self._lock = threading.Lock()
        self._slots: dict[Hashable, tuple[threading.Lock, list[FloatArray]]] = {}

    def feature(self, expression: pl.Expr) -> FloatArray:
        """Return the values of a feature expression over the bars, nulls as NaN.

        The cache key is the expression's output name: the feature library names outputs by
        their parameters (`ema_20`, `atr_14`), so one name is one indicator.
        """
        name = expression.meta.output_name()
        # Filling nulls inside polars is cheaper than polars' null-to-NaN conversion in to_numpy.
        values = expression.cast(pl.Float64).fill_null(math.nan)
        return self.get(("feature", name), lambda bars: bars.select(values).to_series())

    def get(
        self, key: Hashable, compute: Callable[[pl.DataFrame], pl.Series | FloatArray]
    ) -> FloatArray:
        """Return the cached array under `key`, calling `compute(bars)` only the first time.

        Threads asking for the same key wait for the one computing it; different keys compute
        concurrently.
        """
        with self._lock:
            slot = self._slots.setdefault(key, (threading.Lock(), []))
        slot_lock, stored = slot
        with slot_lock:
            if not stored:
                stored.append(_read_only_floats(compute(self.bars)))
            return stored[0]

    def computed_keys(self) -> list[Hashable]:
        """Return the keys computed so far, in first-request order."""
        with self._lock:
            return [key for key, (_, stored) in self._slots.items() if stored]


SignalBuilder = Callable[[IndicatorCache, ParamSet], SignalArrays]


def crossover_entries(fast: FloatArray, slow: FloatArray) -> Int8Array:
    """Return +1 where `fast` crosses above `slow`, -1 where it crosses below, else 0.

    A cross at bar t compares fast > slow at t with t - 1; bars where either series is NaN
    (warm-up) and the bar after them never signal.

    Raises:
        BacktestInputError: if the two series differ in length.
    """
    if fast.shape != slow.shape:
        raise BacktestInputError(
            f"crossover series have shapes {fast.shape} and {slow.shape}; pass two series over "
            "the same bars"
        )
    return _crossover_nb(_read_only(fast, np.float64), _read_only(slow, np.float64))


@njit(cache=True, nogil=True, error_model="numpy")
def _crossover_nb(fast: FloatArray, slow: FloatArray) -> Int8Array:
    # One branch-free pass (it vectorizes) instead of numpy's nine: a bar signals when it and
    # the bar before are both free of NaN and fast > slow differs between them.
    entries = np.empty(fast.shape[0], dtype=np.int8)
    if fast.shape[0] == 0:
        return entries
    entries[0] = 0
    for bar in range(1, fast.shape[0]):
        valid = _not_nan_nb(fast, slow, bar) & _not_nan_nb(fast, slow, bar - 1)
        above = fast[bar] > slow[bar]
        crossed = valid & (above != (fast[bar - 1] > slow[bar - 1]))
        entries[bar] = np.int8(crossed) * (np.int8(above) * np.int8(2) - np.int8(1))
    return entries


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _not_nan_nb(fast: FloatArray, slow: FloatArray, bar: int) -> bool:
    # NaN is the one value not equal to itself; & keeps the pass branch-free.
    return (fast[bar] == fast[bar]) & (slow[bar] == slow[bar])


def run_grid(
    bars: pl.DataFrame,
    param_sets: Sequence[ParamSet],
    build_signals: SignalBuilder,
    config: BacktestConfig,
    *,
    workers: int = 2,
    cache: IndicatorCache | None = None,
    reports: bool = False,
) -> list[GridResult]:
    """Backtest every parameter set on the same bars and return their summaries in order.

    Args:
        bars: Canonical bars, as for `run_backtest`.
        param_sets: One mapping of parameter names to values per backtest.
        build_signals: Turns (indicator cache, parameter set) into the arrays to trade; it
            should read indicators through the cache so each is computed once.
        config: Costs, exits, sizing and cash shared by every backtest.
        workers: Threads running builders and kernels.
        cache: An indicator cache over `bars` to reuse (e.g. across grids); a new one if None.
        reports: Also compute each combination's full EvalReport (builds its frames).

    Returns:
        One GridResult per parameter set, in the order given.

    Raises:
        ConfigurationError: if workers < 1 or the cache belongs to another frame.
        BacktestInputError: if the bars or a builder's arrays break the engine's contract.
    """
    if workers < 1:
        raise ConfigurationError(f"run_grid workers was {workers}; pass 1 or more threads")
    if cache is not None and cache.bars is not bars:
        raise ConfigurationError(
            "run_grid was given an IndicatorCache built over another bar frame; build the cache "
            "from the same `bars` object, or pass cache=None"
        )
    columns = _bar_columns(bars)
    runner = _GridRunner(
        bars=bars,
        columns=columns,
        config=config,
        scalars=_kernel_scalars(config),
        periods_per_year=config.periods_per_year or infer_periods_per_year(bars["ts"]),
        cache=cache or IndicatorCache(bars),
        build_signals=build_signals,
        reports=reports,
    )
    if workers == 1 or len(param_sets) <= 1:
        return [runner.run(params) for params in param_sets]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grid") as pool:
        return list(pool.map(runner.run, param_sets))


Columns = tuple[FloatArray, FloatArray, FloatArray, FloatArray]
# simulate_nb's scalars: equity fraction, stop/target/trailing rates, max bars, reversal,
# commission, slippage, fill mode, stops-from, initial cash, whole units.
KernelScalars = tuple[float, float, float, float, int, bool, float, float, int, int, float, bool]


@dataclass(frozen=True, eq=False)
class _GridRunner:
    bars: pl.DataFrame
    columns: Columns
    config: BacktestConfig
    scalars: KernelScalars
    periods_per_year: float
    cache: IndicatorCache
    build_signals: SignalBuilder
    reports: bool
    buffers: threading.local = field(default_factory=threading.local)

    def run(self, params: ParamSet) -> GridResult:
        signals = self.build_signals(self.cache, params)
        n_bars = self.bars.height
        entries = _entries(signals.entries, n_bars, params)
        equity, position, exposure, returns, status = self._buffers(n_bars)
        trades = np.empty(np.count_nonzero(entries), dtype=kernel.TRADE_DTYPE)
        n_trades = SIMULATE(
            *self.columns,
            entries,
            _exits(signals.exits, n_bars, params),
            _floats(signals.size, "size", n_bars, params, positive=False),
            _floats(signals.stop_loss_distance, "stop_loss_distance", n_bars, params),
            _floats(signals.take_profit_distance, "take_profit_distance", n_bars, params),
            _floats(signals.trailing_distance, "trailing_distance", n_bars, params),
            *self.scalars,
            equity,
            position,
            exposure,
            status,
            trades,
        )
        records = trades[:n_trades]
        report = None
        if self.reports:
            report = self._report(equity, exposure, records)
        return self._summary(params, equity, exposure, returns, records, report)

    def _buffers(
        self, n_bars: int
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, Int8Array]:
        # One set of output arrays per thread, reused by each of its backtests: fresh
        # million-bar arrays cost page faults on every run.
        held = getattr(self.buffers, "arrays", None)
        if held is None or held[0].shape[0] != n_bars:
            floats = np.empty((4, n_bars))  # equity, position, exposure, bar returns
            held = (*floats, np.empty(n_bars, dtype=np.int8))
            self.buffers.arrays = held
        return held

    def _report(
        self, equity: FloatArray, exposure: FloatArray, records: kernel.TradeArray
    ) -> EvalReport:
        frame = pl.DataFrame(
            {"ts": self.bars["ts"], "equity": equity.copy(), "exposure": exposure.copy()},
            schema=EQUITY_SCHEMA,
        )
        return compute_report(
            frame,
            trades_frame_of(records, self.bars["ts"]),
            initial_cash=self.config.initial_cash,
            periods_per_year=self.periods_per_year,
            n_trials=self.config.n_trials,
        )

    def _summary(
        self,
        params: ParamSet,
        equity: FloatArray,
        exposure: FloatArray,
        returns: FloatArray,
        records: kernel.TradeArray,
        report: EvalReport | None,
    ) -> GridResult:
        initial_cash = self.config.initial_cash
        min_ratio, exposed = _curve_pass_nb(equity, exposure, initial_cash, returns)
        # The same returns and reductions as compute_report, so the values are equal.
        sharpe = annualized_sharpe(_read_only(returns, np.float64), self.periods_per_year)
        final_equity = float(equity[-1])
        fees = np.ascontiguousarray(records["fees"])  # contiguous: numpy's pairwise sum, as there
        return GridResult(
            params=dict(params),
            final_equity=final_equity,
            total_return=final_equity / initial_cash - 1.0,
            sharpe=sharpe,
            max_drawdown=min(min_ratio - 1.0, 0.0),
            exposure=exposed / equity.shape[0],
            trades=int(records.shape[0]),
            fees_paid=float(fees.sum()) if fees.shape[0] else 0.0,
            report=report,
        )


@njit(cache=True, nogil=True, error_model="numpy")
def _curve_pass_nb(
    equity: FloatArray, exposure: FloatArray, initial_cash: float, returns_out: FloatArray
) -> tuple[float, int]:
    # What compute_report derives from the curve, bit for bit: bar returns (0 after a ruined
    # bar), the lowest equity / running peak (the peak starts at initial cash), exposed bars.
    n_bars = equity.shape[0]
    returns_out[0] = equity[0] / initial_cash - 1.0
    exposed = 1 if exposure[0] != 0.0 else 0
    for bar in range(1, n_bars):  # no loop-carried state, so this loop vectorizes
        previous = equity[bar - 1]
        change = equity[bar] / previous - 1.0
        returns_out[bar] = change if previous > 0.0 else 0.0
        exposed += 1 if exposure[bar] != 0.0 else 0
    # Division is monotonic, so each peak's lowest ratio is its lowest equity / the peak: one
    # division per peak instead of one per bar, and the same float as compute_report's.
    peak, trough, min_ratio = initial_cash, math.inf, math.inf
    for bar in range(n_bars):
        value = equity[bar]
        if value > peak:
            min_ratio = min(min_ratio, trough / peak)
            peak, trough = value, value
        else:
            trough = min(trough, value)
    return min(min_ratio, trough / peak), exposed


def _bar_columns(bars: pl.DataFrame) -> Columns:
    # The checks of run_backtest, once per grid: every combination trades the same bars.
    if not {"ts", *PRICE_COLUMNS} <= set(bars.columns) or bars.height == 0:
        raise BacktestInputError(
            f"bars have {bars.height} rows and columns {bars.columns}; pass non-empty canonical "
            "bars (quant_assets.market.canonical.to_canonical)"
        )
    if bars.schema["ts"] != TS_DTYPE or bars["ts"].null_count():
        raise BacktestInputError(
            f"bars column 'ts' was {bars.schema['ts']} with {bars['ts'].null_count()} nulls; it "
            f"must be {TS_DTYPE} without nulls (convert with to_canonical)"
        )
    ts = _read_only(bars["ts"].to_physical().to_numpy(), np.int64)
    prices = [
        _read_only(bars[name].cast(pl.Float64).to_numpy(), np.float64) for name in PRICE_COLUMNS
    ]
    unsorted, bad = kernel.first_invalid_bars_nb(ts, *prices)
    if unsorted >= 0:
        raise BacktestInputError(
            f"bars column 'ts' is not strictly increasing at row {unsorted}; sort by ts and "
            "drop duplicate bars first"
        )
    if bad >= 0:
        raise BacktestInputError(
            f"bar {bad} at {bars['ts'][bad]} has a price that is not finite and > 0; repair or "
            "drop that bar"
        )
    return prices[0], prices[1], prices[2], prices[3]


def _entries(entries: np.ndarray, n_bars: int, params: ParamSet) -> Int8Array:
    values = _shaped(entries, "entries", n_bars, params)
    if values.dtype != np.int8 or int(values.min()) < -1 or int(values.max()) > 1:
        raise BacktestInputError(
            f"entries for {dict(params)} were {values.dtype} from {values.min()} to "
            f"{values.max()}; a grid signal builder must return int8 +1 (long), -1 (short) or "
            "0 per bar, e.g. from crossover_entries"
        )
    return _read_only(values, np.int8)


def _exits(exits: np.ndarray | None, n_bars: int, params: ParamSet) -> Int8Array:
    if exits is None:
        return _read_only(NO_FLAGS, np.int8)
    values = _shaped(exits, "exits", n_bars, params)
    if values.dtype not in (np.bool_, np.int8):
        raise BacktestInputError(
            f"exits for {dict(params)} have dtype {values.dtype}; return a bool or int8 array "
            "(non-zero = exit)"
        )
    return _read_only((values if values.dtype == np.bool_ else values != 0).view(np.int8), np.int8)


def _floats(
    values: FloatArray | None, name: str, n_bars: int, params: ParamSet, *, positive: bool = True
) -> FloatArray:
    if values is None:
        return _read_only(NO_FLOATS, np.float64)
    array = _shaped(values, name, n_bars, params).astype(np.float64, copy=False)
    valid = array > 0.0 if positive else (array >= 0.0) & (array < math.inf)
    invalid = np.flatnonzero(~np.isnan(array) & ~valid)
    if invalid.size:
        raise BacktestInputError(
            f"{name} for {dict(params)} at bar {invalid[0]} was {array[invalid[0]]}; values "
            f"must be {'> 0' if positive else 'finite and >= 0'}, or NaN during warm-up"
        )
    return _read_only(array, np.float64)


def _shaped(values: np.ndarray, name: str, n_bars: int, params: ParamSet) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (n_bars,):
        raise BacktestInputError(
            f"{name} for {dict(params)} has shape {array.shape}; the signal builder must return "
            f"one value per bar, shape ({n_bars},)"
        )
    return array


def _read_only_floats(values: pl.Series | FloatArray) -> FloatArray:
    array = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
    return _read_only(array, np.float64)


def _read_only(array: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    # The kernel is compiled for read-only contiguous inputs (as the engine passes them), and
    # cached indicators are shared by threads, so nobody may write to them.
    view = np.ascontiguousarray(array, dtype=dtype).view()
    view.flags.writeable = False
    return view


def _kernel_scalars(config: BacktestConfig) -> KernelScalars:
    # simulate_nb's scalar arguments in order, exactly as run_backtest passes them.
    rules, cost = config.exits, config.cost
    return (
        config.sizing.equity_fraction,
        rate_or_nan(rules.stop_loss_rate),
        rate_or_nan(rules.take_profit_rate),
        rate_or_nan(rules.trailing_stop_rate),
        rules.max_bars_in_trade or 0,
        config.allow_reversal,
        cost.commission_rate,
        cost.slippage_bps,
        FILL_MODE_CODES[cost.fill],
        STOPS_FROM_CODES[rules.stops_from],
        config.initial_cash,
        config.sizing.whole_units,
    )
