"""The archive in DuckDB: append-only record versions and transitions, hash-chained.

Tables (`storage/schema.py`, GOVERNANCE_TABLES): `archive_records` holds one row per record
*version*, `transitions` one row per move, `holdout_evaluations` one row per goal whose holdout
was read. Rows are only ever inserted: there is no update or delete method (`update` and
`delete` exist only to raise `AppendOnlyError`), and a new version may differ from the previous
one only in what its move changes. Each row of the first two tables carries
`row_hash = sha256(previous row's hash, a newline, this row's values as JSON)`, so a row changed,
inserted or removed by other means breaks its chain.

Verification is on read: every read and every write first checks both chains and their
cross-links (each record's latest version and last transition agree on sequence and state;
holdout markers match the versions that carry a holdout), so `get` never returns a tampered row
unnoticed; `verify_trail` runs the same checks on demand. A chain cannot reveal the removal of
its newest rows on its own: anchor it by keeping `trail_head()` somewhere else (the Dagster
materialization metadata of `archive_records`, say).
"""

import builtins
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, NoReturn

import duckdb

from quant_assets.domain.errors import (
    AppendOnlyError,
    ArchiveError,
    HoldoutSealedError,
    TrailIntegrityError,
)
from quant_assets.domain.governance import ArchiveRecord, RecordState, Transition
from quant_assets.storage.warehouse import Warehouse

GENESIS_HASH: Final = "0" * 64
_RECORD_COLUMNS: Final = (
    "position, record_id, version, sequence, state, goal, holdout_evaluated, record_json, "
    "created_at, row_hash"
)
_TRANSITION_COLUMNS: Final = (
    'position, record_id, sequence, from_state, to_state, actor, "at", reason, row_hash'
)
# Fields a move may change; every other field of a version equals the previous version's.
_MOVE_FIELDS: Final = frozenset({"state", "sequence", "goal_deflated_sharpe", "goal_trials"})
_APPEND_ONLY_FIX: Final = (
    "archive records and transitions are append-only: record a change as a new version with "
    "its transition (governance.lifecycle.transition, then ArchiveStore.append)"
)


def row_hash(previous_hash: str, values: Sequence[Any]) -> str:
    """Return the chained hash of one row: sha256 of the previous hash and the row's values."""
    content = json.dumps([_canonical(value) for value in values], separators=(",", ":"))
    return hashlib.sha256(f"{previous_hash}\n{content}".encode()).hexdigest()


def _canonical(value: Any) -> Any:
    # Timestamps hash as UTC ISO text with microseconds, identically before and after storage.
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    return value


