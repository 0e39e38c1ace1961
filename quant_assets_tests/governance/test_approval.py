"""The human gate on a real archive: decisions move records; refusals change nothing."""

from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from quant_assets.domain.errors import ApprovalError, ArchiveError
from quant_assets.domain.governance import ArchiveRecord, RecordState, Transition
from quant_assets.governance.approval import Decision, decide
from quant_assets.storage.archive import ArchiveStore
from quant_assets_tests.governance.archive_builders import (
    DATA_VERSIONS,
    PERSON,
    T0,
    archive_in,
    failed_blocking_audits,
    make_store,
)

DECIDED_AT = T0 + timedelta(days=7)


@pytest.fixture
def store(tmp_path: Path) -> ArchiveStore:
    return make_store(tmp_path)


class DataCatalog:
    """Answers whether data versions are still stored, and remembers what it was asked."""

    def __init__(self, present: bool) -> None:
        self.present = present
        self.asked: list[dict[str, str]] = []

    def __call__(self, versions: dict[str, str]) -> bool:
        self.asked.append(versions)
        return self.present


def snapshot(store: ArchiveStore, record_id: str) -> tuple[object, ...]:
    """Return the record's versions, its trail and the raw row counts."""
    with duckdb.connect(str(store.warehouse.path), read_only=True) as con:
        counts = [
            con.execute(f"SELECT count(*) FROM {table}").fetchone()
            for table in ("archive_records", "transitions", "holdout_evaluations")
        ]
    return store.history(record_id), store.transitions(record_id), counts, store.trail_head()


def test_decide_approve_moves_frozen_record_to_production(store: ArchiveStore) -> None:
    # Arrange
    frozen = archive_in(store, RecordState.FROZEN)
    catalog = DataCatalog(present=True)

    # Act
    live = decide(
        store,
        frozen.record_id,
        Decision.APPROVE,
        f" {PERSON} ",
        "holdout Sharpe holds up",
        data_present=catalog,
        at=DECIDED_AT,
    )

    # Assert
    assert live.state is RecordState.PRODUCTION
    assert store.get(frozen.record_id) == live
    assert store.transitions(frozen.record_id)[-1] == Transition(
        record_id=frozen.record_id,
        sequence=2,
        from_state=RecordState.FROZEN,
        to_state=RecordState.PRODUCTION,
        actor=PERSON,
        at=DECIDED_AT,
        reason="holdout Sharpe holds up",
    )
    assert catalog.asked == [DATA_VERSIONS]


@pytest.mark.parametrize(
    ("state", "decision"),
    [(RecordState.FROZEN, "reject"), (RecordState.PRODUCTION, "deprecate")],
)
def test_decide_reject_and_deprecate_end_in_deprecated(
    store: ArchiveStore, state: RecordState, decision: str
) -> None:
    # Arrange
    record = archive_in(store, state)
    catalog = DataCatalog(present=False)  # only approval asks for the data

    # Act
    ended = decide(
        store, record.record_id, decision, PERSON, "drawdown too deep", data_present=catalog
    )

    # Assert
    assert ended.state is RecordState.DEPRECATED
    trail = store.transitions(record.record_id)
    assert (trail[-1].from_state, trail[-1].to_state, trail[-1].actor) == (
        state,
        RecordState.DEPRECATED,
        PERSON,
    )
    assert catalog.asked == []


REFUSALS = {
    "no name": (RecordState.FROZEN, "approve", "", True, False, "approver was ''"),
    "blank name": (RecordState.FROZEN, "approve", "   ", True, False, "approver was '   '"),
    "system": (RecordState.FROZEN, "approve", "system", True, False, "not 'system'"),
    "System": (RecordState.FROZEN, "approve", "System", True, False, "approver was 'System'"),
    "reject without name": (RecordState.FROZEN, "reject", "", True, False, "approver was"),
    "candidate": (RecordState.CANDIDATE, "approve", PERSON, True, False, "is 'candidate'"),
    "production": (RecordState.PRODUCTION, "approve", PERSON, True, False, "is 'production'"),
    "deprecated": (RecordState.DEPRECATED, "approve", PERSON, True, False, "is 'deprecated'"),
    "discarded": (RecordState.DISCARDED, "approve", PERSON, True, False, "is 'discarded'"),
    "failed audit": (RecordState.FROZEN, "approve", PERSON, True, True, "'min_trades'"),
    "data gone": (RecordState.FROZEN, "approve", PERSON, False, False, "no longer all present"),
    "reject production": (RecordState.PRODUCTION, "reject", PERSON, True, False, "only a 'frozen'"),
    "deprecate frozen": (RecordState.FROZEN, "deprecate", PERSON, True, False, "'production'"),
    "unknown decision": (RecordState.FROZEN, "promote", PERSON, True, False, "'promote'"),
}


@pytest.mark.parametrize(
    ("state", "decision", "approver", "data_present", "audit_failed", "expected"),
    REFUSALS.values(),
    ids=REFUSALS.keys(),
)
def test_decide_refusal_raises_and_changes_nothing(
    store: ArchiveStore,
    state: RecordState,
    decision: str,
    approver: str,
    data_present: bool,
    audit_failed: bool,
    expected: str,
) -> None:
    # Arrange: a record whose blocking audit failed is put in the store directly (the
    # lifecycle would have discarded it) to prove approval checks the audits itself.
    audits = failed_blocking_audits() if audit_failed else None
    record = archive_in(store, state, audits=audits)
    before = snapshot(store, record.record_id)

    # Act
    with pytest.raises(ApprovalError) as caught:
        decide(
            store,
            record.record_id,
            decision,
            approver,
            "looks good",
            data_present=DataCatalog(present=data_present),
            at=DECIDED_AT,
        )

    # Assert
    assert expected in str(caught.value)
    assert snapshot(store, record.record_id) == before


def test_decide_blank_reason_raises_and_changes_nothing(store: ArchiveStore) -> None:
    # Arrange
    record = archive_in(store, RecordState.FROZEN)
    before = snapshot(store, record.record_id)

    # Act / Assert
    with pytest.raises(ApprovalError, match="the reason is blank"):
        decide(store, record.record_id, "reject", PERSON, " ", data_present=DataCatalog(True))
    assert snapshot(store, record.record_id) == before


def test_decide_unknown_record_raises(store: ArchiveStore) -> None:
    # Act / Assert
    with pytest.raises(ArchiveError, match="no archived record has id 'nope'"):
        decide(store, "nope", "approve", PERSON, "ok", data_present=DataCatalog(True))


def test_decide_second_approval_of_same_record_is_refused(store: ArchiveStore) -> None:
    # Arrange
    frozen = archive_in(store, RecordState.FROZEN)
    first: ArchiveRecord = decide(
        store, frozen.record_id, "approve", PERSON, "ok", data_present=DataCatalog(True)
    )
    before = snapshot(store, frozen.record_id)

    # Act / Assert
    with pytest.raises(ApprovalError, match="is 'production'"):
        decide(
            store,
            frozen.record_id,
            "approve",
            "Grace Hopper",
            "me too",
            data_present=DataCatalog(True),
        )
    assert snapshot(store, frozen.record_id) == before
    assert store.get(frozen.record_id) == first
