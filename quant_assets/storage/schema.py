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
