"""The backtest kernel: the package's only per-bar loop, in Numba.

Contract (vectorbt's): contiguous arrays and scalars in, preallocated arrays out, no Python
objects; enums cross as ints mirrored from `quant_assets.domain.backtest`. Every function is
`@njit(cache=True, nogil=True)`, so a compiled kernel is reused across processes and threads can
run backtests in parallel. Three more choices keep the loop at about 7 ns per bar:
`error_model="numpy"` drops Python's zero-division checks (every denominator here is positive
by construction); the helpers on every bar's path are `inline="always"`, so a bar makes no
calls (those run once per fill or stop move are plain calls, compiled once rather than at each
call site); and a run that cannot trail (no trailing rate or distances) gets its own compiled
copy of the loop without the trailing-stop code, which alone made the loop twice as slow.
Semantics are DESIGN.md's "backtest contract"; each rule is pinned by a test in
`quant_assets_tests/backtest/test_kernel.py`.

Order of events on bar i (fill mode next_open):
1. the order decided at bar i-1's close fills at bar i's open: the exit (signal or reversal)
   first, then the entry, sized on the cash the exit left;
2. a time exit due at bar i fills at the open;
3. stops and targets are checked on bar i's high/low (stop before target);
4. the trailing anchor moves with bar i's high (long) or low (short);
5. signals at bar i's close are decided against the position held then;
6. equity is marked at bar i's close.
With fill mode close, steps 2 and 5 execute at bar i's close and nothing is pending.
"""

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from numba import literally, njit

from quant_assets.domain.arrays import FloatArray, Int8Array, Int64Array
from quant_assets.domain.backtest import EntryCode, ExitCode

TradeArray = npt.NDArray[np.void]
Costs = tuple[float, float, bool]  # commission rate, slippage rate, whole units
Rates = tuple[float, float, float]  # stop-loss, take-profit, trailing-stop rates
Distances = tuple[FloatArray, FloatArray, FloatArray]  # stop, target, trailing distances
Plan = tuple[FloatArray, float, Rates, Distances]  # size, equity fraction, rates, distances

TRADE_DTYPE: Final = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("bars_held", np.int64),
        ("qty", np.float64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("pnl", np.float64),
        ("fees", np.float64),
        ("return_rate", np.float64),
        ("side", np.int8),
        ("exit_code", np.int8),
    ],
    align=True,
)

FILL_NEXT_OPEN: Final = 0
FILL_CLOSE: Final = 1
STOPS_FROM_ENTRY_BAR: Final = 0
STOPS_FROM_NEXT_BAR: Final = 1

# Ints mirrored from the domain enums; Numba freezes module globals as compile-time constants.
_STOP_LOSS: Final = int(ExitCode.STOP_LOSS)
_TAKE_PROFIT: Final = int(ExitCode.TAKE_PROFIT)
_TRAILING_STOP: Final = int(ExitCode.TRAILING_STOP)
_TIME: Final = int(ExitCode.TIME)
_SIGNAL: Final = int(ExitCode.SIGNAL)
_REVERSAL: Final = int(ExitCode.REVERSAL)
_END_OF_DATA: Final = int(ExitCode.END_OF_DATA)
_FILLED: Final = int(EntryCode.FILLED)
_ALREADY_IN_POSITION: Final = int(EntryCode.ALREADY_IN_POSITION)
_REVERSAL_NOT_ALLOWED: Final = int(EntryCode.REVERSAL_NOT_ALLOWED)
_WARM_UP_NAN: Final = int(EntryCode.WARM_UP_NAN)
_ZERO_QUANTITY: Final = int(EntryCode.ZERO_QUANTITY)
_NO_BAR_TO_FILL: Final = int(EntryCode.NO_BAR_TO_FILL)

