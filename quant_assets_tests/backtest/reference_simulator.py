"""A slow, obvious per-bar simulator, written apart from the kernel, that the kernel must match.

Plain Python objects and floats, one method per event of a bar, no arrays and no Numba. It reads
the semantics from DESIGN.md ("The backtest contract") and the engine task, not from kernel.py:
- a signal at bar t's close fills at bar t+1's open (next_open) or at bar t's close (close);
- an opposite signal closes and reopens in one fill (if reversals are allowed); a same-direction
  signal while holding does nothing; a signal on the last bar never fills;
- qty = fraction * equity / (fill price * (1 + commission)), fill prices slipped adversely;
- stops and targets trigger on the bar's high/low, from the entry bar (after an open fill) or
  the next bar; the stop wins a tie, a gap fills at the open; the effective stop is the tighter
  of the fixed stop and the trailing stop, whose anchor starts at the fill and moves with each
  bar's high (low for shorts) after that bar's check;
- a position open at the end is closed at the last close (end_of_data).
"""

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from quant_assets.domain.backtest import (
    BacktestConfig,
    EntryOutcome,
    ExitReason,
    FillMode,
    PositionSide,
    StopsFrom,
)


@dataclass(frozen=True)
class ReferenceTrade:
    """One round trip as the reference simulator records it."""

    entry_bar: int
    exit_bar: int
    side: PositionSide
    qty: float
    entry_price: float
    exit_price: float
    pnl: float
    fees: float
    exit_reason: ExitReason


@dataclass
class ReferenceResult:
    """Equity and position per bar, entry outcomes by signal bar, and trades."""

    equity: list[float] = field(default_factory=list)
    position: list[float] = field(default_factory=list)
    outcomes: dict[int, EntryOutcome] = field(default_factory=dict)
    trades: list[ReferenceTrade] = field(default_factory=list)


@dataclass
class _Holding:
    side: int
    qty: float
    entry_bar: int
    entry_price: float
    entry_fee: float
    first_check_bar: int
    exposed_from_bar: int
    stop: float | None = None
    target: float | None = None
    trail_distance: float | None = None
    trail_rate: float | None = None
    anchor: float = 0.0


@dataclass(frozen=True)
class _Order:
    signal_bar: int
    close_reason: ExitReason | None
    open_side: int


