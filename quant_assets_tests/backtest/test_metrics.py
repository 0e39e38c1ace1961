"""Specification of the backtest metrics and the EvalReport.

Real curves (holding BTC 1h, trading SPY 1d on a 200-day trend rule) are cross-checked field by
field against a reference written here with plain numpy and Python loops, and against
empyrical-reloaded and scipy where installed; tiny curves carry values derived by hand.
"""

import itertools
import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from quant_assets.backtest.metrics import (
    EULER_MASCHERONI,
    annualization_factor,
    compute_report,
    deflated_sharpe_ratio,
    drawdown_curve,
    expected_max_sharpe,
    per_bar_returns,
    probabilistic_sharpe_ratio,
)
from quant_assets.domain.errors import BacktestInputError
from quant_assets.domain.market import AssetClass, Timeframe
from quant_assets.domain.report import RATIO_CAP, EvalReport

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
HOUR = timedelta(hours=1)
START = datetime(2024, 1, 1, tzinfo=UTC)
TRADE_SCHEMA: dict[str, Any] = {
    "entry_ts": pl.Datetime("us", "UTC"),
    "exit_ts": pl.Datetime("us", "UTC"),
    "entry_bar": pl.Int64,
    "exit_bar": pl.Int64,
    "bars_held": pl.Int64,
    "side": pl.String,
    "qty": pl.Float64,
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "pnl": pl.Float64,
    "fees": pl.Float64,
    "return_rate": pl.Float64,
    "exit_reason": pl.String,
}


@dataclass(frozen=True)
class Curve:
    equity: pl.DataFrame
    trades: pl.DataFrame
    initial_cash: float
    periods_per_year: float


def make_equity(
    values: list[float], exposure: list[float] | None = None, ts: list[datetime] | None = None
) -> pl.DataFrame:
    stamps = ts if ts is not None else [START + i * HOUR for i in range(len(values))]
    return pl.DataFrame(
        {
            "ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
            "equity": pl.Series(values, dtype=pl.Float64),
            "exposure": pl.Series(exposure or [1.0] * len(values), dtype=pl.Float64),
        }
    )


def make_trades(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=TRADE_SCHEMA)


def trade_row(
    entry: int, exit_: int, ts: list[datetime], qty: float, prices: tuple[float, float], fees: float
) -> dict[str, Any]:
    pnl = qty * (prices[1] - prices[0]) - fees
    return {
        "entry_ts": ts[entry],
        "exit_ts": ts[exit_],
        "entry_bar": entry,
        "exit_bar": exit_,
        "bars_held": exit_ - entry,
        "side": "long",
        "qty": qty,
        "entry_price": prices[0],
        "exit_price": prices[1],
        "pnl": pnl,
        "fees": fees,
        "return_rate": pnl / (qty * prices[0]),
        "exit_reason": "signal",
    }


def btc_hold_curve() -> Curve:
    # Buy at the first open paying 10 bp, mark at each close, sell at the last close paying 10 bp.
    bars = pl.read_parquet(SAMPLE_DIR / "binance_BTC-USDT_1h.parquet")
    cash, rate = 10_000.0, 0.001
    open_, close = bars["open"].to_numpy(), bars["close"].to_numpy()
    qty = cash * (1 - rate) / open_[0]
    equity = qty * close
    equity[-1] = qty * close[-1] * (1 - rate)
    ts = bars["ts"].to_list()
    row = trade_row(0, len(ts) - 1, ts, qty, (open_[0], close[-1]), rate * (cash + qty * close[-1]))
    exposure = np.ones(len(ts))
    exposure[-1] = 0.0
    frame = pl.DataFrame({"ts": bars["ts"], "equity": equity, "exposure": exposure})
    return Curve(frame, make_trades([row]), cash, 24 * 365)


