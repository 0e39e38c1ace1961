"""The backtest engine: validate bars and signals, run the kernel, build frames and the report.

`run_backtest` is the one entry point. It stays cheap around the kernel: columns reach the kernel
as zero-copy NumPy views, validation scans run in Numba, and the result frames are built from the
kernel's output arrays without per-bar Python.
"""

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from quant_assets.backtest import kernel
from quant_assets.backtest.kernel_inputs import (
    FILL_MODE_CODES,
    NO_FLOATS,
    STOPS_FROM_CODES,
    rate_or_nan,
)
from quant_assets.backtest.metrics import compute_report
from quant_assets.domain.arrays import FloatArray, Int8Array, Int64Array
from quant_assets.domain.backtest import (
    BacktestConfig,
    EntryCode,
    ExitCode,
    PositionSide,
    StepSummary,
    Trade,
)
from quant_assets.domain.errors import BacktestInputError
from quant_assets.domain.report import EvalReport

TS_DTYPE: Final = pl.Datetime("us", "UTC")
PRICE_COLUMNS: Final = ("open", "high", "low", "close")
EQUITY_SCHEMA: Final = pl.Schema({"ts": TS_DTYPE, "equity": pl.Float64(), "exposure": pl.Float64()})
TRADES_SCHEMA: Final = pl.Schema(
    {
        "entry_ts": TS_DTYPE,
        "exit_ts": TS_DTYPE,
        "entry_bar": pl.Int64(),
        "exit_bar": pl.Int64(),
        "bars_held": pl.Int64(),
        "side": pl.String(),
        "qty": pl.Float64(),
        "entry_price": pl.Float64(),
        "exit_price": pl.Float64(),
        "pnl": pl.Float64(),
        "fees": pl.Float64(),
        "return_rate": pl.Float64(),
        "exit_reason": pl.String(),
    }
)
DAILY_PERIODS_PER_YEAR: Final = 252.0
_SECONDS_PER_DAY: Final = 86_400.0
_SPACING_SAMPLE_BARS: Final = 1_000
_EXIT_REASONS: Final = pl.Series(["", *(code.reason.value for code in ExitCode)], dtype=pl.String)
_SIDES: Final = pl.Series(  # indexed by side + 1
    [PositionSide.SHORT.value, "", PositionSide.LONG.value], dtype=pl.String
)
_TRADE_FLOATS: Final = ("qty", "entry_price", "exit_price", "pnl", "fees", "return_rate")


@dataclass(frozen=True)
class BacktestResult:
    """What one backtest produced.

    Attributes:
        equity: One row per bar: ts, equity (cash plus position at the close; the last bar
            after closing any open position), exposure (signed position value / equity).
        trades: One row per round trip, columns as TRADES_SCHEMA.
        steps: Entry candidates, fills and engine rejections by name.
        report: Metrics of the equity curve and trades.
        entry_status: Per bar, the EntryCode of that bar's entry candidate (0 if none).
        position: Per bar, signed units held at the close (before an end-of-data exit).
    """

    equity: pl.DataFrame
    trades: pl.DataFrame
    steps: StepSummary
    report: EvalReport
    entry_status: Int8Array
    position: FloatArray

    def trade_records(self) -> list[Trade]:
        """Return the trades as validated domain models (for persistence and display)."""
        return [Trade.model_validate(row) for row in self.trades.iter_rows(named=True)]


