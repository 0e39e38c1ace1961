"""Golden tests of the kernel's semantics on small hand-made bars, one test per rule.

Every case runs through `run_backtest`, which hands the kernel exactly the arrays it gets in
production (one compiled signature). Expected values are derived by hand in the comments; bars
are written (open, high, low, close) and cash starts at 10,000 unless a test says otherwise.
"""

import math
from typing import Any

import numpy as np
import pytest

from quant_assets.backtest.engine import BacktestResult, run_backtest
from quant_assets.domain.backtest import (
    BacktestConfig,
    CostModel,
    ExitRules,
    FillMode,
    SizingConfig,
    StopsFrom,
)
from quant_assets_tests.backtest.conftest import BarsFactory
from quant_assets_tests.hand_bars import Ohlc

FLAT: Ohlc = (100.0, 101.0, 99.0, 100.0)


def _config(
    *,
    commission_rate: float = 0.0,
    slippage_bps: float = 0.0,
    fill: FillMode = FillMode.NEXT_OPEN,
    sizing: SizingConfig | None = None,
    allow_reversal: bool = True,
    **exit_rules: Any,
) -> BacktestConfig:
    return BacktestConfig(
        cost=CostModel(commission_rate=commission_rate, slippage_bps=slippage_bps, fill=fill),
        exits=ExitRules(**exit_rules),
        sizing=sizing or SizingConfig(),
        allow_reversal=allow_reversal,
        periods_per_year=8760.0,
    )


def _signals(n_bars: int, at: dict[int, int]) -> np.ndarray:
    entries = np.zeros(n_bars, dtype=np.int8)
    for bar, side in at.items():
        entries[bar] = side
    return entries


def _run(
    make_bars: BarsFactory,
    rows: list[Ohlc],
    at: dict[int, int],
    config: BacktestConfig,
    **arrays: Any,
) -> BacktestResult:
    return run_backtest(make_bars(rows), _signals(len(rows), at), config, **arrays)


def test_kernel_next_open_signal_fills_at_next_bar_open(make_bars: BarsFactory) -> None:
    # Arrange: long signal at bar 0's close.
    rows = [FLAT, (102.0, 104.0, 101.0, 103.0), (105.0, 106.0, 104.0, 105.0)]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config())

    # Assert: fill at bar 1's open 102, qty 10,000 / 102; marked 103 at bar 1; closed at 105.
    trade = result.trades.row(0, named=True)
    assert (trade["entry_bar"], trade["entry_price"]) == (1, 102.0)
    assert trade["qty"] == pytest.approx(10_000 / 102)
    assert result.equity["equity"].to_list() == pytest.approx(
        [10_000.0, 10_000 / 102 * 103, 10_000 / 102 * 105]
    )


def test_kernel_close_mode_signal_fills_at_signal_bar_close(make_bars: BarsFactory) -> None:
    # Arrange
    rows = [FLAT, (102.0, 104.0, 101.0, 103.0), (105.0, 106.0, 104.0, 105.0)]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(fill=FillMode.CLOSE))

    # Assert: fill at bar 0's close 100 -> 100 units; equity 100 * close from bar 0 on.
    trade = result.trades.row(0, named=True)
    assert (trade["entry_bar"], trade["entry_price"], trade["qty"]) == (0, 100.0, 100.0)
    assert result.equity["equity"].to_list() == pytest.approx([10_000.0, 10_300.0, 10_500.0])


def test_kernel_sizing_commits_equity_fraction_including_commission(
    make_bars: BarsFactory,
) -> None:
    # Arrange: half the equity, 0.1% commission, 10 bps slippage.
    rows = [FLAT, (102.0, 104.0, 101.0, 103.0), (105.0, 106.0, 104.0, 105.0)]
    config = _config(
        commission_rate=0.001, slippage_bps=10.0, sizing=SizingConfig(equity_fraction=0.5)
    )

    # Act
    result = _run(make_bars, rows, {0: 1}, config)

    # Assert: buy fills at 102 * 1.001 = 102.102; qty = 0.5 * 10,000 / (102.102 * 1.001);
    # cost + fee = exactly half the equity, so bar 1 equity = 5,000 + qty * 103.
    qty = 0.5 * 10_000 / (102.102 * 1.001)
    trade = result.trades.row(0, named=True)
    assert trade["entry_price"] == pytest.approx(102.102)
    assert trade["qty"] == pytest.approx(qty)
    assert result.equity["equity"][1] == pytest.approx(5_000 + qty * 103)


