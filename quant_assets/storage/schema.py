"""DDL of the DuckDB warehouse: the records (the bulk bars live in the Parquet lake)."""

from typing import Final

TABLES: Final = (
    """
    CREATE TABLE IF NOT EXISTS instruments (
        key VARCHAR PRIMARY KEY,
        source VARCHAR NOT NULL,
        asset_class VARCHAR NOT NULL,
        whole_units BOOLEAN NOT NULL,
        options VARCHAR NOT NULL,
        registered_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS partition_versions (
        instrument VARCHAR NOT NULL,
        month DATE NOT NULL,
        rows BIGINT NOT NULL,
        first_ts TIMESTAMPTZ,
        last_ts TIMESTAMPTZ,
        content_hash VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        fetched_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (instrument, month)
    )
    """,
)

RESEARCH_TABLES: Final = (
    """
    CREATE TABLE IF NOT EXISTS feature_slices (
        instrument VARCHAR PRIMARY KEY,
        input_digest VARCHAR NOT NULL,
        rows BIGINT NOT NULL,
        columns VARCHAR NOT NULL,
        computed_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS strategy_specs (
        spec_id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        template VARCHAR NOT NULL,
        spec_json VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        registered_at TIMESTAMPTZ NOT NULL,
        validated_at TIMESTAMPTZ
    )
    """,
)

# The archive is append-only: one row per record version and per transition, each chained to
# the previous row of its table by `row_hash` (storage/archive.py verifies the chains). A goal's
# holdout is evaluated at most once: `holdout_evaluations` holds one row per goal.
GOVERNANCE_TABLES: Final = (
    """
    CREATE TABLE IF NOT EXISTS archive_records (
        position BIGINT PRIMARY KEY,
        record_id VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        state VARCHAR NOT NULL,
        goal VARCHAR NOT NULL,
        holdout_evaluated BOOLEAN NOT NULL,
        record_json VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        row_hash VARCHAR NOT NULL,
        UNIQUE (record_id, version)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS transitions (
        position BIGINT PRIMARY KEY,
        record_id VARCHAR NOT NULL,
        sequence INTEGER NOT NULL,
        from_state VARCHAR,
        to_state VARCHAR NOT NULL,
        actor VARCHAR NOT NULL,
        "at" TIMESTAMPTZ NOT NULL,
        reason VARCHAR NOT NULL,
        row_hash VARCHAR NOT NULL,
        UNIQUE (record_id, sequence)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS holdout_evaluations (
        goal VARCHAR PRIMARY KEY,
        record_id VARCHAR NOT NULL,
        evaluated_at TIMESTAMPTZ NOT NULL
    )
    """,
)