# Slots of the book (a float64 state array); a flat book has side 0.
_CASH: Final = 0
_SIDE: Final = 1  # +1 long, -1 short, 0 flat
_QTY: Final = 2  # units held, > 0 unless flat
_ENTRY_BAR: Final = 3
_ENTRY_PRICE: Final = 4  # entry fill price, slippage included
_ENTRY_FEE: Final = 5
_FIRST_CHECK_BAR: Final = 6  # first bar whose range can trigger stops and targets
_HELD_FROM_BAR: Final = 7  # first bar whose whole range the position is exposed to
_STOP: Final = 8  # fixed stop-loss level, NaN if none
_TARGET: Final = 9  # take-profit level, NaN if none
_TRAIL_OFFSET: Final = 10  # absolute trailing distance, NaN if none
_TRAIL_RATE: Final = 11  # trailing distance as a rate of the anchor, NaN if none
_ANCHOR: Final = 12  # best price since entry (high for longs, low for shorts)
_TRAILS: Final = 13  # 1.0 if a trailing stop is set
_ACTIVE_STOP: Final = 14  # the tighter of the fixed and trailing stop, NaN if none
_ACTIVE_CODE: Final = 15  # exit code of the active stop
_BOOK_SIZE: Final = 16
_COUNT_BLOCK: Final = 1 << 30  # int32 counters cannot overflow within a block


@njit(cache=True, nogil=True, error_model="numpy")
def simulate_nb(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    entries: Int8Array,
    exits: Int8Array,
    size: FloatArray,
    stop_loss_distance: FloatArray,
    take_profit_distance: FloatArray,
    trailing_distance: FloatArray,
    equity_fraction: float,
    stop_loss_rate: float,
    take_profit_rate: float,
    trailing_stop_rate: float,
    max_bars_in_trade: int,
    allow_reversal: bool,
    commission_rate: float,
    slippage_bps: float,
    fill_mode: int,
    stops_from: int,
    initial_cash: float,
    whole_units: bool,
    equity_out: FloatArray,
    position_out: FloatArray,
    exposure_out: FloatArray,
    entry_status_out: Int8Array,
    trades_out: TradeArray,
) -> int:
    """Simulate one instrument bar by bar; fill the output arrays and return the trade count.

    Args:
        open_: Bar open prices (finite, > 0); likewise high, low and close.
        high: Bar highs.
        low: Bar lows.
        close: Bar closes.
        entries: +1 (go long), -1 (go short) or 0, decided at each bar's close.
        exits: Non-zero closes the open position; length 0 means no signal exits.
        size: Fraction of equity per entry bar; length 0 means equity_fraction for all bars.
        stop_loss_distance: Absolute stop distance per entry bar; length 0 means none.
        take_profit_distance: Absolute target distance per entry bar; length 0 means none.
        trailing_distance: Absolute trailing distance per entry bar; length 0 means none.
        equity_fraction: Fraction of equity per entry when size is empty.
        stop_loss_rate: Stop distance as a rate of the entry price; NaN means none.
        take_profit_rate: Target distance as a rate of the entry price; NaN means none.
        trailing_stop_rate: Trailing distance as a rate of the anchor; NaN means none.
        max_bars_in_trade: Time exit after this many bars; 0 means none.
        allow_reversal: Whether an opposite signal closes and reopens in one fill.
        commission_rate: Fee as a fraction of notional, per side.
        slippage_bps: Adverse move of every fill price, in basis points.
        fill_mode: FILL_NEXT_OPEN or FILL_CLOSE.
        stops_from: STOPS_FROM_ENTRY_BAR or STOPS_FROM_NEXT_BAR.
        initial_cash: Cash before the first bar.
        whole_units: Floor quantities to whole units.
        equity_out: Output, cash plus the position marked at each close; the last bar
            includes the end-of-data exit's costs.
        position_out: Output, signed units held at each close (before an end-of-data exit).
        exposure_out: Output, signed position value / equity at each close.
        entry_status_out: Output, the EntryCode of each bar's entry candidate (0 if none).
        trades_out: Output, TRADE_DTYPE records; needs one slot per non-zero entry.

    Returns:
        The number of trades written to trades_out.
    """
    book = np.zeros(_BOOK_SIZE)
    book[_CASH] = initial_cash
    plan = (
        size,
        equity_fraction,
        (stop_loss_rate, take_profit_rate, trailing_stop_rate),
        (stop_loss_distance, take_profit_distance, trailing_distance),
    )
    costs = (commission_rate, slippage_bps / 10_000.0, whole_units)
    next_open = fill_mode == FILL_NEXT_OPEN
    # Two compiled copies of the loop: without trailing inputs a position can never trail, and
    # the loop without that code runs about twice as fast (12 -> 7 ns per bar, benchmark).
    if trailing_distance.shape[0] > 0 or not math.isnan(trailing_stop_rate):
        n_trades = _bar_loop_nb(
            open_, high, low, close, entries, exits, book, plan, costs,
            max_bars_in_trade, allow_reversal, next_open, stops_from,
            equity_out, position_out, exposure_out, entry_status_out, trades_out, True,
        )  # fmt: skip
    else:
        n_trades = _bar_loop_nb(
            open_, high, low, close, entries, exits, book, plan, costs,
            max_bars_in_trade, allow_reversal, next_open, stops_from,
            equity_out, position_out, exposure_out, entry_status_out, trades_out, False,
        )  # fmt: skip
    n_bars = close.shape[0]
    if n_bars > 0 and book[_SIDE] != 0.0:
        # An open position is closed at the last close so the curve ends in realized cash.
        last = n_bars - 1
        n_trades = _close_nb(book, trades_out, n_trades, last, close[last], _END_OF_DATA, costs)
        equity_out[last] = book[_CASH]
    return n_trades