def test_kernel_whole_units_floor_quantity(make_bars: BarsFactory) -> None:
    # Arrange
    rows = [FLAT, (102.0, 104.0, 101.0, 103.0), (105.0, 106.0, 104.0, 105.0)]
    config = _config(commission_rate=0.001, sizing=SizingConfig(whole_units=True))

    # Act
    result = _run(make_bars, rows, {0: 1}, config)

    # Assert: 10,000 / (102 * 1.001) = 97.94 -> 97 units; the rest stays cash.
    trade = result.trades.row(0, named=True)
    assert trade["qty"] == 97.0
    assert result.equity["equity"][1] == pytest.approx(10_000 - 97 * 102 * 1.001 + 97 * 103)


def test_kernel_slippage_sells_lower_and_buys_higher(make_bars: BarsFactory) -> None:
    # Arrange: a short opened at bar 1's open and closed at the end; 10 bps slippage.
    rows = [FLAT, (102.0, 104.0, 101.0, 103.0), (105.0, 106.0, 104.0, 105.0)]

    # Act
    result = _run(make_bars, rows, {0: -1}, _config(slippage_bps=10.0))

    # Assert: the short sells at 102 * 0.999 and buys back at 105 * 1.001.
    trade = result.trades.row(0, named=True)
    assert trade["side"] == "short"
    assert trade["entry_price"] == pytest.approx(101.898)
    assert trade["exit_price"] == pytest.approx(105.105)
    assert trade["pnl"] == pytest.approx(trade["qty"] * (101.898 - 105.105))


def test_kernel_stop_checked_on_entry_bar_by_default(make_bars: BarsFactory) -> None:
    # Arrange: entry at bar 1's open 100 with a 2% stop (98); bar 1's low 97 reaches it.
    rows = [FLAT, (100.0, 101.0, 97.0, 99.0), FLAT]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(stop_loss_rate=0.02))

    # Assert
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"], trade["bars_held"]) == (1, "stop_loss", 0)
    assert trade["exit_price"] == pytest.approx(98.0)


def test_kernel_stops_from_next_bar_ignore_entry_bar_range(make_bars: BarsFactory) -> None:
    # Arrange: bar 1 (the entry bar) dips to 97 but is not checked; bar 2 stays above 98;
    # bar 3 trades down to 97.5 from an open of 99.
    rows = [
        FLAT,
        (100.0, 101.0, 97.0, 99.0),
        (99.0, 99.5, 98.5, 99.0),
        (99.0, 99.0, 97.5, 98.0),
        FLAT,
    ]
    config = _config(stop_loss_rate=0.02, stops_from=StopsFrom.NEXT_BAR)

    # Act
    result = _run(make_bars, rows, {0: 1}, config)

    # Assert: the stop at 98 fires on bar 3.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"]) == (3, "stop_loss")
    assert trade["exit_price"] == pytest.approx(98.0)


@pytest.mark.parametrize(
    ("side", "entry_bar_range", "exit_price"),
    [
        (1, (100.0, 105.0, 97.0, 100.0), 98.0),  # long: stop 98 and target 104 both inside
        (-1, (100.0, 103.0, 95.0, 100.0), 102.0),  # short: stop 102 and target 96 both inside
    ],
)
def test_kernel_stop_and_target_in_same_bar_stop_wins(
    make_bars: BarsFactory, side: int, entry_bar_range: Ohlc, exit_price: float
) -> None:
    # Arrange: 2% stop, 4% target around the entry at 100.
    rows = [FLAT, entry_bar_range, FLAT]

    # Act
    result = _run(make_bars, rows, {0: side}, _config(stop_loss_rate=0.02, take_profit_rate=0.04))

    # Assert: the pessimistic assumption, the stop fills first.
    trade = result.trades.row(0, named=True)
    assert trade["exit_reason"] == "stop_loss"
    assert trade["exit_price"] == pytest.approx(exit_price)


def test_kernel_gap_through_stop_fills_at_open(make_bars: BarsFactory) -> None:
    # Arrange: stop 98; bar 2 opens at 95, below it.
    rows = [FLAT, FLAT, (95.0, 96.0, 94.0, 95.0), FLAT]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(stop_loss_rate=0.02))

    # Assert: filled at the open 95, not at the stop 98.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"], trade["exit_price"]) == (2, "stop_loss", 95.0)


