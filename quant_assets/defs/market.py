"""Market data assets: bars per instrument-month, and the data_versions manifest."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import polars as pl

from quant_assets.defs.partitions import bars_partitions, instrument_months
from quant_assets.defs.progress import LogProgress
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.ids import digest_of
from quant_assets.market.ingest import PartitionLoad, load_months
from quant_assets.market.manifest import manifest_digest, manifest_summary


@dg.asset(
    partitions_def=bars_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="market",
    owners=["team:data"],
    pool="warehouse",
    code_version="1",
    kinds={"parquet", "polars"},
    tags={"layer": "raw"},
)
def bars(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """OHLCV bars of one instrument for one month, validated, one Parquet file per partition."""
    store = warehouse.warehouse()
    fetched_at = datetime.now(UTC)
    loads: list[PartitionLoad] = []
    for instrument, months in instrument_months(list(context.partition_keys)).items():
        config = warehouse.instrument(instrument)
        known = (
            {
                str(row["month"]): row["content_hash"]
                for row in store.partition_versions(instrument).iter_rows(named=True)
            }
            if store.path.exists()
            else {}
        )
        instrument_loads = load_months(
            config,
            warehouse.source(config),
            months,
            warehouse.lake(),
            known,
            fetched_at,
            progress=LogProgress(context.log),
        )
        store.save_partition_versions([load.version for load in instrument_loads])
        loads.extend(instrument_loads)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(_loads_version(loads)), metadata=_loads_metadata(loads)
    )


def _loads_version(loads: list[PartitionLoad]) -> str:
    # One partition: its content hash. A single-run range gets one shared version (Dagster
    # records one per run), the digest of its partitions' hashes; data_versions keeps each one.
    if len(loads) == 1:
        return loads[0].version.content_hash
    return digest_of(
        [f"{x.version.instrument}|{x.version.month}|{x.version.content_hash}" for x in loads]
    )


def _loads_metadata(loads: list[PartitionLoad]) -> dict[str, Any]:
    versions = [load.version for load in loads]
    metadata: dict[str, Any] = {
        "partitions": len(loads),
        "changed_partitions": sum(load.changed for load in loads),
        "rows": sum(v.rows for v in versions),
        "missing_bars": sum(load.continuity.missing_bars for load in loads),
        "zero_volume_flat_bars": sum(load.continuity.zero_volume_flat_bars for load in loads),
        "source": ", ".join(sorted({v.source for v in versions})),
    }
    firsts = [v.first_ts for v in versions if v.first_ts]
    lasts = [v.last_ts for v in versions if v.last_ts]
    if firsts and lasts:
        metadata["first_ts"] = min(firsts).isoformat()
        metadata["last_ts"] = max(lasts).isoformat()
    if len(loads) == 1:
        metadata["longest_gap_bars"] = loads[0].continuity.longest_gap_bars
        metadata["content_hash"] = versions[0].content_hash
    return metadata


@dg.asset(
    deps=[bars],
    group_name="market",
    owners=["team:data"],
    pool="warehouse",
    code_version="1",
    kinds={"duckdb"},
)
def data_versions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The provenance manifest: one row per stored (instrument, month) with its content hash."""
    store = warehouse.warehouse()
    manifest = store.partition_versions()
    store.refresh_bars_view()
    summary = manifest_summary(manifest)
    context.log.info(f"manifest: {manifest.height} partitions of {summary.height} instruments")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(manifest_digest(manifest)),
        metadata={
            "instruments": summary.height,
            "partitions": manifest.height,
            "rows": int(manifest["rows"].sum()) if manifest.height else 0,
            "manifest": dg.MetadataValue.md(_markdown(summary)),
        },
    )


def _markdown(summary: pl.DataFrame) -> str:
    header = "| instrument | months | rows | first ts | last ts |\n|---|---:|---:|---|---|\n"
    lines = [
        f"| {r['instrument']} | {r['months']} | {r['rows']} | {r['first_ts']} | {r['last_ts']} |"
        for r in summary.iter_rows(named=True)
    ]
    return header + "\n".join(lines)
