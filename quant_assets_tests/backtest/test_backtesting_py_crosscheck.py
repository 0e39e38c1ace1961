"""Cross-check the engine against backtesting.py 0.6.6 on the full shipped BTC-USDT 1h history.

Both engines receive the SAME entries: EMA(10/50) crossovers computed once with polars (+1 on the
bar where the fast EMA crosses above the slow one, -1 below). backtesting.py runs as
`FractionalBacktest(..., commission=0.001, exclusive_orders=True, trade_on_close=False)`, which is
the engine's contract under another implementation:
- a market order placed in `next()` at bar t fills at bar t+1's open; with exclusive orders a new
  order first closes the open trade at that open (a reversal: two legs, each charged commission);
- relative sizing buys int(margin_available * size // (price * (1 + commission))) units, i.e. the
  engine's qty = fraction * equity / (price * (1 + commission_rate)) floored to whole units;
- SL orders sit before TP orders in the queue, so a stop wins a bar that touches both; a stop
  fills at min(open, stop) (a gap fills at the open), a target at max(open, target).

Units: `FractionalBacktest` multiplies prices by `fractional_unit` and trades whole units of it.
The unit here is 2**-40 BTC: a power of two scales every price exactly, so both engines compare
bit-identical price levels, and the whole-unit floor changes a quantity by under 1e-10 of itself.

Remaining differences, each explained and accounted for below:
- backtesting.py leaves the last trade open (`finalize_trades=False`; with True it would close at
  the last bar's *open*), while the engine closes it at the last close as end_of_data. The last
  bar's equity therefore differs by exactly that exit's commission, and backtesting.py lists one
  closed trade fewer; its open trade must be the engine's end_of_data trade.
- backtesting.py's SL/TP are absolute prices fixed when the order is placed, while the engine's
  rates apply to the fill price. To place the same levels, the strategy below reads the fill
  price (the next bar's open) when it sends the order: a peek that is legitimate only in this
  comparison. Trailing stops: `lib.TrailingStrategy` trails the close by a multiple of ATR, so
  the strategy implements the engine's percent trail itself (anchor = fill price, then the best
  high/low of each bar after that bar's check; the stop is moved in `next()`, which is after the
  bar's check in backtesting.py's loop).
- backtesting.py does not record exit reasons; they are derived from its trades: a reversal
  when an opposite signal preceded the exit bar (its close order fills first), else a stop when
  the exit bar's range reached the SL, else a take-profit.
"""

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import polars as pl
import pytest
from backtesting import Strategy
from backtesting.lib import FractionalBacktest

from quant_assets.backtest.engine import BacktestResult, run_backtest
from quant_assets.domain.backtest import BacktestConfig, CostModel, ExitRules, StopsFrom

UNIT = 2.0**-40
COMMISSION_RATE = 0.001
INITIAL_CASH = 10_000.0
RELATIVE_TOLERANCE = 1e-8


class SignalStrategy(Strategy):
    """Trade precomputed entries; optional percent stop-loss, take-profit and trailing stop."""

    entries: Any = None
    next_opens: Any = None  # per bar, the next bar's open scaled by UNIT (NaN on the last)
    stop_loss_rate: float | None = None
    take_profit_rate: float | None = None
    trailing_stop_rate: float | None = None
    stops_on_entry_bar: bool = True

    def init(self) -> None:
        """Start without a trailing anchor."""
        self.anchor = math.nan

    def next(self) -> None:
        """Manage the open trade's stops, then act on this bar's signal."""
        bar = len(self.data) - 1
        self._manage_trade(bar)
        signal = int(self.entries[bar])
        if signal == 0 or (signal > 0 and self.position.is_long):
            return
        if signal < 0 and self.position.is_short:
            return
        levels: dict[str, float | None] = {}
        if self.stops_on_entry_bar:
            # Levels from the fill price, known here only by peeking (see the module docstring).
            fill = self.next_opens[bar]
            stop, target = self._levels(signal, fill, fill)
            levels = {"sl": stop, "tp": target}
        order = self.buy if signal > 0 else self.sell
        order(**levels)

    def _levels(self, side: int, entry: float, anchor: float) -> tuple[float | None, float | None]:
        # The same float expressions as the engine, so levels are bit-identical (scaled by 2^-40).
        stop = math.nan
        if self.stop_loss_rate is not None:
            stop = entry * (1.0 - side * self.stop_loss_rate)
        if self.trailing_stop_rate is not None:
            trail = anchor * (1.0 - side * self.trailing_stop_rate)
            if math.isnan(stop) or side * (trail - stop) > 0.0:
                stop = trail
        target = None
        if self.take_profit_rate is not None:
            target = entry * (1.0 + side * self.take_profit_rate)
        return (None if math.isnan(stop) else stop), target

    def _manage_trade(self, bar: int) -> None:
        if not self.trades:
            return
        trade = self.trades[-1]  # exclusive orders: at most one
        side = 1 if trade.is_long else -1
        if trade.entry_bar == bar:
            self.anchor = trade.entry_price
        extreme = self.data.High[-1] if side > 0 else self.data.Low[-1]
        self.anchor = max(self.anchor, extreme) if side > 0 else min(self.anchor, extreme)
        stop, target = self._levels(side, trade.entry_price, self.anchor)
        if not self.stops_on_entry_bar and trade.entry_bar == bar and target is not None:
            trade.tp = target
        if stop is not None and trade.sl != stop:
            trade.sl = stop


