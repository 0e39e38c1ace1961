"""Assemble a walk-forward run's stitched curves, reports, regimes and step counts.

The OOS curve chains each window's test curve (where test spans overlap, the later window,
trained on more recent bars, takes over); the IS curve chains each window's share of train
bars (those no later window trains on), traded by the params chosen on them. Both reports
count every trial behind the windows in their deflated Sharpe ratio.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from quant_assets.backtest.metrics import compute_report
from quant_assets.backtest.regimes import labels_of, regime_breakdown
from quant_assets.backtest.run_spec import summed_steps
from quant_assets.backtest.span_runner import portfolio_periods_per_year
from quant_assets.backtest.stitch import CurvePart, stitch
from quant_assets.domain.backtest import StepSummary
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import StrategySpec
from quant_assets.domain.walkforward import RegimeStats, WindowResult


@dataclass(frozen=True)
class RunSummary:
    """The run-level results of a set of windows.

    Attributes:
        is_report: Report of the stitched in-sample curve (n_trials = all trials).
        oos_report: Report of the stitched out-of-sample curve (n_trials = all trials).
        regimes: OOS bars, return and Sharpe per regime of the spec's first instrument.
        step_summary: The OOS runs' candidates, fills and rejections, summed.
        oos_equity: The stitched OOS curve: ts, equity, exposure.
        oos_trades: The OOS trades, scaled to the stitched curve.
    """

    is_report: EvalReport
    oos_report: EvalReport
    regimes: list[RegimeStats]
    step_summary: StepSummary
    oos_equity: pl.DataFrame
    oos_trades: pl.DataFrame


def summarize_windows(
    spec: StrategySpec, windows: Sequence[WindowResult], *, initial_cash: float
) -> RunSummary:
    """Return the stitched curves and the run's reports, regimes and step counts.

    Args:
        spec: The spec (its timeframe and instruments set the annualization).
        windows: The window results in plan order (each labels its OOS bars' regimes).
        initial_cash: Equity the stitched curves start from.
    """
    trials = sum(window.trials for window in windows)
    periods_per_year = portfolio_periods_per_year(spec)
    oos_parts = [
        CurvePart(window.oos_curve, window.oos_trades, cut_us=_first_us(following))
        for window, following in zip(windows, [*windows[1:], None], strict=True)
    ]
    oos = stitch(oos_parts, initial_cash=initial_cash)
    in_sample = stitch(
        [CurvePart(window.is_curve, window.is_trades) for window in windows],
        initial_cash=initial_cash,
    )
    oos_report, is_report = (
        compute_report(
            curve.equity,
            curve.trades,
            initial_cash=initial_cash,
            periods_per_year=periods_per_year,
            n_trials=trials,
        )
        for curve in (oos, in_sample)
    )
    regimes = regime_breakdown(
        oos.equity,
        _oos_labels(windows),
        initial_cash=initial_cash,
        periods_per_year=periods_per_year,
    )
    steps = summed_steps([window.oos_steps for window in windows])
    return RunSummary(is_report, oos_report, regimes, steps, oos.equity, oos.trades)


def _oos_labels(windows: Sequence[WindowResult]) -> pl.DataFrame:
    # Each window labelled its own test bars; overlapping bars take the later window's label
    # (labels are trailing, so both agree wherever both windows read enough history).
    times, codes = [], []
    for window, following in zip(windows, [*windows[1:], None], strict=True):
        ts_us = np.asarray(window.oos_curve.ts_us, dtype=np.int64)
        keep = ts_us < (_first_us(following) or np.iinfo(np.int64).max)
        times.append(ts_us[keep])
        codes.append(np.asarray(window.oos_regimes, dtype=np.int64)[keep])
    return labels_of(np.concatenate(times), np.concatenate(codes))


def _first_us(window: WindowResult | None) -> int | None:
    if window is None or not window.oos_curve.ts_us:
        return None
    return window.oos_curve.ts_us[0]
