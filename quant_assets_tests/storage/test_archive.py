"""The archive store on real DuckDB files: append-only versions and trail, tamper detection."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from quant_assets.domain.errors import (
    AppendOnlyError,
    ArchiveError,
    HoldoutSealedError,
    TrailIntegrityError,
)
from quant_assets.domain.governance import (
    ArchiveRecord,
    HoldoutResult,
    RecordState,
    Transition,
)
from quant_assets.governance.lifecycle import transition
from quant_assets.storage.archive import GENESIS_HASH, ArchiveStore
from quant_assets_tests.governance.archive_builders import (
    GOAL,
    PERSON,
    T0,
    advance,
    archive_in,
    make_store,
    new_record,
)
from quant_assets_tests.governance.conftest import build_report

Snapshot = tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[tuple[object, ...]]]


@pytest.fixture
def store(tmp_path: Path) -> ArchiveStore:
    return make_store(tmp_path)


def raw_rows(store: ArchiveStore) -> Snapshot:
    """Return every row of the three archive tables, read with plain DuckDB."""
    with duckdb.connect(str(store.warehouse.path), read_only=True) as con:
        return (
            con.execute("SELECT * FROM archive_records ORDER BY position").fetchall(),
            con.execute("SELECT * FROM transitions ORDER BY position").fetchall(),
            con.execute("SELECT * FROM holdout_evaluations ORDER BY goal").fetchall(),
        )


def run_sql(store: ArchiveStore, statement: str) -> None:
    """Change the warehouse behind the store's back (what an attacker or a bug would do)."""
    with duckdb.connect(str(store.warehouse.path)) as con:
        con.execute(statement)


def holdout_for(record: ArchiveRecord, at: datetime) -> HoldoutResult:
    return HoldoutResult(
        start=datetime(2021, 10, 9, tzinfo=UTC),
        end=datetime(2021, 11, 1, tzinfo=UTC),
        window_index=1,
        params=record.pinned[1],
        report=build_report(sharpe=0.9),
        evaluated_at=at,
    )


def test_create_then_get_returns_the_record_and_its_creation_row(store: ArchiveStore) -> None:
    # Arrange
    record, creation = new_record()

    # Act
    store.create(record, creation)

    # Assert
    assert store.get(record.record_id) == record
    assert store.transitions(record.record_id) == [creation]
    assert store.history(record.record_id) == [record]


def test_append_adds_a_version_and_a_row_per_move(store: ArchiveStore) -> None:
    # Arrange
    record, creation = new_record()
    store.create(record, creation)
    frozen, freeze = advance(record, RecordState.FROZEN, at=T0 + timedelta(hours=1))
    live, approve = advance(frozen, RecordState.PRODUCTION, at=T0 + timedelta(hours=2))

    # Act
    store.append(frozen, freeze)
    store.append(live, approve)

    # Assert
    assert store.get(record.record_id) == live
    assert store.history(record.record_id) == [record, frozen, live]
    assert store.transitions(record.record_id) == [creation, freeze, approve]
    assert approve.at == T0 + timedelta(hours=2)  # microseconds survive the round trip
    assert store.verify_trail() == 6  # 3 versions + 3 transitions


def test_list_returns_latest_versions_filtered_by_state(store: ArchiveStore) -> None:
    # Arrange
    live = archive_in(store, RecordState.PRODUCTION, spec_id="aaaaaaaaaaaaaaaa")
    candidate = archive_in(store, RecordState.CANDIDATE, spec_id="bbbbbbbbbbbbbbbb")
    discarded = archive_in(store, RecordState.DISCARDED, spec_id="cccccccccccccccc")

    # Act
    everything = store.list()
    in_production = store.list(RecordState.PRODUCTION)

    # Assert
    assert everything == [live, candidate, discarded]
    assert in_production == [live]
    assert store.list(RecordState.FROZEN) == []


def test_create_twice_raises_append_only(store: ArchiveStore) -> None:
    # Arrange
    record, creation = new_record()
    store.create(record, creation)
    before = raw_rows(store)

    # Act / Assert
    with pytest.raises(AppendOnlyError, match=f"record {record.record_id} .* already archived"):
        store.create(record, creation)
    assert raw_rows(store) == before