def _optional(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else [float(value) for value in values]


class ReferenceSimulator:
    """Simulate one instrument bar by bar with plain Python objects."""

    def __init__(
        self,
        bars: pl.DataFrame,
        entries: np.ndarray,
        config: BacktestConfig,
        exits: np.ndarray | None = None,
        *,
        size: np.ndarray | None = None,
        stop_loss_distance: np.ndarray | None = None,
        take_profit_distance: np.ndarray | None = None,
        trailing_distance: np.ndarray | None = None,
    ) -> None:
        self.opens = bars["open"].to_list()
        self.highs = bars["high"].to_list()
        self.lows = bars["low"].to_list()
        self.closes = bars["close"].to_list()
        self.entries = [0 if math.isnan(float(e)) else int(e) for e in entries]
        self.exits = [bool(x) for x in exits] if exits is not None else None
        self.size = _optional(size)
        self.stop_distance = _optional(stop_loss_distance)
        self.target_distance = _optional(take_profit_distance)
        self.trail_distance = _optional(trailing_distance)
        self.config = config
        self.cash = config.initial_cash
        self.holding: _Holding | None = None
        self.result = ReferenceResult()

    def run(self) -> ReferenceResult:
        """Run over every bar and return what happened."""
        next_open = self.config.cost.fill is FillMode.NEXT_OPEN
        pending: _Order | None = None
        for bar in range(len(self.closes)):
            if next_open:
                if pending is not None:
                    self._execute(pending, bar, self.opens[bar])
                self._time_exit(bar, self.opens[bar])
            self._watch_range(bar)
            if not next_open:
                self._time_exit(bar, self.closes[bar])
            order = self._decide(bar)
            if next_open:
                pending = order
            elif order is not None:
                self._execute(order, bar, self.closes[bar])
            self._mark(bar)
        if self.holding is not None:
            last = len(self.closes) - 1
            self._close(last, self.closes[last], ExitReason.END_OF_DATA)
            self.result.equity[last] = self.cash
        return self.result

    # Decisions at a bar's close ----------------------------------------------------------

    def _decide(self, bar: int) -> _Order | None:
        held = self.holding.side if self.holding is not None else 0
        signal = self.entries[bar]
        wants_exit = self.exits is not None and self.exits[bar] and held != 0
        if signal != 0:
            outcome = self._screen(bar, signal, held)
            self.result.outcomes[bar] = outcome
            if outcome is EntryOutcome.FILLED:
                reason = ExitReason.REVERSAL if held != 0 else None
                return _Order(bar, reason, signal)
        if wants_exit:
            return _Order(bar, ExitReason.SIGNAL, 0)
        return None

    def _screen(self, bar: int, signal: int, held: int) -> EntryOutcome:
        if bar == len(self.closes) - 1:
            return EntryOutcome.NO_BAR_TO_FILL
        inputs = (self.size, self.stop_distance, self.target_distance, self.trail_distance)
        if any(values is not None and math.isnan(values[bar]) for values in inputs):
            return EntryOutcome.WARM_UP_NAN
        if held == signal:
            return EntryOutcome.ALREADY_IN_POSITION
        if held != 0 and not self.config.allow_reversal:
            return EntryOutcome.REVERSAL_NOT_ALLOWED
        return EntryOutcome.FILLED

    # Fills ---------------------------------------------------------------------------------

    def _execute(self, order: _Order, bar: int, price: float) -> None:
        if order.close_reason is not None and self.holding is not None:
            self._close(bar, price, order.close_reason)
        if order.open_side != 0 and not self._open(order, bar, price):
            self.result.outcomes[order.signal_bar] = EntryOutcome.ZERO_QUANTITY

    def _slipped(self, price: float, is_buy: bool) -> float:
        slip = self.config.cost.slippage_bps / 10_000.0
        return price * (1.0 + slip) if is_buy else price * (1.0 - slip)

    def _open(self, order: _Order, bar: int, raw_price: float) -> bool:
        side = order.open_side
        price = self._slipped(raw_price, is_buy=side > 0)
        commission = self.config.cost.commission_rate
        fraction = (
            self.size[order.signal_bar]
            if self.size is not None
            else self.config.sizing.equity_fraction
        )
        equity = self.cash  # nothing is held when a position opens
        qty = fraction * equity / (price * (1.0 + commission))
        if self.config.sizing.whole_units:
            qty = float(math.floor(qty))
        if qty <= 0.0 or math.isnan(qty):
            return False
        fee = qty * price * commission
        if side > 0:
            self.cash = self.cash - (qty * price + fee)
        else:
            self.cash = self.cash - (-qty * price + fee)
        if self.config.cost.fill is FillMode.CLOSE:
            first_check, exposed_from = bar + 1, bar + 1
        elif self.config.exits.stops_from is StopsFrom.ENTRY_BAR:
            first_check, exposed_from = bar, bar
        else:
            first_check, exposed_from = bar + 1, bar
        self.holding = _Holding(side, qty, bar, price, fee, first_check, exposed_from)
        self._set_levels(self.holding, order.signal_bar)
        return True

    def _set_levels(self, holding: _Holding, signal_bar: int) -> None:
        rules = self.config.exits
        entry, side = holding.entry_price, float(holding.side)
        if self.stop_distance is not None:
            holding.stop = entry - side * self.stop_distance[signal_bar]
        elif rules.stop_loss_rate is not None:
            holding.stop = entry * (1.0 - side * rules.stop_loss_rate)
        if self.target_distance is not None:
            holding.target = entry + side * self.target_distance[signal_bar]
        elif rules.take_profit_rate is not None:
            holding.target = entry * (1.0 + side * rules.take_profit_rate)
        if self.trail_distance is not None:
            holding.trail_distance = self.trail_distance[signal_bar]
        holding.trail_rate = rules.trailing_stop_rate
        holding.anchor = entry

    def _close(self, bar: int, raw_price: float, reason: ExitReason) -> None:
        holding = self.holding
        assert holding is not None
        price = self._slipped(raw_price, is_buy=holding.side < 0)
        fee = holding.qty * price * self.config.cost.commission_rate
        if holding.side > 0:
            self.cash = self.cash + (holding.qty * price - fee)
            gross = holding.qty * (price - holding.entry_price)
        else:
            self.cash = self.cash + (-holding.qty * price - fee)
            gross = -holding.qty * (price - holding.entry_price)
        trade = ReferenceTrade(
            entry_bar=holding.entry_bar,
            exit_bar=bar,
            side=PositionSide.LONG if holding.side > 0 else PositionSide.SHORT,
            qty=holding.qty,
            entry_price=holding.entry_price,
            exit_price=price,
            pnl=gross - holding.entry_fee - fee,
            fees=holding.entry_fee + fee,
            exit_reason=reason,
        )
        self.result.trades.append(trade)
        self.holding = None

    # Exits managed by the engine -----------------------------------------------------------

    def _time_exit(self, bar: int, price: float) -> None:
        limit = self.config.exits.max_bars_in_trade
        holding = self.holding
        if holding is not None and limit is not None and bar - holding.entry_bar >= limit:
            self._close(bar, price, ExitReason.TIME)

    def _effective_stop(self, holding: _Holding) -> tuple[float | None, ExitReason]:
        trail: float | None = None
        if holding.trail_distance is not None:
            trail = holding.anchor - holding.side * holding.trail_distance
        elif holding.trail_rate is not None:
            trail = holding.anchor * (1.0 - holding.side * holding.trail_rate)
        if trail is None:
            return holding.stop, ExitReason.STOP_LOSS
        if holding.stop is None:
            return trail, ExitReason.TRAILING_STOP
        tighter = trail > holding.stop if holding.side > 0 else trail < holding.stop
        return (
            (trail, ExitReason.TRAILING_STOP) if tighter else (holding.stop, ExitReason.STOP_LOSS)
        )

    def _watch_range(self, bar: int) -> None:
        holding = self.holding
        if holding is None:
            return
        open_, high, low = self.opens[bar], self.highs[bar], self.lows[bar]
        if bar >= holding.first_check_bar:
            exit_at = self._range_exit(holding, open_, high, low)
            if exit_at is not None:
                self._close(bar, exit_at[0], exit_at[1])
                return
        if bar >= holding.exposed_from_bar:
            if holding.side > 0:
                holding.anchor = max(holding.anchor, high)
            else:
                holding.anchor = min(holding.anchor, low)

    def _range_exit(
        self, holding: _Holding, open_: float, high: float, low: float
    ) -> tuple[float, ExitReason] | None:
        stop, stop_reason = self._effective_stop(holding)
        target = holding.target
        if holding.side > 0:
            if stop is not None and low <= stop:
                return min(open_, stop), stop_reason
            if target is not None and high >= target:
                return max(open_, target), ExitReason.TAKE_PROFIT
        else:
            if stop is not None and high >= stop:
                return max(open_, stop), stop_reason
            if target is not None and low <= target:
                return min(open_, target), ExitReason.TAKE_PROFIT
        return None

    def _mark(self, bar: int) -> None:
        position = 0.0
        if self.holding is not None:
            position = self.holding.qty if self.holding.side > 0 else -self.holding.qty
        self.result.position.append(position)
        self.result.equity.append(self.cash + position * self.closes[bar])
