"""run_spec: sleeves add up to the portfolio, a simple spec equals a hand-built backtest."""

import math

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.backtest.engine import run_backtest
from quant_assets.backtest.run_spec import SpecRunResult, run_spec
from quant_assets.domain.backtest import BacktestConfig, CostModel
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import DataSlice, ModuleRef, StrategySpec, utc
from quant_assets.domain.strategy import ParamValue as Value
from quant_assets_tests.strategy.conftest import BTC_KEY, ETH_KEY, SPY_KEY

COSTS = CostModel(commission_rate=0.001, slippage_bps=1.0)


def make_spec(
    instruments: tuple[str, ...],
    *,
    timeframe: str = "1h",
    baseline: ModuleRef | None = None,
    filters: tuple[ModuleRef, ...] = (),
    execution: ModuleRef | None = None,
    risk: ModuleRef | None = None,
) -> StrategySpec:
    return StrategySpec(
        name="test spec",
        hypothesis="Sleeves add up.",
        template="test",
        data=DataSlice(
            instruments=instruments, timeframe=timeframe, start=utc(2000, 1, 1), end=utc(2030, 1, 1)
        ),
        baseline=baseline or ModuleRef(module="ema_cross"),
        filters=filters,
        execution=execution or ModuleRef(module="signal_exit_only"),
        risk=risk or ModuleRef(module="fixed_fraction"),
        cost=COSTS,
    )


def turtle_spec(instruments: tuple[str, ...]) -> StrategySpec:
    # Side-specific exits, a filter, per-bar stops and per-bar sizes: every path of compose.
    return make_spec(
        instruments,
        baseline=ModuleRef(module="donchian_breakout", params={"entry_lookback_bars": 30}),
        filters=(ModuleRef(module="adx_strength", params={"min_adx": 15.0}),),
        execution=ModuleRef(module="atr_stops", params={"stop_atr": 3.0}),
        risk=ModuleRef(module="volatility_target", params={"target_annual_volatility": 0.3}),
    )


def ema_reference(values: list[float], span: int) -> list[float]:
    # TA-Lib's EMA: the first value (bar span - 1) is the mean of the first span values.
    alpha = 2.0 / (span + 1.0)
    out = [math.nan] * len(values)
    level = sum(values[:span]) / span
    out[span - 1] = level
    for index in range(span, len(values)):
        level = alpha * values[index] + (1.0 - alpha) * level
        out[index] = level
    return out


def ema_cross_reference(closes: list[float], fast: int, slow: int) -> np.ndarray:
    fast_ema, slow_ema = ema_reference(closes, fast), ema_reference(closes, slow)
    entries = np.zeros(len(closes), dtype=np.int8)
    for bar in range(slow, len(closes)):
        now = fast_ema[bar] - slow_ema[bar]
        before = fast_ema[bar - 1] - slow_ema[bar - 1]
        if now > 0.0 >= before:
            entries[bar] = 1
        elif now < 0.0 <= before:
            entries[bar] = -1
    return entries


def test_run_spec_portfolio_equity_is_the_sum_of_sleeves_run_alone(
    btc_bars: pl.DataFrame, eth_bars: pl.DataFrame
) -> None:
    # Arrange
    bars = {BTC_KEY: btc_bars, ETH_KEY: eth_bars}

    # Act
    portfolio = run_spec(turtle_spec((BTC_KEY, ETH_KEY)), bars)
    alone = [
        run_spec(turtle_spec((key,)), {key: bars[key]}, initial_cash=5_000.0)
        for key in (BTC_KEY, ETH_KEY)
    ]

    # Assert: same bars in both files, so the portfolio is the bar-by-bar sum.
    summed = alone[0].equity["equity"].to_numpy() + alone[1].equity["equity"].to_numpy()
    np.testing.assert_allclose(portfolio.equity["equity"].to_numpy(), summed, rtol=1e-12)
    assert portfolio.report.total_return == pytest.approx(summed[-1] / 10_000.0 - 1.0)
    assert portfolio.report.trades == alone[0].report.trades + alone[1].report.trades
    assert portfolio.report.periods_per_year == 8_760.0
    assert portfolio.trades["instrument"].value_counts().sort("instrument").rows() == [
        (BTC_KEY, alone[0].report.trades),
        (ETH_KEY, alone[1].report.trades),
    ]
    assert portfolio.steps.candidates == sum(run.steps.candidates for run in alone)
    assert portfolio.steps.fills == sum(run.steps.fills for run in alone)
    assert portfolio.steps.rejections["adx_strength"] > 0
    assert_frame_equal(portfolio.sleeves[ETH_KEY].equity, alone[1].equity)


