"""The code location loads and has the intended graph; the core never imports dagster."""

import ast
from pathlib import Path

import dagster as dg
import pytest

from quant_assets.definitions import defs

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "quant_assets"


def core_modules() -> list[Path]:
    """Return every package module except the Dagster shell (definitions.py, defs/, cli/)."""
    shell = {PACKAGE_DIR / "definitions.py"}
    return sorted(
        p
        for p in PACKAGE_DIR.rglob("*.py")
        if p not in shell and not {"defs", "cli"} & set(p.relative_to(PACKAGE_DIR).parts)
    )


def top_level_imports(path: Path) -> set[str]:
    """Return the top-level package names a module imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_core_module_does_not_import_dagster(path: Path) -> None:
    # Act
    imported = top_level_imports(path)

    # Assert
    assert "dagster" not in imported, f"{path} imports dagster; move the wiring into defs/"


def test_definitions_validate_and_match_intended_graph() -> None:
    # Arrange
    definitions = defs()

    # Act
    graph = definitions.resolve_asset_graph()
    assets = {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}

    # Assert
    dg.Definitions.validate_loadable(definitions)
    assert {k: a.group_name for k, a in assets.items()} == {
        "archive_records": "governance",
        "bars": "market",
        "data_versions": "market",
        "feature_slices": "research",
        "research_state": "research",
        "strategy_specs": "research",
        "walkforward_results": "research",
    }
    assert {k: _partitioning(a.partitions_def) for k, a in assets.items()} == {
        "archive_records": "spec",
        "bars": "instrument x month",
        "data_versions": "none",
        "feature_slices": "instrument",
        "research_state": "goal",
        "strategy_specs": "spec",
        "walkforward_results": "spec",
    }
    assert graph.get(dg.AssetKey("strategy_specs")).parent_keys == {dg.AssetKey("data_versions")}
    assert graph.get(dg.AssetKey("archive_records")).parent_keys == {
        dg.AssetKey("walkforward_results")
    }
    assert graph.get(dg.AssetKey("research_state")).parent_keys == {dg.AssetKey("archive_records")}
    assert sorted(k.name for k in graph.asset_check_keys) == [
        "concentration",
        "drawdown_limit",
        "look_ahead",
        "min_trades",
        "ohlcv_continuity",
        "ohlcv_schema",
        "overfitting_gap",
        "survivorship",
    ]
    assert {j.name for j in definitions.resolve_all_job_defs()} >= {
        "approval_job",
        "bars_job",
        "data_versions_job",
    }
    assert definitions.resolve_schedule_def("market_refresh_schedule").cron_schedule == "5 * * * *"


def _partitioning(partitions_def: dg.PartitionsDefinition | None) -> str:
    if partitions_def is None:
        return "none"
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return " x ".join(dim.name for dim in partitions_def.partitions_defs)
    assert isinstance(partitions_def, dg.DynamicPartitionsDefinition)
    return str(partitions_def.name)


def test_bars_asset_is_single_run_backfill_in_warehouse_pool() -> None:
    # Arrange
    graph = defs().resolve_asset_graph()

    # Act
    bars = graph.get(dg.AssetKey("bars"))

    # Assert
    assert bars.backfill_policy == dg.BackfillPolicy.single_run()
    assert bars.assets_def.op.pool == "warehouse"


def test_archive_records_and_approval_op_use_the_warehouse_pool() -> None:
    # Arrange
    definitions = defs()

    # Act
    archive = definitions.resolve_asset_graph().get(dg.AssetKey("archive_records"))
    approval = definitions.resolve_job_def("approval_job")

    # Assert
    assert archive.assets_def.op.pool == "warehouse"
    assert [node.definition.pools for node in approval.nodes] == [{"warehouse"}]


def test_every_asset_has_a_description_an_owner_and_a_researcher_group() -> None:
    # Arrange
    graph = defs().resolve_asset_graph()

    # Act
    nodes = [graph.get(key) for key in graph.get_all_asset_keys()]

    # Assert
    for node in nodes:
        name = node.key.to_user_string()
        assert node.description, f"{name} has no description (its docstring)"
        assert node.owners, f"{name} has no owner"
        assert node.group_name in {"market", "research", "governance"}, name
