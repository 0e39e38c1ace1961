"""The lifecycle: every legal move works, every other one raises naming record, states, moves."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from pydantic import ValidationError

from quant_assets.domain.errors import ConfigurationError, LifecycleError, SpecValidationError
from quant_assets.domain.governance import (
    SYSTEM_ACTOR,
    ArchiveRecord,
    ArchiveThresholds,
    RecordAudit,
    RecordState,
    Transition,
)
from quant_assets.domain.report import EvalReport
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.governance.audits import (
    AuditName,
    AuditOutcome,
    audit_drawdown_limit,
    audit_min_trades,
)
from quant_assets.governance.lifecycle import (
    allowed_moves,
    classify_new_result,
    open_record,
    preferences_changed,
    spec_ancestry,
    transition,
)
from quant_assets.governance.preferences import Preferences
from quant_assets_tests.governance.archive_builders import (
    PERSON,
    PINNED,
    PREFERENCES_HASH,
    T0,
    failed_blocking_audits,
    record_in,
    walkforward_run,
)
from quant_assets_tests.governance.conftest import ReportBuilder, build_report

# The table, written out by hand: (from, to, actor) of each legal move after creation.
LEGAL: list[tuple[RecordState, RecordState, str]] = [
    (RecordState.CANDIDATE, RecordState.FROZEN, SYSTEM_ACTOR),
    (RecordState.FROZEN, RecordState.PRODUCTION, PERSON),
    (RecordState.FROZEN, RecordState.DEPRECATED, PERSON),
    (RecordState.PRODUCTION, RecordState.DEPRECATED, PERSON),
]
ILLEGAL: list[tuple[RecordState, RecordState]] = [
    (source, target)
    for source in RecordState
    for target in RecordState
    if (source, target) not in {(move[0], move[1]) for move in LEGAL}
]
# What each state's error must list as its allowed moves.
ALLOWED_TEXT: dict[RecordState, str] = {
    RecordState.CANDIDATE: "'frozen' (system)",
    RecordState.FROZEN: "'production' (a named person), 'deprecated' (a named person)",
    RecordState.PRODUCTION: "'deprecated' (a named person)",
    RecordState.DEPRECATED: "none, 'deprecated' is final",
    RecordState.DISCARDED: "none, 'discarded' is final",
}
THRESHOLDS = ArchiveThresholds(min_oos_sharpe=1.2, max_drawdown=-0.15)


def _stamps(target: RecordState) -> tuple[float | None, int | None]:
    # The goal-level DSR and trial count: given when freezing, and only then.
    return (0.55, 250) if target is RecordState.FROZEN else (None, None)


@pytest.mark.parametrize(("source", "target", "actor"), LEGAL, ids=str)
def test_transition_legal_move_returns_next_version_and_trail_row(
    source: RecordState, target: RecordState, actor: str
) -> None:
    # Arrange
    record, trail = record_in(source)
    at = T0 + timedelta(days=3)
    dsr, trials = _stamps(target)

    # Act
    moved, step = transition(
        record,
        target,
        actor=f"  {actor} ",
        reason=" converged ",
        at=at,
        goal_deflated_sharpe=dsr,
        goal_trials=trials,
    )

    # Assert
    assert (moved.state, moved.sequence) == (target, len(trail))
    assert step == Transition(
        record_id=record.record_id,
        sequence=len(trail),
        from_state=source,
        to_state=target,
        actor=actor,
        at=at,
        reason="converged",
    )
    assert moved.record_id == record.record_id
    unchanged = {"state", "sequence", "goal_deflated_sharpe", "goal_trials"}
    assert moved.model_dump(exclude=unchanged) == record.model_dump(exclude=unchanged)


def test_transition_freeze_stamps_goal_deflated_sharpe() -> None:
    # Arrange
    record, _ = record_in(RecordState.CANDIDATE)

    # Act
    frozen, _ = transition(
        record,
        RecordState.FROZEN,
        actor=SYSTEM_ACTOR,
        reason="goal met",
        at=T0,
        goal_deflated_sharpe=0.42,
        goal_trials=900,
    )

    # Assert
    assert (frozen.goal_deflated_sharpe, frozen.goal_trials) == (0.42, 900)
    assert (record.goal_deflated_sharpe, record.goal_trials) == (None, None)


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=str)
def test_transition_illegal_move_raises_naming_record_states_and_allowed_moves(
    source: RecordState, target: RecordState
) -> None:
    # Arrange
    record, _ = record_in(source)
    actor = SYSTEM_ACTOR if target is RecordState.FROZEN else PERSON
    dsr, trials = _stamps(target)

    # Act
    with pytest.raises(LifecycleError) as caught:
        transition(
            record,
            target,
            actor=actor,
            reason="try",
            at=T0,
            goal_deflated_sharpe=dsr,
            goal_trials=trials,
        )

    # Assert
    message = str(caught.value)
    assert record.record_id in message
    assert f"from '{source}' to '{target}'" in message
    assert f"allowed from '{source}': {ALLOWED_TEXT[source]}" in message


def test_illegal_moves_cover_every_other_pair() -> None:
    # Arrange: 5 states x 5 targets = 25 pairs, 4 of them legal (the table).
    pairs = len(RecordState) ** 2

    # Act
    legal_from_table = sum(len(allowed_moves(state)) for state in RecordState)

    # Assert
    assert (len(ILLEGAL), legal_from_table) == (pairs - 4, 4)
    assert allowed_moves(None) == (RecordState.CANDIDATE, RecordState.DISCARDED)


@pytest.mark.parametrize("actor", ["", "   ", "system", "System", " SYSTEM "])
@pytest.mark.parametrize(
    ("source", "target"),
    [(move[0], move[1]) for move in LEGAL if move[2] == PERSON],
    ids=str,
)
def test_transition_person_move_without_person_raises(
    source: RecordState, target: RecordState, actor: str
) -> None:
    # Arrange
    record, _ = record_in(source)

    # Act / Assert
    with pytest.raises(LifecycleError, match="only a named person may"):
        transition(record, target, actor=actor, reason="ok", at=T0)


def test_transition_freeze_by_person_raises() -> None:
    # Arrange
    record, _ = record_in(RecordState.CANDIDATE)

    # Act / Assert
    with pytest.raises(LifecycleError, match="automatic and its actor is 'system'"):
        transition(
            record,
            RecordState.FROZEN,
            actor=PERSON,
            reason="I like it",
            at=T0,
            goal_deflated_sharpe=0.55,
            goal_trials=250,
        )


@pytest.mark.parametrize(
    ("source", "target", "dsr", "trials", "expected"),
    [
        (RecordState.CANDIDATE, RecordState.FROZEN, None, None, "without the goal-level"),
        (RecordState.CANDIDATE, RecordState.FROZEN, None, 9, "without the goal-level"),
        (RecordState.FROZEN, RecordState.PRODUCTION, 0.9, 9, "only freezing stamps it"),
    ],
    ids=["freeze-none", "freeze-half", "approve-with-stamp"],
)
def test_transition_goal_stamp_misuse_raises(
    source: RecordState,
    target: RecordState,
    dsr: float | None,
    trials: int | None,
    expected: str,
) -> None:
    # Arrange
    record, _ = record_in(source)
    actor = SYSTEM_ACTOR if target is RecordState.FROZEN else PERSON

    # Act / Assert
    with pytest.raises(LifecycleError, match=expected):
        transition(
            record,
            target,
            actor=actor,
            reason="ok",
            at=T0,
            goal_deflated_sharpe=dsr,
            goal_trials=trials,
        )


def test_transition_blank_reason_raises() -> None:
    # Arrange
    record, _ = record_in(RecordState.FROZEN)

    # Act / Assert
    with pytest.raises(LifecycleError, match="reason is blank"):
        transition(record, RecordState.PRODUCTION, actor=PERSON, reason="  ", at=T0)


@pytest.mark.parametrize(
    ("from_state", "to_state", "actor", "sequence"),
    [
        (RecordState.CANDIDATE, RecordState.PRODUCTION, PERSON, 1),
        (RecordState.FROZEN, RecordState.PRODUCTION, SYSTEM_ACTOR, 2),
        (RecordState.CANDIDATE, RecordState.FROZEN, PERSON, 1),
        (None, RecordState.FROZEN, SYSTEM_ACTOR, 0),
        (None, RecordState.CANDIDATE, SYSTEM_ACTOR, 3),
    ],
)
def test_transition_row_for_forbidden_move_cannot_be_built(
    from_state: RecordState | None, to_state: RecordState, actor: str, sequence: int
) -> None:
    # Act / Assert: the storage layer can never be handed a row the lifecycle forbids.
    with pytest.raises(ValidationError, match="record r1"):
        Transition(
            record_id="r1",
            sequence=sequence,
            from_state=from_state,
            to_state=to_state,
            actor=actor,
            at=T0,
            reason="forced",
        )


def _outcome(name: AuditName, *, passed: bool, blocking: bool) -> AuditOutcome:
    return AuditOutcome(
        name=name,
        passed=passed,
        blocking=blocking,
        severity="error" if blocking else "warn",
        message=f"{name} verdict",
    )


@pytest.mark.parametrize(
    ("sharpe", "drawdown", "trades", "warning_failed", "expected"),
    [
        (1.5, -0.10, 40, False, RecordState.CANDIDATE),
        (1.2, -0.15, 40, False, RecordState.CANDIDATE),  # both boundaries pass
        (1.5, -0.10, 40, True, RecordState.CANDIDATE),  # a failed warning does not block
        (1.19, -0.10, 40, False, RecordState.DISCARDED),  # Sharpe below the goal's 1.2
        (1.5, -0.16, 40, False, RecordState.DISCARDED),  # deeper than -15%
        (1.5, -0.10, 5, False, RecordState.DISCARDED),  # min_trades (20) blocks
    ],
)
def test_classify_new_result_follows_thresholds_and_blocking_audits(
    strict_preferences: Preferences,
    make_report: ReportBuilder,
    sharpe: float,
    drawdown: float,
    trades: int,
    warning_failed: bool,
    expected: RecordState,
) -> None:
    # Arrange: real audits on the report; preferences allow -25%, the goal only -15%.
    oos = make_report(sharpe=sharpe, max_drawdown=drawdown, trades=trades)
    audits = [
        audit_min_trades(oos, strict_preferences),
        audit_drawdown_limit(oos, strict_preferences),
    ]
    audits.append(_outcome(AuditName.SURVIVORSHIP, passed=not warning_failed, blocking=False))

    # Act
    state = classify_new_result(oos, audits, THRESHOLDS)

    # Assert
    assert state is expected


def test_open_record_pins_run_and_creates_candidate() -> None:
    # Arrange
    oos = build_report(sharpe=1.4, max_drawdown=-0.12)
    run = walkforward_run(oos, params_per_window=[PINNED[0], PINNED[1]])
    audits = [_outcome(AuditName.MIN_TRADES, passed=True, blocking=True)]

    # Act
    record, creation = open_record(
        run,
        goal="g",
        parent_spec_ids=["p1", "p0"],
        audits=audits,
        thresholds=THRESHOLDS,
        preferences_hash=PREFERENCES_HASH,
        at=T0,
    )

    # Assert
    assert record.state is RecordState.CANDIDATE
    assert record.pinned == PINNED
    assert (record.spec_id, record.run_id, record.parent_spec_ids) == (
        run.spec_id,
        run.run_id,
        ("p1", "p0"),
    )
    assert (record.metrics.oos, record.metrics.in_sample) == (run.oos_report, run.is_report)
    assert (creation.from_state, creation.to_state, creation.actor, creation.sequence) == (
        None,
        RecordState.CANDIDATE,
        SYSTEM_ACTOR,
        0,
    )
    assert "OOS Sharpe 1.400 >= 1.200" in creation.reason
    assert ArchiveRecord.model_validate_json(record.model_dump_json()) == record


def test_open_record_below_threshold_is_discarded_with_reasons() -> None:
    # Arrange
    run = walkforward_run(build_report(sharpe=0.8), params_per_window=[PINNED[0]])
    audits = [RecordAudit(name="min_trades", passed=False, blocking=True, message="5 < 20")]

    # Act
    record, creation = open_record(
        run,
        goal="g",
        parent_spec_ids=[],
        audits=audits,
        thresholds=THRESHOLDS,
        preferences_hash=PREFERENCES_HASH,
        at=T0,
    )

    # Assert
    assert record.state is creation.to_state is RecordState.DISCARDED
    assert "OOS Sharpe 0.800 is below the goal's minimum 1.200" in creation.reason
    assert "blocking audit 'min_trades' failed" in creation.reason


def test_open_record_id_is_stable_and_hashes_the_content() -> None:
    # Arrange
    run = walkforward_run(build_report(sharpe=1.4), params_per_window=[PINNED[0]])
    other_run = walkforward_run(build_report(sharpe=1.4), params_per_window=[PINNED[1]])

    def opened(source_run: WalkForwardRun, at_offset: int) -> ArchiveRecord:
        record, _ = open_record(
            source_run,
            goal="g",
            parent_spec_ids=[],
            audits=[],
            thresholds=THRESHOLDS,
            preferences_hash=PREFERENCES_HASH,
            at=T0 + timedelta(hours=at_offset),
        )
        return record

    # Act
    first, again, other = opened(run, 0), opened(run, 5), opened(other_run, 0)

    # Assert: creation time is not content; other pinned params are another record.
    assert first.record_id == again.record_id
    assert first.record_id != other.record_id


def test_open_record_run_under_other_preferences_raises() -> None:
    # Arrange
    run = walkforward_run(build_report(), params_per_window=[PINNED[0]], preferences_hash="old")

    # Act / Assert
    with pytest.raises(ConfigurationError, match="computed under preferences old"):
        open_record(
            run,
            goal="g",
            parent_spec_ids=[],
            audits=[],
            thresholds=THRESHOLDS,
            preferences_hash=PREFERENCES_HASH,
        )


def test_archive_record_with_changed_content_but_old_id_is_refused() -> None:
    # Arrange
    record, _ = record_in(RecordState.CANDIDATE)
    forged = record.model_dump()
    forged["metrics"]["oos"]["sharpe"] = 3.0

    # Act / Assert
    with pytest.raises(ValidationError, match="archived content hashes to"):
        ArchiveRecord.model_validate(forged)


def test_spec_ancestry_follows_parents_to_the_root() -> None:
    # Arrange: c -> b -> a (root).
    parents = {"c": "b", "b": "a", "a": None}
    parent_of: Callable[[str], str | None] = parents.__getitem__

    # Act
    chain = spec_ancestry("c", parent_of)

    # Assert
    assert chain == ("c", "b", "a")
    assert spec_ancestry(None, parent_of) == ()


def test_spec_ancestry_cycle_raises() -> None:
    # Arrange
    parents = {"a": "b", "b": "a"}

    # Act / Assert
    with pytest.raises(SpecValidationError, match="loops back to 'a'"):
        spec_ancestry("a", parents.__getitem__)


@pytest.mark.parametrize(
    ("current", "expected"), [(PREFERENCES_HASH, False), ("0000000000000000", True)]
)
def test_preferences_changed_flags_records_from_other_preferences(
    current: str, expected: bool
) -> None:
    # Arrange
    record, _ = record_in(RecordState.FROZEN)

    # Act / Assert
    assert preferences_changed(record, current) is expected


def test_classify_new_result_accepts_archived_verdicts(make_report: ReportBuilder) -> None:
    # Arrange
    oos: EvalReport = make_report(sharpe=2.0, max_drawdown=-0.05)

    # Act
    state = classify_new_result(oos, failed_blocking_audits(), THRESHOLDS)

    # Assert
    assert state is RecordState.DISCARDED