def test_run_spec_sleeves_on_different_bars_carry_their_last_equity(
    btc_bars: pl.DataFrame, eth_bars: pl.DataFrame
) -> None:
    # Arrange: ETH misses every 7th bar and its first 100 bars.
    gappy_eth = eth_bars.with_row_index().filter(
        (pl.col("index") % 7 != 3) & (pl.col("index") >= 100)
    )
    bars = {BTC_KEY: btc_bars, ETH_KEY: gappy_eth.drop("index")}

    # Act
    result = run_spec(turtle_spec((BTC_KEY, ETH_KEY)), bars)

    # Assert: a bar-by-bar walk over the union of times, ETH at its cash before its first bar.
    btc_equity = dict(result.sleeves[BTC_KEY].equity.select("ts", "equity").iter_rows())
    eth_equity = dict(result.sleeves[ETH_KEY].equity.select("ts", "equity").iter_rows())
    expected, last_btc, last_eth = [], 5_000.0, 5_000.0
    for ts in sorted(set(btc_equity) | set(eth_equity)):
        last_btc = btc_equity.get(ts, last_btc)
        last_eth = eth_equity.get(ts, last_eth)
        expected.append(last_btc + last_eth)
    assert result.equity.height == btc_bars.height
    np.testing.assert_allclose(result.equity["equity"].to_numpy(), expected, rtol=1e-12)


def test_run_spec_ema_cross_equals_run_backtest_on_independent_ema_entries(
    btc_bars: pl.DataFrame,
) -> None:
    # Arrange
    spec = make_spec(
        (BTC_KEY,),
        baseline=ModuleRef(module="ema_cross", params={"fast_span_bars": 12, "slow_span_bars": 48}),
        risk=ModuleRef(module="fixed_fraction", params={"equity_fraction": 1.0}),
    )
    entries = ema_cross_reference(btc_bars["close"].to_list(), 12, 48)

    # Act
    via_spec = run_spec(spec, {BTC_KEY: btc_bars})
    direct = run_backtest(btc_bars, entries, BacktestConfig(cost=COSTS, periods_per_year=8_760.0))

    # Assert
    assert via_spec.steps.candidates == int(np.count_nonzero(entries)) > 20
    assert_frame_equal(via_spec.equity, direct.equity)
    assert_frame_equal(via_spec.trades.drop("instrument"), direct.trades)
    assert via_spec.report == direct.report


def test_run_spec_params_override_the_spec_module_values(btc_bars: pl.DataFrame) -> None:
    # Arrange
    spec = turtle_spec((BTC_KEY,))
    overridden = spec.model_copy(
        update={
            "baseline": ModuleRef(module="donchian_breakout", params={"entry_lookback_bars": 60}),
            "filters": (ModuleRef(module="adx_strength", params={"min_adx": 30.0}),),
        }
    )
    params: dict[str, Value] = {
        "baseline.entry_lookback_bars": 60,
        "filters.adx_strength.min_adx": 30.0,
    }

    # Act
    via_params = run_spec(spec, {BTC_KEY: btc_bars}, params)
    via_spec = run_spec(overridden, {BTC_KEY: btc_bars})
    unchanged = run_spec(spec, {BTC_KEY: btc_bars})

    # Assert
    assert_frame_equal(via_params.equity, via_spec.equity)
    assert via_params.steps == via_spec.steps
    assert via_params.steps != unchanged.steps


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"baseline": 5}, "parameter path 'baseline' names no module of the spec"),
        ({"filters.direction.allow": "long"}, "its filters are ['adx_strength']"),
        ({"strategy.fast": 5}, "parameter path 'strategy.fast'"),
        ({"baseline.entry_lookback_bars": 400}, "outside the module's bounds [5, 300]"),
        ({"risk.lookback": 10}, "volatility_target': unknown parameter(s) ['lookback']"),
    ],
    ids=["no-param", "filter-not-in-spec", "unknown-root", "out-of-bounds", "unknown-param"],
)
def test_run_spec_bad_params_raise_naming_the_path_or_module(
    btc_bars: pl.DataFrame, params: dict[str, Value], expected: str
) -> None:
    # Act
    with pytest.raises(SpecValidationError) as caught:
        run_spec(turtle_spec((BTC_KEY,)), {BTC_KEY: btc_bars}, params)

    # Assert
    assert expected in str(caught.value)


def test_run_spec_missing_instrument_bars_raise(btc_bars: pl.DataFrame) -> None:
    # Act / Assert
    with pytest.raises(SpecValidationError, match=r"no bars for instrument\(s\) \['binance.ETH"):
        run_spec(turtle_spec((BTC_KEY, ETH_KEY)), {BTC_KEY: btc_bars})


def test_run_spec_equity_sleeve_trades_whole_units_on_the_equity_calendar(
    spy_bars: pl.DataFrame,
) -> None:
    # Arrange
    spec = make_spec(
        (SPY_KEY,),
        timeframe="1d",
        baseline=ModuleRef(module="sma_cross", params={"fast_window_bars": 50}),
        risk=ModuleRef(module="fixed_fraction", params={"equity_fraction": 0.5}),
    )

    # Act
    result: SpecRunResult = run_spec(spec, {SPY_KEY: spy_bars})

    # Assert
    quantities = result.trades["qty"].to_numpy()
    assert len(quantities) > 5
    np.testing.assert_array_equal(quantities, np.floor(quantities))
    assert result.report.periods_per_year == 252.0
    assert result.sleeves[SPY_KEY].report.periods_per_year == 252.0
    assert_frame_equal(result.equity, result.sleeves[SPY_KEY].equity)
