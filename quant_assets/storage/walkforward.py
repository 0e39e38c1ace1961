"""Walk-forward records: runs, stitched OOS curves and trades, and the window memo cache."""

import threading
from datetime import UTC, datetime
from typing import Final

import duckdb
import polars as pl

from quant_assets.domain.walkforward import WalkForwardRun, WindowResult
from quant_assets.storage.warehouse import Warehouse

WALKFORWARD_TABLES: Final = (
    """
    CREATE TABLE IF NOT EXISTS window_cache (
        cache_key VARCHAR PRIMARY KEY,
        spec_id VARCHAR NOT NULL,
        result_json VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS walkforward_runs (
        run_id VARCHAR NOT NULL,
        spec_id VARCHAR NOT NULL,
        run_json VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS walkforward_equity (
        run_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, equity DOUBLE NOT NULL,
        exposure DOUBLE NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS walkforward_trades (
        run_id VARCHAR NOT NULL, instrument VARCHAR NOT NULL, entry_ts TIMESTAMPTZ,
        exit_ts TIMESTAMPTZ, side VARCHAR, qty DOUBLE, entry_price DOUBLE, exit_price DOUBLE,
        pnl DOUBLE, fees DOUBLE, return_rate DOUBLE, exit_reason VARCHAR, bars_held BIGINT
    )
    """,
)
_TRADE_COLUMNS: Final = (
    "instrument",
    "entry_ts",
    "exit_ts",
    "side",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "fees",
    "return_rate",
    "exit_reason",
    "bars_held",
)


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    for statement in WALKFORWARD_TABLES:
        con.execute(statement)


class WarehouseWindowCache:
    """A WindowCache over the warehouse: reads lazily, buffers new results until `save_run`.

    New results are written with the run that produced them, in one transaction, so an
    interrupted run leaves neither a half-written run nor orphan cache rows.
    """

    def __init__(self, warehouse: Warehouse, spec_id: str) -> None:
        self.warehouse = warehouse
        self.spec_id = spec_id
        self.pending: dict[str, WindowResult] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> WindowResult | None:
        """Return the stored (or pending) result under `key`, or None."""
        with self._lock:
            if key in self.pending:
                return self.pending[key]
            with self.warehouse.connect() as con:
                _ensure(con)
                row = con.execute(
                    "SELECT result_json FROM window_cache WHERE cache_key = ?", [key]
                ).fetchone()
        return None if row is None else WindowResult.model_validate_json(row[0])

    def put(self, key: str, result: WindowResult) -> None:
        """Buffer a new result; `save_run` persists it."""
        with self._lock:
            self.pending[key] = result


def save_run(
    warehouse: Warehouse,
    run: WalkForwardRun,
    oos_equity: pl.DataFrame,
    oos_trades: pl.DataFrame,
    cache: WarehouseWindowCache | None = None,
) -> None:
    """Persist a run, its OOS curve and trades, and new cache entries in one transaction."""
    now = datetime.now(UTC)
    equity = oos_equity.select("ts", "equity", "exposure").with_columns(
        pl.lit(run.run_id).alias("run_id")
    )
    trades = oos_trades.select(*_TRADE_COLUMNS).with_columns(pl.lit(run.run_id).alias("run_id"))
    with warehouse.connect() as con:
        _ensure(con)
        con.execute("DELETE FROM walkforward_runs WHERE run_id = ?", [run.run_id])
        con.execute("DELETE FROM walkforward_equity WHERE run_id = ?", [run.run_id])
        con.execute("DELETE FROM walkforward_trades WHERE run_id = ?", [run.run_id])
        con.execute(
            "INSERT INTO walkforward_runs VALUES (?, ?, ?, ?)",
            [run.run_id, run.spec_id, run.model_dump_json(), now],
        )
        con.register("equity_frame", equity)
        con.execute(
            "INSERT INTO walkforward_equity SELECT run_id, ts, equity, exposure FROM equity_frame"
        )
        con.register("trades_frame", trades)
        con.execute(
            f"INSERT INTO walkforward_trades SELECT run_id, {', '.join(_TRADE_COLUMNS)} "
            "FROM trades_frame"
        )
        if cache is not None and cache.pending:
            con.executemany(
                "INSERT OR REPLACE INTO window_cache VALUES (?, ?, ?, ?)",
                [[k, run.spec_id, r.model_dump_json(), now] for k, r in cache.pending.items()],
            )
    if cache is not None:
        cache.pending.clear()


def latest_run(warehouse: Warehouse, spec_id: str) -> WalkForwardRun | None:
    """Return the most recent run of a spec, or None."""
    if not warehouse.path.exists():
        return None
    with warehouse.connect() as con:
        _ensure(con)
        row = con.execute(
            "SELECT run_json FROM walkforward_runs WHERE spec_id = ? "
            "ORDER BY created_at DESC LIMIT 1",
            [spec_id],
        ).fetchone()
    return None if row is None else WalkForwardRun.model_validate_json(row[0])


def run_curve(warehouse: Warehouse, run_id: str) -> pl.DataFrame:
    """Return a run's stitched OOS equity curve (ts, equity, exposure)."""
    with warehouse.connect() as con:
        _ensure(con)
        return con.sql(
            "SELECT ts, equity, exposure FROM walkforward_equity WHERE run_id = ? ORDER BY ts",
            params=[run_id],
        ).pl()


def run_trades(warehouse: Warehouse, run_id: str) -> pl.DataFrame:
    """Return a run's OOS trades."""
    with warehouse.connect() as con:
        _ensure(con)
        return con.sql(
            f"SELECT {', '.join(_TRADE_COLUMNS)} FROM walkforward_trades WHERE run_id = ? "
            "ORDER BY entry_ts",
            params=[run_id],
        ).pl()