@njit(cache=True, nogil=True, error_model="numpy")
def _bar_loop_nb(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    entries: Int8Array,
    exits: Int8Array,
    book: FloatArray,
    plan: Plan,
    costs: Costs,
    max_bars_in_trade: int,
    allow_reversal: bool,
    next_open: bool,
    stops_from: int,
    equity_out: FloatArray,
    position_out: FloatArray,
    exposure_out: FloatArray,
    entry_status_out: Int8Array,
    trades_out: TradeArray,
    trailing: bool,
) -> int:
    # Run bars 0..n-1 (the events of the module docstring) and return the trades written.
    # `trailing` is compiled as a constant, once per value, so the False copy has no trailing
    # code at all. Arguments come one by one: passed in tuples, they made the loop 15% slower.
    literally(trailing)
    n_bars = close.shape[0]
    n_trades = 0
    pending_exit, pending_side, pending_bar = 0, 0, -1
    for bar in range(n_bars):
        if next_open:
            if pending_exit != 0 or pending_side != 0:
                checks_from = bar if stops_from == STOPS_FROM_ENTRY_BAR else bar + 1
                timing = (bar, open_[bar], pending_bar, checks_from, bar)
                n_trades = _execute_nb(
                    book, trades_out, n_trades, timing, pending_exit, pending_side, plan, costs
                )
                if pending_side != 0:
                    entry_status_out[pending_bar] = _entry_status_nb(book, bar, pending_side)
            n_trades = _time_exit_nb(
                book, trades_out, n_trades, bar, open_[bar], max_bars_in_trade, costs
            )
        n_trades = _intrabar_nb(
            book, trades_out, n_trades, bar, open_[bar], high[bar], low[bar], costs, trailing
        )
        if not next_open:
            n_trades = _time_exit_nb(
                book, trades_out, n_trades, bar, close[bar], max_bars_in_trade, costs
            )
        exit_flag = exits.shape[0] > 0 and exits[bar] != 0
        status, exit_code, side = 0, 0, 0
        if entries[bar] != 0 or exit_flag:
            status, exit_code, side = _decide_nb(
                int(book[_SIDE]),
                int(entries[bar]),
                exit_flag,
                allow_reversal,
                _inputs_nan_nb(bar, plan),
                bar == n_bars - 1,
            )
        entry_status_out[bar] = status
        if next_open:
            pending_exit, pending_side, pending_bar = exit_code, side, bar
        elif exit_code != 0 or side != 0:
            timing = (bar, close[bar], bar, bar + 1, bar + 1)
            n_trades = _execute_nb(book, trades_out, n_trades, timing, exit_code, side, plan, costs)
            entry_status_out[bar] = _entry_status_nb(book, bar, side) if side != 0 else status
        _mark_nb(book, bar, close[bar], equity_out, position_out, exposure_out)
    return n_trades