def spy_trend_curve() -> Curve:
    # Hold SPY while its close is above the 200-day mean, trading at the close, 5 bp per side.
    bars = pl.read_parquet(SAMPLE_DIR / "yahoo_SPY_1d.parquet")
    close, ts = bars["close"].to_numpy(), bars["ts"].to_list()
    cash, rate, window = 100_000.0, 0.0005, 200
    signal = np.zeros(len(close), dtype=bool)
    signal[window - 1 :] = close[window - 1 :] > np.convolve(
        close, np.ones(window) / window, "valid"
    )
    signal[-1] = False  # flat at the end of the data
    equity, rows, qty, entry, fee_in, value = [], [], 0.0, 0, 0.0, cash
    for t in range(len(close)):
        if qty:
            value = qty * close[t]
        if signal[t] and not qty:
            fee_in, entry = rate * value, t
            qty = (value - fee_in) / close[t]
            value = qty * close[t]
        elif not signal[t] and qty:
            fee_out = rate * value
            rows.append(trade_row(entry, t, ts, qty, (close[entry], close[t]), fee_in + fee_out))
            value, qty = value - fee_out, 0.0
        equity.append(value)
    frame = pl.DataFrame({"ts": bars["ts"], "equity": equity, "exposure": signal.astype(float)})
    return Curve(frame, make_trades(rows), cash, 252)


@pytest.fixture(scope="module", params=["btc_hold", "spy_trend"])
def real_curve(request: pytest.FixtureRequest) -> Curve:
    return btc_hold_curve() if request.param == "btc_hold" else spy_trend_curve()


def reference_drawdown(values: np.ndarray, ts: np.ndarray, cash: float) -> tuple[float, int, float]:
    # Plain loop: the initial cash is a peak one bar spacing before the first mark.
    marks = [cash, *values.tolist()]
    stamps = [ts[0] - (ts[1] - ts[0]), *ts.tolist()]
    peak_i, worst, longest_bars, longest_us = 0, 0.0, 0, 0
    for i in range(1, len(marks)):
        if marks[i] >= marks[peak_i]:
            if i - peak_i > 1:
                longest_bars = max(longest_bars, i - peak_i)
                longest_us = max(longest_us, stamps[i] - stamps[peak_i])
            peak_i = i
        worst = min(worst, marks[i] / marks[peak_i] - 1)
    if peak_i < len(marks) - 1:
        longest_bars = max(longest_bars, len(marks) - 1 - peak_i)
        longest_us = max(longest_us, stamps[-1] - stamps[peak_i])
    return worst, longest_bars, longest_us / 1e6


