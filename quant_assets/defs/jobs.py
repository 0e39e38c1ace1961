"""Jobs: the market load (bars with their checks) and the manifest refresh."""

import dagster as dg

from quant_assets.defs.market import bars, data_versions

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


@dg.definitions
def jobs() -> dg.Definitions:
    """Return the jobs."""
    return dg.Definitions(jobs=[bars_job, data_versions_job])
