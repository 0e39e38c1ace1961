"""Seeded Optuna search of a spec's parameter space, and the lean objectives trials score by.

One study per walk-forward window, TPE seeded from (spec seed, window index), trials run one
after another: the same inputs give the same trials and the same best params however many
windows run in parallel. The objectives compute the EvalReport metric of the same name from a
portfolio equity array with the formulas of `metrics.compute_report`, without building frames.
"""

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import optuna
import polars as pl

from quant_assets.backtest.ratios import capped_ratio, clip_ratio, compound_annual_growth
from quant_assets.domain.arrays import FloatArray
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.report import RATIO_CAP
from quant_assets.domain.strategy import ParamRange, ParamValue

Objective = Literal["sharpe", "sortino", "calmar", "total_return"]
WORST_SCORE: Final = -2.0 * RATIO_CAP
"""Score of a trial with too few trades or invalid params: below every capped metric."""

Score = Callable[[dict[str, ParamValue]], float]


@dataclass(frozen=True)
class SearchResult:
    """The outcome of one study.

    Attributes:
        best_params: Values of the best trial by parameter path (the first best on ties).
        best_value: Its score.
        trials: Trials run.
        worst_trials: Trials that scored WORST_SCORE.
    """

    best_params: dict[str, ParamValue]
    best_value: float
    trials: int
    worst_trials: int


def window_seed(spec_seed: int, window_index: int) -> int:
    """Return the TPE seed of one window: a 32-bit hash of the spec's seed and the index."""
    digest = hashlib.sha256(f"{spec_seed}:{window_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def search_params(
    space: Mapping[str, ParamRange],
    score: Score,
    *,
    n_trials: int,
    seed: int,
    on_trial: Callable[[], None] | None = None,
) -> SearchResult:
    """Maximize `score` over `space` with a seeded TPE study, trials run sequentially.

    Parameters are suggested in sorted path order, so the draws depend on the space's content
    only. An empty space has nothing to search: `score` runs once on no overrides.

    Args:
        space: Search ranges by parameter path (`baseline.fast_span_bars`, ...).
        score: Returns the objective of one parameter set (higher is better).
        n_trials: Trials to run (at least 1).
        seed: Seed of the TPE sampler.
        on_trial: Called after each trial (progress).

    Returns:
        The best parameters, their score and the trial counts.

    Raises:
        SpecValidationError: if a range holds no value of its kind (an int range without a
            whole number, a log range not above zero).
    """
    ranges = {path: _checked_range(path, space[path]) for path in sorted(space)}
    if not ranges:
        value = score({})
        if on_trial is not None:
            on_trial()
        return SearchResult({}, value, 1, int(value <= WORST_SCORE))
    with quiet_optuna():
        sampler = optuna.samplers.TPESampler(seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        worst = 0
        for _ in range(n_trials):
            trial = study.ask()
            params = {path: _suggest(trial, path, bounds) for path, bounds in ranges.items()}
            value = score(params)
            worst += value <= WORST_SCORE
            study.tell(trial, value)
            if on_trial is not None:
                on_trial()
    best = study.best_trial
    best_value = best.value if best.value is not None else WORST_SCORE
    return SearchResult(dict(best.params), float(best_value), n_trials, worst)


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Keep Optuna to warnings in this block (it logs a line per study and trial otherwise).

    The level is Optuna's own, process-wide: it is lowered only if it was more verbose, and
    restored after.
    """
    verbosity = optuna.logging.get_verbosity()
    if verbosity >= optuna.logging.WARNING:
        yield
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def objective_value(
    objective: Objective,
    equity: FloatArray,
    *,
    initial_cash: float,
    periods_per_year: float,
) -> float:
    """Return one EvalReport metric of an equity curve, as compute_report computes it.

    Args:
        objective: The metric: sharpe, sortino, calmar or total_return.
        equity: Equity per bar.
        initial_cash: Equity before the first bar.
        periods_per_year: Bars per year.

    Returns:
        The metric (ratios clipped to +/-RATIO_CAP, degenerate cases as compute_report).
    """
    total_return = float(equity[-1]) / initial_cash - 1.0
    if objective == "total_return":
        return total_return
    if objective == "calmar":
        return capped_ratio(
            compound_annual_growth(total_return, equity.shape[0] / periods_per_year),
            _drawdown(equity, initial_cash),
        )
    returns = bar_returns(equity, initial_cash)
    mean = float(returns.mean())
    root_ppy = math.sqrt(periods_per_year)
    if objective == "sortino":
        losses = np.minimum(returns, 0.0)
        downside = math.sqrt(float((losses * losses).sum()) / returns.shape[0])
        return capped_ratio(mean * root_ppy, downside)
    std = pl.Series(returns).std(ddof=1) if returns.shape[0] > 1 else None
    if not isinstance(std, float) or not std > 0.0:
        return 0.0
    return clip_ratio(mean / std * root_ppy)


def bar_returns(equity: FloatArray, initial_cash: float) -> FloatArray:
    """Return each bar's simple return, the first from initial cash, 0 after a ruined bar."""
    returns = np.empty_like(equity)
    returns[0] = equity[0] / initial_cash
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(equity[1:], equity[:-1], out=returns[1:])
    returns -= 1.0
    if equity.shape[0] > 1 and float(equity[:-1].min()) <= 0.0:
        returns[1:][equity[:-1] <= 0.0] = 0.0
    return returns


def _drawdown(equity: FloatArray, initial_cash: float) -> float:
    # |max drawdown|, the running peak starting at the initial cash.
    peak = np.maximum(np.maximum.accumulate(equity), initial_cash)
    return abs(min(float((equity / peak).min()) - 1.0, 0.0))


def _checked_range(path: str, bounds: ParamRange) -> ParamRange:
    low, high = bounds.low, bounds.high
    if bounds.kind == "int":
        low, high = float(math.ceil(low)), float(math.floor(high))
        if low > high:
            raise SpecValidationError(
                f"search range '{path}' was [{bounds.low}, {bounds.high}] of kind int, which "
                "holds no whole number; widen it to include one"
            )
    if bounds.log and low <= 0.0:
        raise SpecValidationError(
            f"search range '{path}' was [{bounds.low}, {bounds.high}] with log=true; a log "
            "range must start above 0, so raise low or set log to false"
        )
    return ParamRange(low=low, high=high, kind=bounds.kind, log=bounds.log)


def _suggest(trial: optuna.Trial, path: str, bounds: ParamRange) -> ParamValue:
    if bounds.kind == "int":
        return trial.suggest_int(path, int(bounds.low), int(bounds.high), log=bounds.log)
    return trial.suggest_float(path, bounds.low, bounds.high, log=bounds.log)