class ArchiveStore:
    """Append-only archive records and transitions in the warehouse (see the module doc)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def create(self, record: ArchiveRecord, transition: Transition) -> None:
        """Store a new record's first version and its creation row in one transaction.

        Raises:
            AppendOnlyError: if a record with this id exists (records are never replaced).
            ArchiveError: if the transition is not the record's creation (sequence 0, from
                None, to the record's state).
            TrailIntegrityError: if the stored trail fails verification.
        """
        if (transition.record_id, transition.sequence, transition.to_state) != (
            record.record_id,
            0,
            record.state,
        ) or record.sequence != 0:
            raise ArchiveError(
                f"record {record.record_id}: creation row {transition.record_id} #"
                f"{transition.sequence} -> '{transition.to_state}' does not create this record "
                f"in state '{record.state}' at sequence {record.sequence}; pass the pair "
                "returned by governance.lifecycle.open_record"
            )
        with self.warehouse.connect() as con:
            _verify(con)
            if _latest_row(con, record.record_id) is not None:
                raise AppendOnlyError(
                    f"record {record.record_id} (goal '{record.goal}') is already archived; a "
                    f"record is never replaced: {_APPEND_ONLY_FIX}"
                )
            _insert_version(con, record, version=0, at=transition.at)
            _insert_transition(con, transition)

    def append(self, record: ArchiveRecord, transition: Transition) -> None:
        """Store a record's next version and the transition that made it in one transaction.

        Raises:
            ArchiveError: if the record is unknown, or the transition does not follow the
                stored state and sequence (someone moved the record since it was read).
            AppendOnlyError: if the version changes anything its move does not change.
            TrailIntegrityError: if the stored trail fails verification.
        """
        with self.warehouse.connect() as con:
            _verify(con)
            previous, version = _require_latest(con, record.record_id)
            _check_move(previous, record, transition)
            _insert_version(con, record, version=version + 1, at=transition.at)
            _insert_transition(con, transition)

    def record_holdout(self, record: ArchiveRecord) -> None:
        """Store a frozen record's version carrying its holdout result and mark the goal spent.

        Both rows are written in one transaction; the goal's marker is its primary key, so a
        second evaluation of the same goal fails even if two processes race.

        Raises:
            HoldoutSealedError: if the stored record is not frozen, or its goal's holdout was
                already evaluated.
            ArchiveError: if the version carries no holdout result.
            AppendOnlyError: if the version changes anything but adding the holdout result.
        """
        with self.warehouse.connect() as con:
            _verify(con)
            previous, version = _require_latest(con, record.record_id)
            if record.holdout is None:
                raise ArchiveError(
                    f"record {record.record_id}: the version carries no holdout result; pass "
                    "the record returned by governance.holdout.evaluate_holdout_once"
                )
            if previous.state is not RecordState.FROZEN:
                raise HoldoutSealedError(
                    f"record {record.record_id} is '{previous.state}' in the archive; a holdout "
                    "result is stored only on a frozen record, once (freeze it first)"
                )
            spent = _holdout_row(con, record.goal)
            if spent is not None:
                raise HoldoutSealedError(holdout_spent_message(record.goal, spent))
            expected = previous.model_copy(update={"holdout": record.holdout})
            if record != expected:
                raise AppendOnlyError(
                    f"record {record.record_id}: the holdout version changes more than its "
                    f"holdout result; {_APPEND_ONLY_FIX}"
                )
            evaluated_at = record.holdout.evaluated_at
            try:
                con.execute(
                    "INSERT INTO holdout_evaluations VALUES (?, ?, ?)",
                    [record.goal, record.record_id, evaluated_at],
                )
            except duckdb.ConstraintException as e:
                raise HoldoutSealedError(holdout_spent_message(record.goal, None)) from e
            _insert_version(con, record, version=version + 1, at=evaluated_at)

    def get(self, record_id: str) -> ArchiveRecord:
        """Return the latest version of a record (after verifying the trail).

        Raises:
            ArchiveError: if no record has this id.
            TrailIntegrityError: if the stored trail fails verification.
        """
        with self.warehouse.connect() as con:
            _verify(con)
            return _require_latest(con, record_id)[0]

    def history(self, record_id: str) -> builtins.list[ArchiveRecord]:
        """Return every version of a record, oldest first (after verifying the trail).

        Raises:
            ArchiveError: if no record has this id.
        """
        with self.warehouse.connect() as con:
            _verify(con)
            rows = con.execute(
                "SELECT record_json FROM archive_records WHERE record_id = ? ORDER BY version",
                [record_id],
            ).fetchall()
        if not rows:
            raise _unknown(record_id)
        return [ArchiveRecord.model_validate_json(row[0]) for row in rows]

    def transitions(self, record_id: str) -> builtins.list[Transition]:
        """Return a record's trail, oldest first (after verifying the trail)."""
        with self.warehouse.connect() as con:
            _verify(con)
            rows = con.execute(
                f"SELECT {_TRANSITION_COLUMNS} FROM transitions WHERE record_id = ? "
                "ORDER BY sequence",
                [record_id],
            ).fetchall()
        return [_transition_of(row) for row in rows]

    def holdout_evaluation(self, goal: str) -> tuple[str, datetime] | None:
        """Return (record id, evaluated at) of the goal's holdout evaluation, or None."""
        with self.warehouse.connect() as con:
            _verify(con)
            return _holdout_row(con, goal)

    def verify_trail(self) -> int:
        """Check every row of both chains and their cross-links; return the rows checked.

        Raises:
            TrailIntegrityError: naming the first row (table, position, record) that does not
                match its chain, or the record whose versions and transitions disagree.
        """
        with self.warehouse.connect() as con:
            return _verify(con)

    def trail_head(self) -> tuple[str, str]:
        """Return the newest row hash of each chain (records, transitions), to anchor them."""
        with self.warehouse.connect() as con:
            _verify(con)
            heads = [
                con.execute(
                    f"SELECT row_hash FROM {table} ORDER BY position DESC LIMIT 1"
                ).fetchone()
                for table in ("archive_records", "transitions")
            ]
        records, moves = (GENESIS_HASH if row is None else str(row[0]) for row in heads)
        return records, moves

    def update(self, *args: object, **kwargs: object) -> NoReturn:
        """Refuse: an archived record or transition is never changed.

        Raises:
            AppendOnlyError: always.
        """
        raise AppendOnlyError(f"update was called with {args!r}; {_APPEND_ONLY_FIX}")

    def delete(self, *args: object, **kwargs: object) -> NoReturn:
        """Refuse: an archived record or transition is never removed.

        Raises:
            AppendOnlyError: always.
        """
        raise AppendOnlyError(
            f"delete was called with {args!r}; {_APPEND_ONLY_FIX} (deprecate a production "
            "record with `quant-assets` decisions instead of removing it)"
        )

    def list(self, state: RecordState | None = None) -> builtins.list[ArchiveRecord]:
        """Return the latest version of every record (in `state` if given), oldest first."""
        with self.warehouse.connect() as con:
            _verify(con)
            rows = con.execute(
                "SELECT record_json, state FROM archive_records a WHERE version = "
                "(SELECT MAX(version) FROM archive_records b WHERE b.record_id = a.record_id) "
                "ORDER BY (SELECT MIN(position) FROM archive_records c "
                "WHERE c.record_id = a.record_id)"
            ).fetchall()
        return [
            ArchiveRecord.model_validate_json(record_json)
            for record_json, stored_state in rows
            if state is None or stored_state == state.value
        ]


