"""Stitching window curves: chained returns, cuts, trades scaled with the curve, ruin."""

from datetime import UTC, datetime, timedelta

import pytest

from quant_assets.backtest.stitch import CurvePart, stitch
from quant_assets.domain.walkforward import WindowCurve, WindowTrade

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def us(hour: int) -> int:
    return int((T0 + timedelta(hours=hour)).timestamp()) * 1_000_000


def curve(hours: list[int], equity: list[float], base: float = 100.0) -> WindowCurve:
    return WindowCurve(
        base_equity=base,
        ts_us=tuple(us(hour) for hour in hours),
        equity=tuple(equity),
        exposure=tuple(1.0 for _ in hours),
    )


def trade(entry_hour: int, pnl: float) -> WindowTrade:
    return WindowTrade(
        instrument="test.HAND.1h",
        entry_ts=T0 + timedelta(hours=entry_hour),
        exit_ts=T0 + timedelta(hours=entry_hour + 1),
        entry_bar=entry_hour,
        exit_bar=entry_hour + 1,
        bars_held=1,
        side="long",
        qty=2.0,
        entry_price=50.0,
        exit_price=50.0 + pnl / 2.0,
        pnl=pnl,
        fees=0.1,
        return_rate=pnl / 100.0,
        exit_reason="signal",
    )


def test_stitch_hand_example_chains_returns_and_scales_trades() -> None:
    # Arrange: window A grows 100 -> 121; window B falls 100 -> 90 -> 99. Chained from 100:
    # 110, 121, 121 * 0.9 = 108.9, 121 * 0.99 = 119.79; B's trades scale by 121 / 100.
    first = CurvePart(curve([0, 1], [110.0, 121.0]), [trade(0, 21.0)])
    second = CurvePart(curve([2, 3], [90.0, 99.0]), [trade(2, -1.0)])

    # Act
    stitched = stitch([first, second], initial_cash=100.0)

    # Assert
    assert stitched.equity["equity"].to_list() == pytest.approx([110.0, 121.0, 108.9, 119.79])
    assert stitched.trades["qty"].to_list() == pytest.approx([2.0, 2.42])
    assert stitched.trades["pnl"].to_list() == pytest.approx([21.0, -1.21])
    assert stitched.trades["fees"].to_list() == pytest.approx([0.1, 0.121])
    assert stitched.trades["entry_price"].to_list() == [50.0, 50.0]


def test_stitch_cut_leaves_later_bars_and_trades_to_the_next_part() -> None:
    # Arrange: A's bar 2 and its trade entered at hour 2 belong to B (cut at hour 2).
    first = CurvePart(
        curve([0, 1, 2], [110.0, 121.0, 200.0]), [trade(0, 1.0), trade(2, 5.0)], us(2)
    )
    second = CurvePart(curve([2, 3], [100.0, 110.0]), [])

    # Act
    stitched = stitch([first, second], initial_cash=100.0)

    # Assert
    assert stitched.equity["equity"].to_list() == pytest.approx([110.0, 121.0, 121.0, 133.1])
    assert stitched.trades.height == 1


def test_stitch_base_below_initial_cash_measures_first_return_from_base() -> None:
    # Arrange: an in-sample share whose run stood at 80 before it: 80 -> 88 is +10%.
    part = CurvePart(curve([0], [88.0], base=80.0), [])

    # Act / Assert
    assert stitch([part], initial_cash=100.0).equity["equity"].to_list() == pytest.approx([110.0])


def test_stitch_ruined_account_stays_flat_without_trades() -> None:
    # Arrange
    ruined = CurvePart(curve([0, 1], [50.0, 0.0]), [trade(0, -50.0)])
    later = CurvePart(curve([2, 3], [120.0, 130.0]), [trade(2, 20.0)])

    # Act
    stitched = stitch([ruined, later], initial_cash=100.0)

    # Assert
    assert stitched.equity["equity"].to_list() == [50.0, 0.0, 0.0, 0.0]
    assert stitched.equity["exposure"].to_list()[2:] == [0.0, 0.0]
    assert stitched.trades.height == 1
