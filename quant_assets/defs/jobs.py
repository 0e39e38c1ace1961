"""Jobs: market loads, the manifest, research steps, and the research loop's two jobs."""

import dagster as dg

from quant_assets.defs.governance import archive_records
from quant_assets.defs.market import bars, data_versions
from quant_assets.defs.research import feature_slices, strategy_specs
from quant_assets.defs.research_loop import research_state
from quant_assets.defs.walkforward import walkforward_results

bars_job = dg.define_asset_job(
    "bars_job",
    selection=dg.AssetSelection.assets(bars),
    description="Load bars partitions (a single run for a range) and run their checks.",
)
data_versions_job = dg.define_asset_job(
    "data_versions_job",
    selection=dg.AssetSelection.assets(data_versions),
    description="Rebuild the data_versions manifest after bars changed.",
)

feature_slices_job = dg.define_asset_job(
    "feature_slices_job",
    selection=dg.AssetSelection.assets(feature_slices),
    description="Compute (or reuse) one instrument's base feature slice.",
)
strategy_specs_job = dg.define_asset_job(
    "strategy_specs_job",
    selection=dg.AssetSelection.assets(strategy_specs),
    description="Run one registered spec's pre-flight checks.",
)

walkforward_job = dg.define_asset_job(
    "walkforward_job",
    selection=dg.AssetSelection.assets(walkforward_results),
    description="Walk-forward evaluation of one spec, then its audits (asset checks).",
)

research_spec_job = dg.define_asset_job(
    "research_spec_job",
    selection=dg.AssetSelection.assets(strategy_specs, walkforward_results, archive_records),
    description="One research spec: register and pre-flight it, walk it forward, audit and "
    "archive it (launched by research_sensor, one run per proposed spec).",
    tags={"quant_assets/loop": "research"},
)
research_state_job = dg.define_asset_job(
    "research_state_job",
    selection=dg.AssetSelection.assets(research_state),
    description="Start, fold an iteration into, or stop a research goal's state.",
    tags={"quant_assets/loop": "research"},
)


@dg.definitions
def jobs() -> dg.Definitions:
    """Return the jobs."""
    return dg.Definitions(
        jobs=[
            bars_job,
            data_versions_job,
            feature_slices_job,
            strategy_specs_job,
            walkforward_job,
            research_spec_job,
            research_state_job,
        ]
    )