def reference_report(curve: Curve, n_trials: int) -> dict[str, float]:
    values = curve.equity["equity"].to_numpy()
    ts = curve.equity["ts"].dt.epoch("us").to_numpy()
    marks = np.concatenate([[curve.initial_cash], values])
    r = np.diff(marks) / marks[:-1]
    n, ppy = len(r), curve.periods_per_year
    std = np.std(r, ddof=1)
    z = (r - r.mean()) / np.std(r)
    skew, kurt = float(np.mean(z**3)), float(np.mean(z**4))
    sr = r.mean() / std
    psr_z = sr * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    inv = statistics.NormalDist().inv_cdf
    sr0 = math.sqrt(1 / (n - 1)) * (
        (1 - 0.5772156649) * inv(1 - 1 / n_trials) + 0.5772156649 * inv(1 - 1 / (n_trials * math.e))
    )
    dsr_z = (sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    worst, bars, seconds = reference_drawdown(values, ts, curve.initial_cash)
    cagr = (values[-1] / curve.initial_cash) ** (ppy / n) - 1
    pnl = curve.trades["pnl"].to_list()
    gains, losses = sum(p for p in pnl if p > 0), -sum(p for p in pnl if p < 0)
    notional = sum(
        q * (a + b)
        for q, a, b in curve.trades.select("qty", "entry_price", "exit_price").iter_rows()
    )
    return {
        "bars": n,
        "total_return": values[-1] / curve.initial_cash - 1,
        "cagr": cagr,
        "annualized_volatility": std * math.sqrt(ppy),
        "sharpe": sr * math.sqrt(ppy),
        "sortino": r.mean() / math.sqrt(np.mean(np.where(r < 0, r, 0) ** 2)) * math.sqrt(ppy),
        "calmar": cagr / abs(worst),
        "max_drawdown": worst,
        "max_drawdown_duration_bars": bars,
        "max_drawdown_duration_seconds": seconds,
        "win_rate": sum(p > 0 for p in pnl) / len(pnl),
        "profit_factor": gains / losses if losses else RATIO_CAP,
        "trades": len(pnl),
        "average_trade_return": statistics.fmean(curve.trades["return_rate"].to_list()),
        "exposure": sum(e != 0 for e in curve.equity["exposure"].to_list()) / n,
        "turnover": notional / values.mean() / (n / ppy),
        "fees_paid": math.fsum(curve.trades["fees"].to_list()),
        "probabilistic_sharpe": 0.5 * (1 + math.erf(psr_z / math.sqrt(2))),
        "deflated_sharpe": 0.5 * (1 + math.erf(dsr_z / math.sqrt(2))),
        "skewness": skew,
        "kurtosis": kurt,
    }


def test_compute_report_real_curve_matches_reference_on_every_field(real_curve: Curve) -> None:
    # Arrange
    expected = reference_report(real_curve, n_trials=20)

    # Act
    report = compute_report(
        real_curve.equity,
        real_curve.trades,
        initial_cash=real_curve.initial_cash,
        periods_per_year=real_curve.periods_per_year,
        n_trials=20,
    )

    # Assert
    actual = report.model_dump(exclude={"start", "end", "periods_per_year", "n_trials"})
    assert set(actual) == set(expected)
    assert actual == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert (report.start, report.end) == (
        real_curve.equity["ts"][0],
        real_curve.equity["ts"][-1],
    )
    assert report.max_drawdown_duration_bars > 0
    assert report.deflated_sharpe < report.probabilistic_sharpe


def test_compute_report_real_curve_matches_empyrical_and_scipy(real_curve: Curve) -> None:
    # Arrange
    empyrical = pytest.importorskip("empyrical", reason="test-only: empyrical-reloaded==0.7.1")
    stats = pytest.importorskip("scipy.stats", reason="test-only: scipy, via empyrical-reloaded")
    pd = pytest.importorskip("pandas")
    marks = np.concatenate([[real_curve.initial_cash], real_curve.equity["equity"].to_numpy()])
    returns = pd.Series(np.diff(marks) / marks[:-1])
    ppy = real_curve.periods_per_year

    # Act
    report = compute_report(
        real_curve.equity,
        real_curve.trades,
        initial_cash=real_curve.initial_cash,
        periods_per_year=ppy,
        n_trials=50,
    )

    # Assert
    sr = report.sharpe / math.sqrt(ppy)
    skew = stats.skew(returns)
    kurt = stats.kurtosis(returns, fisher=False)
    scale = math.sqrt(len(returns) - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    sr0 = math.sqrt(1 / (len(returns) - 1)) * (
        (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / 50)
        + np.euler_gamma * stats.norm.ppf(1 - 1 / (50 * np.e))
    )
    assert report.sharpe == pytest.approx(empyrical.sharpe_ratio(returns, annualization=ppy))
    assert report.sortino == pytest.approx(empyrical.sortino_ratio(returns, annualization=ppy))
    assert report.annualized_volatility == pytest.approx(
        empyrical.annual_volatility(returns, annualization=ppy)
    )
    assert report.cagr == pytest.approx(empyrical.annual_return(returns, annualization=ppy))
    assert report.max_drawdown == pytest.approx(empyrical.max_drawdown(returns))
    assert report.calmar == pytest.approx(empyrical.calmar_ratio(returns, annualization=ppy))
    assert report.skewness == pytest.approx(skew)
    assert report.kurtosis == pytest.approx(kurt)
    assert report.probabilistic_sharpe == pytest.approx(stats.norm.cdf(sr * scale))
    assert report.deflated_sharpe == pytest.approx(stats.norm.cdf((sr - sr0) * scale))
    dd = drawdown_curve(real_curve.equity, initial_cash=real_curve.initial_cash)["drawdown"]
    np.testing.assert_allclose(dd.to_numpy(), empyrical.stats.drawdown_series(returns), atol=1e-12)


def test_compute_report_tiny_curve_matches_hand_values() -> None:
    # Arrange: returns 0, 1/5, -1/4, 4/9 from 100 cash; 4 bars a year, so 4 bars are one year.
    equity = make_equity([100.0, 120.0, 90.0, 130.0], exposure=[1.0, -0.5, 1.0, 0.0])
    returns = [Fraction(0), Fraction(1, 5), Fraction(-1, 4), Fraction(4, 9)]
    mean = sum(returns) / 4  # 71/720
    stdev = math.sqrt(statistics.variance(returns))  # exact sample variance, then one root

    # Act
    report = compute_report(equity, make_trades([]), initial_cash=100.0, periods_per_year=4)

    # Assert
    assert report.bars == 4
    assert report.total_return == pytest.approx(0.3)
    assert report.cagr == pytest.approx(0.3)  # one year: CAGR is the total return
    assert report.max_drawdown == pytest.approx(-0.25)  # 120 -> 90
    assert report.max_drawdown_duration_bars == 2  # peak at bar 1, back above at bar 3
    assert report.max_drawdown_duration_seconds == 7200.0
    assert report.calmar == pytest.approx(0.3 / 0.25)
    assert report.sharpe == pytest.approx(float(mean) / stdev * 2)
    # Downside deviation sqrt((1/4)^2 / 4) = 1/8, so sortino = 71/720 * 8 * sqrt(4) = 71/45.
    assert report.sortino == pytest.approx(71 / 45)
    assert report.exposure == pytest.approx(0.75)  # a short counts as exposure too
    assert report.annualized_volatility == pytest.approx(stdev * 2)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([100.0, 120.0, 90.0, 130.0], (-0.25, 2, 7200.0)),  # recovered at bar 3
        ([100.0, 120.0, 90.0, 100.0], (-0.25, 2, 7200.0)),  # still under water at the end
        ([90.0, 95.0, 101.0], (-0.1, 3, 10800.0)),  # initial cash is the first peak
        ([100.0, 99.0, 98.0, 97.0, 101.0, 70.0, 102.0], (70 / 101 - 1, 4, 14400.0)),
        ([100.0, 110.0, 121.0], (0.0, 0, 0.0)),  # new highs only
        ([100.0, 100.0, 100.0], (0.0, 0, 0.0)),  # equal to the peak is not a drawdown
    ],
    ids=["recovered", "open_at_end", "below_cash", "longest_not_deepest", "rising", "flat"],
)
def test_compute_report_drawdown_spells_match_hand_values(
    values: list[float], expected: tuple[float, int, float]
) -> None:
    # Act
    report = compute_report(
        make_equity(values), make_trades([]), initial_cash=100.0, periods_per_year=8760
    )

    # Assert
    depth, bars, seconds = expected
    assert report.max_drawdown == pytest.approx(depth)
    assert report.max_drawdown_duration_bars == bars
    assert report.max_drawdown_duration_seconds == seconds


