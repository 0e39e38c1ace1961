"""Tests of run_backtest: input validation, result frames, step summary and report."""

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.engine import run_backtest
from quant_assets.domain.backtest import BacktestConfig, CostModel, ExitRules, SizingConfig
from quant_assets.domain.errors import BacktestInputError
from quant_assets.market.canonical import to_canonical
from quant_assets_tests.backtest.conftest import SAMPLE_DIR, BarsFactory
from quant_assets_tests.hand_bars import Ohlc

FLAT: Ohlc = (100.0, 101.0, 99.0, 100.0)
COSTS = CostModel(commission_rate=0.001, slippage_bps=2.0)
UTC_US = pl.Datetime("us", "UTC")


def _config(**fields: Any) -> BacktestConfig:
    return BacktestConfig(cost=COSTS, **fields)


def _ema_cross(bars: pl.DataFrame) -> np.ndarray:
    close = bars["close"]
    direction = np.sign(
        (close.ewm_mean(span=10, adjust=False) - close.ewm_mean(span=50, adjust=False)).to_numpy()
    )
    entries = np.zeros(bars.height, dtype=np.int8)
    entries[50:] = np.where(direction[50:] != direction[49:-1], direction[50:], 0)
    return entries


def test_run_backtest_frames_follow_the_published_schemas(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange
    bars = btc_1h_bars.head(2_000)

    # Act
    result = run_backtest(bars, _ema_cross(bars), _config())

    # Assert: the exact names and dtypes the metrics code relies on.
    assert result.equity.schema == pl.Schema(
        {"ts": UTC_US, "equity": pl.Float64(), "exposure": pl.Float64()}
    )
    assert result.trades.schema == pl.Schema(
        {
            "entry_ts": UTC_US,
            "exit_ts": UTC_US,
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
    assert result.equity["ts"].equals(bars["ts"])
    assert (
        result.trades["entry_ts"].to_list()
        == bars["ts"].gather(result.trades["entry_bar"]).to_list()
    )


def test_run_backtest_without_signals_keeps_cash_and_empty_trades(make_bars: BarsFactory) -> None:
    # Arrange
    bars = make_bars([FLAT, FLAT, FLAT])

    # Act
    result = run_backtest(bars, np.zeros(3, dtype=np.int8), _config())

    # Assert
    assert result.trades.height == 0
    assert result.trades.columns[-1] == "exit_reason"
    assert result.equity["equity"].to_list() == [10_000.0] * 3
    assert (result.report.trades, result.report.total_return) == (0, 0.0)
    assert result.steps.candidates == 0


def test_run_backtest_sum_of_trade_pnl_is_equity_change_on_btc(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange
    config = _config(exits=ExitRules(stop_loss_rate=0.02, take_profit_rate=0.04))

    # Act
    result = run_backtest(btc_1h_bars, _ema_cross(btc_1h_bars), config)

    # Assert: all cash comes and goes through trades, and the report agrees with the frames.
    final = result.equity["equity"][-1]
    assert result.trades["pnl"].sum() == pytest.approx(final - 10_000.0, rel=1e-9)
    assert result.report.total_return == pytest.approx(final / 10_000.0 - 1.0, rel=1e-12)
    assert result.report.trades == result.trades.height
    assert result.report.fees_paid == pytest.approx(result.trades["fees"].sum())
    assert result.trades["return_rate"].to_numpy() == pytest.approx(
        (result.trades["pnl"] / (result.trades["qty"] * result.trades["entry_price"])).to_numpy()
    )


def test_run_backtest_exposure_is_signed_position_value_over_equity(
    make_bars: BarsFactory,
) -> None:
    # Arrange: half the equity long at 100 (50 units), then 110 at bar 2's close.
    bars = make_bars([FLAT, FLAT, (100.0, 111.0, 99.0, 110.0), FLAT])
    config = BacktestConfig(
        cost=CostModel(commission_rate=0.0, slippage_bps=0.0),
        sizing=SizingConfig(equity_fraction=0.5),
    )

    # Act
    result = run_backtest(bars, np.array([1, 0, 0, 0], dtype=np.int8), config)

    # Assert: bar 2: position 50 * 110 = 5,500 of equity 5,000 + 5,500.
    assert result.equity["exposure"].to_list()[:3] == pytest.approx([0.0, 0.5, 5_500 / 10_500])


def test_run_backtest_zero_volume_bar_is_tradable(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange: a long signal on the bar before the shipped 2019-06-07 21:00 bar (volume 0).
    bar = btc_1h_bars.with_row_index().filter(pl.col("volume") == 0.0)["index"][0]
    entries = np.zeros(btc_1h_bars.height, dtype=np.int8)
    entries[bar - 1] = 1

    # Act
    result = run_backtest(btc_1h_bars, entries, _config())

    # Assert
    trade = result.trades.row(0, named=True)
    assert trade["entry_bar"] == bar
    assert trade["entry_price"] == pytest.approx(btc_1h_bars["open"][bar] * 1.0002)


def test_run_backtest_steps_count_candidates_fills_and_rejections(
    make_bars: BarsFactory,
) -> None:
    # Arrange, bar by bar (reversals off, per-bar size NaN on bar 0):
    # 0: +1 warm-up NaN; 1: +1 fills at 2; 2: +1 already in position; 3: -1 reversal not
    # allowed; 4: +1 already in position; 5: nothing; 6: -1 on the last bar, no bar to fill.
    bars = make_bars([FLAT] * 7)
    entries = np.array([1, 1, 1, -1, 1, 0, -1], dtype=np.int8)
    size = np.array([math.nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])

    # Act
    result = run_backtest(bars, entries, _config(allow_reversal=False), size=size)

    # Assert
    assert result.steps.candidates == 6
    assert result.steps.fills == 1
    assert result.steps.rejections == {
        "already_in_position": 2,
        "reversal_not_allowed": 1,
        "warm_up_nan": 1,
        "zero_quantity": 0,
        "no_bar_to_fill": 1,
    }


def test_run_backtest_zero_size_is_rejected_as_zero_quantity(make_bars: BarsFactory) -> None:
    # Arrange
    bars = make_bars([FLAT] * 3)

    # Act
    result = run_backtest(bars, np.array([1, 0, 0], dtype=np.int8), _config(), size=np.zeros(3))

    # Assert
    assert result.trades.height == 0
    assert result.steps.rejections["zero_quantity"] == 1


def test_run_backtest_float_entries_with_nan_trade_like_int8(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange: the same signals as float64, NaN during a 50-bar warm-up.
    bars = btc_1h_bars.head(3_000)
    entries = _ema_cross(bars)
    as_float = entries.astype(np.float64)
    as_float[:50] = math.nan

    # Act
    from_int = run_backtest(bars, entries, _config())
    from_float = run_backtest(bars, as_float, _config())

    # Assert
    assert from_float.trades.equals(from_int.trades)
    assert from_float.equity.equals(from_int.equity)


def test_run_backtest_bool_and_int_exits_agree(make_bars: BarsFactory) -> None:
    # Arrange
    bars = make_bars([FLAT] * 5)
    entries = np.array([1, 0, 0, 0, 0], dtype=np.int8)
    as_bool = np.array([False, False, True, False, False])

    # Act
    from_bool = run_backtest(bars, entries, _config(), as_bool)
    from_int = run_backtest(bars, entries, _config(), as_bool.astype(np.int64))

    # Assert
    assert from_bool.trades["exit_reason"].to_list() == ["signal"]
    assert from_int.trades.equals(from_bool.trades)


def test_run_backtest_leaves_caller_arrays_writable(make_bars: BarsFactory) -> None:
    # Arrange
    entries = np.array([1, 0, 0], dtype=np.int8)

    # Act
    run_backtest(make_bars([FLAT] * 3), entries, _config())

    # Assert: the engine made read-only views, not read-only originals.
    assert entries.flags.writeable


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [("binance_BTC-USDT_1h.parquet", 8_760.0), ("yahoo_SPY_1d.parquet", 252.0)],
)
def test_run_backtest_infers_periods_per_year_from_bar_spacing(
    file_name: str, expected: float
) -> None:
    # Arrange: hourly bars -> 365 * 24; daily equity bars (weekends skipped) -> 252.
    bars = to_canonical(pl.read_parquet(Path(SAMPLE_DIR) / file_name).head(500), "test.X.1h")

    # Act
    result = run_backtest(bars, np.zeros(bars.height, dtype=np.int8), _config())

    # Assert
    assert result.report.periods_per_year == expected


def test_run_backtest_explicit_periods_per_year_wins(make_bars: BarsFactory) -> None:
    # Act
    result = run_backtest(
        make_bars([FLAT] * 3), np.zeros(3, dtype=np.int8), _config(periods_per_year=365.0)
    )

    # Assert
    assert result.report.periods_per_year == 365.0


def test_run_backtest_trade_records_validate_as_domain_trades(btc_1h_bars: pl.DataFrame) -> None:
    # Arrange
    bars = btc_1h_bars.head(2_000)

    # Act
    result = run_backtest(bars, _ema_cross(bars), _config())
    records = result.trade_records()

    # Assert
    assert len(records) == result.trades.height > 10
    assert [record.entry_ts for record in records] == result.trades["entry_ts"].to_list()
    assert records[0].entry_ts == datetime(2018, 1, 7, 18, tzinfo=UTC)  # bar 160, first cross
    assert records[-1].exit_reason == "end_of_data"


def _bars_with(make_bars: BarsFactory, column: str, bar: int, value: float | None) -> pl.DataFrame:
    bars = make_bars([FLAT] * 4)
    values: list[float | None] = list(bars[column].to_list())
    values[bar] = value
    return bars.with_columns(pl.Series(column, values, dtype=pl.Float64))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("close", math.nan, "bar 2 at 2024-01-01 02:00:00"),
        ("open", None, "bar 2 at 2024-01-01 02:00:00"),
        ("low", 0.0, "finite and > 0"),
        ("high", math.inf, "finite and > 0"),
    ],
)
def test_run_backtest_bad_price_raises_naming_bar_and_rule(
    make_bars: BarsFactory, column: str, value: float | None, message: str
) -> None:
    # Arrange
    bars = _bars_with(make_bars, column, 2, value)

    # Act / Assert
    with pytest.raises(BacktestInputError, match=message):
        run_backtest(bars, np.zeros(4, dtype=np.int8), _config())


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (np.zeros(3, dtype=np.int8), r"shape \(3,\); it must be one value per bar, shape \(4,\)"),
        (np.array([0, 2, 0, 0], dtype=np.int8), "range from 0 to 2"),
        (np.array([True, False, False, False]), "boolean array cannot say which side"),
        (np.array([0.0, 0.5, 0.0, math.nan]), "other than -1, 0, 1 and NaN"),
        (np.zeros((4, 1), dtype=np.int8), "one value per bar"),
    ],
    ids=["length", "range", "bool", "fraction", "two_dimensional"],
)
def test_run_backtest_bad_entries_raise(
    make_bars: BarsFactory, entries: np.ndarray, message: str
) -> None:
    # Act / Assert
    with pytest.raises(BacktestInputError, match=message):
        run_backtest(make_bars([FLAT] * 4), entries, _config())


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"size": np.array([1.0, -0.5, 1.0, 1.0])}, "size at bar 1 was -0.5"),
        ({"stop_loss_distance": np.array([1.0, 0.0, 1.0, 1.0])}, "stop_loss_distance at bar 1"),
        ({"trailing_distance": np.ones(5)}, "trailing_distance has shape"),
    ],
)
def test_run_backtest_bad_per_bar_arrays_raise(
    make_bars: BarsFactory, arrays: dict[str, np.ndarray], message: str
) -> None:
    # Act / Assert
    with pytest.raises(BacktestInputError, match=message):
        run_backtest(make_bars([FLAT] * 4), np.zeros(4, dtype=np.int8), _config(), **arrays)