@pytest.mark.parametrize("method", ["update", "delete"])
def test_update_and_delete_raise_and_change_nothing(store: ArchiveStore, method: str) -> None:
    # Arrange
    record = archive_in(store, RecordState.FROZEN)
    before = raw_rows(store)

    # Act / Assert
    with pytest.raises(AppendOnlyError, match="append-only"):
        getattr(store, method)(record.record_id, state=RecordState.PRODUCTION)
    assert raw_rows(store) == before


def test_append_after_the_record_moved_raises_and_changes_nothing(store: ArchiveStore) -> None:
    # Arrange: two deciders read the same frozen record; the first approves it.
    frozen = archive_in(store, RecordState.FROZEN)
    approved, approve = advance(frozen, RecordState.PRODUCTION, at=T0 + timedelta(hours=5))
    rejected, reject = advance(frozen, RecordState.DEPRECATED, at=T0 + timedelta(hours=6))
    store.append(approved, approve)
    before = raw_rows(store)

    # Act / Assert
    with pytest.raises(ArchiveError, match="is 'production' at sequence 2 in the archive"):
        store.append(rejected, reject)
    assert raw_rows(store) == before


def test_append_version_that_changes_more_than_its_move_raises(store: ArchiveStore) -> None:
    # Arrange: a freeze that also rewrites the creation time.
    candidate = archive_in(store, RecordState.CANDIDATE)
    frozen, freeze = advance(candidate, RecordState.FROZEN, at=T0 + timedelta(hours=1))
    rewritten = frozen.model_copy(update={"created_at": T0 - timedelta(days=30)})
    before = raw_rows(store)

    # Act / Assert
    with pytest.raises(AppendOnlyError, match=r"would also change \['created_at'\]"):
        store.append(rewritten, freeze)
    assert raw_rows(store) == before


def test_append_unknown_record_raises(store: ArchiveStore) -> None:
    # Arrange
    record, _ = new_record()
    frozen, freeze = advance(record, RecordState.FROZEN, at=T0)

    # Act / Assert
    with pytest.raises(ArchiveError, match=f"no archived record has id '{record.record_id}'"):
        store.append(frozen, freeze)


def test_first_trail_row_hash_follows_the_documented_formula(store: ArchiveStore) -> None:
    # Arrange
    record, creation = new_record()

    # Act
    store.create(record, creation)

    # Assert: sha256 of the genesis hash, a newline and the row's values as compact JSON.
    values = [0, record.record_id, 0, None, "candidate", "system", T0.isoformat(), "new result"]
    content = json.dumps(values, separators=(",", ":"))
    expected = hashlib.sha256(f"{'0' * 64}\n{content}".encode()).hexdigest()
    assert raw_rows(store)[1][0][-1] == expected
    assert store.trail_head()[1] == expected


def test_trail_head_of_an_empty_archive_is_genesis(store: ArchiveStore) -> None:
    # Act / Assert
    assert store.trail_head() == (GENESIS_HASH, GENESIS_HASH)
    assert store.verify_trail() == 0


TAMPERING = {
    "actor rewritten": "UPDATE transitions SET actor = 'mallory' WHERE sequence = 2",
    "reason rewritten": "UPDATE transitions SET reason = 'no reason' WHERE sequence = 0",
    "state rewritten": "UPDATE archive_records SET state = 'production' WHERE version = 1",
    "json rewritten": (
        "UPDATE archive_records SET record_json = replace(record_json, '\"sharpe\":1.1', "
        "'\"sharpe\":2.1') WHERE version = 0"
    ),
    "middle row deleted": "DELETE FROM transitions WHERE sequence = 1",
    "newest version deleted": "DELETE FROM archive_records WHERE version = 2",
    "row inserted": (
        "INSERT INTO transitions SELECT 99, record_id, 3, 'production', 'deprecated', "
        "'mallory', \"at\", 'gone', row_hash FROM transitions WHERE sequence = 2"
    ),
}