@pytest.mark.parametrize(
    ("days", "values", "expected"),
    [
        # Thu, Fri, Mon, Tue, Wed, Thu: peak on the first Thu, back above it a week later.
        ([0, 1, 4, 5, 6, 7], [100.0, 90.0, 95.0, 99.0, 98.0, 101.0], (5, 7 * 86400.0)),
        # New highs across the weekend are no drawdown; the dip Mon -> Wed lasts two days.
        ([0, 1, 4, 5, 6], [100.0, 101.0, 102.0, 100.0, 103.0], (2, 2 * 86400.0)),
    ],
    ids=["spell_over_weekend", "highs_over_weekend"],
)
def test_compute_report_irregular_bars_measure_duration_in_wall_time(
    days: list[int], values: list[float], expected: tuple[int, float]
) -> None:
    # Arrange
    ts = [datetime(2024, 1, 4, tzinfo=UTC) + timedelta(days=d) for d in days]
    equity = make_equity(values, ts=ts)

    # Act
    report = compute_report(equity, make_trades([]), initial_cash=100.0, periods_per_year=252)

    # Assert
    assert (report.max_drawdown_duration_bars, report.max_drawdown_duration_seconds) == expected


def test_compute_report_flat_curve_without_trades_has_defined_values() -> None:
    # Arrange
    equity = make_equity([100.0] * 5, exposure=[0.0] * 5)

    # Act
    report = compute_report(equity, make_trades([]), initial_cash=100.0, periods_per_year=252)

    # Assert
    zero_fields = [
        "total_return", "cagr", "annualized_volatility", "sharpe", "sortino", "calmar",
        "max_drawdown", "max_drawdown_duration_seconds", "win_rate", "profit_factor",
        "average_trade_return", "exposure", "turnover", "fees_paid", "probabilistic_sharpe",
        "deflated_sharpe", "skewness",
    ]  # fmt: skip
    assert {name: getattr(report, name) for name in zero_fields} == dict.fromkeys(zero_fields, 0.0)
    assert (report.trades, report.max_drawdown_duration_bars, report.kurtosis) == (0, 0, 3.0)