def test_run_backtest_rate_and_distance_for_one_level_raise(make_bars: BarsFactory) -> None:
    # Arrange
    config = _config(exits=ExitRules(stop_loss_rate=0.02))

    # Act / Assert
    with pytest.raises(BacktestInputError, match=r"stop_loss_rate.*stop_loss_distance"):
        run_backtest(
            make_bars([FLAT] * 4),
            np.zeros(4, dtype=np.int8),
            config,
            stop_loss_distance=np.ones(4),
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda bars: bars.drop("low"), r"lack columns \['low'\]"),
        (lambda bars: bars.head(0), "0 rows"),
        (lambda bars: bars.reverse(), "not strictly increasing at row 1"),
        (lambda bars: pl.concat([bars.head(2), bars.slice(1, 2)]), "not strictly increasing"),
        (lambda bars: bars.with_columns(pl.col("ts").dt.replace_time_zone(None)), "must be"),
    ],
    ids=["missing_column", "empty", "descending", "duplicate", "naive_ts"],
)
def test_run_backtest_malformed_bars_raise(
    make_bars: BarsFactory, change: Any, message: str
) -> None:
    # Arrange
    bars = change(make_bars([FLAT] * 4))

    # Act / Assert
    with pytest.raises(BacktestInputError, match=message):
        run_backtest(bars, np.zeros(bars.height, dtype=np.int8), _config())


def test_run_backtest_single_bar_without_periods_per_year_raises(make_bars: BarsFactory) -> None:
    # Act / Assert
    with pytest.raises(BacktestInputError, match=r"set BacktestConfig\.periods_per_year"):
        run_backtest(make_bars([FLAT]), np.zeros(1, dtype=np.int8), _config())