@njit(cache=True, nogil=True, error_model="numpy")
def first_invalid_bars_nb(
    ts: Int64Array, open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray
) -> tuple[int, int]:
    """Return the first bar not after its predecessor and the first with a bad price, or -1.

    A price is bad unless finite and > 0; one pass checks both rules on every bar.
    """
    valid = True
    for bar in range(1, close.shape[0]):  # no early exit, so the all-valid case vectorizes
        valid &= _prices_valid_nb(open_, high, low, close, bar) & (ts[bar] > ts[bar - 1])
    if close.shape[0] == 0 or (valid and _prices_valid_nb(open_, high, low, close, 0)):
        return -1, -1
    unsorted, invalid = -1, -1
    for bar in range(close.shape[0]):
        if unsorted < 0 and bar > 0 and ts[bar] <= ts[bar - 1]:
            unsorted = bar
        if invalid < 0 and not _prices_valid_nb(open_, high, low, close, bar):
            invalid = bar
    return unsorted, invalid


@njit(cache=True, nogil=True, error_model="numpy")
def count_codes_nb(codes: Int8Array, n_codes: int) -> Int64Array:
    """Return how often each code 0..n_codes-1 occurs in codes."""
    counts = np.zeros(n_codes, dtype=np.int64)
    # One branch-free pass per code with a narrow counter vectorizes; a histogram loop waits
    # on its store-to-load chain (or on mispredicted branches) and takes 3-5x longer.
    for code in range(1, n_codes):
        target = np.int8(code)
        for start in range(0, codes.shape[0], _COUNT_BLOCK):
            block = codes[start : start + _COUNT_BLOCK]
            matches = np.int32(0)
            for index in range(block.shape[0]):
                matches += np.int32(block[index] == target)
            counts[code] += matches
    counts[0] = codes.shape[0] - counts.sum()
    return counts


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _prices_valid_nb(
    open_: FloatArray, high: FloatArray, low: FloatArray, close: FloatArray, bar: int
) -> bool:
    # NaN fails both comparisons; bitwise & keeps the test branch-free.
    return (
        (open_[bar] > 0.0)
        & (open_[bar] < math.inf)
        & (high[bar] > 0.0)
        & (high[bar] < math.inf)
        & (low[bar] > 0.0)
        & (low[bar] < math.inf)
        & (close[bar] > 0.0)
        & (close[bar] < math.inf)
    )


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _decide_nb(
    side: int,
    entry: int,
    exit_flag: bool,
    allow_reversal: bool,
    inputs_nan: bool,
    last_bar: bool,
) -> tuple[int, int, int]:
    # Return (entry status, exit code, side to open) for the signals at one bar's close.
    status, exit_code, open_side = 0, 0, 0
    if entry != 0:
        if last_bar:
            status = _NO_BAR_TO_FILL
        elif inputs_nan:
            status = _WARM_UP_NAN
        elif side == entry:
            # A same-direction signal while in a position does nothing (no pyramiding).
            status = _ALREADY_IN_POSITION
        elif side != 0 and not allow_reversal:
            status = _REVERSAL_NOT_ALLOWED
        else:
            status, open_side = _FILLED, entry
            exit_code = _REVERSAL if side != 0 else 0
    if exit_code == 0 and exit_flag and side != 0:
        exit_code = _SIGNAL
    return status, exit_code, open_side


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _inputs_nan_nb(bar: int, plan: Plan) -> bool:
    # NaN in a per-bar input marks indicator warm-up: an entry there never trades.
    size, _, _, (stop_distance, target_distance, trail_distance) = plan
    return (
        _nan_at_nb(size, bar)
        or _nan_at_nb(stop_distance, bar)
        or _nan_at_nb(target_distance, bar)
        or _nan_at_nb(trail_distance, bar)
    )


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _nan_at_nb(values: FloatArray, bar: int) -> bool:
    # An empty array stands for an input that was not given.
    return values.shape[0] > 0 and math.isnan(values[bar])