@pytest.fixture(scope="module")
def ema_cross_entries(btc_1h_bars: pl.DataFrame) -> np.ndarray:
    """Return EMA(10/50) crossover entries on the BTC history (none in the 50-bar warm-up)."""
    close = btc_1h_bars["close"]
    spread = close.ewm_mean(span=10, adjust=False) - close.ewm_mean(span=50, adjust=False)
    direction = np.sign(spread.to_numpy())
    entries = np.zeros(btc_1h_bars.height, dtype=np.int8)
    entries[50:] = np.where(direction[50:] != direction[49:-1], direction[50:], 0)
    return entries


@pytest.fixture(scope="module")
def btc_pandas(btc_1h_bars: pl.DataFrame) -> pd.DataFrame:
    """Return the BTC bars in backtesting.py's layout."""
    columns = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
    return pd.DataFrame(
        {name: btc_1h_bars[source].to_numpy() for name, source in columns.items()},
        index=pd.DatetimeIndex(btc_1h_bars["ts"].dt.replace_time_zone(None).to_numpy()),
    )


def _run_backtesting_py(
    data: pd.DataFrame, entries: np.ndarray, rules: ExitRules
) -> tuple[pd.DataFrame, np.ndarray, Any]:
    backtest = FractionalBacktest(
        data,
        SignalStrategy,
        cash=INITIAL_CASH,
        commission=COMMISSION_RATE,
        exclusive_orders=True,
        trade_on_close=False,
        fractional_unit=UNIT,
    )
    next_opens = np.empty(len(data))
    next_opens[:-1] = data["Open"].to_numpy()[1:] * UNIT
    next_opens[-1] = math.nan
    with warnings.catch_warnings():
        # The last trade stays open on purpose (see the module docstring).
        warnings.filterwarnings("ignore", message="Some trades remain open", category=UserWarning)
        # backtesting.py 0.6.6's statistics call an API that pandas 3.1 deprecates.
        warnings.filterwarnings("ignore", message="DatetimeIndex.dayofweek is deprecated")
        stats = backtest.run(
            entries=entries,
            next_opens=next_opens,
            stop_loss_rate=rules.stop_loss_rate,
            take_profit_rate=rules.take_profit_rate,
            trailing_stop_rate=rules.trailing_stop_rate,
            stops_on_entry_bar=rules.stops_from is StopsFrom.ENTRY_BAR,
        )
    open_trades = stats["_strategy"].trades
    assert len(open_trades) == 1
    return stats["_trades"], stats["_equity_curve"]["Equity"].to_numpy(), open_trades[0]


def _exit_reasons(
    trades: pd.DataFrame, entries: np.ndarray, bars: pl.DataFrame, stop_reason: str
) -> list[str]:
    highs, lows = bars["high"].to_numpy(), bars["low"].to_numpy()
    reasons = []
    for size, exit_bar, stop in zip(trades["Size"], trades["ExitBar"], trades["SL"], strict=True):
        side = 1 if size > 0 else -1
        stop_touched = not math.isnan(stop) and (
            lows[exit_bar] <= stop if side > 0 else highs[exit_bar] >= stop
        )
        if entries[exit_bar - 1] == -side:
            reasons.append("reversal")
        elif stop_touched:
            reasons.append(stop_reason)
        else:
            reasons.append("take_profit")
    return reasons


