"""The research loop's records: registered goals, every state version, and proposals.

States are append-only: each fold, start or stop adds a version; the latest version of a goal is
its current state. A proposal row keeps what a proposer said about a spec (dimension, hypothesis,
rationale as text, usage of the call that produced it) for the iteration that folds it.
"""

from datetime import UTC, datetime
from typing import Final

import duckdb

from quant_assets.domain.errors import ConfigurationError
from quant_assets.domain.research import Proposal, ResearchGoal, ResearchState, Usage
from quant_assets.storage.warehouse import Warehouse

_TABLES: Final = (
    """
    CREATE TABLE IF NOT EXISTS research_goals (
        name VARCHAR PRIMARY KEY, goal_id VARCHAR NOT NULL, goal_json VARCHAR NOT NULL,
        registered_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS research_states (
        goal VARCHAR NOT NULL, version INTEGER NOT NULL, iteration INTEGER NOT NULL,
        status VARCHAR NOT NULL, state_json VARCHAR NOT NULL, saved_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (goal, version)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS research_proposals (
        spec_id VARCHAR NOT NULL, goal VARCHAR NOT NULL, iteration INTEGER NOT NULL,
        proposal_json VARCHAR NOT NULL, usage_json VARCHAR NOT NULL,
        saved_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (goal, spec_id)
    )
    """,
)


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    for statement in _TABLES:
        con.execute(statement)


def register_goal(warehouse: Warehouse, goal: ResearchGoal) -> None:
    """Record a goal under its name; the same goal again changes nothing.

    Raises:
        ConfigurationError: if a different goal is registered under the name (a goal is
            immutable once research ran under it: give the changed goal a new name).
    """
    with warehouse.connect() as con:
        _ensure(con)
        row = con.execute(
            "SELECT goal_id FROM research_goals WHERE name = ?", [goal.name]
        ).fetchone()
        if row is not None and row[0] != goal.goal_id:
            raise ConfigurationError(
                f"research goal '{goal.name}' is registered with another content "
                f"({row[0]}, now {goal.goal_id}); a goal cannot change once research ran under "
                "it: save the changed goal under a new name"
            )
        if row is None:
            con.execute(
                "INSERT INTO research_goals VALUES (?, ?, ?, ?)",
                [goal.name, goal.goal_id, goal.model_dump_json(), datetime.now(UTC)],
            )


def registered_goal(warehouse: Warehouse, name: str) -> ResearchGoal | None:
    """Return the goal registered under a name, or None."""
    if not warehouse.path.exists():
        return None
    with warehouse.connect() as con:
        _ensure(con)
        row = con.execute("SELECT goal_json FROM research_goals WHERE name = ?", [name]).fetchone()
    return None if row is None else ResearchGoal.model_validate_json(row[0])


def save_state(warehouse: Warehouse, state: ResearchState) -> int:
    """Append a state version for its goal; return the version number."""
    with warehouse.connect() as con:
        _ensure(con)
        row = con.execute(
            "SELECT coalesce(max(version), 0) FROM research_states WHERE goal = ?",
            [state.goal.name],
        ).fetchone()
        version = int(row[0] if row else 0) + 1
        con.execute(
            "INSERT INTO research_states VALUES (?, ?, ?, ?, ?, ?)",
            [
                state.goal.name,
                version,
                state.iteration,
                state.status.value,
                state.model_dump_json(),
                datetime.now(UTC),
            ],
        )
    return version


def latest_state(warehouse: Warehouse, goal: str) -> ResearchState | None:
    """Return a goal's current state (its latest version), or None if it never started."""
    if not warehouse.path.exists():
        return None
    with warehouse.connect() as con:
        _ensure(con)
        row = con.execute(
            "SELECT state_json FROM research_states WHERE goal = ? ORDER BY version DESC LIMIT 1",
            [goal],
        ).fetchone()
    return None if row is None else ResearchState.model_validate_json(row[0])


def state_versions(warehouse: Warehouse, goal: str) -> list[tuple[int, int, str]]:
    """Return (version, iteration, status) of every stored state of a goal, oldest first."""
    with warehouse.connect() as con:
        _ensure(con)
        rows = con.execute(
            "SELECT version, iteration, status FROM research_states WHERE goal = ? "
            "ORDER BY version",
            [goal],
        ).fetchall()
    return [(int(v), int(i), str(s)) for v, i, s in rows]


def research_goal_names(warehouse: Warehouse) -> list[str]:
    """Return the names of every goal that has a state, in name order."""
    if not warehouse.path.exists():
        return []
    with warehouse.connect() as con:
        _ensure(con)
        rows = con.execute("SELECT DISTINCT goal FROM research_states ORDER BY goal").fetchall()
    return [str(row[0]) for row in rows]


def save_proposal(
    warehouse: Warehouse, goal: str, iteration: int, proposal: Proposal, usage: Usage
) -> None:
    """Record a proposal for a goal's iteration (the same spec again keeps the first row)."""
    with warehouse.connect() as con:
        _ensure(con)
        con.execute(
            "INSERT INTO research_proposals VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (goal, spec_id) DO NOTHING",
            [
                proposal.spec.spec_id,
                goal,
                iteration,
                proposal.model_dump_json(),
                usage.model_dump_json(),
                datetime.now(UTC),
            ],
        )


def iteration_proposals(
    warehouse: Warehouse, goal: str, iteration: int
) -> list[tuple[Proposal, Usage]]:
    """Return the proposals of one iteration of a goal with their call's usage, in spec order."""
    with warehouse.connect() as con:
        _ensure(con)
        rows = con.execute(
            "SELECT proposal_json, usage_json FROM research_proposals "
            "WHERE goal = ? AND iteration = ? ORDER BY saved_at, spec_id",
            [goal, iteration],
        ).fetchall()
    return [(Proposal.model_validate_json(p), Usage.model_validate_json(u)) for p, u in rows]


def goal_spec_ids(warehouse: Warehouse, goal: str) -> list[str]:
    """Return the ids of every spec proposed for a goal, oldest first."""
    if not warehouse.path.exists():
        return []
    with warehouse.connect() as con:
        _ensure(con)
        rows = con.execute(
            "SELECT spec_id FROM research_proposals WHERE goal = ? ORDER BY iteration, saved_at",
            [goal],
        ).fetchall()
    return [str(row[0]) for row in rows]
