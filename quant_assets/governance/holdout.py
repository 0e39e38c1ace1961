"""The sealed holdout: a goal's final period, read once, when a record of the goal is frozen.

A research goal reserves the end of its data slice (by default the last 15% of its time span,
or from an explicit start). No proposer, search or audit reads it: they read bars through
`storage.archive.BarsReader`, which refuses any read reaching the holdout start. When a
record is frozen (`freeze_record`), its pinned strategy is evaluated on the holdout exactly
once (`evaluate_holdout_once`), the result is stored on a new version of the record, and the
goal is marked spent in the warehouse (a persisted marker, so a second evaluation of the goal
is refused in any process, for any record: otherwise the holdout would become a selection set).

The frozen record also carries the deflated Sharpe of its OOS Sharpe over every trial run
under the goal (all specs tried, all Optuna trials, LLM proposals included), not just its own.
"""

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

import polars as pl

from quant_assets.backtest.metrics import deflated_sharpe_ratio
from quant_assets.backtest.run_spec import run_spec
from quant_assets.domain.errors import ConfigurationError, HoldoutSealedError
from quant_assets.domain.governance import (
    SYSTEM_ACTOR,
    ArchiveRecord,
    HoldoutGuard,
    HoldoutPolicy,
    HoldoutResult,
    RecordState,
)
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ParamValue, StrategySpec
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.governance.lifecycle import transition
from quant_assets.storage.archive import ArchiveStore
from quant_assets.storage.bars_reader import BarsReader

HoldoutRun = Callable[
    [StrategySpec, Mapping[str, pl.DataFrame], Mapping[str, ParamValue]], EvalReport
]
"""Evaluates a spec with one parameter set on the holdout bars and returns its report."""


def holdout_start(
    data_slice_start: datetime, data_slice_end: datetime, policy: HoldoutPolicy
) -> datetime:
    """Return the first sealed instant of a data slice [start, end) under a holdout policy.

    Without an explicit start, the holdout is the last `policy.fraction` of the slice's time
    span: start + (end - start) x (1 - fraction), to the microsecond (bars opening at or after
    it are sealed). Time, not bar count, so the bars need not be loaded to know the seal.

    Raises:
        ConfigurationError: if the slice is empty, or the explicit start is not strictly
            inside it.
    """
    if data_slice_end <= data_slice_start:
        raise ConfigurationError(
            f"data slice [{data_slice_start.isoformat()}, {data_slice_end.isoformat()}) is "
            "empty; the goal's slice end must be after its start"
        )
    if policy.start is None:
        span = data_slice_end - data_slice_start
        return (data_slice_start + span * (1.0 - policy.fraction)).astimezone(UTC)
    if not data_slice_start < policy.start < data_slice_end:
        raise ConfigurationError(
            f"holdout start {policy.start.isoformat()} is outside the data slice "
            f"[{data_slice_start.isoformat()}, {data_slice_end.isoformat()}); choose a start "
            f"inside it, or drop it to seal the last {policy.fraction:.0%}"
        )
    return policy.start


def holdout_guard(
    goal: str, data_slice_start: datetime, data_slice_end: datetime, policy: HoldoutPolicy
) -> HoldoutGuard:
    """Return the seal of a goal's holdout: from `holdout_start` to the slice end."""
    start = holdout_start(data_slice_start, data_slice_end, policy)
    return HoldoutGuard(goal=goal, start=start, end=data_slice_end)


def goal_trial_count(runs: Iterable[WalkForwardRun]) -> int:
    """Return the trials behind every run of a goal: the sum of their `trials_total`.

    A run listed twice counts once; a spec re-run on new data counts again (conservative: more
    trials deflate more).
    """
    unique = {run.run_id: run.trials_total for run in runs}
    return sum(unique.values())


def goal_deflated_sharpe(
    sharpe_per_period: float, n_obs: int, skew: float, kurtosis: float, goal_trials: int
) -> float:
    """Return the deflated Sharpe of an OOS Sharpe over every trial run under its goal.

    Args:
        sharpe_per_period: OOS Sharpe ratio, not annualized (mean / std of bar returns).
        n_obs: Number of OOS bar returns.
        skew: Skewness of those returns.
        kurtosis: Their kurtosis, not excess.
        goal_trials: Trials across the goal (`goal_trial_count`), at least 1.

    Raises:
        BacktestInputError: if an input is out of range (see `deflated_sharpe_ratio`).
    """
    return deflated_sharpe_ratio(sharpe_per_period, n_obs, skew, kurtosis, goal_trials)


def goal_deflated_sharpe_of(oos: EvalReport, goal_trials: int) -> float:
    """Return `goal_deflated_sharpe` of an OOS report (0.0 for a flat curve, as its own DSR)."""
    if oos.annualized_volatility == 0.0 or oos.bars < 2:
        return 0.0
    per_period = oos.sharpe / math.sqrt(oos.periods_per_year)
    return goal_deflated_sharpe(per_period, oos.bars, oos.skewness, oos.kurtosis, goal_trials)


def run_pinned(
    spec: StrategySpec, bars: Mapping[str, pl.DataFrame], params: Mapping[str, ParamValue]
) -> EvalReport:
    """Return the report of `run_spec` with `params` on the holdout bars (one trial).

    The run starts cold at the holdout start: indicators warm up on holdout bars, so the
    first bars of the holdout cannot trade. This never reads outside the holdout and never
    flatters the result.
    """
    return run_spec(spec, bars, params, n_trials=1).report


