"""Seeded Optuna search and the lean objectives (equal to compute_report's metrics)."""

import hashlib

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.engine import EQUITY_SCHEMA, TRADES_SCHEMA
from quant_assets.backtest.metrics import compute_report
from quant_assets.backtest.search import (
    WORST_SCORE,
    Objective,
    Score,
    bar_returns,
    objective_value,
    search_params,
    window_seed,
)
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.report import RATIO_CAP
from quant_assets.domain.strategy import ParamRange, ParamValue

SPACE = {
    "baseline.slow_span_bars": ParamRange(low=50, high=300, kind="int"),
    "baseline.fast_span_bars": ParamRange(low=5, high=40, kind="int", log=True),
    "execution.stop_atr": ParamRange(low=1.5, high=5.0, kind="float"),
}


def bowl(params: dict[str, ParamValue]) -> float:
    # A smooth objective with its top at fast 12, slow 100, stop 3.
    return -(
        (float(params["baseline.fast_span_bars"]) - 12.0) ** 2
        + ((float(params["baseline.slow_span_bars"]) - 100.0) / 10.0) ** 2
        + (float(params["execution.stop_atr"]) - 3.0) ** 2
    )


def test_search_params_same_seed_gives_same_trials_and_best() -> None:
    # Arrange
    seen: list[list[dict[str, ParamValue]]] = [[], []]

    def recording(run: int) -> Score:
        def score(params: dict[str, ParamValue]) -> float:
            seen[run].append(params)
            return bowl(params)

        return score

    # Act
    first = search_params(SPACE, recording(0), n_trials=25, seed=11)
    second = search_params(SPACE, recording(1), n_trials=25, seed=11)
    other = search_params(SPACE, bowl, n_trials=25, seed=12)

    # Assert
    assert seen[0] == seen[1]
    assert first == second
    assert other.best_params != first.best_params
    assert first.trials == 25
    assert first.best_value == max(bowl(params) for params in seen[0])


def test_search_params_kinds_and_bounds_are_respected() -> None:
    # Arrange
    seen: list[dict[str, ParamValue]] = []

    def score(params: dict[str, ParamValue]) -> float:
        seen.append(params)
        return bowl(params)

    # Act
    search_params(SPACE, score, n_trials=30, seed=3)

    # Assert
    for params in seen:
        slow = params["baseline.slow_span_bars"]
        fast = params["baseline.fast_span_bars"]
        stop = params["execution.stop_atr"]
        assert isinstance(slow, int)
        assert isinstance(fast, int)
        assert isinstance(stop, float)
        assert 50 <= slow <= 300
        assert 5 <= fast <= 40
        assert 1.5 <= stop <= 5.0


def test_search_params_worst_trials_are_counted() -> None:
    # Arrange: slow spans below 100 score worst (like a trial with too few trades).
    def score(params: dict[str, ParamValue]) -> float:
        return WORST_SCORE if float(params["baseline.slow_span_bars"]) < 100 else bowl(params)

    # Act
    result = search_params(SPACE, score, n_trials=20, seed=5)

    # Assert
    assert 0 < result.worst_trials < 20
    assert result.best_value > WORST_SCORE


def test_search_params_empty_space_scores_the_spec_once() -> None:
    # Arrange
    calls: list[dict[str, ParamValue]] = []

    def score(params: dict[str, ParamValue]) -> float:
        calls.append(params)
        return 1.5

    # Act
    result = search_params({}, score, n_trials=50, seed=1)

    # Assert
    assert calls == [{}]
    assert (result.best_params, result.best_value, result.trials) == ({}, 1.5, 1)


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        (ParamRange(low=2.2, high=2.8, kind="int"), "holds no whole number"),
        (ParamRange(low=0.0, high=1.0, kind="float", log=True), "must start above 0"),
    ],
)
def test_search_params_empty_or_bad_range_raises_naming_the_path(
    bounds: ParamRange, message: str
) -> None:
    # Act / Assert
    with pytest.raises(SpecValidationError, match=f"'risk.x'.*{message}"):
        search_params({"risk.x": bounds}, bowl, n_trials=2, seed=0)


def test_window_seed_hashes_spec_seed_and_window_index() -> None:
    # Arrange: the first four bytes of sha256("42:3"), big-endian.
    expected = int.from_bytes(hashlib.sha256(b"42:3").digest()[:4], "big")

    # Act / Assert
    assert window_seed(42, 3) == expected
    assert len({window_seed(42, index) for index in range(100)}) == 100


def curve(values: list[float]) -> pl.DataFrame:
    ts = pl.datetime_range(
        pl.datetime(2024, 1, 1, time_zone="UTC"),
        pl.datetime(2024, 1, 1, time_zone="UTC") + pl.duration(hours=len(values) - 1),
        "1h",
        eager=True,
    )
    return pl.DataFrame(
        {"ts": ts, "equity": values, "exposure": [1.0] * len(values)}, schema=EQUITY_SCHEMA
    )


@pytest.mark.parametrize("objective", ["sharpe", "sortino", "calmar", "total_return"])
def test_objective_value_equals_compute_report_metric(objective: Objective) -> None:
    # Arrange: a noisy random walk (seeded), with a drawdown and losing bars.
    rng = np.random.default_rng(9)
    values = list(10_000.0 * np.cumprod(1.0 + rng.normal(0.0002, 0.01, 2_000)))
    frame = curve(values)
    report = compute_report(
        frame, pl.DataFrame(schema=TRADES_SCHEMA), initial_cash=10_000.0, periods_per_year=8_760.0
    )

    # Act
    value = objective_value(
        objective, np.asarray(values), initial_cash=10_000.0, periods_per_year=8_760.0
    )

    # Assert
    assert value == pytest.approx(getattr(report, objective), rel=1e-12)


def test_objective_value_flat_curve_scores_zero_and_capped_sortino() -> None:
    # Arrange: no variance -> Sharpe 0; only gains -> Sortino capped (as compute_report).
    flat = np.full(10, 10_000.0)
    rising = 10_000.0 + np.arange(1.0, 11.0)

    # Act / Assert
    assert objective_value("sharpe", flat, initial_cash=10_000.0, periods_per_year=8_760.0) == 0
    assert (
        objective_value("sortino", rising, initial_cash=10_000.0, periods_per_year=8_760.0)
        == RATIO_CAP
    )


def test_bar_returns_hand_example_measures_first_bar_from_cash() -> None:
    # Arrange: 100 -> 110 -> 99 -> 0 -> 5: the bar after a ruined one returns 0 by definition.
    equity = np.array([110.0, 99.0, 0.0, 5.0])

    # Act
    returns = bar_returns(equity, 100.0)

    # Assert
    np.testing.assert_allclose(returns, [0.1, -0.1, -1.0, 0.0])
