"""Shared inputs of the governance wiring tests: a project on shipped bars, specs, copies.

The project holds BTC and ETH 1h bars for January to May 2021 (the walk-forward asset test's
fixture). The specs are the small walk-forward spec on the slice [2021-01-01, 2021-06-01), so
the default holdout policy seals its last 15%: 151 days x 0.85 = 128.35 days = 128 days 8 h
24 min after January 1st, i.e. from 2021-05-09 08:24 UTC (by hand), and research reads the
3,081 hourly bars before it (128 x 24 + 9, 00:00 to 08:00 on May 9th).
"""

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import dagster as dg

from quant_assets.defs.audit_checks import (
    concentration,
    drawdown_limit,
    look_ahead,
    min_trades,
    overfitting_gap,
    survivorship,
)
from quant_assets.defs.governance import archive_records
from quant_assets.defs.partitions import SPEC_PARTITIONS_NAME
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.domain.strategy import StrategySpec
from quant_assets.market.ingest import load_months
from quant_assets.market.sources.sample import SampleSource
from quant_assets.storage.research import mark_spec_validated, save_spec
from quant_assets_tests.backtest.walkforward_fixtures import BTC, ETH, small_spec

PROJECT_DIR: Final = Path(__file__).resolve().parents[2]
MONTHS: Final = ["2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01", "2021-05-01"]
SLICE_START: Final = datetime(2021, 1, 1, tzinfo=UTC)
SLICE_END: Final = datetime(2021, 6, 1, tzinfo=UTC)
SEAL: Final = datetime(2021, 5, 9, 8, 24, tzinfo=UTC)
CHECKS: Final = [
    look_ahead,
    overfitting_gap,
    min_trades,
    drawdown_limit,
    concentration,
    survivorship,
]
# Limits every audit of the small spec passes: its OOS deflated Sharpe is below the shipped
# floor (0.5), so under preferences.yaml its result is discarded by the overfitting audit.
LENIENT_PREFERENCES: Final = (
    "max_drawdown: -0.5\n"
    "min_trades: 5\n"
    "max_sharpe_gap: 5.0\n"
    "min_deflated_sharpe: 0.0\n"
    "max_position_fraction: 1.0\n"
)


def make_project(root: Path, *, lenient: bool) -> WarehouseResource:
    """Return a project in `root` with BTC and ETH 1h for January to May 2021 stored."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_DIR / "instruments.yaml", root / "instruments.yaml")
    if lenient:
        (root / "preferences.yaml").write_text(LENIENT_PREFERENCES)
    else:
        shutil.copy(PROJECT_DIR / "preferences.yaml", root / "preferences.yaml")
    (root / "data").mkdir()
    (root / "data" / "sample").symlink_to(PROJECT_DIR / "data" / "sample")
    (root / "dagster_home").mkdir()
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", root / "dagster_home")
    resource = WarehouseResource(project_dir=str(root), walkforward_workers=2)
    store, lake = resource.warehouse(), resource.lake()
    for config in resource.default_instruments()[:2]:
        store.register_instrument(config)
        loads = load_months(
            config, SampleSource(root / "data" / "sample"), MONTHS, lake, {}, datetime.now(UTC)
        )
        store.save_partition_versions([load.version for load in loads])
    return resource


def copy_project(source: WarehouseResource, root: Path) -> WarehouseResource:
    """Return a copy of a project (warehouse, lake, files) in `root`, with an empty instance."""
    shutil.copytree(source.project_dir, root, symlinks=True, ignore=_instance_files)
    return WarehouseResource(project_dir=str(root), walkforward_workers=2)


def _instance_files(folder: str, names: list[str]) -> list[str]:
    # Copy dagster.yaml only: each copy starts with an instance of its own.
    return [n for n in names if Path(folder).name == "dagster_home" and n != "dagster.yaml"]


def specs() -> tuple[StrategySpec, StrategySpec]:
    """Return a root spec and its child (the child is the one researched)."""
    data = {
        "instruments": [BTC, ETH],
        "timeframe": "1h",
        "start": SLICE_START.isoformat(),
        "end": SLICE_END.isoformat(),
    }
    parent = small_spec(name="ema trend root", data=data)
    child = small_spec(
        name="ema trend child",
        data=data,
        lineage={"parent_id": parent.spec_id, "generation": 1, "created_by": "policy"},
    )
    return parent, child


def register(instance: dg.DagsterInstance, resource: WarehouseResource) -> StrategySpec:
    """Store both specs (validated), add their partitions; return the child."""
    store = resource.warehouse()
    for spec in specs():
        save_spec(store, spec)
        mark_spec_validated(store, spec.spec_id)
        if not instance.has_dynamic_partition(SPEC_PARTITIONS_NAME, spec.spec_id):
            instance.add_dynamic_partitions(SPEC_PARTITIONS_NAME, [spec.spec_id])
    return specs()[1]


def materialize(
    instance: dg.DagsterInstance,
    resource: WarehouseResource,
    spec: StrategySpec,
    assets: list[dg.AssetsDefinition | dg.AssetChecksDefinition],
) -> dg.ExecuteInProcessResult:
    """Materialize `assets` for the spec's partition on a real instance (failures returned)."""
    return dg.materialize(
        assets,
        partition_key=spec.spec_id,
        instance=instance,
        resources={"warehouse": resource},
        raise_on_error=False,
    )


def researched(root: Path) -> WarehouseResource:
    """Return a lenient project whose child spec has a stored walk-forward run."""
    resource = make_project(root, lenient=True)
    with dg.instance_for_test() as instance:
        child = register(instance, resource)
        result = materialize(instance, resource, child, [walkforward_results])
        assert result.success
    return resource


ALL_RESEARCH: Final = [walkforward_results, *CHECKS, archive_records]
