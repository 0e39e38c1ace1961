"""Named regressions for mistakes other backtesters have made (or make easy).

Bars are (open, high, low, close), one per hour; cash starts at 10,000 with no costs unless a test
says otherwise; expected values are derived by hand in the comments.
"""

import numpy as np
import pytest

from quant_assets.backtest.engine import run_backtest
from quant_assets.domain.backtest import BacktestConfig, CostModel, ExitRules, FillMode
from quant_assets_tests.backtest.conftest import BarsFactory
from quant_assets_tests.hand_bars import Ohlc

FLAT: Ohlc = (100.0, 101.0, 99.0, 100.0)


def _config(fill: FillMode = FillMode.NEXT_OPEN, **exit_rules: float) -> BacktestConfig:
    return BacktestConfig(
        cost=CostModel(commission_rate=0.0, slippage_bps=0.0, fill=fill),
        exits=ExitRules(**exit_rules),
        periods_per_year=8760.0,
    )


@pytest.mark.parametrize(
    "reversal_bar",
    [
        (99.0, 99.5, 96.0, 97.0),  # opens above the old long's stop (98), then trades through it
        (97.0, 97.5, 96.0, 97.0),  # gaps below the old long's stop at the open
    ],
    ids=["stop_inside_bar", "gap_through_stop"],
)
def test_peer_pitfall_vectorbt_stop_on_reversal_bar_keeps_reversal(
    make_bars: BarsFactory, reversal_bar: Ohlc
) -> None:
    # Arrange: long from bar 1's open 100 with a 2% stop (98); a short signal at bar 1's close.
    # A simulator that checks stops before pending orders closes the long by its stop on bar 2
    # and then drops the short (vectorbt's stop-vs-signal ordering pitfall).
    bars = make_bars([FLAT, FLAT, reversal_bar, FLAT])
    entries = np.array([1, -1, 0, 0], dtype=np.int8)

    # Act
    result = run_backtest(bars, entries, _config(stop_loss_rate=0.02))

    # Assert: the reversal fills at bar 2's open; the short (stop at open * 1.02) lives on.
    long_leg, short_leg = result.trades.rows(named=True)
    assert (long_leg["exit_bar"], long_leg["exit_reason"]) == (2, "reversal")
    assert long_leg["exit_price"] == reversal_bar[0]
    assert (short_leg["side"], short_leg["entry_bar"]) == ("short", 2)
    assert short_leg["entry_price"] == reversal_bar[0]
    assert result.equity["exposure"][2] < 0.0


@pytest.mark.parametrize(
    ("side", "gap_bar", "exit_price"),
    [
        (1, (95.0, 96.0, 94.0, 95.0), 95.0),  # long, stop 98: opens at 95
        (-1, (106.0, 107.0, 105.0, 106.0), 106.0),  # short, stop 102: opens at 106
    ],
)
def test_peer_pitfall_gap_through_stop_fills_at_open_not_stop_price(
    make_bars: BarsFactory, side: int, gap_bar: Ohlc, exit_price: float
) -> None:
    # Arrange: entry at bar 1's open 100 with a 2% stop; bar 2 gaps through the stop.
    bars = make_bars([FLAT, FLAT, gap_bar, FLAT])
    entries = np.array([side, 0, 0, 0], dtype=np.int8)

    # Act
    result = run_backtest(bars, entries, _config(stop_loss_rate=0.02))

    # Assert: the fill is the (worse) open, and the loss is 100 units * |100 - open|.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"], trade["exit_price"]) == (
        2,
        "stop_loss",
        exit_price,
    )
    assert trade["pnl"] == pytest.approx(-100 * abs(100.0 - exit_price))


def test_peer_pitfall_stop_and_target_in_one_bar_exit_at_stop(make_bars: BarsFactory) -> None:
    # Arrange: long at 100, stop 98 and target 104; bar 2 spans 97..105, order unknown.
    bars = make_bars([FLAT, FLAT, (100.0, 105.0, 97.0, 101.0), FLAT])
    entries = np.array([1, 0, 0, 0], dtype=np.int8)

    # Act
    result = run_backtest(bars, entries, _config(stop_loss_rate=0.02, take_profit_rate=0.04))

    # Assert: assume the worst: out at the stop, a 200 loss on 100 units.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_reason"], trade["exit_price"]) == ("stop_loss", 98.0)
    assert trade["pnl"] == pytest.approx(-200.0)


@pytest.mark.parametrize(
    ("fill", "entry_bar", "entry_price", "equity_at_bar_1"),
    [
        # next_open: the signal bar's close (90) is not tradable; 10,000 / 95 units from bar 1.
        (FillMode.NEXT_OPEN, 1, 95.0, 10_000 / 95 * 96),
        # close: asked for explicitly, the fill is the signal bar's close: 10,000 / 90 units.
        (FillMode.CLOSE, 0, 90.0, 10_000 / 90 * 96),
    ],
)
def test_peer_pitfall_no_fill_on_signal_bar_close_unless_close_mode(
    make_bars: BarsFactory,
    fill: FillMode,
    entry_bar: int,
    entry_price: float,
    equity_at_bar_1: float,
) -> None:
    # Arrange: the signal bar closes at 90; the next bar opens at 95 and closes at 96.
    bars = make_bars([(100.0, 100.0, 89.0, 90.0), (95.0, 97.0, 94.0, 96.0)])
    entries = np.array([1, 0], dtype=np.int8)

    # Act
    result = run_backtest(bars, entries, _config(fill))

    # Assert
    trade = result.trades.row(0, named=True)
    assert (trade["entry_bar"], trade["entry_price"]) == (entry_bar, entry_price)
    assert result.equity["equity"][0] == 10_000.0
    assert result.equity["equity"][1] == pytest.approx(equity_at_bar_1)