@njit(cache=True, nogil=True, error_model="numpy")
def _execute_nb(
    book: FloatArray,
    trades: TradeArray,
    n_trades: int,
    timing: tuple[int, float, int, int, int],
    exit_code: int,
    side: int,
    plan: Plan,
    costs: Costs,
) -> int:
    # One fill: close the held position (signal or reversal) first, then open the new side,
    # each leg charged commission (DESIGN.md: reversal = exit then entry on the same fill).
    bar, price, signal_bar, checks_from, held_from = timing
    size, equity_fraction, rates, distances = plan
    if exit_code != 0 and book[_SIDE] != 0.0:
        n_trades = _close_nb(book, trades, n_trades, bar, price, exit_code, costs)
    if side != 0:
        fraction = size[signal_bar] if size.shape[0] > 0 else equity_fraction
        if _open_nb(book, bar, price, side, fraction, costs):
            book[_FIRST_CHECK_BAR] = checks_from
            book[_HELD_FROM_BAR] = held_from
            _arm_exits_nb(book, signal_bar, rates, distances)
    return n_trades


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _entry_status_nb(book: FloatArray, bar: int, side: int) -> int:
    # After a fill attempt: filled if the book now holds the signal's side from this bar.
    if book[_SIDE] == side and book[_ENTRY_BAR] == bar:
        return _FILLED
    return _ZERO_QUANTITY


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _fill_price_nb(price: float, buy: bool, slippage_rate: float) -> float:
    # Slippage is always adverse: buys fill higher, sells lower.
    if buy:
        return price * (1.0 + slippage_rate)
    return price * (1.0 - slippage_rate)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _open_nb(
    book: FloatArray,
    bar: int,
    raw_price: float,
    side: int,
    fraction: float,
    costs: Costs,
) -> bool:
    commission_rate, slippage_rate, whole_units = costs
    price = _fill_price_nb(raw_price, side > 0, slippage_rate)
    # The book is flat here, so equity is cash; the fee comes out of the committed fraction:
    # qty * price * (1 + commission_rate) = fraction * equity (backtesting.py's sizing).
    qty = fraction * book[_CASH] / (price * (1.0 + commission_rate))
    if whole_units:
        qty = np.floor(qty)
    if not qty > 0.0:
        return False
    fee = qty * price * commission_rate
    book[_CASH] -= side * qty * price + fee
    book[_SIDE] = side
    book[_QTY] = qty
    book[_ENTRY_BAR] = bar
    book[_ENTRY_PRICE] = price
    book[_ENTRY_FEE] = fee
    return True


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _arm_exits_nb(
    book: FloatArray,
    signal_bar: int,
    rates: Rates,
    distances: Distances,
) -> None:
    # Levels are fixed from the entry fill price; distances come from the signal bar, the
    # last bar known when the order was decided (no look-ahead).
    stop_loss_rate, take_profit_rate, trailing_stop_rate = rates
    stop_distance, target_distance, trail_distance = distances
    side = book[_SIDE]
    entry = book[_ENTRY_PRICE]
    book[_STOP] = math.nan
    book[_TARGET] = math.nan
    book[_TRAIL_OFFSET] = math.nan
    if stop_distance.shape[0] > 0:
        book[_STOP] = entry - side * stop_distance[signal_bar]
    elif not math.isnan(stop_loss_rate):
        book[_STOP] = entry * (1.0 - side * stop_loss_rate)
    if target_distance.shape[0] > 0:
        book[_TARGET] = entry + side * target_distance[signal_bar]
    elif not math.isnan(take_profit_rate):
        book[_TARGET] = entry * (1.0 + side * take_profit_rate)
    if trail_distance.shape[0] > 0:
        book[_TRAIL_OFFSET] = trail_distance[signal_bar]
    book[_TRAIL_RATE] = trailing_stop_rate
    book[_TRAILS] = (
        0.0 if math.isnan(book[_TRAIL_OFFSET]) and math.isnan(trailing_stop_rate) else 1.0
    )
    # The trailing anchor starts at the fill price (DESIGN.md).
    book[_ANCHOR] = entry
    _refresh_stop_nb(book)


