"""Evaluate one walk-forward window: search the train span, trade the test span from flat.

A window reads each instrument's bars from its warm-up start to its test end and nothing
after. Indicators are computed once per distinct expression and frame (`FeatureCache`); each
trial runs the kernel and scores the portfolio's equity array; only the best parameters get
full runs with frames and reports (in sample on train, out of sample on test).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from quant_assets.backtest.regimes import regime_codes, regime_labels
from quant_assets.backtest.run_spec import build_spec_modules
from quant_assets.backtest.search import (
    WORST_SCORE,
    SearchResult,
    objective_value,
    search_params,
    window_seed,
)
from quant_assets.backtest.span_runner import SpanRun, SpanRunner
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import ParamValue, StrategySpec
from quant_assets.domain.walkforward import WindowBounds, WindowCurve, WindowResult, WindowTrade
from quant_assets.strategy.modules import FeatureCache, caching_features


@dataclass(frozen=True)
class RowRange:
    """Rows of one instrument's bars that a window uses (half-open, row numbers of its frame).

    Attributes:
        warmup_start: First row read (train warm-up).
        train_start: First train row.
        train_end: One past the last train row.
        test_start: First test row.
        test_end: One past the last test row; nothing from here on is read.
    """

    warmup_start: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


@dataclass(frozen=True)
class WindowTask:
    """Everything needed to evaluate one window (computed in the main thread)."""

    bounds: WindowBounds
    rows: dict[str, RowRange]
    bars_hash: str
    cache_key: str
    is_segment_first_at_us: int  # train bars from here on are this window's stitched IS share


def window_frames(bars: Mapping[str, pl.DataFrame], task: WindowTask) -> dict[str, pl.DataFrame]:
    """Return each instrument's bars that the window reads: [warm-up start, test end)."""
    return {
        key: bars[key].slice(rows.warmup_start, rows.test_end - rows.warmup_start)
        for key, rows in task.rows.items()
    }


def evaluate_window(
    spec: StrategySpec,
    frames: Mapping[str, pl.DataFrame],
    task: WindowTask,
    *,
    initial_cash: float,
    on_trial: Callable[[], None] | None = None,
) -> WindowResult:
    """Search the spec's space on the window's train span and trade its test span.

    Train and test runs share each instrument's frame and its indicators: the indicators are
    causal (the feature and module contract tests), so no train bar's values depend on the
    test bars, and the test run's indicators read every bar before the test span.

    Args:
        spec: The spec (its search space, walk-forward config, costs and instruments).
        frames: Per instrument, the window's bars (`window_frames`).
        task: The window's bounds, row ranges and cache identity.
        initial_cash: Cash of the whole portfolio at the start of each run.
        on_trial: Called after each trial (progress).

    Returns:
        The window's result.

    Raises:
        SpecValidationError: if the best parameters do not build (every trial was invalid).
        BacktestInputError: if a module's arrays break the engine's input contract.
    """
    features = FeatureCache(frames.values())
    with caching_features(features):
        train = SpanRunner(
            spec,
            frames,
            {
                key: (r.train_start - r.warmup_start, r.train_end - r.warmup_start)
                for key, r in task.rows.items()
            },
            initial_cash=initial_cash,
        )
        scorer = _TrialScorer(spec, train)
        config = spec.walk_forward
        seed = window_seed(config.seed, task.bounds.index)
        search = search_params(
            spec.search_space,
            scorer.score,
            n_trials=config.trials_per_window,
            seed=seed,
            on_trial=on_trial,
        )
        modules = build_spec_modules(spec, search.best_params)
        in_sample = train.run(modules, n_trials=search.trials)
        test = SpanRunner(
            spec,
            frames,
            {
                key: (r.test_start - r.warmup_start, r.test_end - r.warmup_start)
                for key, r in task.rows.items()
            },
            initial_cash=initial_cash,
        )
        out_of_sample = test.run(modules)
    # The market's regimes over the test span, from the window's own (trailing) bars.
    regime_bars = frames[spec.data.instruments[0]]
    first_ts = out_of_sample.equity["ts"][0]
    regimes = regime_codes(
        out_of_sample.equity["ts"], regime_labels(regime_bars, first_ts=first_ts)
    )
    runs = (in_sample, out_of_sample, regimes)
    return _result(task, search, seed, scorer.backtests + 2, runs, initial_cash)


class _TrialScorer:
    # Scores one parameter set on the train span; counts the backtests it runs.
    def __init__(self, spec: StrategySpec, runner: SpanRunner) -> None:
        self.spec = spec
        self.runner = runner
        self.backtests = 0

    def score(self, params: dict[str, ParamValue]) -> float:
        config = self.spec.walk_forward
        try:
            modules = build_spec_modules(self.spec, params)
            curve = self.runner.simulate(modules)
        except SpecValidationError:
            return WORST_SCORE  # parameters the modules reject (e.g. fast span >= slow span)
        self.backtests += 1
        if curve.trades < config.min_trades:
            return WORST_SCORE
        return objective_value(
            config.objective,
            curve.equity,
            initial_cash=self.runner.initial_cash,
            periods_per_year=self.runner.periods_per_year,
        )


def _result(
    task: WindowTask,
    search: SearchResult,
    seed: int,
    backtests: int,
    runs: tuple[SpanRun, SpanRun, tuple[int, ...]],
    initial_cash: float,
) -> WindowResult:
    in_sample, out_of_sample, regimes = runs
    segment_at = (
        pl.lit(task.is_segment_first_at_us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    )
    is_rows = in_sample.equity.with_row_index("row").filter(pl.col("ts") >= segment_at)
    first_row = int(is_rows["row"][0]) if is_rows.height else in_sample.equity.height
    base = initial_cash if first_row == 0 else float(in_sample.equity["equity"][first_row - 1])
    is_trades = in_sample.trades.filter(pl.col("entry_ts") >= segment_at)
    return WindowResult(
        bounds=task.bounds,
        best_params=search.best_params,
        best_value=search.best_value,
        trials=search.trials,
        worst_trials=search.worst_trials,
        backtests=backtests,
        seed=seed,
        is_report=in_sample.report,
        oos_report=out_of_sample.report,
        oos_steps=out_of_sample.steps,
        oos_curve=curve_of(out_of_sample.equity, initial_cash),
        oos_regimes=regimes,
        oos_trades=_trades(out_of_sample.trades, {k: r.test_start for k, r in task.rows.items()}),
        is_curve=curve_of(is_rows.drop("row"), base),
        is_trades=_trades(is_trades, {k: r.train_start for k, r in task.rows.items()}),
        cache_key=task.cache_key,
        bars_hash=task.bars_hash,
    )


def curve_of(equity: pl.DataFrame, base_equity: float) -> WindowCurve:
    """Return an equity frame (ts, equity, exposure) as a stored curve."""
    return WindowCurve(
        base_equity=base_equity,
        ts_us=tuple(equity["ts"].dt.epoch("us").to_list()),
        equity=tuple(equity["equity"].to_list()),
        exposure=tuple(equity["exposure"].to_list()),
    )


def _trades(trades: pl.DataFrame, first_rows: Mapping[str, int]) -> tuple[WindowTrade, ...]:
    # Bar indices of a span run count from the span's first traded bar; stored trades count
    # from the first bar of the instrument's sliced bars.
    records = []
    for row in trades.iter_rows(named=True):
        shift = first_rows[row["instrument"]]
        records.append(
            WindowTrade.model_validate(
                {**row, "entry_bar": row["entry_bar"] + shift, "exit_bar": row["exit_bar"] + shift}
            )
        )
    return tuple(records)