def test_kernel_gap_through_target_fills_at_open(make_bars: BarsFactory) -> None:
    # Arrange: target 104; bar 2 opens at 110, above it.
    rows = [FLAT, FLAT, (110.0, 112.0, 109.0, 111.0), FLAT]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(take_profit_rate=0.04))

    # Assert: filled at the better open 110.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_reason"], trade["exit_price"]) == ("take_profit", 110.0)


def test_kernel_pending_reversal_fills_at_open_before_stop(make_bars: BarsFactory) -> None:
    # Arrange: long from bar 1 (stop 98); short signal at bar 1; bar 2 opens at 100 then
    # falls to 96, through the old long's stop.
    rows = [FLAT, FLAT, (100.0, 100.5, 96.0, 97.0)]

    # Act
    result = _run(make_bars, rows, {0: 1, 1: -1}, _config(stop_loss_rate=0.02))

    # Assert: the long closes at bar 2's open by reversal; the short (stop 102) survives
    # the bar and is closed at the end.
    first, second = result.trades.rows(named=True)
    assert (first["exit_bar"], first["exit_price"], first["exit_reason"]) == (2, 100.0, "reversal")
    assert (second["side"], second["entry_bar"], second["entry_price"]) == ("short", 2, 100.0)
    assert second["exit_reason"] == "end_of_data"


def test_kernel_after_stop_stays_flat_until_next_signal(make_bars: BarsFactory) -> None:
    # Arrange: long stopped on bar 1; no signal on bars 1-2; a new long signal at bar 3.
    rows = [FLAT, (100.0, 101.0, 97.0, 99.0), FLAT, FLAT, (101.0, 102.0, 100.5, 101.0)]

    # Act
    result = _run(make_bars, rows, {0: 1, 3: 1}, _config(stop_loss_rate=0.02))

    # Assert: flat (zero exposure) on bars 1-3, re-entered at bar 4's open.
    assert result.equity["exposure"].to_list()[1:4] == [0.0, 0.0, 0.0]
    assert result.trades["entry_bar"].to_list() == [1, 4]
    assert result.equity["equity"][3] == pytest.approx(10_000 / 100 * 98)


@pytest.mark.parametrize(
    ("stop_loss_rate", "trailing_stop_rate", "rows", "reason", "exit_price"),
    [
        # stop 95, trail 100 * 0.98 = 98 on bar 1 (low 99 holds); anchor -> 110; on bar 2
        # the trail 110 * 0.98 = 107.8 is tighter than 95 and bar 2's low 107 reaches it.
        (
            0.05,
            0.02,
            [FLAT, (100.0, 110.0, 99.0, 109.0), (109.0, 109.5, 107.0, 108.0)],
            "trailing_stop",
            107.8,
        ),
        # stop 99 is tighter than the trail 95 and bar 1's low 98.5 reaches it.
        (0.01, 0.05, [FLAT, (100.0, 101.0, 98.5, 100.0), FLAT], "stop_loss", 99.0),
    ],
)
def test_kernel_effective_stop_is_tighter_of_stop_loss_and_trailing(
    make_bars: BarsFactory,
    stop_loss_rate: float,
    trailing_stop_rate: float,
    rows: list[Ohlc],
    reason: str,
    exit_price: float,
) -> None:
    # Arrange
    config = _config(stop_loss_rate=stop_loss_rate, trailing_stop_rate=trailing_stop_rate)

    # Act
    result = _run(make_bars, rows, {0: 1}, config)

    # Assert
    trade = result.trades.row(0, named=True)
    assert trade["exit_reason"] == reason
    assert trade["exit_price"] == pytest.approx(exit_price)


def test_kernel_trailing_anchor_moves_after_bar_check(make_bars: BarsFactory) -> None:
    # Arrange: 5% trail from the fill at 100. Bar 1 rallies to 120 and dips to 95.5: checked
    # against the anchor before the bar (100 -> level 95) it survives; the anchor becomes 120.
    rows = [FLAT, (100.0, 120.0, 95.5, 118.0), (118.0, 119.0, 113.0, 115.0), FLAT]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(trailing_stop_rate=0.05))

    # Assert: bar 2 checks 120 * 0.95 = 114 and its low 113 reaches it.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"]) == (2, "trailing_stop")
    assert trade["exit_price"] == pytest.approx(114.0)