def run_backtest(
    bars: pl.DataFrame,
    entries: np.ndarray,
    config: BacktestConfig,
    exits: np.ndarray | None = None,
    *,
    size: np.ndarray | None = None,
    stop_loss_distance: np.ndarray | None = None,
    take_profit_distance: np.ndarray | None = None,
    trailing_distance: np.ndarray | None = None,
) -> BacktestResult:
    """Simulate trading one instrument's bars on entry signals and return curves and metrics.

    Signals are decided at each bar's close and fill at the next open (or that close with
    `fill="close"`); see DESIGN.md "The backtest contract" for stops, reversals and costs.
    Per-bar arrays are read at the signal bar. NaN in them marks warm-up: an entry on such a bar
    is rejected as `warm_up_nan`.

    Args:
        bars: Canonical bars: ts Datetime("us", "UTC") strictly increasing, open/high/low/close
            finite and > 0 (volume is not used; zero-volume bars trade).
        entries: Per bar +1 (long), -1 (short) or 0; any integer dtype, or float with NaN for
            "no signal yet".
        config: Costs, exit rules, sizing, cash and annualization.
        exits: Per bar, non-zero (or True) closes the open position at the next fill.
        size: Per bar fraction of equity for an entry there (>= 0, NaN in warm-up); replaces
            `config.sizing.equity_fraction`. Values above 1 are leverage, which Risk must cap.
        stop_loss_distance: Per bar absolute stop distance from the entry price (> 0); excludes
            `exits.stop_loss_rate`.
        take_profit_distance: Per bar absolute target distance (> 0); excludes
            `exits.take_profit_rate`.
        trailing_distance: Per bar absolute trailing distance from the anchor (> 0), fixed at
            the signal bar; excludes `exits.trailing_stop_rate`.

    Returns:
        The equity frame, trades frame, step summary, report, and per-bar entry status and
        position.

    Raises:
        BacktestInputError: if bars or arrays break the contract above.
    """
    ts_us, columns = _bar_columns(bars)
    n_bars = bars.height
    entry_signals = _entries_array(entries, n_bars)
    exit_signals = _exits_array(exits, n_bars)
    per_bar = _per_bar_inputs(
        config, n_bars, size, stop_loss_distance, take_profit_distance, trailing_distance
    )
    periods_per_year = config.periods_per_year or infer_periods_per_year(bars["ts"])

    equity = np.empty(n_bars)
    position = np.empty(n_bars)
    exposure = np.empty(n_bars)
    status = np.empty(n_bars, dtype=np.int8)
    trades = np.empty(np.count_nonzero(entry_signals), dtype=kernel.TRADE_DTYPE)
    n_trades = kernel.simulate_nb(
        *columns,
        entry_signals,
        exit_signals,
        *per_bar,
        config.sizing.equity_fraction,
        rate_or_nan(config.exits.stop_loss_rate),
        rate_or_nan(config.exits.take_profit_rate),
        rate_or_nan(config.exits.trailing_stop_rate),
        config.exits.max_bars_in_trade or 0,
        config.allow_reversal,
        config.cost.commission_rate,
        config.cost.slippage_bps,
        FILL_MODE_CODES[config.cost.fill],
        STOPS_FROM_CODES[config.exits.stops_from],
        config.initial_cash,
        config.sizing.whole_units,
        equity,
        position,
        exposure,
        status,
        trades,
    )
    equity_frame = pl.DataFrame(
        [bars["ts"], pl.Series("equity", equity), pl.Series("exposure", exposure)]
    )
    trades_frame = _trades_frame(trades[:n_trades], ts_us)
    report = compute_report(
        equity_frame,
        trades_frame,
        initial_cash=config.initial_cash,
        periods_per_year=periods_per_year,
        n_trials=config.n_trials,
    )
    return BacktestResult(
        equity_frame, trades_frame, _step_summary(status), report, status, position
    )


def trades_frame_of(records: kernel.TradeArray, ts: pl.Series) -> pl.DataFrame:
    """Return the trades frame (TRADES_SCHEMA) of kernel trade records on bars stamped `ts`."""
    return _trades_frame(records, _micros(ts.cast(TS_DTYPE)))


def _trades_frame(records: kernel.TradeArray, ts_us: Int64Array) -> pl.DataFrame:
    # Column by column with the final dtypes: cheaper than a dict cast to TRADES_SCHEMA.
    entry_bar = np.ascontiguousarray(records["entry_bar"])
    exit_bar = np.ascontiguousarray(records["exit_bar"])
    columns = [
        pl.Series("entry_ts", ts_us[entry_bar]).cast(TS_DTYPE),
        pl.Series("exit_ts", ts_us[exit_bar]).cast(TS_DTYPE),
        pl.Series("entry_bar", entry_bar),
        pl.Series("exit_bar", exit_bar),
        pl.Series("bars_held", np.ascontiguousarray(records["bars_held"])),
        _SIDES.gather(records["side"].astype(np.int64) + 1).alias("side"),
        *(pl.Series(name, np.ascontiguousarray(records[name])) for name in _TRADE_FLOATS),
        _EXIT_REASONS.gather(records["exit_code"].astype(np.int64)).alias("exit_reason"),
    ]
    return pl.DataFrame(columns)


