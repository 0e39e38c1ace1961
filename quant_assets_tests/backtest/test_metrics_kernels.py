"""Specification of the compiled metric passes: NumPy's sums bit for bit, polars' moments.

The passes replace NumPy and polars reductions inside compute_report, so each is checked
against the library it replaces on random and real data, and the curve scan against a plain
Python loop over the same definitions.
"""

import math
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.metrics_kernels import (
    central_moments_nb,
    loss_square_sum_nb,
    pairwise_sum_nb,
    return_statistics,
    scan_equity,
)

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
# Lengths around NumPy's pairwise block (128) and lane count (8), and a long uneven one.
LENGTHS = [0, 1, 7, 8, 9, 127, 128, 129, 136, 1000, 100_003]


def random_values(length: int, seed: int) -> np.ndarray:
    # Mixed signs and magnitudes with a small drift, as bar returns have.
    rng = np.random.default_rng(seed)
    return rng.standard_t(4, size=length) * 10.0 ** rng.uniform(-4, 1) + 1e-4


def equity_frame(values: list[float], exposure: list[float], days: list[int]) -> pl.DataFrame:
    stamps = [datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day) for day in days]
    return pl.DataFrame(
        {
            "ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
            "equity": pl.Series(values, dtype=pl.Float64),
            "exposure": pl.Series(exposure, dtype=pl.Float64),
        }
    )


def reference_scan(values: list[float], days: list[int], cash: float) -> tuple[float, int, int]:
    # Plain loop over the definitions: lowest equity / running peak (the peak starts at the
    # cash), and the longest spell from a peak mark to the next mark more than one bar later or
    # to the end, in bars and in days (cash is marked one spacing before the first bar).
    marks = [cash, *values]
    stamps = [days[0] - (days[1] - days[0] if len(days) > 1 else 0), *days]
    peak_index, lowest, longest_bars, longest_days = 0, math.inf, 0, 0
    for index in range(1, len(marks)):
        if marks[index] >= marks[peak_index]:
            if index - peak_index > 1:
                longest_bars = max(longest_bars, index - peak_index)
                longest_days = max(longest_days, stamps[index] - stamps[peak_index])
            peak_index = index
        lowest = min(lowest, marks[index] / marks[peak_index])
    if peak_index < len(marks) - 1:
        longest_bars = max(longest_bars, len(marks) - 1 - peak_index)
        longest_days = max(longest_days, stamps[-1] - stamps[peak_index])
    return lowest - 1.0, longest_bars, longest_days


@pytest.mark.parametrize("length", LENGTHS)
def test_pairwise_sum_nb_any_length_equals_numpy_sum_bit_for_bit(length: int) -> None:
    # Arrange
    values = random_values(length, seed=length)

    # Act
    total = pairwise_sum_nb(values)

    # Assert: the same float, not merely a close one.
    assert total == values.sum()


@pytest.mark.parametrize("length", LENGTHS)
def test_loss_square_sum_nb_any_length_equals_numpy_bit_for_bit(length: int) -> None:
    # Arrange
    values = random_values(length, seed=length + 1)
    losses = np.minimum(values, 0.0)

    # Act
    total = loss_square_sum_nb(values)

    # Assert
    assert total == np.multiply(losses, losses).sum()


def test_central_moments_nb_random_values_match_exact_rational_sums() -> None:
    # Arrange: exact sums of d^k in rationals, d = value - mean, each rounded once at the end.
    values = random_values(5_001, seed=7)
    mean = float(values.mean())
    deviations = [Fraction(value) - Fraction(mean) for value in values.tolist()]
    exact = [float(sum(d**power for d in deviations)) for power in (2, 3, 4)]
    scales = [float(sum(abs(d) ** power for d in deviations)) for power in (2, 3, 4)]

    # Act
    sums = central_moments_nb(values, mean)

    # Assert: within a few dozen ulps of the sum of |terms| (the error of any float sum).
    for total, expected, scale in zip(sums, exact, scales, strict=True):
        assert abs(total - expected) <= 64 * np.finfo(np.float64).eps * scale


def test_return_statistics_real_returns_match_numpy_mean_and_polars_moments() -> None:
    # Arrange: hourly returns of holding BTC over the shipped history.
    close = pl.read_parquet(SAMPLE_DIR / "binance_BTC-USDT_1h.parquet")["close"].to_numpy()
    returns = close[1:] / close[:-1] - 1.0
    series = pl.Series(returns)

    # Act
    stats = return_statistics(returns)

    # Assert: the mean is NumPy's float exactly; the moments agree with polars to 1e-12.
    assert stats.mean == returns.mean()
    assert stats.downside_deviation == math.sqrt(np.square(np.minimum(returns, 0)).mean())
    assert stats.std == pytest.approx(series.std(ddof=1), rel=1e-12)
    assert stats.skewness == pytest.approx(series.skew(bias=True), rel=1e-12)
    assert stats.kurtosis == pytest.approx(series.kurtosis(fisher=False, bias=True), rel=1e-12)


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        ([0.0, 0.0, 0.0], (0.0, 0.0, 3.0)),  # no spread: no volatility, normal kurtosis
        ([0.25], (0.0, 0.0, 3.0)),  # one return has no sample std
        ([0.1, -0.1], (math.sqrt(0.02), 0.0, 1.0)),  # two points: symmetric, kurtosis 1
    ],
    ids=["flat", "single", "two_points"],
)
def test_return_statistics_degenerate_returns_have_defined_moments(
    returns: list[float], expected: tuple[float, float, float]
) -> None:
    # Act
    stats = return_statistics(np.array(returns))

    # Assert
    assert (stats.std, stats.skewness, stats.kurtosis) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "exposure", "days", "cash"),
    [
        ([100.0, 120.0, 90.0, 130.0], [1.0, 0.0, -0.5, 0.0], [0, 1, 2, 3], 100.0),
        ([90.0, 95.0, 101.0, 101.0, 80.0], [1.0, 1.0, 0.0, 1.0, 1.0], [0, 1, 4, 5, 6], 100.0),
        ([50.0, 0.0, 0.0, 10.0], [2.0, math.nan, 0.0, 0.0], [0, 1, 2, 3], 100.0),  # ruined
        ([100.0, 110.0, 121.0], [0.0, 0.0, 0.0], [0, 1, 2], 100.0),  # new highs only
        ([99.0], [1.0], [0], 100.0),  # one bar below the cash
    ],
    ids=["recovered", "weekend_open_end", "ruined", "rising", "one_bar"],
)
def test_scan_equity_hand_curves_match_plain_loop(
    values: list[float], exposure: list[float], days: list[int], cash: float
) -> None:
    # Arrange
    depth, spell_bars, spell_days = reference_scan(values, days, cash)
    bases = [cash, *values[:-1]]
    # A return needs a positive base: after a ruined bar it is defined as 0.0.
    returns = [
        now / base - 1.0 if base > 0 else 0.0 for base, now in zip(bases, values, strict=True)
    ]

    # Act
    curve = scan_equity(equity_frame(values, exposure, days), cash)

    # Assert
    assert curve.returns.tolist() == returns
    assert curve.exposed_bars == sum(value != 0.0 for value in exposure)  # NaN counts
    assert curve.mean_equity == np.mean(values)
    assert curve.drawdown.max_drawdown == min(depth, 0.0)
    if depth < 0.0:
        assert curve.drawdown.duration_bars == spell_bars
        assert curve.drawdown.duration_seconds == spell_days * 86_400.0
    else:
        assert (curve.drawdown.duration_bars, curve.drawdown.duration_seconds) == (0, 0.0)
