"""The human gate: one function behind both doors (`quant-assets approve` and `approval_job`).

A person approves a frozen record into production, rejects a frozen record, or deprecates
(decommissions) a production record. Every refusal raises before anything is written, so a
refused decision leaves the record and its trail exactly as they were.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from quant_assets.domain.errors import ApprovalError
from quant_assets.domain.governance import (
    SYSTEM_ACTOR,
    ArchiveRecord,
    RecordState,
    is_person_name,
)
from quant_assets.governance.lifecycle import transition
from quant_assets.storage.archive import ArchiveStore


class Decision(StrEnum):
    """What a person decides about an archive record."""

    APPROVE = "approve"
    REJECT = "reject"
    DEPRECATE = "deprecate"


# Each decision: the state it requires and the state it leads to.
DECISION_MOVES: Final[dict[Decision, tuple[RecordState, RecordState]]] = {
    Decision.APPROVE: (RecordState.FROZEN, RecordState.PRODUCTION),
    Decision.REJECT: (RecordState.FROZEN, RecordState.DEPRECATED),
    Decision.DEPRECATE: (RecordState.PRODUCTION, RecordState.DEPRECATED),
}


def decide(
    store: ArchiveStore,
    record_id: str,
    decision: Decision | str,
    approver: str,
    reason: str,
    *,
    data_present: Callable[[dict[str, str]], bool],
    at: datetime | None = None,
) -> ArchiveRecord:
    """Apply a person's decision to a record and return its new version.

    Approving requires the record to be frozen, every blocking audit of it to have passed and
    its pinned data versions to be still present; rejecting requires it frozen; deprecating
    requires it in production. Every decision needs the deciding person's name and a reason.

    Args:
        store: The archive.
        record_id: The record decided on.
        decision: approve, reject or deprecate.
        approver: The deciding person's name (not blank, not "system").
        reason: Why (kept in the trail).
        data_present: Returns whether every data version of a {instrument: version} mapping
            is still stored (asked only when approving).
        at: When (UTC); now if None.

    Raises:
        ApprovalError: if the decision is unknown, the name is blank or "system", the reason is
            blank, the record is not in the state the decision needs, an audit blocks it or its
            data versions are gone. Nothing is written then.
        ArchiveError: if no record has this id.
        TrailIntegrityError: if the stored trail fails verification.
    """
    chosen = _decision(decision)
    name = approver.strip()
    if not is_person_name(name):
        raise ApprovalError(
            f"{chosen} of record {record_id} refused: the approver was {approver!r}; a decision "
            f"needs the deciding person's name (not blank, not '{SYSTEM_ACTOR}'): pass "
            "--approver NAME on the command line or `approver` in the approval job's config"
        )
    if not reason.strip():
        raise ApprovalError(
            f"{chosen} of record {record_id} by {name} refused: the reason is blank; say why, "
            "for the trail"
        )
    record = store.get(record_id)
    required, target = DECISION_MOVES[chosen]
    if record.state is not required:
        raise ApprovalError(
            f"{chosen} of record {record_id} (goal '{record.goal}') by {name} refused: the record "
            f"is '{record.state}', and only a '{required}' record can be {_past(chosen)}; "
            f"{_state_fix(record.state)}"
        )
    if chosen is Decision.APPROVE:
        _check_approvable(record, name, data_present)
    moved, step = transition(record, target, actor=name, reason=reason, at=at or datetime.now(UTC))
    store.append(moved, step)
    return moved


def _decision(decision: Decision | str) -> Decision:
    try:
        return Decision(decision)
    except ValueError as e:
        raise ApprovalError(
            f"decision was {decision!r}, not one of {[choice.value for choice in Decision]}; "
            "choose approve, reject or deprecate"
        ) from e


def _check_approvable(
    record: ArchiveRecord, name: str, data_present: Callable[[dict[str, str]], bool]
) -> None:
    failed = [audit.name for audit in record.audits if audit.blocks]
    if failed:
        raise ApprovalError(
            f"approval of record {record.record_id} by {name} refused: blocking audit(s) "
            f"{failed} failed; a record with a failed blocking audit cannot go to production: "
            "reject it and research a new spec"
        )
    if not data_present(dict(record.data_versions)):
        raise ApprovalError(
            f"approval of record {record.record_id} by {name} refused: its pinned data versions "
            f"{record.data_versions} are no longer all present, so its results cannot be "
            "reproduced; restore those bars (or re-run the research on the current data) first"
        )


def _past(decision: Decision) -> str:
    return {
        Decision.APPROVE: "approved",
        Decision.REJECT: "rejected",
        Decision.DEPRECATE: "deprecated",
    }[decision]


def _state_fix(state: RecordState) -> str:
    fixes = {
        RecordState.CANDIDATE: "wait until research freezes it (converged or goal met)",
        RecordState.FROZEN: "approve or reject it instead",
        RecordState.PRODUCTION: "deprecate it to take it out of production",
        RecordState.DEPRECATED: "it is final; archive a new result instead",
        RecordState.DISCARDED: "it is final; archive a new result instead",
    }
    return fixes[state]
