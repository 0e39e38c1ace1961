"""Attempts from results: what one proposed spec scored, in the loop's vocabulary.

The verdict is left to the policy (`research.policy.fold_iteration` judges each attempt against
the state); here an attempt only records what happened: the run's key metrics, the centre of
its best parameter region, its archive record and the blocking audits it failed.
"""

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from quant_assets.domain.governance import ArchiveRecord
from quant_assets.domain.research import (
    HYPOTHESIS_CHARS,
    NOTE_CHARS,
    Attempt,
    AttemptMetrics,
    Proposal,
    Verdict,
)
from quant_assets.domain.strategy import ParamValue
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.research.spec_builder import describe_modules
from quant_assets.strategy.catalog.loader import Catalog


def best_region(run: WalkForwardRun) -> dict[str, ParamValue]:
    """Return the centre of a run's best parameters over its windows.

    Numbers take the median of the windows' best values (an int parameter stays an int);
    other values take the most frequent one (the earliest on ties).
    """
    values: dict[str, list[ParamValue]] = {}
    for window in run.windows:
        for path, value in window.best_params.items():
            values.setdefault(path, []).append(value)
    centre: dict[str, ParamValue] = {}
    for path, seen in values.items():
        numbers = [v for v in seen if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(seen):
            median = statistics.median(numbers)
            centre[path] = round(median) if all(isinstance(v, int) for v in numbers) else median
        else:
            centre[path] = Counter(seen).most_common(1)[0][0]
    return centre


def ran_attempt(
    proposal: Proposal,
    iteration: int,
    run: WalkForwardRun,
    record: ArchiveRecord,
    catalog: Catalog,
) -> Attempt:
    """Return the attempt of a proposal whose walk-forward run finished and was archived."""
    oos = run.oos_report
    return Attempt(
        **_identity(proposal, iteration, catalog),
        metrics=AttemptMetrics(
            oos_sharpe=oos.sharpe,
            oos_max_drawdown=oos.max_drawdown,
            oos_total_return=oos.total_return,
            oos_trades=oos.trades,
            is_sharpe=run.is_report.sharpe,
            deflated_sharpe=run.deflated_sharpe,
        ),
        best_params=best_region(run),
        record_id=record.record_id,
        record_state=record.state.value,
        failed_audits=tuple(audit.name for audit in record.audits if audit.blocks),
        verdict=Verdict.NO_GAIN,
    )


def rejected_attempt(proposal: Proposal, iteration: int, reason: str, catalog: Catalog) -> Attempt:
    """Return the attempt of a proposal that produced no result (validation or run failure)."""
    return Attempt(
        **_identity(proposal, iteration, catalog),
        verdict=Verdict.REJECTED,
        note=reason[:NOTE_CHARS],
    )


def _identity(proposal: Proposal, iteration: int, catalog: Catalog) -> dict[str, Any]:
    # What every attempt says about its proposal, whatever became of it.
    return {
        "iteration": iteration,
        "spec_id": proposal.spec.spec_id,
        "template": proposal.spec.template,
        "family": catalog.entry(proposal.spec.template).family.value,
        "dimension": proposal.dimension,
        "proposer": proposal.proposer,
        "modules": describe_modules(proposal.spec),
        "hypothesis": proposal.hypothesis[:HYPOTHESIS_CHARS],
    }


def best_candidate(attempts: Sequence[Attempt]) -> Attempt | None:
    """Return the attempt with the highest OOS Sharpe whose record is a candidate, if any."""
    candidates = [a for a in attempts if a.record_state == "candidate" and a.metrics is not None]
    return max(candidates, key=lambda a: a.metrics.oos_sharpe if a.metrics else 0.0, default=None)
