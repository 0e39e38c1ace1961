"""The kernel (through run_backtest) must match the independent reference simulator exactly.

Discrete outcomes (trade bars, sides, exit reasons, entry outcomes) must be identical and every
price, quantity and equity value equal to 1e-12 relative, on random bars and configurations
(gaps, stops, targets, trails, time exits, signal exits, NaN warm-up, whole units, both fill
modes and stop timings) and on the shipped BTC history.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.engine import BacktestResult, run_backtest
from quant_assets.domain.backtest import (
    BacktestConfig,
    CostModel,
    EntryCode,
    ExitRules,
    FillMode,
    SizingConfig,
    StopsFrom,
)
from quant_assets.market.canonical import to_canonical
from quant_assets_tests.backtest.reference_simulator import ReferenceResult, ReferenceSimulator

RELATIVE_TOLERANCE = 1e-12
RANDOM_CASES = 60


def _random_bars(rng: np.random.Generator, n_bars: int) -> pl.DataFrame:
    # A random walk with 1% bars, occasional 4% gaps between a close and the next open.
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n_bars)))
    gaps = np.where(rng.random(n_bars) < 0.05, rng.normal(0.0, 0.04, n_bars), 0.0)
    opens = np.empty(n_bars)
    opens[0] = 100.0
    opens[1:] = closes[:-1] * np.exp(gaps[1:])
    highs = np.maximum(opens, closes) * np.exp(np.abs(rng.normal(0.0, 0.006, n_bars)))
    lows = np.minimum(opens, closes) * np.exp(-np.abs(rng.normal(0.0, 0.006, n_bars)))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "ts": [start + timedelta(hours=index) for index in range(n_bars)],
            "open": opens,
            "high": highs,
            "low": lows,
            "close": closes,
            "volume": rng.random(n_bars),
        }
    )
    return to_canonical(frame, "test.RANDOM.1h")


def _random_signals(rng: np.random.Generator, n_bars: int, density: float) -> np.ndarray:
    draws = rng.random(n_bars)
    sides = np.where(rng.random(n_bars) < 0.5, -1, 1)
    return np.where(draws < density, sides, 0).astype(np.int8)


def _maybe(rng: np.random.Generator, value: float) -> float | None:
    return value if rng.random() < 0.5 else None


def _random_exit_rules(rng: np.random.Generator) -> ExitRules:
    return ExitRules(
        stop_loss_rate=_maybe(rng, float(rng.uniform(0.003, 0.03))),
        take_profit_rate=_maybe(rng, float(rng.uniform(0.003, 0.05))),
        trailing_stop_rate=_maybe(rng, float(rng.uniform(0.003, 0.03))),
        max_bars_in_trade=int(rng.integers(1, 30)) if rng.random() < 0.3 else None,
        stops_from=StopsFrom.NEXT_BAR if rng.random() < 0.5 else StopsFrom.ENTRY_BAR,
    )


def _random_case(seed: int) -> tuple[pl.DataFrame, np.ndarray, BacktestConfig, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    n_bars = int(rng.integers(2, 400))
    bars = _random_bars(rng, n_bars)
    entries = _random_signals(rng, n_bars, density=float(rng.uniform(0.01, 0.3)))
    rules = _random_exit_rules(rng)
    arrays: dict[str, Any] = {}
    if rng.random() < 0.4:
        arrays["exits"] = rng.random(n_bars) < 0.05
    warm_up = int(rng.integers(0, 20))
    if rng.random() < 0.4:
        arrays["size"] = np.where(np.arange(n_bars) < warm_up, np.nan, rng.uniform(0, 1, n_bars))
    if rules.stop_loss_rate is None and rng.random() < 0.5:
        distance = rng.uniform(0.2, 3.0, n_bars)
        arrays["stop_loss_distance"] = np.where(np.arange(n_bars) < warm_up, np.nan, distance)
    if rules.trailing_stop_rate is None and rng.random() < 0.3:
        arrays["trailing_distance"] = rng.uniform(0.2, 3.0, n_bars)
    if rules.take_profit_rate is None and rng.random() < 0.3:
        arrays["take_profit_distance"] = rng.uniform(0.2, 5.0, n_bars)
    config = BacktestConfig(
        cost=CostModel(
            commission_rate=float(rng.choice([0.0, 0.001, 0.0075])),
            slippage_bps=float(rng.choice([0.0, 5.0, 25.0])),
            fill=FillMode.CLOSE if rng.random() < 0.3 else FillMode.NEXT_OPEN,
        ),
        exits=rules,
        sizing=SizingConfig(
            equity_fraction=float(rng.choice([1.0, 0.5])), whole_units=bool(rng.random() < 0.2)
        ),
        initial_cash=float(rng.choice([10_000.0, 1_000.0])),
        allow_reversal=bool(rng.random() < 0.7),
        periods_per_year=8760.0,
    )
    return bars, entries, config, arrays


def _assert_same(result: BacktestResult, reference: ReferenceResult) -> None:
    trades = result.trades
    expected = reference.trades
    assert trades["entry_bar"].to_list() == [t.entry_bar for t in expected]
    assert trades["exit_bar"].to_list() == [t.exit_bar for t in expected]
    assert trades["side"].to_list() == [t.side.value for t in expected]
    assert trades["exit_reason"].to_list() == [t.exit_reason.value for t in expected]
    for column in ("qty", "entry_price", "exit_price", "pnl", "fees"):
        np.testing.assert_allclose(
            trades[column].to_numpy(),
            [getattr(t, column) for t in expected],
            rtol=RELATIVE_TOLERANCE,
            atol=1e-9,
            err_msg=column,
        )
    np.testing.assert_allclose(
        result.equity["equity"].to_numpy(), reference.equity, rtol=RELATIVE_TOLERANCE
    )
    outcomes = {
        bar: EntryCode(code).outcome
        for bar, code in enumerate(result.entry_status.tolist())
        if code != 0
    }
    assert outcomes == reference.outcomes


@pytest.mark.parametrize("seed", range(RANDOM_CASES))
def test_kernel_random_case_matches_reference_simulator(seed: int) -> None:
    # Arrange
    bars, entries, config, arrays = _random_case(seed)
    exits = arrays.pop("exits", None)

    # Act
    result = run_backtest(bars, entries, config, exits, **arrays)
    reference = ReferenceSimulator(bars, entries, config, exits, **arrays).run()

    # Assert
    _assert_same(result, reference)


def test_kernel_random_cases_cover_every_exit_reason_and_outcome() -> None:
    # Arrange
    reasons: set[str] = set()
    outcomes: set[int] = set()

    # Act
    for seed in range(RANDOM_CASES):
        bars, entries, config, arrays = _random_case(seed)
        exits = arrays.pop("exits", None)
        result = run_backtest(bars, entries, config, exits, **arrays)
        reasons.update(result.trades["exit_reason"].to_list())
        outcomes.update(int(code) for code in np.unique(result.entry_status))

    # Assert: the random cases exercise every rule the reference checks.
    assert reasons == {
        "stop_loss",
        "take_profit",
        "trailing_stop",
        "time",
        "signal",
        "reversal",
        "end_of_data",
    }
    assert outcomes == {0, *(int(code) for code in EntryCode)}


@pytest.mark.parametrize(
    "rules",
    [
        ExitRules(),
        ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04),
        ExitRules(trailing_stop_rate=0.03, max_bars_in_trade=48, stops_from=StopsFrom.NEXT_BAR),
    ],
    ids=["reversals", "stop_target", "trail_time_next_bar"],
)
def test_kernel_btc_ema_cross_matches_reference_simulator(
    btc_1h_bars: pl.DataFrame, rules: ExitRules
) -> None:
    # Arrange: EMA(10/50) crossovers on the first 20,000 hours, 0.1% commission, 5 bps slippage.
    bars = btc_1h_bars.head(20_000)
    close = bars["close"]
    spread = close.ewm_mean(span=10, adjust=False) - close.ewm_mean(span=50, adjust=False)
    direction = np.sign(spread.to_numpy())
    entries = np.zeros(bars.height, dtype=np.int8)
    entries[50:] = np.where(direction[50:] != direction[49:-1], direction[50:], 0)
    config = BacktestConfig(cost=CostModel(commission_rate=0.001, slippage_bps=5.0), exits=rules)

    # Act
    result = run_backtest(bars, entries, config)
    reference = ReferenceSimulator(bars, entries, config).run()

    # Assert
    assert result.trades.height > 300
    _assert_same(result, reference)