def test_compute_report_rising_curve_caps_unbounded_ratios() -> None:
    # Arrange: no losing bar and no drawdown, so sortino and calmar have zero denominators.
    equity = make_equity([101.0, 103.0, 104.0, 108.0])

    # Act
    report = compute_report(equity, make_trades([]), initial_cash=100.0, periods_per_year=252)

    # Assert
    assert (report.sortino, report.calmar) == (RATIO_CAP, RATIO_CAP)
    assert 0.0 < report.sharpe < RATIO_CAP
    assert EvalReport.model_validate_json(report.model_dump_json()) == report


@pytest.mark.parametrize(
    ("values", "periods_per_year", "expected_cagr"),
    [
        ([101.0], 4, 1.01**4 - 1),  # one bar is a quarter of a year
        ([110.0, 120.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0], 4, 1.0),  # x4 in two years
        ([1000.0, 1000.0], 8760, RATIO_CAP),  # x10 in two hours overflows: capped
        ([50.0, 0.0, 0.0], 252, -1.0),  # ruined account
    ],
    ids=["one_bar", "two_years", "overflow", "ruined"],
)
def test_compute_report_cagr_matches_hand_values(
    values: list[float], periods_per_year: float, expected_cagr: float
) -> None:
    # Act
    report = compute_report(
        make_equity(values), make_trades([]), initial_cash=100.0, periods_per_year=periods_per_year
    )

    # Assert
    assert report.cagr == pytest.approx(expected_cagr)


def test_per_bar_returns_ruined_account_defines_later_returns_as_zero() -> None:
    # Arrange
    equity = make_equity([50.0, 0.0, 0.0])

    # Act
    returns = per_bar_returns(equity, initial_cash=100.0)
    report = compute_report(equity, make_trades([]), initial_cash=100.0, periods_per_year=252)

    # Assert
    assert returns["bar_return"].to_list() == [-0.5, -1.0, 0.0]
    assert returns["ts"].to_list() == equity["ts"].to_list()
    assert (report.total_return, report.max_drawdown) == (-1.0, -1.0)


@pytest.mark.parametrize(
    ("initial_cash", "expected"),
    [(None, [0.0, 0.0, 0.0, -0.25, 0.0]), (200.0, [-0.5, -0.5, -0.4, -0.55, -0.35])],
    ids=["from_first_bar", "from_initial_cash"],
)
def test_drawdown_curve_matches_hand_values(
    initial_cash: float | None, expected: list[float]
) -> None:
    # Arrange
    equity = make_equity([100.0, 100.0, 120.0, 90.0, 130.0])

    # Act
    curve = drawdown_curve(equity, initial_cash=initial_cash)

    # Assert
    assert curve.columns == ["ts", "drawdown"]
    assert curve["drawdown"].to_list() == pytest.approx(expected)


def test_compute_report_trade_statistics_match_hand_values() -> None:
    # Arrange: pnl +9, -6, +19, -1 (a flat trade that lost its fees); gross 28 / 7 = 4.
    ts = [START + i * HOUR for i in range(8)]
    rows = [
        trade_row(0, 1, ts, 1.0, (100.0, 110.0), 1.0),
        trade_row(2, 3, ts, 2.0, (100.0, 97.5), 1.0),
        trade_row(4, 5, ts, 1.0, (100.0, 120.0), 1.0),
        trade_row(6, 7, ts, 1.0, (100.0, 100.0), 1.0),
    ]
    equity = make_equity([100.0] * 8, ts=ts)

    # Act
    report = compute_report(equity, make_trades(rows), initial_cash=100.0, periods_per_year=16)

    # Assert
    assert report.trades == 4
    assert report.win_rate == 0.5
    assert report.profit_factor == pytest.approx(28 / 7)
    assert report.average_trade_return == pytest.approx((0.09 - 0.03 + 0.19 - 0.01) / 4)
    assert report.fees_paid == pytest.approx(4.0)
    # Notional 210 + 2 * 197.5 + 220 + 200 = 1025 over mean equity 100 and half a year.
    assert report.turnover == pytest.approx(1025 / 100 / 0.5)


