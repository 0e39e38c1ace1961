"""Read what a tear sheet shows for a spec's latest walk-forward run from storage.

The run, its stitched OOS curve and trades come from the warehouse; the bars for the
buy-and-hold benchmark through the research `BarsReader` (the holdout stays sealed); the audit
verdicts and state from the run's archive record when it was archived (or as given, e.g. freshly
computed by the caller); lineage from the stored specs; data versions from the bars manifest.
"""

from collections.abc import Mapping, Sequence

import polars as pl

from quant_assets.backtest.run_spec import DEFAULT_INITIAL_CASH
from quant_assets.domain.errors import BacktestInputError, SpecValidationError
from quant_assets.domain.governance import ArchiveRecord, RecordAudit
from quant_assets.domain.strategy import StrategySpec
from quant_assets.governance.lifecycle import spec_ancestry
from quant_assets.reports.tear_sheet import TearSheetInputs
from quant_assets.storage.archive import ArchiveStore
from quant_assets.storage.bars_reader import BarsReader
from quant_assets.storage.research import load_spec
from quant_assets.storage.walkforward import latest_run, run_curve, run_trades
from quant_assets.storage.warehouse import Warehouse


def buy_and_hold_curve(
    bars: Mapping[str, pl.DataFrame], ts: pl.Series, initial_cash: float
) -> pl.DataFrame:
    """Return the equity of an equal-weight buy-and-hold of every instrument on the bars `ts`.

    Each instrument gets an equal share of the cash, bought at the open of its first bar at or
    after ts[0] and marked at the close of its last bar at or before each time (no costs).
    Before an instrument's first bar its share stays in cash.

    Args:
        bars: Canonical bars per instrument (ts, open, close, ...).
        ts: The bar times to mark the holdings at (the OOS curve's), sorted.
        initial_cash: Account value before the first bar.

    Returns:
        A frame with columns ts and equity.

    Raises:
        BacktestInputError: if no instrument is given or one has no bar from ts[0] on.
    """
    if not bars or ts.len() == 0:
        raise BacktestInputError(
            f"buy and hold was asked for {len(bars)} instrument(s) over {ts.len()} bar(s); pass "
            "the spec's bars and the OOS curve's ts (both non-empty)"
        )
    timeline = pl.DataFrame({"ts": ts})
    growth: dict[str, pl.Series] = {}
    for key, frame in sorted(bars.items()):
        held = frame.filter(pl.col("ts") >= ts[0]).sort("ts")
        if held.height == 0:
            raise BacktestInputError(
                f"instrument {key} has no bar at or after {ts[0].isoformat()}, the first "
                "out-of-sample bar; load its bars over the run's data slice"
            )
        marks = timeline.join_asof(held.select("ts", "close"), on="ts", strategy="backward")
        growth[key] = (marks["close"] / held["open"][0]).fill_null(1.0)
    equity = pl.DataFrame(growth).mean_horizontal() * initial_cash
    return pl.DataFrame({"ts": ts, "equity": equity})


def _ancestors(warehouse: Warehouse, spec: StrategySpec) -> tuple[str, ...]:
    def parent_of(spec_id: str) -> str | None:
        try:
            return load_spec(warehouse, spec_id).lineage.parent_id
        except SpecValidationError:
            return None  # an ancestor not stored ends the chain

    return spec_ancestry(spec.lineage.parent_id, parent_of)


def _record_of(archive: ArchiveStore, run_id: str, goal: str) -> ArchiveRecord | None:
    records = [r for r in archive.list() if r.run_id == run_id and r.goal == goal]
    return records[-1] if records else None


def _partitions(warehouse: Warehouse, instruments: Sequence[str]) -> pl.DataFrame | None:
    frames = [warehouse.partition_versions(key) for key in instruments]
    frames = [frame for frame in frames if frame.height > 0]
    return pl.concat(frames, how="vertical_relaxed") if frames else None


def collect_tear_sheet_inputs(
    warehouse: Warehouse,
    archive: ArchiveStore,
    reader: BarsReader,
    spec_id: str,
    *,
    audits: Sequence[RecordAudit] | None = None,
) -> TearSheetInputs:
    """Return everything the tear sheet of a spec's latest walk-forward run shows.

    Args:
        warehouse: Holds the spec, its runs, curves, trades and the bars manifest.
        archive: The archive; the run's record (under the reader's goal) gives state and audits.
        reader: Research bars of the spec's goal, for the buy-and-hold benchmark.
        spec_id: The spec.
        audits: Verdicts to show; None takes the archived record's (none if not archived).

    Returns:
        The tear sheet's inputs.

    Raises:
        SpecValidationError: if the spec is not stored or has no walk-forward run.
    """
    run = latest_run(warehouse, spec_id)
    if run is None:
        raise SpecValidationError(
            f"spec {spec_id} has no stored walk-forward run, so it has no tear sheet; "
            f"materialize walkforward_results for partition {spec_id} first"
        )
    spec = load_spec(warehouse, spec_id)
    curve, trades = run_curve(warehouse, run.run_id), run_trades(warehouse, run.run_id)
    bars = {key: reader.read_research_bars(key, spec.data.start) for key in spec.data.instruments}
    goal = reader.guard.goal
    record = _record_of(archive, run.run_id, goal)
    if audits is None:
        audits = () if record is None else record.audits
    return TearSheetInputs(
        run=run,
        spec=spec,
        oos_curve=curve,
        trades=trades,
        buy_and_hold=buy_and_hold_curve(bars, curve["ts"], DEFAULT_INITIAL_CASH),
        initial_cash=DEFAULT_INITIAL_CASH,
        audits=tuple(audits),
        goal=goal,
        record_id=None if record is None else record.record_id,
        record_state=None if record is None else str(record.state),
        ancestors=_ancestors(warehouse, spec),
        partitions=_partitions(warehouse, spec.data.instruments),
    )
