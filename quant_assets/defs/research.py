"""Research assets: feature slices per instrument and validated strategy specs."""

import dagster as dg

from quant_assets.defs.market import data_versions
from quant_assets.defs.partitions import instrument_partitions, spec_partitions
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.spec_preflight import preflight_spec
from quant_assets.domain.strategy import StrategySpec
from quant_assets.features.base_slice import base_feature_slice, slice_input_digest
from quant_assets.market.manifest import manifest_digest
from quant_assets.storage.research import (
    feature_slice_digest,
    load_spec,
    mark_spec_validated,
    save_feature_slice_record,
)


@dg.asset(
    partitions_def=instrument_partitions,
    deps=[data_versions],
    group_name="research",
    pool="warehouse",
    code_version="1",
    kinds={"parquet", "polars"},
)
def feature_slices(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Base features of one instrument (returns, ATR, realized volatility, regime labels)."""
    instrument = context.partition_key
    store, lake = warehouse.warehouse(), warehouse.lake()
    input_digest = slice_input_digest(manifest_digest(store.partition_versions(instrument)))
    stored = lake.read_feature_slice(instrument)
    reused = stored is not None and feature_slice_digest(store, instrument) == input_digest
    if reused and stored is not None:
        features = stored
        context.log.info(f"{instrument}: bars unchanged since the stored slice; reused it")
    else:
        bars = lake.read_bars(instrument)
        if bars.is_empty():
            raise dg.Failure(
                f"no bars stored for {instrument}; materialize bars for it first "
                "(`quant-assets demo` or a bars backfill)"
            )
        features = base_feature_slice(bars)
        lake.write_feature_slice(features, instrument)
        save_feature_slice_record(
            store, instrument, input_digest, features.height, features.columns
        )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(input_digest),
        metadata={
            "rows": features.height,
            "columns": dg.MetadataValue.text(", ".join(features.columns)),
            "reused": reused,
            "path": dg.MetadataValue.path(str(lake.feature_slice_path(instrument))),
        },
    )


@dg.asset(
    partitions_def=spec_partitions,
    deps=[data_versions],
    group_name="research",
    pool="warehouse",
    code_version="1",
    kinds={"duckdb"},
)
def strategy_specs(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """A strategy spec that passed pre-flight: catalog modules and bounds, data slice present."""
    store = warehouse.warehouse()
    spec = preflight_spec(load_spec(store, context.partition_key), store)
    mark_spec_validated(store, spec.spec_id)
    context.log.info(f"spec {spec.spec_id} ({spec.name}) passed pre-flight")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(spec.spec_id),
        metadata={
            "name": spec.name,
            "template": spec.template,
            "hypothesis": dg.MetadataValue.text(spec.hypothesis),
            "instruments": ", ".join(spec.data.instruments),
            "period": f"{spec.data.start:%Y-%m-%d}..{spec.data.end:%Y-%m-%d}",
            "modules": dg.MetadataValue.md(_modules_markdown(spec)),
            "search_space_params": len(spec.search_space),
        },
    )


def _modules_markdown(spec: StrategySpec) -> str:
    rows = [("baseline", spec.baseline), *(("filter", f) for f in spec.filters)]
    rows += [("execution", spec.execution), ("risk", spec.risk)]
    lines = ["| role | module | params |", "|---|---|---|"]
    lines += [f"| {role} | {ref.module} | {ref.params or 'defaults'} |" for role, ref in rows]
    space = [f"| search | {path} | [{r.low}, {r.high}] |" for path, r in spec.search_space.items()]
    return "\n".join(lines + space)