def test_compute_report_no_losing_trade_caps_profit_factor() -> None:
    # Arrange
    ts = [START, START + HOUR]
    trades = make_trades([trade_row(0, 1, ts, 1.0, (100.0, 101.0), 0.0)])

    # Act
    report = compute_report(make_equity([100.0, 101.0], ts=ts), trades, initial_cash=100.0,
                            periods_per_year=8760)  # fmt: skip

    # Assert
    assert (report.profit_factor, report.win_rate) == (RATIO_CAP, 1.0)


def _drop_exposure(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("exposure")


def _naive_ts(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("ts").dt.replace_time_zone(None))


def _reversed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.reverse()


def _nan_equity(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit(float("nan")).alias("equity"))


def _null_exposure(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("exposure"))


def _empty(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.head(0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_drop_exposure, "lacks columns \\['exposure'\\]"),
        (_naive_ts, "must be Datetime\\('us', 'UTC'\\)"),
        (_reversed, "not sorted ascending"),
        (_nan_equity, "NaN or infinite"),
        (_null_exposure, "has nulls"),
        (_empty, "0 rows"),
    ],
    ids=["missing_column", "naive_ts", "unsorted", "nan", "nulls", "empty"],
)
def test_compute_report_bad_equity_frame_raises_named_error(mutate: Any, message: str) -> None:
    # Arrange
    equity = mutate(make_equity([100.0, 101.0, 102.0]))

    # Act / Assert
    with pytest.raises(BacktestInputError, match=message):
        compute_report(equity, make_trades([]), initial_cash=100.0, periods_per_year=252)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"initial_cash": 0.0}, "initial_cash was 0.0"),
        ({"periods_per_year": 0.0}, "periods_per_year was 0.0"),
        ({"n_trials": 0}, "n_trials was 0"),
        ({"trial_sharpe_variance": -1.0}, "sharpe_variance was -1.0"),
    ],
    ids=["cash", "periods", "trials", "variance"],
)
def test_compute_report_bad_argument_raises_named_error(
    arguments: dict[str, Any], message: str
) -> None:
    # Arrange
    kwargs: dict[str, Any] = {"initial_cash": 100.0, "periods_per_year": 252} | arguments

    # Act / Assert
    with pytest.raises(BacktestInputError, match=message):
        compute_report(make_equity([100.0, 101.0]), make_trades([]), **kwargs)


def test_compute_report_trades_missing_column_raises_named_error() -> None:
    # Arrange
    trades = make_trades([]).drop("fees")

    # Act / Assert
    with pytest.raises(BacktestInputError, match="lacks columns \\['fees'\\]"):
        compute_report(make_equity([100.0, 101.0]), trades, initial_cash=100.0, periods_per_year=1)


def test_probabilistic_sharpe_ratio_matches_paper_formula_by_hand() -> None:
    # Arrange: SR 0.1 over 101 returns, normal moments: z = 0.1 * 10 / sqrt(1 + 2/4 * 0.01).
    z = 1.0 / math.sqrt(1.005)

    # Act
    psr = probabilistic_sharpe_ratio(0.1, 101, 0.0, 3.0)

    # Assert
    assert psr == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))))
    assert psr == pytest.approx(0.8407, abs=1e-4)  # Phi(0.99751)


def test_probabilistic_sharpe_ratio_penalizes_negative_skew_and_fat_tails() -> None:
    # Act
    normal = probabilistic_sharpe_ratio(0.05, 500, 0.0, 3.0)
    skewed = probabilistic_sharpe_ratio(0.05, 500, -2.0, 3.0)
    fat = probabilistic_sharpe_ratio(0.05, 500, 0.0, 30.0)
    at_benchmark = probabilistic_sharpe_ratio(0.05, 500, -2.0, 30.0, benchmark=0.05)

    # Assert
    assert skewed < normal
    assert fat < normal
    assert at_benchmark == 0.5


