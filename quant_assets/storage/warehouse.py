"""The DuckDB warehouse: short-lived connections, one transaction per write."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import duckdb
import polars as pl

from quant_assets.domain.errors import UnknownInstrumentError
from quant_assets.domain.market import AssetClass, InstrumentConfig, PartitionVersion, SourceKind
from quant_assets.storage.lake import Lake
from quant_assets.storage.schema import GOVERNANCE_TABLES, RESEARCH_TABLES, TABLES

# DuckDB allows one writing process per file (NOTES-stack.md B3); wait briefly for the lock.
_LOCK_WAIT: Final = timedelta(seconds=60)


class Warehouse:
    """Typed reads and writes of the warehouse file, plus a view over the bars lake."""

    def __init__(self, path: Path, lake: Lake) -> None:
        self.path = path
        self.lake = lake

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file, run one transaction, commit (or roll back on error) and close."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._open(read_only and self.path.exists())
        connection.execute("SET TimeZone = 'UTC'")
        try:
            if not read_only:
                for statement in (*TABLES, *RESEARCH_TABLES, *GOVERNANCE_TABLES):
                    connection.execute(statement)
            connection.execute("BEGIN TRANSACTION")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = datetime.now(UTC) + _LOCK_WAIT
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower() or datetime.now(UTC) > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # Instruments -------------------------------------------------------------------------
    def register_instrument(self, config: InstrumentConfig) -> None:
        """Insert or replace one instrument's registration."""
        with self.connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO instruments VALUES (?, ?, ?, ?, ?, ?)",
                [
                    config.key,
                    config.source.value,
                    config.asset_class.value,
                    config.whole_units,
                    json.dumps(config.options, sort_keys=True),
                    datetime.now(UTC),
                ],
            )

    def instruments(self) -> list[InstrumentConfig]:
        """Return every registered instrument, sorted by key."""
        if not self.path.exists():
            return []
        with self.connect() as con:
            rows = con.execute(
                "SELECT key, source, asset_class, whole_units, options "
                "FROM instruments ORDER BY key"
            ).fetchall()
        return [
            InstrumentConfig(
                key=key,
                source=SourceKind(source),
                asset_class=AssetClass(asset_class),
                whole_units=whole_units,
                options=json.loads(options),
            )
            for key, source, asset_class, whole_units, options in rows
        ]

    def instrument(self, key: str) -> InstrumentConfig:
        """Return one registered instrument.

        Raises:
            UnknownInstrumentError: if the key is not registered.
        """
        registered = {config.key: config for config in self.instruments()}
        if key not in registered:
            known = ", ".join(sorted(registered)) or "none"
            raise UnknownInstrumentError(
                f"instrument '{key}' is not registered (registered: {known}); add it with "
                f"`quant-assets instruments add {key}` or list it in instruments.yaml"
            )
        return registered[key]

    # Partition versions ------------------------------------------------------------------
    def save_partition_versions(self, versions: list[PartitionVersion]) -> None:
        """Insert or replace manifest rows, all in one transaction."""
        if not versions:
            return
        with self.connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO partition_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        v.instrument,
                        v.month,
                        v.rows,
                        v.first_ts,
                        v.last_ts,
                        v.content_hash,
                        v.source,
                        v.fetched_at,
                    ]
                    for v in versions
                ],
            )

    def partition_versions(self, instrument: str | None = None) -> pl.DataFrame:
        """Return manifest rows (one per instrument x month), sorted."""
        if not self.path.exists():
            return pl.DataFrame()
        where = "WHERE instrument = ?" if instrument else ""
        with self.connect() as con:
            return con.sql(
                f"SELECT * FROM partition_versions {where} ORDER BY instrument, month",
                params=[instrument] if instrument else None,
            ).pl()

    def refresh_bars_view(self) -> None:
        """Create (or replace) the `bars` view over every Parquet partition in the lake."""
        if not self.lake.instruments():
            return
        pattern = (self.lake.bars_dir / "*" / "*.parquet").as_posix().replace("'", "''")
        with self.connect() as con:
            con.execute(f"CREATE OR REPLACE VIEW bars AS SELECT * FROM read_parquet('{pattern}')")