@njit(cache=True, nogil=True, error_model="numpy")
def _refresh_stop_nb(book: FloatArray) -> None:
    # The effective stop is the tighter of the fixed stop-loss and the trailing stop; it only
    # changes when a position opens or its anchor moves, so it is kept in the book.
    side = book[_SIDE]
    level, code = book[_STOP], _STOP_LOSS
    trail = math.nan
    if not math.isnan(book[_TRAIL_OFFSET]):
        trail = book[_ANCHOR] - side * book[_TRAIL_OFFSET]
    elif not math.isnan(book[_TRAIL_RATE]):
        trail = book[_ANCHOR] * (1.0 - side * book[_TRAIL_RATE])
    if not math.isnan(trail) and (math.isnan(level) or side * (trail - level) > 0.0):
        level, code = trail, _TRAILING_STOP
    book[_ACTIVE_STOP] = level
    book[_ACTIVE_CODE] = code


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _range_exit_nb(book: FloatArray, open_: float, high: float, low: float) -> tuple[int, float]:
    # Stop before target when both are inside one bar (pessimistic, DESIGN.md and
    # backtesting.py, which queues SL orders first); a gap through a level fills at the open.
    stop, stop_code = book[_ACTIVE_STOP], int(book[_ACTIVE_CODE])
    target = book[_TARGET]
    if book[_SIDE] > 0.0:
        if low <= stop:
            return stop_code, min(open_, stop)
        if high >= target:
            return _TAKE_PROFIT, max(open_, target)
    else:
        if high >= stop:
            return stop_code, max(open_, stop)
        if low <= target:
            return _TAKE_PROFIT, min(open_, target)
    return 0, math.nan


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _intrabar_nb(
    book: FloatArray,
    trades: TradeArray,
    n_trades: int,
    bar: int,
    open_: float,
    high: float,
    low: float,
    costs: Costs,
    trailing: bool,
) -> int:
    if book[_SIDE] == 0.0:
        return n_trades
    if bar >= book[_FIRST_CHECK_BAR]:
        code, price = _range_exit_nb(book, open_, high, low)
        if code != 0:
            return _close_nb(book, trades, n_trades, bar, price, code, costs)
    if trailing and book[_TRAILS] != 0.0 and bar >= book[_HELD_FROM_BAR]:
        # The anchor moves after this bar's check, so a bar never trails its own stop.
        anchor = max(book[_ANCHOR], high) if book[_SIDE] > 0.0 else min(book[_ANCHOR], low)
        if anchor != book[_ANCHOR]:
            book[_ANCHOR] = anchor
            _refresh_stop_nb(book)
    return n_trades


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _time_exit_nb(
    book: FloatArray,
    trades: TradeArray,
    n_trades: int,
    bar: int,
    price: float,
    max_bars_in_trade: int,
    costs: Costs,
) -> int:
    if max_bars_in_trade > 0 and book[_SIDE] != 0.0 and bar - book[_ENTRY_BAR] >= max_bars_in_trade:
        return _close_nb(book, trades, n_trades, bar, price, _TIME, costs)
    return n_trades


@njit(cache=True, nogil=True, error_model="numpy")
def _close_nb(
    book: FloatArray,
    trades: TradeArray,
    n_trades: int,
    bar: int,
    raw_price: float,
    exit_code: int,
    costs: Costs,
) -> int:
    commission_rate, slippage_rate, _ = costs
    side = book[_SIDE]
    qty = book[_QTY]
    entry_price = book[_ENTRY_PRICE]
    price = _fill_price_nb(raw_price, side < 0.0, slippage_rate)
    fee = qty * price * commission_rate
    book[_CASH] += side * qty * price - fee
    record = trades[n_trades]
    record["entry_bar"] = int(book[_ENTRY_BAR])
    record["exit_bar"] = bar
    record["bars_held"] = bar - int(book[_ENTRY_BAR])
    record["qty"] = qty
    record["entry_price"] = entry_price
    record["exit_price"] = price
    record["fees"] = book[_ENTRY_FEE] + fee
    record["pnl"] = side * qty * (price - entry_price) - book[_ENTRY_FEE] - fee
    record["return_rate"] = record["pnl"] / (qty * entry_price)
    record["side"] = int(side)
    record["exit_code"] = exit_code
    book[_SIDE] = 0.0
    book[_QTY] = 0.0
    return n_trades + 1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mark_nb(
    book: FloatArray,
    bar: int,
    close: float,
    equity_out: FloatArray,
    position_out: FloatArray,
    exposure_out: FloatArray,
) -> None:
    position = book[_SIDE] * book[_QTY]
    equity = book[_CASH] + position * close
    equity_out[bar] = equity
    position_out[bar] = position  # unconditional: a test here made the loop twice as slow
    if position == 0.0:
        exposure_out[bar] = 0.0
    elif equity > 0.0:
        exposure_out[bar] = position * close / equity
    else:
        # A ruined account has no meaningful exposure.
        exposure_out[bar] = math.nan
