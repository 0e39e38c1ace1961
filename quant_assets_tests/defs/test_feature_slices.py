"""feature_slices: computed from stored bars, reused while the bars are unchanged."""

import dagster as dg

from quant_assets.defs.launch import register_instruments
from quant_assets.defs.market import bars, data_versions
from quant_assets.defs.partitions import bars_partition_key
from quant_assets.defs.research import feature_slices
from quant_assets.defs.resources import WarehouseResource

BTC = "binance.BTC-USDT.1h"


def _load_months(
    instance: dg.DagsterInstance, resource: WarehouseResource, months: list[str]
) -> None:
    for month in months:
        dg.materialize(
            [bars],
            partition_key=str(bars_partition_key(BTC, month)),
            instance=instance,
            resources={"warehouse": resource},
        )
    dg.materialize([data_versions], instance=instance, resources={"warehouse": resource})


def _slice(instance: dg.DagsterInstance, resource: WarehouseResource) -> tuple[str, bool, int]:
    result = dg.materialize(
        [feature_slices], partition_key=BTC, instance=instance, resources={"warehouse": resource}
    )
    (event,) = result.asset_materializations_for_node("feature_slices")
    assert event.tags is not None
    return (
        event.tags["dagster/data_version"],
        bool(event.metadata["reused"].value),
        int(event.metadata["rows"].value),  # type: ignore[arg-type]
    )


def test_feature_slices_reuse_until_a_month_is_appended(
    dagster_instance: dg.DagsterInstance, warehouse_resource: WarehouseResource
) -> None:
    # Arrange
    defaults = {c.key: c for c in warehouse_resource.default_instruments()}
    register_instruments(dagster_instance, warehouse_resource, [defaults[BTC]])
    _load_months(dagster_instance, warehouse_resource, ["2024-01-01", "2024-02-01"])

    # Act
    first = _slice(dagster_instance, warehouse_resource)
    again = _slice(dagster_instance, warehouse_resource)
    _load_months(dagster_instance, warehouse_resource, ["2024-03-01"])
    appended = _slice(dagster_instance, warehouse_resource)

    # Assert: 744 + 696 hours, then + 744 for March; the version follows the bars' hashes.
    assert first == (first[0], False, 744 + 696)
    assert again == (first[0], True, 744 + 696)
    assert appended[0] != first[0]
    assert appended[1:] == (False, 744 + 696 + 744)
    stored = warehouse_resource.lake().read_feature_slice(BTC)
    assert stored is not None
    assert stored.columns == ["ts", "log_return", "atr_14", "realized_volatility_24", "regime"]