def test_kernel_short_trailing_anchor_follows_lows(make_bars: BarsFactory) -> None:
    # Arrange: short at 100, 5% trail: bar 1 (high 104.9 < 105) survives and drops to 80.
    rows = [FLAT, (100.0, 104.9, 80.0, 82.0), (82.0, 85.0, 81.0, 84.0), FLAT]

    # Act
    result = _run(make_bars, rows, {0: -1}, _config(trailing_stop_rate=0.05))

    # Assert: bar 2 checks 80 * 1.05 = 84; its high 85 reaches it.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"]) == (2, "trailing_stop")
    assert trade["exit_price"] == pytest.approx(84.0)


def test_kernel_reversal_charges_commission_on_both_legs(make_bars: BarsFactory) -> None:
    # Arrange: long at bar 1's open 100, reversed at bar 2's open 110, closed at 110 (end).
    rows = [FLAT, FLAT, (110.0, 111.0, 109.0, 110.0)]

    # Act
    result = _run(make_bars, rows, {0: 1, 1: -1}, _config(commission_rate=0.001))

    # Assert, by hand with c = 0.001:
    # long qty1 = 10,000 / (100 * 1.001); fees = c * qty1 * 100 + c * qty1 * 110;
    # cash after the long = 10,000 - qty1 * 100 - c * qty1 * 100 + qty1 * 110 - c * qty1 * 110;
    # short qty2 = cash / (110 * 1.001), fees = 2 * c * qty2 * 110 (bought back at 110).
    qty1 = 10_000 / (100 * 1.001)
    cash = 10_000 + qty1 * 10 - 0.001 * qty1 * 210
    qty2 = cash / (110 * 1.001)
    long_leg, short_leg = result.trades.rows(named=True)
    assert long_leg["fees"] == pytest.approx(0.001 * qty1 * 210)
    assert short_leg["qty"] == pytest.approx(qty2)
    assert short_leg["fees"] == pytest.approx(0.001 * qty2 * 220)
    assert result.equity["equity"][2] == pytest.approx(cash - 0.001 * qty2 * 220)


def test_kernel_open_position_closes_at_last_close_as_end_of_data(make_bars: BarsFactory) -> None:
    # Arrange
    rows = [FLAT, FLAT, (100.0, 121.0, 99.0, 120.0)]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(commission_rate=0.001))

    # Assert: 10,000 / 100.1 units sold at 120 minus 0.1% is the final equity.
    qty = 10_000 / (100 * 1.001)
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (
        2,
        120.0,
        "end_of_data",
    )
    assert result.equity["equity"][2] == pytest.approx(qty * 120 * 0.999)
    assert result.equity["equity"][2] == pytest.approx(10_000 + trade["pnl"])


def test_kernel_same_direction_signal_does_nothing(make_bars: BarsFactory) -> None:
    # Arrange: long signals at bars 0 and 1.
    rows = [FLAT, FLAT, FLAT, FLAT]

    # Act
    result = _run(make_bars, rows, {0: 1, 1: 1}, _config())

    # Assert: one trade; the second signal is recorded as already_in_position.
    assert result.trades.height == 1
    assert result.steps.fills == 1
    assert result.steps.rejections["already_in_position"] == 1


def test_kernel_reversal_not_allowed_keeps_position(make_bars: BarsFactory) -> None:
    # Arrange
    rows = [FLAT, FLAT, FLAT, FLAT]

    # Act
    result = _run(make_bars, rows, {0: 1, 1: -1}, _config(allow_reversal=False))

    # Assert: still the one long, closed at the end.
    assert result.trades["side"].to_list() == ["long"]
    assert result.trades["exit_reason"].to_list() == ["end_of_data"]
    assert result.steps.rejections["reversal_not_allowed"] == 1


def test_kernel_warm_up_nan_entry_never_trades(make_bars: BarsFactory) -> None:
    # Arrange: the stop distance (an ATR, say) is NaN on bars 0-1 (warm-up).
    rows = [FLAT, FLAT, FLAT, FLAT]
    distance = np.array([math.nan, math.nan, 3.0, 3.0])

    # Act
    result = _run(make_bars, rows, {0: 1, 2: 1}, _config(), stop_loss_distance=distance)

    # Assert: only the bar-2 signal fills (at bar 3's open).
    assert result.trades["entry_bar"].to_list() == [3]
    assert result.steps.rejections["warm_up_nan"] == 1