def _unknown(record_id: str) -> ArchiveError:
    return ArchiveError(
        f"no archived record has id {record_id!r}; list the archive (ArchiveStore.list or "
        "`quant-assets archive list`) for the ids it holds"
    )


def holdout_spent_message(goal: str, spent: tuple[str, datetime] | None) -> str:
    """Return the refusal of a second holdout evaluation of `goal` (spent: record, when)."""
    when = "" if spent is None else f" on record {spent[0]} at {spent[1].isoformat()}"
    return (
        f"the holdout of goal '{goal}' was already evaluated{when}; a second evaluation would "
        "turn the holdout into a selection set, so it is refused: start a new goal (with a new "
        "holdout period) to evaluate another strategy out of sample"
    )


def _latest_row(con: duckdb.DuckDBPyConnection, record_id: str) -> tuple[str, int] | None:
    row = con.execute(
        "SELECT record_json, version FROM archive_records WHERE record_id = ? "
        "ORDER BY version DESC LIMIT 1",
        [record_id],
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def _require_latest(con: duckdb.DuckDBPyConnection, record_id: str) -> tuple[ArchiveRecord, int]:
    row = _latest_row(con, record_id)
    if row is None:
        raise _unknown(record_id)
    return ArchiveRecord.model_validate_json(row[0]), row[1]


def _holdout_row(con: duckdb.DuckDBPyConnection, goal: str) -> tuple[str, datetime] | None:
    row = con.execute(
        "SELECT record_id, evaluated_at FROM holdout_evaluations WHERE goal = ?", [goal]
    ).fetchone()
    return None if row is None else (str(row[0]), row[1].astimezone(UTC))


def _check_move(previous: ArchiveRecord, record: ArchiveRecord, transition: Transition) -> None:
    rid = record.record_id
    if transition.record_id != rid:
        raise ArchiveError(
            f"record {rid}: the transition belongs to record {transition.record_id}; pass the "
            "pair returned by governance.lifecycle.transition"
        )
    expected = (previous.state, previous.sequence + 1)
    if (transition.from_state, transition.sequence) != expected:
        raise ArchiveError(
            f"record {rid} is '{previous.state}' at sequence {previous.sequence} in the archive, "
            f"but the transition moves from '{transition.from_state}' as #{transition.sequence}; "
            "it was moved since it was read: get it again and decide on its current state"
        )
    if (record.state, record.sequence) != (transition.to_state, transition.sequence):
        raise ArchiveError(
            f"record {rid}: the version is '{record.state}' #{record.sequence} but the "
            f"transition makes it '{transition.to_state}' #{transition.sequence}; pass the pair "
            "returned by governance.lifecycle.transition"
        )
    kept = _fields_kept(transition.to_state)
    changed = sorted(name for name in kept if getattr(record, name) != getattr(previous, name))
    if changed:
        raise AppendOnlyError(
            f"record {rid}: the move to '{transition.to_state}' would also change {changed}; "
            f"{_APPEND_ONLY_FIX}"
        )


def _fields_kept(to_state: RecordState) -> builtins.list[str]:
    # Only freezing stamps the goal-level deflated Sharpe; other moves change state only.
    moving = set(_MOVE_FIELDS)
    if to_state is not RecordState.FROZEN:
        moving -= {"goal_deflated_sharpe", "goal_trials"}
    return [name for name in ArchiveRecord.model_fields if name not in moving]


def _next_position(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    row = con.execute(
        f"SELECT position, row_hash FROM {table} ORDER BY position DESC LIMIT 1"
    ).fetchone()
    return (0, GENESIS_HASH) if row is None else (int(row[0]) + 1, str(row[1]))


def _insert_version(
    con: duckdb.DuckDBPyConnection, record: ArchiveRecord, *, version: int, at: datetime
) -> None:
    position, previous_hash = _next_position(con, "archive_records")
    values = [
        position,
        record.record_id,
        version,
        record.sequence,
        record.state.value,
        record.goal,
        record.holdout is not None,
        record.model_dump_json(),
        at.astimezone(UTC),
    ]
    con.execute(
        f"INSERT INTO archive_records ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*values, row_hash(previous_hash, values)],
    )


def _insert_transition(con: duckdb.DuckDBPyConnection, transition: Transition) -> None:
    position, previous_hash = _next_position(con, "transitions")
    values = [
        position,
        transition.record_id,
        transition.sequence,
        None if transition.from_state is None else transition.from_state.value,
        transition.to_state.value,
        transition.actor,
        transition.at,
        transition.reason,
    ]
    con.execute(
        f"INSERT INTO transitions ({_TRANSITION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*values, row_hash(previous_hash, values)],
    )


def _transition_of(row: Sequence[Any]) -> Transition:
    _, record_id, sequence, from_state, to_state, actor, at, reason, _ = row
    return Transition(
        record_id=record_id,
        sequence=sequence,
        from_state=None if from_state is None else RecordState(from_state),
        to_state=RecordState(to_state),
        actor=actor,
        at=at,
        reason=reason,
    )


def _verify(con: duckdb.DuckDBPyConnection) -> int:
    records = con.execute(f"SELECT {_RECORD_COLUMNS} FROM archive_records ORDER BY position")
    record_rows = records.fetchall()
    moves = con.execute(f"SELECT {_TRANSITION_COLUMNS} FROM transitions ORDER BY position")
    move_rows = moves.fetchall()
    _verify_chain("archive_records", record_rows)
    _verify_chain("transitions", move_rows)
    # Each record's newest version and last transition agree; holdout markers match versions.
    latest: dict[str, tuple[int, str]] = {row[1]: (row[3], row[4]) for row in record_rows}
    last_move: dict[str, tuple[int, str]] = {row[1]: (row[2], row[4]) for row in move_rows}
    if latest != last_move:
        disagree = sorted(set(latest.items()) ^ set(last_move.items()))
        raise TrailIntegrityError(
            f"archive versions and transitions disagree on (record, (sequence, state)) "
            f"{disagree}: rows were removed or added outside the archive store; restore the "
            "warehouse from a backup"
        )
    evaluated = {(row[5], row[1]) for row in record_rows if row[6]}
    markers = set(con.execute("SELECT goal, record_id FROM holdout_evaluations").fetchall())
    if evaluated != markers:
        raise TrailIntegrityError(
            f"holdout markers {sorted(markers)} do not match the records carrying a holdout "
            f"result {sorted(evaluated)}; restore the warehouse from a backup"
        )
    return len(record_rows) + len(move_rows)


def _verify_chain(table: str, rows: Sequence[Sequence[Any]]) -> None:
    previous_hash = GENESIS_HASH
    for index, row in enumerate(rows):
        *values, stored_hash = row
        position, record_id = values[0], values[1]
        if position != index or stored_hash != row_hash(previous_hash, values):
            raise TrailIntegrityError(
                f"{table} row at position {position} (record {record_id}) does not match the "
                f"hash chain (expected position {index}): the row, or one before it, was "
                "changed, inserted or removed outside the archive store; restore the warehouse "
                "from a backup"
            )
        previous_hash = stored_hash