@pytest.mark.parametrize("statement", TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_through_sql_is_detected_on_verify_and_on_read(
    store: ArchiveStore, statement: str
) -> None:
    # Arrange
    record = archive_in(store, RecordState.PRODUCTION)
    assert store.verify_trail() == 6

    # Act
    run_sql(store, statement)

    # Assert
    with pytest.raises(TrailIntegrityError, match="restore the warehouse from a backup"):
        store.verify_trail()
    with pytest.raises(TrailIntegrityError):
        store.get(record.record_id)
    with pytest.raises(TrailIntegrityError):
        store.list()


def test_tampering_names_the_table_and_position(store: ArchiveStore) -> None:
    # Arrange
    record = archive_in(store, RecordState.PRODUCTION)

    # Act
    run_sql(store, "UPDATE transitions SET actor = 'mallory' WHERE sequence = 2")

    # Assert
    with pytest.raises(
        TrailIntegrityError, match=f"transitions row at position 2 \\(record {record.record_id}\\)"
    ):
        store.verify_trail()


def test_record_holdout_stores_version_and_marker_once(store: ArchiveStore) -> None:
    # Arrange
    frozen = archive_in(store, RecordState.FROZEN)
    at = T0 + timedelta(days=1)
    evaluated = frozen.model_copy(update={"holdout": holdout_for(frozen, at)})

    # Act
    store.record_holdout(evaluated)

    # Assert
    assert store.get(frozen.record_id) == evaluated
    assert store.holdout_evaluation(GOAL) == (frozen.record_id, at)
    assert len(store.transitions(frozen.record_id)) == 2  # no move: the state is unchanged
    with pytest.raises(HoldoutSealedError, match=f"goal '{GOAL}' was already evaluated"):
        store.record_holdout(evaluated)


def test_record_holdout_on_a_candidate_raises(store: ArchiveStore) -> None:
    # Arrange: a holdout can only be stored on a frozen record.
    candidate = archive_in(store, RecordState.FROZEN, spec_id="aaaaaaaaaaaaaaaa")
    other = archive_in(store, RecordState.CANDIDATE, spec_id="bbbbbbbbbbbbbbbb")
    forged = other.model_copy(
        update={
            "holdout": holdout_for(candidate, T0),
            "goal_deflated_sharpe": 0.5,
            "goal_trials": 10,
        }
    )
    before = raw_rows(store)

    # Act / Assert
    with pytest.raises(HoldoutSealedError, match="is 'candidate' in the archive"):
        store.record_holdout(forged)
    assert raw_rows(store) == before


def test_holdout_marker_is_unique_per_goal_in_sql(store: ArchiveStore) -> None:
    # Arrange
    frozen = archive_in(store, RecordState.FROZEN)
    store.record_holdout(frozen.model_copy(update={"holdout": holdout_for(frozen, T0)}))

    # Act / Assert: the primary key refuses a second marker even outside the store.
    with pytest.raises(duckdb.ConstraintException):
        run_sql(store, f"INSERT INTO holdout_evaluations VALUES ('{GOAL}', 'x', now())")


def test_deleting_a_holdout_marker_is_detected(store: ArchiveStore) -> None:
    # Arrange
    frozen = archive_in(store, RecordState.FROZEN)
    store.record_holdout(frozen.model_copy(update={"holdout": holdout_for(frozen, T0)}))

    # Act
    run_sql(store, "DELETE FROM holdout_evaluations")

    # Assert
    with pytest.raises(TrailIntegrityError, match="holdout markers"):
        store.verify_trail()


def test_stored_transitions_are_exactly_the_lifecycle_rows(store: ArchiveStore) -> None:
    # Arrange
    record = archive_in(store, RecordState.FROZEN)
    live, approve = transition(
        record, RecordState.PRODUCTION, actor=PERSON, reason="ship it", at=T0 + timedelta(days=2)
    )

    # Act
    store.append(live, approve)

    # Assert
    last = store.transitions(record.record_id)[-1]
    assert last == Transition(
        record_id=record.record_id,
        sequence=2,
        from_state=RecordState.FROZEN,
        to_state=RecordState.PRODUCTION,
        actor=PERSON,
        at=T0 + timedelta(days=2),
        reason="ship it",
    )