def test_kernel_equity_is_cash_plus_short_position_at_close(make_bars: BarsFactory) -> None:
    # Arrange: short 100 units at 100 (cash 20,000 after the sale).
    rows = [FLAT, FLAT, (100.0, 101.0, 90.0, 95.0), (95.0, 96.0, 94.0, 96.0)]

    # Act
    result = _run(make_bars, rows, {0: -1}, _config())

    # Assert: equity = 20,000 - 100 * close; exposure = -100 * close / equity.
    assert result.equity["equity"].to_list() == pytest.approx([10_000, 10_000, 10_500, 10_400])
    assert result.equity["exposure"][2] == pytest.approx(-9_500 / 10_500)


@pytest.mark.parametrize(
    ("fill", "entry_bar", "exit_bar", "exit_price"),
    [
        (FillMode.NEXT_OPEN, 1, 3, 103.0),  # held over bars 1-2, out at bar 3's open
        (FillMode.CLOSE, 0, 2, 102.5),  # held over bars 1-2, out at bar 2's close
    ],
)
def test_kernel_time_exit_after_max_bars(
    make_bars: BarsFactory, fill: FillMode, entry_bar: int, exit_bar: int, exit_price: float
) -> None:
    # Arrange
    rows = [FLAT, (101.0, 102.0, 100.0, 101.5), (102.0, 103.0, 101.0, 102.5), (103.0,) * 4, FLAT]

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(fill=fill, max_bars_in_trade=2))

    # Assert
    trade = result.trades.row(0, named=True)
    assert (trade["entry_bar"], trade["exit_bar"], trade["bars_held"]) == (entry_bar, exit_bar, 2)
    assert (trade["exit_reason"], trade["exit_price"]) == ("time", exit_price)


def test_kernel_signal_exit_closes_at_next_open(make_bars: BarsFactory) -> None:
    # Arrange: exit signal at bar 2.
    rows = [FLAT, FLAT, FLAT, (104.0, 105.0, 103.0, 104.0), FLAT]
    exits = np.array([False, False, True, False, False])

    # Act
    result = run_backtest(make_bars(rows), _signals(5, {0: 1}), _config(), exits)

    # Assert
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_price"], trade["exit_reason"]) == (3, 104.0, "signal")
    assert result.equity["exposure"][4] == 0.0


def test_kernel_per_bar_stop_distance_is_read_at_signal_bar(make_bars: BarsFactory) -> None:
    # Arrange: distance 5 at the signal bar 0, 1 afterwards; entry at 100, bar 1's low 96.
    rows = [FLAT, (100.0, 101.0, 96.0, 100.0), (100.0, 101.0, 94.0, 95.0), FLAT]
    distance = np.array([5.0, 1.0, 1.0, 1.0])

    # Act
    result = _run(make_bars, rows, {0: 1}, _config(), stop_loss_distance=distance)

    # Assert: the stop sits at 100 - 5 = 95 (not 99): bar 1 survives, bar 2 hits it.
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"], trade["exit_price"]) == (2, "stop_loss", 95.0)


@pytest.mark.parametrize("fill", [FillMode.NEXT_OPEN, FillMode.CLOSE])
def test_kernel_signal_on_last_bar_is_not_filled(make_bars: BarsFactory, fill: FillMode) -> None:
    # Arrange
    rows = [FLAT, FLAT, FLAT]

    # Act
    result = _run(make_bars, rows, {2: 1}, _config(fill=fill))

    # Assert
    assert result.trades.height == 0
    assert result.steps.rejections["no_bar_to_fill"] == 1
    assert result.equity["equity"].to_list() == [10_000.0] * 3


def test_kernel_short_take_profit_mirrors_long(make_bars: BarsFactory) -> None:
    # Arrange: short at 100 with a 4% target (96); bar 2 trades down to 95.
    rows = [FLAT, FLAT, (99.0, 99.5, 95.0, 96.0), FLAT]

    # Act
    result = _run(make_bars, rows, {0: -1}, _config(stop_loss_rate=0.02, take_profit_rate=0.04))

    # Assert: bought back at 96; pnl = 100 units * (100 - 96).
    trade = result.trades.row(0, named=True)
    assert (trade["exit_bar"], trade["exit_reason"], trade["exit_price"]) == (
        2,
        "take_profit",
        96.0,
    )
    assert trade["pnl"] == pytest.approx(400.0)
    assert trade["return_rate"] == pytest.approx(0.04)
