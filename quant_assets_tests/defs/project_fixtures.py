"""A temp project with shipped BTC and ETH 1h months stored, as the Dagster-level tests use."""

import shutil
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml

from quant_assets.defs.resources import WarehouseResource
from quant_assets.market.ingest import load_months
from quant_assets.market.sources.sample import SampleSource

PROJECT_DIR = Path(__file__).resolve().parents[2]


def stored_btc_eth_project(
    project_dir: Path,
    months: Sequence[str],
    *,
    preferences: Mapping[str, object] | None = None,
) -> WarehouseResource:
    """Return a resource on `project_dir` with BTC and ETH 1h stored for `months`.

    The project gets instruments.yaml, the shipped sample (a link) and preferences.yaml: the
    shipped one, or `preferences` (a person's other limits) written out.
    """
    shutil.copy(PROJECT_DIR / "instruments.yaml", project_dir / "instruments.yaml")
    if preferences is None:
        shutil.copy(PROJECT_DIR / "preferences.yaml", project_dir / "preferences.yaml")
    else:
        (project_dir / "preferences.yaml").write_text(yaml.safe_dump(dict(preferences)))
    (project_dir / "data").mkdir()
    (project_dir / "data" / "sample").symlink_to(PROJECT_DIR / "data" / "sample")
    resource = WarehouseResource(project_dir=str(project_dir), walkforward_workers=2)
    store, lake = resource.warehouse(), resource.lake()
    source = SampleSource(project_dir / "data" / "sample")
    for config in resource.default_instruments()[:2]:  # BTC and ETH 1h
        store.register_instrument(config)
        loads = load_months(config, source, list(months), lake, {}, datetime.now(UTC))
        store.save_partition_versions([load.version for load in loads])
    return resource
