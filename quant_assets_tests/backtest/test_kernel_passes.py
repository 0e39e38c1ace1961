"""Specification of the kernel's helper passes and of its two compiled loop copies.

The validation pass, the code counter and the crossover builder are checked against plain
NumPy or Python versions of the same rules; the loop copy without trailing-stop code is
checked against the copy with it on the same orders.
"""

import math

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest import kernel
from quant_assets.backtest.engine import run_backtest
from quant_assets.backtest.grid import crossover_entries
from quant_assets.domain.backtest import BacktestConfig, CostModel, ExitRules, FillMode, StopsFrom
from quant_assets.features.moving_averages import ema


def valid_bars(n_bars: int) -> tuple[np.ndarray, ...]:
    ts = np.arange(n_bars, dtype=np.int64) * 3_600_000_000
    prices = np.linspace(100.0, 200.0, n_bars)
    return ts, prices.copy(), prices + 1.0, prices - 1.0, prices.copy()


@pytest.mark.parametrize(
    ("column", "bar", "value", "expected"),
    [
        (None, 0, 0.0, (-1, -1)),  # all valid
        (0, 3, 2 * 3_600_000_000, (3, -1)),  # ts equal to the previous bar's
        (0, 1, -5, (1, -1)),  # ts going back
        (1, 4, math.nan, (-1, 4)),  # NaN open
        (2, 0, math.inf, (-1, 0)),  # infinite high on the first bar
        (3, 6, 0.0, (-1, 6)),  # zero low
        (4, 9, -1.0, (-1, 9)),  # negative close on the last bar
    ],
    ids=["valid", "duplicate_ts", "ts_back", "nan_open", "inf_high", "zero_low", "negative_close"],
)
def test_first_invalid_bars_nb_finds_first_bad_ts_and_price(
    column: int | None, bar: int, value: float, expected: tuple[int, int]
) -> None:
    # Arrange
    arrays = list(valid_bars(10))
    if column is not None:
        arrays[column][bar] = value

    # Act
    found = kernel.first_invalid_bars_nb(*arrays)

    # Assert
    assert found == expected


def test_first_invalid_bars_nb_several_problems_reports_first_of_each() -> None:
    # Arrange: ts repeats at 5 and 7, prices go bad at 2 (close) and 8 (open).
    ts, open_, high, low, close = valid_bars(10)
    ts[5], ts[7] = ts[4], ts[6]
    close[2], open_[8] = math.nan, 0.0

    # Act / Assert
    assert kernel.first_invalid_bars_nb(ts, open_, high, low, close) == (5, 2)


@pytest.mark.parametrize("n_bars", [0, 1, 1000, 100_001])
def test_count_codes_nb_matches_numpy_bincount(n_bars: int) -> None:
    # Arrange: mostly zeros, as entry statuses are.
    rng = np.random.default_rng(n_bars)
    codes = np.where(rng.random(n_bars) < 0.1, rng.integers(1, 7, n_bars), 0).astype(np.int8)

    # Act
    counts = kernel.count_codes_nb(codes, 7)

    # Assert
    assert counts.tolist() == np.bincount(codes, minlength=7).tolist()


def plain_crossover(fast: np.ndarray, slow: np.ndarray) -> list[int]:
    # The rule written out: a bar signals when it and the bar before have both series and
    # fast > slow flipped between them.
    entries = [0] * len(fast)
    for bar in range(1, len(fast)):
        pair = (fast[bar - 1], slow[bar - 1], fast[bar], slow[bar])
        if any(math.isnan(value) for value in pair):
            continue
        before, now = fast[bar - 1] > slow[bar - 1], fast[bar] > slow[bar]
        if before != now:
            entries[bar] = 1 if now else -1
    return entries


@pytest.mark.parametrize("seed", range(5))
def test_crossover_entries_random_series_match_plain_rule(seed: int) -> None:
    # Arrange: random walks with NaN gaps, ties and infinities.
    rng = np.random.default_rng(seed)
    fast = rng.normal(size=2_000).cumsum()
    slow = np.where(rng.random(2_000) < 0.2, fast, rng.normal(size=2_000).cumsum())
    fast[rng.random(2_000) < 0.03] = math.nan
    slow[: rng.integers(0, 60)] = math.nan
    fast[rng.random(2_000) < 0.01] = math.inf

    # Act
    entries = crossover_entries(fast, slow)

    # Assert
    assert entries.dtype == np.int8
    assert entries.tolist() == plain_crossover(fast, slow)


@pytest.mark.parametrize(
    "exits",
    [
        ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04),
        ExitRules(take_profit_rate=0.03, max_bars_in_trade=30, stops_from=StopsFrom.NEXT_BAR),
        ExitRules(),
    ],
    ids=["stop_target", "target_time_next_bar", "none"],
)
@pytest.mark.parametrize("fill", [FillMode.NEXT_OPEN, FillMode.CLOSE])
def test_simulate_nb_untrailed_loop_matches_trailing_loop_on_same_orders(
    btc_1h_bars: pl.DataFrame, exits: ExitRules, fill: FillMode
) -> None:
    # Arrange: an infinite trailing distance never tightens any stop, but it sends the run
    # through the loop copy that has the trailing-stop code.
    bars = btc_1h_bars.head(20_000)
    fast, slow = (
        bars.select(ema(span_bars=span).fill_null(math.nan)).to_series().to_numpy()
        for span in (10, 50)
    )
    entries = crossover_entries(fast, slow)
    config = BacktestConfig(
        cost=CostModel(commission_rate=0.001, slippage_bps=1.0, fill=fill), exits=exits
    )

    # Act
    untrailed = run_backtest(bars, entries, config)
    trailed = run_backtest(bars, entries, config, trailing_distance=np.full(bars.height, np.inf))

    # Assert
    assert untrailed.trades.height > 100
    assert untrailed.equity.equals(trailed.equity)
    assert untrailed.trades.equals(trailed.trades)
    np.testing.assert_array_equal(untrailed.entry_status, trailed.entry_status)
    np.testing.assert_array_equal(untrailed.position, trailed.position)