def test_probabilistic_sharpe_ratio_degenerate_standard_error_is_a_certainty() -> None:
    # Act: 1 - skew * SR + (kurt - 1) / 4 * SR^2 = 1 - 2 + 0 < 0 (moments no sample can have)
    above = probabilistic_sharpe_ratio(1.0, 10, 2.0, 1.0)
    below = probabilistic_sharpe_ratio(1.0, 10, 2.0, 1.0, benchmark=2.0)

    # Assert
    assert (above, below) == (1.0, 0.0)


def test_deflated_sharpe_ratio_paper_example_matches_published_value() -> None:
    # Arrange: Bailey & Lopez de Prado (2014), section 4: annual SR 2.5 over 5 years of daily
    # returns (T = 1250), N = 100 trials, annualized trial-Sharpe variance 1/2, skew -3, kurt 10.
    sharpe = 2.5 / math.sqrt(250)
    variance = 0.5 / 250

    # Act
    benchmark = expected_max_sharpe(100, variance)
    dsr = deflated_sharpe_ratio(sharpe, 1250, -3.0, 10.0, 100, variance)

    # Assert
    assert benchmark == pytest.approx(0.1132, abs=5e-5)  # the paper's SR0
    assert dsr == pytest.approx(0.9004, abs=5e-5)  # the paper's DSR


@pytest.mark.parametrize(("n_trials", "tolerance"), [(10, 0.05), (100, 0.02), (1000, 0.015)])
def test_expected_max_sharpe_approximates_monte_carlo_maximum(
    n_trials: int, tolerance: float
) -> None:
    # Arrange: E[max of N standard normals] by simulation (seeded). The closed form is an
    # approximation, high by about 2.3% at N = 10 (1.575 vs 1.539), 0.9% at 100, 0.4% at 1000.
    rng = np.random.default_rng(7)
    simulated = float(rng.standard_normal((5000, n_trials)).max(axis=1).mean())

    # Act
    approximation = expected_max_sharpe(n_trials, 4.0) / 2.0  # std 2 scales the maximum

    # Assert
    assert approximation == pytest.approx(simulated, rel=tolerance)


def test_deflated_sharpe_ratio_falls_as_trials_grow_and_never_exceeds_psr() -> None:
    # Arrange
    moments = (0.08, 750, -0.5, 6.0)
    psr = probabilistic_sharpe_ratio(*moments)

    # Act
    dsr = [deflated_sharpe_ratio(*moments, n_trials) for n_trials in (1, 2, 10, 100, 10_000)]

    # Assert
    assert dsr[0] == psr
    assert all(later < earlier for earlier, later in itertools.pairwise(dsr))
    assert dsr[-1] < 0.5 < psr


def test_deflated_sharpe_ratio_default_variance_is_the_null_estimator_variance() -> None:
    # Arrange: with V = 1/(T-1), SR0 = sqrt(1/(T-1)) * E[max z], and T = 401 gives sqrt = 1/20.
    expected_max_z = (1 - EULER_MASCHERONI) * statistics.NormalDist().inv_cdf(
        1 - 1 / 30
    ) + EULER_MASCHERONI * statistics.NormalDist().inv_cdf(1 - 1 / (30 * math.e))

    # Act
    default = deflated_sharpe_ratio(0.2, 401, 0.0, 3.0, 30)
    explicit = probabilistic_sharpe_ratio(0.2, 401, 0.0, 3.0, benchmark=expected_max_z / 20)
    wider = deflated_sharpe_ratio(0.2, 401, 0.0, 3.0, 30, sharpe_variance=4 / 400)

    # Assert
    assert default == pytest.approx(explicit)
    assert wider < default