def last_window_params(record: ArchiveRecord) -> tuple[int, dict[str, ParamValue]]:
    """Return the index and best params of the record's last walk-forward window.

    The last window's parameters were fitted on the most recent training data, so they are
    the ones that would trade next: the holdout tests the strategy as it would be deployed.
    """
    index = max(record.pinned)
    return index, dict(record.pinned[index])


def evaluate_holdout_once(
    store: ArchiveStore,
    record: ArchiveRecord,
    spec: StrategySpec,
    bars_reader: BarsReader,
    run: HoldoutRun = run_pinned,
    *,
    at: datetime | None = None,
) -> ArchiveRecord:
    """Evaluate a frozen record's pinned strategy on its goal's holdout, once; return it.

    Uses the params of the last window (`last_window_params`); stores the result on a new
    version of the record and marks the goal's holdout spent, in one transaction.

    Args:
        store: The archive.
        record: The frozen record (its stored latest version is what counts).
        spec: The record's strategy spec.
        bars_reader: The goal's bars reader (its guard seals the holdout).
        run: Evaluates the spec on the holdout bars (`run_pinned` by default).
        at: Evaluation time (UTC); now if None.

    Raises:
        HoldoutSealedError: if the record is not frozen, or the goal's holdout was already
            evaluated (for this record or another).
        ConfigurationError: if the spec is not the record's, or an instrument has fewer than 2
            holdout bars.
    """
    current = store.get(record.record_id)
    _check_spec(current, spec)
    if current.state is not RecordState.FROZEN:
        raise HoldoutSealedError(
            f"record {current.record_id} is '{current.state}'; the holdout of goal "
            f"'{current.goal}' is evaluated only when a record is frozen (freeze_record)"
        )
    bars = bars_reader.read_holdout(current.record_id, spec.data.instruments)
    short = {key: frame.height for key, frame in bars.items() if frame.height < 2}
    if short:
        guard = bars_reader.guard
        raise ConfigurationError(
            f"goal '{current.goal}': the holdout [{guard.start.isoformat()}, "
            f"{guard.end.isoformat()}) holds too few bars {short} to evaluate record "
            f"{current.record_id}; ingest the bars of that period, or give the goal a longer "
            "holdout"
        )
    window_index, params = last_window_params(current)
    result = HoldoutResult(
        start=bars_reader.guard.start,
        end=bars_reader.guard.end,
        window_index=window_index,
        params=params,
        report=run(spec, bars, params),
        evaluated_at=at or datetime.now(UTC),
    )
    evaluated = ArchiveRecord.model_validate({**current.model_dump(), "holdout": result})
    store.record_holdout(evaluated)
    return evaluated


def freeze_record(
    store: ArchiveStore,
    record_id: str,
    spec: StrategySpec,
    bars_reader: BarsReader,
    *,
    goal_trials: int,
    reason: str,
    at: datetime | None = None,
    run: HoldoutRun = run_pinned,
) -> ArchiveRecord:
    """Freeze a candidate (stamping the goal-level deflated Sharpe) and evaluate its holdout.

    The freeze is stored first; if the evaluation then fails (bars missing, say), the record
    stays frozen without a holdout result and `evaluate_holdout_once` can be retried.

    Args:
        store: The archive.
        record_id: The candidate to freeze.
        spec: Its strategy spec.
        bars_reader: The goal's bars reader.
        goal_trials: Trials run under the goal (`goal_trial_count` over all its runs).
        reason: Why research froze it (converged, goal met).
        at: When (UTC); now if None.
        run: Evaluates the spec on the holdout bars.

    Raises:
        LifecycleError: if the record is not a candidate.
        ConfigurationError: if the spec or the reader's goal is not the record's, or
            `goal_trials` is below the trials of the record's own run.
        HoldoutSealedError: if the goal's holdout was already evaluated (then nothing changes:
            the record is not frozen).
    """
    record = store.get(record_id)
    _check_spec(record, spec)
    if bars_reader.guard.goal != record.goal:
        raise ConfigurationError(
            f"record {record_id} belongs to goal '{record.goal}' but the bars reader seals "
            f"goal '{bars_reader.guard.goal}'; pass the reader of the record's goal"
        )
    if goal_trials < record.metrics.oos.n_trials:
        raise ConfigurationError(
            f"goal_trials was {goal_trials}, below the {record.metrics.oos.n_trials} trials of "
            f"record {record_id}'s own run; count every trial of goal '{record.goal}' "
            "(goal_trial_count over all its runs)"
        )
    spent = store.holdout_evaluation(record.goal)
    if spent is not None:
        raise HoldoutSealedError(
            f"record {record_id} is not frozen: the holdout of goal '{record.goal}' was already "
            f"evaluated on record {spent[0]} at {spent[1].isoformat()}, and a goal's holdout is "
            "read once; start a new goal (with a new holdout period) for this strategy"
        )
    when = at or datetime.now(UTC)
    frozen, step = transition(
        record,
        RecordState.FROZEN,
        actor=SYSTEM_ACTOR,
        reason=reason,
        at=when,
        goal_deflated_sharpe=goal_deflated_sharpe_of(record.metrics.oos, goal_trials),
        goal_trials=goal_trials,
    )
    store.append(frozen, step)
    return evaluate_holdout_once(store, frozen, spec, bars_reader, run, at=when)


def _check_spec(record: ArchiveRecord, spec: StrategySpec) -> None:
    if spec.spec_id != record.spec_id:
        raise ConfigurationError(
            f"spec '{spec.name}' has id {spec.spec_id}, but record {record.record_id} pins spec "
            f"{record.spec_id}; load the record's spec (storage.research.load_spec)"
        )