def _micros(ts: pl.Series) -> Int64Array:
    # Microseconds since the epoch of a Datetime("us") series; a zero-copy view when it has
    # one chunk (to_physical() would copy).
    return ts.to_numpy().view(np.int64)


def infer_periods_per_year(ts: pl.Series) -> float:
    """Return bars per year from the typical bar spacing: 252 for daily bars, else 365 days.

    The spacing is the median gap of the first bars, so weekends and outages do not move it.

    Raises:
        BacktestInputError: if there are fewer than two bars.
    """
    if ts.len() < 2:
        raise BacktestInputError(
            f"cannot infer periods_per_year from {ts.len()} bar(s); set "
            "BacktestConfig.periods_per_year (e.g. 8760 for 1h crypto, 252 for daily equities)"
        )
    head = ts.head(_SPACING_SAMPLE_BARS + 1).dt.cast_time_unit("us").to_physical().to_numpy()
    spacing_seconds = float(np.median(np.diff(head))) / 1e6
    if spacing_seconds == _SECONDS_PER_DAY:
        return DAILY_PERIODS_PER_YEAR
    return 365.0 * _SECONDS_PER_DAY / spacing_seconds


def _bar_columns(
    bars: pl.DataFrame,
) -> tuple[Int64Array, tuple[FloatArray, FloatArray, FloatArray, FloatArray]]:
    # Validate the bars; return ts in microseconds and the price columns, as kernel views.
    missing = [name for name in ("ts", *PRICE_COLUMNS) if name not in bars.columns]
    if missing:
        raise BacktestInputError(
            f"bars lack columns {missing} (they have {bars.columns}); pass canonical bars "
            "(quant_assets.market.canonical.to_canonical)"
        )
    if bars.height == 0:
        raise BacktestInputError("bars have 0 rows; a backtest needs at least one bar")
    if bars.schema["ts"] != TS_DTYPE:
        raise BacktestInputError(
            f"bars column 'ts' was {bars.schema['ts']}; it must be {TS_DTYPE} "
            "(convert with quant_assets.market.canonical.to_canonical)"
        )
    if bars["ts"].null_count():
        raise BacktestInputError(
            f"bars column 'ts' has {bars['ts'].null_count()} null(s); drop bars without a time"
        )
    ts = _kernel_view(_micros(bars["ts"]), np.int64)
    open_, high, low, close = (
        _kernel_view(bars[name].cast(pl.Float64).to_numpy(), np.float64) for name in PRICE_COLUMNS
    )
    unsorted, bad = kernel.first_invalid_bars_nb(ts, open_, high, low, close)
    if unsorted >= 0:
        raise BacktestInputError(
            f"bars column 'ts' is not strictly increasing at row {unsorted} "
            f"({bars['ts'][unsorted]}); sort by ts and drop duplicate bars first"
        )
    if bad >= 0:
        prices = {name: bars[name][bad] for name in PRICE_COLUMNS}
        raise BacktestInputError(
            f"bar {bad} at {bars['ts'][bad]} has prices {prices}; every open/high/low/close must "
            "be finite and > 0 (NaN or null prices cannot trade): repair or drop that bar"
        )
    return ts, (open_, high, low, close)


