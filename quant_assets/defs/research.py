"""Research assets: feature slices per instrument and validated strategy specs."""

import dagster as dg
from pydantic import Field, ValidationError

from quant_assets.defs.market import data_versions
from quant_assets.defs.partitions import instrument_partitions, spec_partitions
from quant_assets.defs.resources import WarehouseResource, run_goal
from quant_assets.defs.spec_preflight import preflight_spec
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.research import Proposal, Usage
from quant_assets.domain.strategy import StrategySpec
from quant_assets.features.base_slice import base_feature_slice, slice_input_digest
from quant_assets.market.manifest import manifest_digest
from quant_assets.storage.research import (
    feature_slice_digest,
    load_spec,
    mark_spec_validated,
    save_feature_slice_record,
    save_spec,
)
from quant_assets.storage.research_loop import save_proposal


class SpecProposalConfig(dg.Config):
    """A spec proposed by the research loop, carried in the run's config (empty otherwise)."""

    proposal_json: str = Field(
        default="", description="The Proposal as JSON (spec, dimension, hypothesis, rationale)."
    )
    iteration: int = Field(default=0, ge=0, description="The goal's iteration it belongs to.")
    usage_json: str = Field(default="", description="LLM usage of the call that proposed it.")


@dg.asset(
    partitions_def=instrument_partitions,
    deps=[data_versions],
    group_name="research",
    owners=["team:research"],
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
    owners=["team:research"],
    pool="warehouse",
    code_version="1",
    kinds={"duckdb"},
)
def strategy_specs(
    context: dg.AssetExecutionContext, config: SpecProposalConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """A strategy spec that passed pre-flight: catalog modules and bounds, data slice present."""
    store = warehouse.warehouse()
    if config.proposal_json:
        save_proposed_spec(warehouse, context, config)
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


def save_proposed_spec(
    warehouse: WarehouseResource, context: dg.AssetExecutionContext, config: SpecProposalConfig
) -> None:
    """Register a proposed spec and record its proposal for the goal the run's tag names.

    Raises:
        SpecValidationError: if the proposal is malformed or its spec id is not the partition.
    """
    try:
        proposal = Proposal.model_validate_json(config.proposal_json)
        usage = Usage.model_validate_json(config.usage_json) if config.usage_json else Usage()
    except ValidationError as e:
        raise SpecValidationError(
            f"the proposal in the run config is malformed ({e.error_count()} problem(s)): "
            f"{e.errors(include_url=False)[0]['msg']}; launch proposals from the research sensor"
        ) from e
    if proposal.spec.spec_id != context.partition_key:
        raise SpecValidationError(
            f"the proposed spec's id is {proposal.spec.spec_id}, not the partition "
            f"{context.partition_key}; launch the run for partition {proposal.spec.spec_id}"
        )
    store = warehouse.warehouse()
    save_spec(store, proposal.spec)
    save_proposal(store, run_goal(context.run.tags), config.iteration, proposal, usage)
    context.log.info(
        f"{proposal.proposer} proposed spec {proposal.spec.spec_id} ({proposal.dimension}) for "
        f"iteration {config.iteration}: {proposal.hypothesis[:200]}"
    )


def _modules_markdown(spec: StrategySpec) -> str:
    rows = [("baseline", spec.baseline), *(("filter", f) for f in spec.filters)]
    rows += [("execution", spec.execution), ("risk", spec.risk)]
    lines = ["| role | module | params |", "|---|---|---|"]
    lines += [f"| {role} | {ref.module} | {ref.params or 'defaults'} |" for role, ref in rows]
    space = [f"| search | {path} | [{r.low}, {r.high}] |" for path, r in spec.search_space.items()]
    return "\n".join(lines + space)
