"""strategy_specs: pre-flight on a real instance; `specs add` persists nothing on failure."""

import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from quant_assets.cli.main import main
from quant_assets.defs.partitions import SPEC_PARTITIONS_NAME
from quant_assets.defs.research import strategy_specs
from quant_assets.defs.resources import WarehouseResource
from quant_assets.market.ingest import load_months
from quant_assets.market.months import month_keys_between
from quant_assets.market.sources.sample import SampleSource
from quant_assets.storage.research import list_specs, load_spec, save_spec
from quant_assets.strategy.spec_io import dump_spec_yaml, load_spec_yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLE = PROJECT_DIR / "specs" / "ema_trend_adx_btc_eth_1h.yaml"


@pytest.fixture
def loaded(tmp_path: Path) -> WarehouseResource:
    """Return a resource on tmp_path whose lake holds BTC and ETH 1h (full shipped history)."""
    shutil.copy(PROJECT_DIR / "instruments.yaml", tmp_path / "instruments.yaml")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sample").symlink_to(PROJECT_DIR / "data" / "sample")
    resource = WarehouseResource(project_dir=str(tmp_path))
    store, lake = resource.warehouse(), resource.lake()
    source = SampleSource(PROJECT_DIR / "data" / "sample")
    for config in resource.default_instruments()[:2]:  # BTC and ETH 1h
        store.register_instrument(config)
        first, last = source.first_ts(config.instrument), source.last_ts(config.instrument)
        loads = load_months(
            config, source, month_keys_between(first, last), lake, {}, datetime.now(UTC)
        )
        store.save_partition_versions([load.version for load in loads])
    return resource


def test_strategy_specs_example_passes_preflight_and_is_versioned_by_spec_id(
    dagster_instance: dg.DagsterInstance, loaded: WarehouseResource
) -> None:
    # Arrange
    spec = load_spec_yaml(EXAMPLE)
    save_spec(loaded.warehouse(), spec)
    dagster_instance.add_dynamic_partitions(SPEC_PARTITIONS_NAME, [spec.spec_id])

    # Act
    result = dg.materialize(
        [strategy_specs],
        partition_key=spec.spec_id,
        instance=dagster_instance,
        resources={"warehouse": loaded},
    )

    # Assert
    (event,) = result.asset_materializations_for_node("strategy_specs")
    assert event.tags is not None
    assert event.tags["dagster/data_version"] == spec.spec_id
    assert event.metadata["template"].value == "ema_trend_adx"
    assert list_specs(loaded.warehouse()) == [(spec.spec_id, spec.name, spec.template, "validated")]
    assert load_spec(loaded.warehouse(), spec.spec_id) == spec


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"end": "2027-01-01T00:00:00Z"}, "data.end"),
        ({"instruments": ["binance.SOL-USDT.1h"]}, "binance.SOL-USDT.1h"),
    ],
)
def test_specs_add_invalid_spec_persists_nothing(
    tmp_path: Path,
    loaded: WarehouseResource,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, object],
    message: str,
) -> None:
    # Arrange: the example spec with its data slice moved outside what is stored.
    spec = load_spec_yaml(EXAMPLE)
    data = spec.data.model_dump() | change
    broken = spec.model_copy(update={"data": type(spec.data).model_validate(data)})
    path = tmp_path / "broken.yaml"
    path.write_text(dump_spec_yaml(broken))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    # Act
    code = main(["--project-dir", loaded.project_dir, "specs", "add", str(path)])

    # Assert
    assert code == 2
    assert message in capsys.readouterr().err
    assert list_specs(loaded.warehouse()) == []
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions(SPEC_PARTITIONS_NAME) == []


def test_specs_add_valid_spec_registers_partition(
    tmp_path: Path, loaded: WarehouseResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    # Act
    code = main(["--project-dir", loaded.project_dir, "specs", "add", str(EXAMPLE)])

    # Assert
    spec_id = load_spec_yaml(EXAMPLE).spec_id
    assert code == 0
    assert [row[0] for row in list_specs(loaded.warehouse())] == [spec_id]
    with dg.DagsterInstance.get() as instance:
        assert instance.get_dynamic_partitions(SPEC_PARTITIONS_NAME) == [spec_id]
