"""The archive lifecycle: which moves are legal, who may make them, and how a result enters.

States and moves (DESIGN.md, Governance; the table is `domain.governance.LEGAL_MOVES`):

    (new result) -> candidate   automatic: OOS metrics pass the goal's archive thresholds and
                                every blocking audit passed
    (new result) -> discarded   automatic: otherwise
    candidate -> frozen         automatic: research converged or the goal is met; the spec,
                                best params per window, data versions and engine version are
                                pinned (hashed into the record id) and the goal-level deflated
                                Sharpe is stamped
    frozen -> production        a named person (approval)
    frozen -> deprecated        a named person (rejection)
    production -> deprecated    a named person (decommission)

Every function here is pure: it returns the next version of the record and its `Transition`;
`storage.archive.ArchiveStore.append` persists both in one transaction.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

from quant_assets.domain.errors import ConfigurationError, LifecycleError, SpecValidationError
from quant_assets.domain.governance import (
    LEGAL_MOVES,
    PERSON_MOVES,
    SYSTEM_ACTOR,
    ArchiveRecord,
    ArchiveThresholds,
    MetricsSnapshot,
    RecordAudit,
    RecordState,
    Transition,
    is_person_name,
)
from quant_assets.domain.report import EvalReport
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.governance.audits import AuditOutcome

_ANCESTRY_LIMIT = 10_000


def allowed_moves(state: RecordState | None) -> tuple[RecordState, ...]:
    """Return the states a record in `state` may move to (None: a new result)."""
    return LEGAL_MOVES[state]


def describe_allowed_moves(state: RecordState | None) -> str:
    """Return the legal moves from `state` in words, each with who may make it."""
    targets = LEGAL_MOVES[state]
    if not targets:
        return f"none, '{state}' is final"
    parts = [
        f"'{target}' ({'a named person' if (state, target) in PERSON_MOVES else SYSTEM_ACTOR})"
        for target in targets
    ]
    return ", ".join(parts)


def transition(
    record: ArchiveRecord,
    to_state: RecordState,
    *,
    actor: str,
    reason: str,
    at: datetime | None = None,
    goal_deflated_sharpe: float | None = None,
    goal_trials: int | None = None,
) -> tuple[ArchiveRecord, Transition]:
    """Return the record's next version in `to_state` and the trail row of the move.

    Freezing (candidate -> frozen) stamps the goal-level deflated Sharpe and its trial count,
    so both are required for it and refused for every other move.

    Args:
        record: The record's current (latest) version.
        to_state: The state to move to.
        actor: `system` for automatic moves; the deciding person's name for the others.
        reason: Why (kept in the trail).
        at: When (UTC); now if None.
        goal_deflated_sharpe: For freezing: DSR over every trial of the goal.
        goal_trials: For freezing: the number of those trials.

    Raises:
        LifecycleError: if the move is not legal from the record's state, if a person-only
            move names no person (blank or `system`), if an automatic move names a person, if
            the reason is blank, or if the freeze stamps are missing or given to another move.
    """
    move = f"record {record.record_id} (goal '{record.goal}') from '{record.state}' to '{to_state}'"
    if to_state not in LEGAL_MOVES[record.state]:
        raise LifecycleError(
            f"cannot move {move}: not a legal move; allowed from '{record.state}': "
            f"{describe_allowed_moves(record.state)}"
        )
    name = actor.strip()
    if (record.state, to_state) in PERSON_MOVES:
        if not is_person_name(name):
            raise LifecycleError(
                f"cannot move {move}: only a named person may, and the actor was {actor!r}; "
                "give the deciding person's name (not blank, not 'system')"
            )
    elif name != SYSTEM_ACTOR:
        raise LifecycleError(
            f"cannot move {move}: the move is automatic and its actor is 'system', but was "
            f"{actor!r}; a person decides only approval, rejection and decommission"
        )
    if not reason.strip():
        raise LifecycleError(f"cannot move {move}: the reason is blank; say why, for the trail")
    stamps = _freeze_stamps(move, to_state, goal_deflated_sharpe, goal_trials)
    step = Transition(
        record_id=record.record_id,
        sequence=record.sequence + 1,
        from_state=record.state,
        to_state=to_state,
        actor=name,
        at=at or datetime.now(UTC),
        reason=reason.strip(),
    )
    changes = {"state": to_state, "sequence": step.sequence, **stamps}
    return ArchiveRecord.model_validate({**record.model_dump(), **changes}), step


def _freeze_stamps(
    move: str, to_state: RecordState, goal_dsr: float | None, goal_trials: int | None
) -> dict[str, float | int]:
    if to_state is not RecordState.FROZEN:
        if goal_dsr is not None or goal_trials is not None:
            raise LifecycleError(
                f"cannot move {move} with a goal-level deflated Sharpe: only freezing stamps "
                "it; drop goal_deflated_sharpe and goal_trials"
            )
        return {}
    if goal_dsr is None or goal_trials is None:
        raise LifecycleError(
            f"cannot move {move} without the goal-level deflated Sharpe: freezing pins it; "
            "compute it with governance.holdout.goal_deflated_sharpe over every trial of the "
            "goal, or freeze through governance.holdout.freeze_record"
        )
    return {"goal_deflated_sharpe": goal_dsr, "goal_trials": goal_trials}


def to_record_audits(audits: Iterable[AuditOutcome | RecordAudit]) -> tuple[RecordAudit, ...]:
    """Return audit verdicts in the archived form (name, passed, blocking, message)."""
    return tuple(
        RecordAudit(
            name=str(audit.name),
            passed=audit.passed,
            blocking=audit.blocking,
            message=audit.message,
        )
        for audit in audits
    )


def classify_new_result(
    oos_report: EvalReport,
    audits: Iterable[AuditOutcome | RecordAudit],
    thresholds: ArchiveThresholds,
) -> RecordState:
    """Return the state of a new result: `candidate` if it passes, else `discarded`.

    It passes when it clears the goal's bar and every blocking audit passed. The bar: OOS
    Sharpe >= `thresholds.min_oos_sharpe` and OOS max drawdown no deeper than
    `thresholds.max_drawdown` (both boundaries pass). Failed non-blocking audits only warn.
    """
    shortfalls = result_shortfalls(oos_report, to_record_audits(audits), thresholds)
    return RecordState.DISCARDED if shortfalls else RecordState.CANDIDATE


def result_shortfalls(
    oos_report: EvalReport, audits: Sequence[RecordAudit], thresholds: ArchiveThresholds
) -> list[str]:
    """Return why a result falls short of a candidate, one sentence each (empty if it passes)."""
    shortfalls: list[str] = []
    if oos_report.sharpe < thresholds.min_oos_sharpe:
        shortfalls.append(
            f"OOS Sharpe {oos_report.sharpe:.3f} is below the goal's minimum "
            f"{thresholds.min_oos_sharpe:.3f}"
        )
    if oos_report.max_drawdown < thresholds.max_drawdown:
        shortfalls.append(
            f"OOS max drawdown {oos_report.max_drawdown:.2%} is deeper than the goal's limit "
            f"{thresholds.max_drawdown:.2%}"
        )
    shortfalls += [f"blocking audit '{audit.name}' failed" for audit in audits if audit.blocks]
    return shortfalls


def open_record(
    run: WalkForwardRun,
    *,
    goal: str,
    parent_spec_ids: Sequence[str],
    audits: Iterable[AuditOutcome | RecordAudit],
    thresholds: ArchiveThresholds,
    preferences_hash: str,
    at: datetime | None = None,
) -> tuple[ArchiveRecord, Transition]:
    """Return a new result's record, classified candidate or discarded, and its creation row.

    The record pins the run's best parameters per window, data versions and engine version;
    its id hashes them with the lineage, metrics, audits and preferences hash.

    Args:
        run: The walk-forward run of the spec.
        goal: The research goal's name.
        parent_spec_ids: The spec's ancestors, nearest first (see `spec_ancestry`).
        audits: The run's audit verdicts.
        thresholds: The goal's archive thresholds.
        preferences_hash: Hash of the preferences the audits applied.
        at: Creation time (UTC); now if None.

    Raises:
        ConfigurationError: if the run was computed under other preferences than the audits.
    """
    if run.preferences_hash and run.preferences_hash != preferences_hash:
        raise ConfigurationError(
            f"run {run.run_id} was computed under preferences {run.preferences_hash} but the "
            f"audits applied {preferences_hash}; re-run the walk-forward and the audits under "
            "the current preferences.yaml before archiving"
        )
    archived = to_record_audits(audits)
    shortfalls = result_shortfalls(run.oos_report, archived, thresholds)
    state = RecordState.DISCARDED if shortfalls else RecordState.CANDIDATE
    created_at = at or datetime.now(UTC)
    record = ArchiveRecord.create(
        spec_id=run.spec_id,
        parent_spec_ids=tuple(parent_spec_ids),
        run_id=run.run_id,
        goal=goal,
        data_versions=dict(run.data_versions),
        engine_version=run.engine_version,
        preferences_hash=preferences_hash,
        pinned={window.bounds.index: dict(window.best_params) for window in run.windows},
        metrics=MetricsSnapshot(
            oos=run.oos_report, in_sample=run.is_report, deflated_sharpe=run.deflated_sharpe
        ),
        audits=archived,
        state=state,
        created_at=created_at,
    )
    reason = (
        "; ".join(shortfalls)
        if shortfalls
        else f"OOS Sharpe {run.oos_report.sharpe:.3f} >= {thresholds.min_oos_sharpe:.3f}, max "
        f"drawdown {run.oos_report.max_drawdown:.2%} within {thresholds.max_drawdown:.2%}, "
        f"{sum(audit.blocking for audit in archived)} blocking audit(s) passed"
    )
    creation = Transition(
        record_id=record.record_id,
        sequence=0,
        from_state=None,
        to_state=state,
        actor=SYSTEM_ACTOR,
        at=created_at,
        reason=reason,
    )
    return record, creation


def spec_ancestry(parent_id: str | None, parent_of: Callable[[str], str | None]) -> tuple[str, ...]:
    """Return a spec's ancestors, nearest first, following parents up to the root.

    Args:
        parent_id: The spec's `lineage.parent_id`.
        parent_of: Returns the parent id of a stored spec (None for a root), e.g.
            `lambda spec_id: load_spec(warehouse, spec_id).lineage.parent_id`.

    Raises:
        SpecValidationError: if the parents form a cycle.
    """
    chain: list[str] = []
    current = parent_id
    while current is not None:
        if current in chain or len(chain) >= _ANCESTRY_LIMIT:
            raise SpecValidationError(
                f"spec lineage {' -> '.join([*chain, current])} loops back to '{current}'; "
                "a spec's parent must be an older spec: correct the lineage.parent_id"
            )
        chain.append(current)
        current = parent_of(current)
    return tuple(chain)


def preferences_changed(record: ArchiveRecord, current_hash: str) -> bool:
    """Return whether the record was archived under other preferences than `current_hash`."""
    return record.preferences_hash != current_hash