def _entries_array(entries: npt.ArrayLike, n_bars: int) -> Int8Array:
    values = _one_dimensional(entries, "entries", n_bars)
    if values.dtype.kind == "f":
        decided = values[~np.isnan(values)]
        if not np.isin(decided, (-1.0, 0.0, 1.0)).all():
            raise BacktestInputError(
                "entries hold float values other than -1, 0, 1 and NaN; pass +1 (long), "
                "-1 (short) or 0 per bar"
            )
        return _kernel_view(np.nan_to_num(values, nan=0.0).astype(np.int8), np.int8)
    if values.dtype.kind not in "iu":
        raise BacktestInputError(
            f"entries have dtype {values.dtype}; pass an int8 array of +1 (long), -1 (short) "
            "or 0 (a boolean array cannot say which side)"
        )
    if n_bars and (int(values.min()) < -1 or int(values.max()) > 1):
        raise BacktestInputError(
            f"entries range from {values.min()} to {values.max()}; pass +1 (long), -1 (short) "
            "or 0 per bar"
        )
    return _kernel_view(values, np.int8)


def _exits_array(exits: npt.ArrayLike | None, n_bars: int) -> Int8Array:
    if exits is None:
        return _kernel_view(np.empty(0, dtype=np.int8), np.int8)
    values = _one_dimensional(exits, "exits", n_bars)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0)
    if values.dtype.kind not in "biuf":
        raise BacktestInputError(
            f"exits have dtype {values.dtype}; pass a bool or int8 array (non-zero = exit)"
        )
    flags = values if values.dtype == np.bool_ else values != 0
    return _kernel_view(flags.view(np.int8), np.int8)


def _per_bar_inputs(
    config: BacktestConfig,
    n_bars: int,
    size: npt.ArrayLike | None,
    stop_loss_distance: npt.ArrayLike | None,
    take_profit_distance: npt.ArrayLike | None,
    trailing_distance: npt.ArrayLike | None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    rules = config.exits
    sizes = _per_bar(size, "size", n_bars, positive=False)
    levels = []
    for rate_name, rate, distance_name, distance in (
        ("stop_loss_rate", rules.stop_loss_rate, "stop_loss_distance", stop_loss_distance),
        ("take_profit_rate", rules.take_profit_rate, "take_profit_distance", take_profit_distance),
        ("trailing_stop_rate", rules.trailing_stop_rate, "trailing_distance", trailing_distance),
    ):
        if rate is not None and distance is not None:
            raise BacktestInputError(
                f"both config.exits.{rate_name} ({rate}) and a {distance_name} array were "
                "given; a level is either a rate of the price or a per-bar distance, so pass one"
            )
        levels.append(_per_bar(distance, distance_name, n_bars, positive=True))
    return sizes, levels[0], levels[1], levels[2]


def _per_bar(values: npt.ArrayLike | None, name: str, n_bars: int, *, positive: bool) -> FloatArray:
    if values is None:
        return _kernel_view(NO_FLOATS, np.float64)
    array = _one_dimensional(values, name, n_bars).astype(np.float64, copy=False)
    given = ~np.isnan(array)
    valid = array > 0.0 if positive else (array >= 0.0) & (array < math.inf)
    invalid = np.flatnonzero(given & ~valid)
    if invalid.size:
        rule = "> 0 (inf means no level)" if positive else "finite and >= 0"
        raise BacktestInputError(
            f"{name} at bar {invalid[0]} was {array[invalid[0]]}; values must be {rule}, "
            "or NaN during warm-up"
        )
    return _kernel_view(array, np.float64)


def _one_dimensional(values: npt.ArrayLike, name: str, n_bars: int) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.shape[0] != n_bars:
        raise BacktestInputError(
            f"{name} has shape {array.shape}; it must be one value per bar, shape ({n_bars},)"
        )
    return array


def _kernel_view(array: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    # One read-only contiguous layout for every input keeps the kernel at one compiled signature
    # (polars hands out read-only views; Numba types read-only arrays separately).
    contiguous = np.ascontiguousarray(array, dtype=dtype)
    view = contiguous.view()
    view.flags.writeable = False
    return view


def _step_summary(status: Int8Array) -> StepSummary:
    counts = kernel.count_codes_nb(status, len(EntryCode) + 1)
    rejections = {
        code.outcome.value: int(counts[code]) for code in EntryCode if code is not EntryCode.FILLED
    }
    return StepSummary(
        candidates=int(status.shape[0] - counts[0]),
        fills=int(counts[EntryCode.FILLED]),
        rejections=rejections,
    )