def test_compute_report_more_trials_deflate_only_the_dsr(real_curve: Curve) -> None:
    # Act
    reports = [
        compute_report(
            real_curve.equity,
            real_curve.trades,
            initial_cash=real_curve.initial_cash,
            periods_per_year=real_curve.periods_per_year,
            n_trials=n_trials,
        )
        for n_trials in (1, 1000)
    ]

    # Assert
    assert reports[0].deflated_sharpe == reports[0].probabilistic_sharpe
    assert reports[1].probabilistic_sharpe == reports[0].probabilistic_sharpe
    assert reports[1].deflated_sharpe < reports[0].deflated_sharpe


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: probabilistic_sharpe_ratio(0.1, 1, 0.0, 3.0), "n_obs was 1"),
        (lambda: probabilistic_sharpe_ratio(float("nan"), 10, 0.0, 3.0), "must be finite"),
        (lambda: deflated_sharpe_ratio(0.1, 1, 0.0, 3.0, 5), "n_obs was 1"),
        (lambda: expected_max_sharpe(0, 1.0), "n_trials was 0"),
        (lambda: expected_max_sharpe(5, float("inf")), "sharpe_variance was inf"),
    ],
    ids=["psr_obs", "psr_nan", "dsr_obs", "trials", "variance"],
)
def test_sharpe_statistics_bad_input_raises_named_error(call: Any, message: str) -> None:
    # Act / Assert
    with pytest.raises(BacktestInputError, match=message):
        call()


@pytest.mark.parametrize(
    ("label", "asset_class", "expected"),
    [
        ("1h", AssetClass.CRYPTO, 8760.0),
        ("4h", AssetClass.CRYPTO, 2190.0),
        ("1d", AssetClass.CRYPTO, 365.0),
        ("1d", AssetClass.EQUITY, 252.0),
        ("5d", AssetClass.EQUITY, 50.4),
        ("1h", AssetClass.EQUITY, 252.0 * 7),  # 09:30 ... 15:30, the last bar half an hour
        ("1m", AssetClass.EQUITY, 252.0 * 390),
    ],
)
def test_annualization_factor_matches_calendar(
    label: str, asset_class: AssetClass, expected: float
) -> None:
    # Act
    factor = annualization_factor(Timeframe.parse(label), asset_class)

    # Assert
    assert factor == pytest.approx(expected)


def test_eval_report_json_round_trip_preserves_every_field(real_curve: Curve) -> None:
    # Arrange
    report = compute_report(
        real_curve.equity,
        real_curve.trades,
        initial_cash=real_curve.initial_cash,
        periods_per_year=real_curve.periods_per_year,
        n_trials=7,
    )

    # Act
    restored = EvalReport.model_validate_json(report.model_dump_json())

    # Assert
    assert restored == report
    assert restored.start.utcoffset() == timedelta(0)


def _report_fields(**changes: Any) -> dict[str, Any]:
    report = compute_report(
        make_equity([100.0, 120.0, 90.0, 130.0]),
        make_trades([]),
        initial_cash=100.0,
        periods_per_year=4,
    )
    return report.model_dump() | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sharpe": float("nan")}, "finite number"),
        ({"profit_factor": float("inf")}, "finite number"),
        ({"max_drawdown": 0.25}, "less than or equal to 0"),
        ({"probabilistic_sharpe": 1.5}, "less than or equal to 1"),
        ({"end": datetime(2000, 1, 1, tzinfo=UTC)}, "before start"),
        ({"start": datetime(2024, 1, 1)}, "timezone"),  # noqa: DTZ001 (naive on purpose)
        ({"alpha": 0.1}, "Extra inputs are not permitted"),
    ],
    ids=["nan", "inf", "positive_drawdown", "probability", "end_before_start", "naive", "extra"],
)
def test_eval_report_invalid_field_is_rejected(changes: dict[str, Any], message: str) -> None:
    # Act / Assert
    with pytest.raises(ValidationError, match=message):
        EvalReport(**_report_fields(**changes))


def test_eval_report_is_frozen_and_stores_utc() -> None:
    # Arrange
    eastern = timezone(timedelta(hours=-5))
    fields = _report_fields(start=datetime(2023, 12, 31, 19, tzinfo=eastern))

    # Act
    report = EvalReport(**fields)

    # Assert
    assert report.start == START
    assert report.start.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError, match="frozen"):
        report.sharpe = 3.0  # type: ignore[misc]