def _assert_engines_agree(
    result: BacktestResult,
    reference: tuple[pd.DataFrame, np.ndarray, Any],
    expected_reasons: list[str],
    bars: pl.DataFrame,
) -> None:
    bt_trades, bt_equity, bt_open = reference
    closed, last = result.trades.head(-1), result.trades.row(-1, named=True)
    # Same trades: count, bars, sides, exit reasons; prices are the same exact levels.
    assert closed.height == len(bt_trades)
    assert closed["entry_bar"].to_list() == bt_trades["EntryBar"].to_list()
    assert closed["exit_bar"].to_list() == bt_trades["ExitBar"].to_list()
    assert closed["side"].to_list() == ["long" if s > 0 else "short" for s in bt_trades["Size"]]
    assert closed["exit_reason"].to_list() == expected_reasons
    np.testing.assert_array_equal(closed["entry_price"], bt_trades["EntryPrice"])
    np.testing.assert_array_equal(closed["exit_price"], bt_trades["ExitPrice"])
    np.testing.assert_allclose(closed["qty"], bt_trades["Size"].abs(), rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(
        closed["pnl"], bt_trades["PnL"], rtol=0, atol=RELATIVE_TOLERANCE * INITIAL_CASH
    )
    # backtesting.py's open trade is the engine's end-of-data trade.
    assert (last["entry_bar"], last["exit_reason"]) == (bt_open.entry_bar, "end_of_data")
    assert last["side"] == ("long" if bt_open.is_long else "short")
    # Equity bar by bar; on the last bar the engine has also paid the end-of-data commission.
    equity = result.equity["equity"].to_numpy()
    np.testing.assert_allclose(equity[:-1], bt_equity[:-1], rtol=RELATIVE_TOLERANCE)
    exit_fee = COMMISSION_RATE * last["qty"] * bars["close"][-1]
    assert equity[-1] == pytest.approx(bt_equity[-1] - exit_fee, rel=RELATIVE_TOLERANCE)


def _engine_config(rules: ExitRules) -> BacktestConfig:
    return BacktestConfig(
        cost=CostModel(commission_rate=COMMISSION_RATE, slippage_bps=0.0),
        exits=rules,
        initial_cash=INITIAL_CASH,
    )


def test_backtesting_py_ema_cross_with_reversals_matches_on_full_history(
    btc_1h_bars: pl.DataFrame, btc_pandas: pd.DataFrame, ema_cross_entries: np.ndarray
) -> None:
    # Arrange
    rules = ExitRules()

    # Act
    result = run_backtest(btc_1h_bars, ema_cross_entries, _engine_config(rules))
    reference = _run_backtesting_py(btc_pandas, ema_cross_entries, rules)

    # Assert: always in the market after the first cross: every one of the 1,713 signals fills,
    # and every exit is a reversal but the last.
    assert result.trades.height == np.count_nonzero(ema_cross_entries) == 1713
    expected = ["reversal"] * len(reference[0])
    _assert_engines_agree(result, reference, expected, btc_1h_bars)


@pytest.mark.parametrize(
    ("rules", "stop_reason"),
    [
        (ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04), "stop_loss"),
        (
            ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04, stops_from=StopsFrom.NEXT_BAR),
            "stop_loss",
        ),
        (ExitRules(trailing_stop_rate=0.03), "trailing_stop"),
        (ExitRules(trailing_stop_rate=0.03, stops_from=StopsFrom.NEXT_BAR), "trailing_stop"),
    ],
    ids=["sl2_tp4_entry_bar", "sl2_tp4_next_bar", "trail3_entry_bar", "trail3_next_bar"],
)
def test_backtesting_py_ema_cross_with_stops_matches_on_full_history(
    btc_1h_bars: pl.DataFrame,
    btc_pandas: pd.DataFrame,
    ema_cross_entries: np.ndarray,
    rules: ExitRules,
    stop_reason: str,
) -> None:
    # Arrange: entry-bar timing = SL/TP sent with the order (backtesting.py checks them on the
    # fill bar); next-bar timing = SL/TP set on the trade inside next() after the fill.

    # Act
    result = run_backtest(btc_1h_bars, ema_cross_entries, _engine_config(rules))
    reference = _run_backtesting_py(btc_pandas, ema_cross_entries, rules)

    # Assert: stops fire hundreds of times, so the comparison exercises them.
    expected = _exit_reasons(reference[0], ema_cross_entries, btc_1h_bars, stop_reason)
    assert expected.count(stop_reason) > 300
    _assert_engines_agree(result, reference, expected, btc_1h_bars)
