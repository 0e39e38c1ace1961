"""walkforward_results and its audit checks on a real instance, shipped bars and DuckDB."""

from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from quant_assets.defs.audit_checks import (
    concentration,
    drawdown_limit,
    look_ahead,
    min_trades,
    overfitting_gap,
    survivorship,
)
from quant_assets.defs.partitions import SPEC_PARTITIONS_NAME, spec_partitions
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.domain.strategy import ModuleRole, StrategySpec
from quant_assets.storage.research import mark_spec_validated, save_spec
from quant_assets.storage.walkforward import latest_run, run_curve
from quant_assets.strategy import registry
from quant_assets.strategy.modules import Baseline, BaselineSignals
from quant_assets_tests.backtest.walkforward_fixtures import small_spec
from quant_assets_tests.defs.project_fixtures import stored_btc_eth_project

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHECKS = [look_ahead, overfitting_gap, min_trades, drawdown_limit, concentration, survivorship]
MONTHS = ["2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01", "2021-05-01"]


class PeekingCrossBaseline(Baseline):
    """Goes long before rises and short before falls by reading the next close (test-only)."""

    name = "peeking_cross"
    role = ModuleRole.BASELINE
    description = "Reads the next bar's close: a planted look-ahead."

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return +1 when the next close is higher, -1 when lower."""
        up = bars.select(pl.col("close").shift(-1) > pl.col("close"))["close"]
        side = np.where(up.fill_null(False).to_numpy(), 1, -1).astype(np.int8)
        return BaselineSignals(entries=side)


@pytest.fixture
def resource(tmp_path: Path) -> WarehouseResource:
    """Return a project in tmp_path with BTC and ETH 1h for January to May 2021 stored."""
    return stored_btc_eth_project(tmp_path, MONTHS)


def _register(
    instance: dg.DagsterInstance, resource: WarehouseResource, spec: StrategySpec
) -> None:
    store = resource.warehouse()
    save_spec(store, spec)
    mark_spec_validated(store, spec.spec_id)
    instance.add_dynamic_partitions(SPEC_PARTITIONS_NAME, [spec.spec_id])


def _materialize(
    instance: dg.DagsterInstance,
    resource: WarehouseResource,
    spec: StrategySpec,
    extra: list[dg.AssetsDefinition] | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [walkforward_results, *CHECKS, *(extra or [])],
        partition_key=spec.spec_id,
        instance=instance,
        resources={"warehouse": resource},
        raise_on_error=False,
    )


def test_walkforward_results_records_run_metadata_and_reuses_every_window(
    dagster_instance: dg.DagsterInstance, resource: WarehouseResource
) -> None:
    # Arrange: January to May 2021 is at most 151 x 24 = 3,624 hourly bars; the small spec's
    # windows need 168 warm-up + 1,500 train + 24 embargo + 400 per test window, so 4 windows
    # (3,292 bars) fit and a fifth (3,692) does not. Each window searches 10 trials.
    spec = small_spec()
    _register(dagster_instance, resource, spec)

    # Act
    first = _materialize(dagster_instance, resource, spec)
    second = _materialize(dagster_instance, resource, spec)

    # Assert
    (event_1,) = first.asset_materializations_for_node("walkforward_results")
    (event_2,) = second.asset_materializations_for_node("walkforward_results")
    assert event_1.metadata["windows_recomputed"].value == 4
    assert int(str(event_1.metadata["backtests_executed"].value)) >= 4 * 10
    assert event_2.metadata["windows_reused"].value == 4
    assert event_2.metadata["backtests_executed"].value == 0
    assert event_1.tags is not None
    assert event_2.tags is not None
    assert event_1.tags["dagster/data_version"] == event_2.tags["dagster/data_version"]
    run = latest_run(resource.warehouse(), spec.spec_id)
    assert run is not None
    assert event_1.metadata["oos_sharpe"].value == pytest.approx(run.oos_report.sharpe)
    assert "| window |" in str(event_1.metadata["windows"].value)
    assert run_curve(resource.warehouse(), run.run_id).height == 4 * 400
    names = sorted(e.check_name for e in second.get_asset_check_evaluations())
    assert names == sorted(spec.name for check in CHECKS for spec in check.check_specs)


def test_planted_look_ahead_fails_blocking_check_and_nothing_downstream_runs(
    dagster_instance: dg.DagsterInstance,
    resource: WarehouseResource,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrange: a baseline that reads the next close, registered for this test only.
    monkeypatch.setattr(registry, "_MODULES", (*registry._MODULES, PeekingCrossBaseline))
    spec = small_spec(
        name="peeking",
        baseline={"module": "peeking_cross", "params": {}},
        filters=[],
        search_space={"execution.stop_atr": {"low": 1.5, "high": 5.0, "kind": "float"}},
    )
    _register(dagster_instance, resource, spec)

    @dg.asset(partitions_def=spec_partitions, deps=[walkforward_results])
    def archive_stub() -> None:
        """Stands in for what consumes walk-forward results downstream."""

    # Act
    result = _materialize(dagster_instance, resource, spec, extra=[archive_stub])

    # Assert
    evaluation = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "look_ahead"
    )
    assert not evaluation.passed
    assert "peeking_cross" in str(evaluation.description)
    assert result.asset_materializations_for_node("archive_stub") == []
    assert not result.success
