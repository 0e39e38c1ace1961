"""The bars asset, its checks and the manifest, run on a real Dagster instance and real files."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quant_assets.defs.checks import evaluate_ohlcv_schema, ohlcv_continuity, ohlcv_schema
from quant_assets.defs.launch import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    materialize_bars_range,
    register_instruments,
    user_error_message,
)
from quant_assets.defs.market import bars, data_versions
from quant_assets.defs.partitions import bars_partition_key
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.market import InstrumentConfig, SourceKind
from quant_assets.storage.hashing import bars_content_hash

BTC = "binance.BTC-USDT.1h"
SPY = "yahoo.SPY.1d"
ASSETS = [bars, data_versions, ohlcv_schema, ohlcv_continuity]


def _register(instance: dg.DagsterInstance, resource: WarehouseResource, keys: list[str]) -> None:
    defaults = {c.key: c for c in resource.default_instruments()}
    register_instruments(instance, resource, [defaults[k] for k in keys])


def _materialize_partition(
    instance: dg.DagsterInstance, resource: WarehouseResource, key: dg.MultiPartitionKey
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [bars, ohlcv_schema, ohlcv_continuity],
        partition_key=str(key),
        instance=instance,
        resources={"warehouse": resource},
    )


def _data_version(result: dg.ExecuteInProcessResult) -> str:
    (materialization,) = result.asset_materializations_for_node("bars")
    assert materialization.tags is not None
    return materialization.tags["dagster/data_version"]


def test_bars_two_partitions_twice_are_idempotent(
    dagster_instance: dg.DagsterInstance, warehouse_resource: WarehouseResource
) -> None:
    # Arrange
    _register(dagster_instance, warehouse_resource, [BTC, SPY])
    keys = [bars_partition_key(BTC, "2024-02-01"), bars_partition_key(SPY, "2020-03-01")]

    # Act
    first = [
        _data_version(_materialize_partition(dagster_instance, warehouse_resource, k)) for k in keys
    ]
    lake = warehouse_resource.lake()
    rows_first = [lake.read_bars(BTC).height, lake.read_bars(SPY).height]
    second = [
        _data_version(_materialize_partition(dagster_instance, warehouse_resource, k)) for k in keys
    ]

    # Assert: 29 days x 24 h of BTC; 22 SPY sessions in March 2020; versions = content hashes.
    assert first == second
    assert rows_first == [29 * 24, 22]
    assert [lake.read_bars(BTC).height, lake.read_bars(SPY).height] == rows_first
    assert first[0] == bars_content_hash(lake.read_partition(BTC, "2024-02-01"))
    manifest = warehouse_resource.warehouse().partition_versions()
    assert manifest.height == 2


def test_bars_full_history_range_checks_pass_on_every_shipped_partition(
    dagster_instance: dg.DagsterInstance, warehouse_resource: WarehouseResource
) -> None:
    # Arrange
    _register(dagster_instance, warehouse_resource, [BTC, SPY])
    defs = dg.Definitions(
        assets=[bars, data_versions],
        asset_checks=[ohlcv_schema, ohlcv_continuity],
        jobs=[dg.define_asset_job("bars_job", selection=[bars])],
        resources={"warehouse": warehouse_resource},
    )

    # Act: one single-run backfill per instrument over its whole shipped history.
    runs = [
        materialize_bars_range(dagster_instance, defs, BTC, "2018-01-01", "2025-08-01"),
        materialize_bars_range(dagster_instance, defs, SPY, "1993-01-01", "2026-03-01"),
    ]

    # Assert
    evaluations = [
        entry.get_dagster_event().asset_check_evaluation_data
        for run in runs
        for entry in dagster_instance.all_logs(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    ]
    schema_results = [e.passed for e in evaluations if e.check_name == "ohlcv_schema"]
    assert schema_results == [True, True]
    manifest = warehouse_resource.warehouse().partition_versions()
    assert manifest.group_by("instrument").len().sort("instrument").rows() == [
        (BTC, 92),
        (SPY, 399),
    ]
    assert int(manifest["rows"].sum()) == 67_078 + 8_347


def test_bars_corrupt_csv_fails_run_and_leaves_lake_untouched(
    tmp_path: Path,
    dagster_instance: dg.DagsterInstance,
    warehouse_resource: WarehouseResource,
    sample_bars: pl.DataFrame,
) -> None:
    # Arrange: a CSV instrument loaded once, then its file corrupted (high below low).
    csv_path = tmp_path / "my_btc.csv"
    january = sample_bars.filter(pl.col("ts").dt.strftime("%Y-%m") == "2024-01").drop("instrument")
    january.write_csv(csv_path)
    config = InstrumentConfig(
        key="csv.MYBTC.1h", source=SourceKind.CSV, options={"path": str(csv_path)}
    )
    register_instruments(dagster_instance, warehouse_resource, [config])
    key = bars_partition_key(config.key, "2024-01-01")
    _materialize_partition(dagster_instance, warehouse_resource, key)
    stored = warehouse_resource.lake().read_partition(config.key, "2024-01-01")
    january.with_columns((pl.col("low") * 0.9).alias("high")).write_csv(csv_path)

    # Act
    result = dg.materialize(
        [bars, ohlcv_schema],
        partition_key=str(key),
        instance=dagster_instance,
        resources={"warehouse": warehouse_resource},
        raise_on_error=False,
    )

    # Assert
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = user_error_message(failure.step_failure_data.error)
    assert "csv.MYBTC.1h, month 2024-01" in message
    assert "'high_is_max'" in message
    after = warehouse_resource.lake().read_partition(config.key, "2024-01-01")
    assert bars_content_hash(after) == bars_content_hash(stored)


def test_ohlcv_schema_corrupt_stored_partition_fails_blocking_check(
    dagster_instance: dg.DagsterInstance, warehouse_resource: WarehouseResource
) -> None:
    # Arrange: a stored partition corrupted behind the pipeline's back (duplicated rows).
    _register(dagster_instance, warehouse_resource, [BTC])
    key = bars_partition_key(BTC, "2024-02-01")
    _materialize_partition(dagster_instance, warehouse_resource, key)
    lake = warehouse_resource.lake()
    good = lake.read_partition(BTC, "2024-02-01")
    lake.write_partition(pl.concat([good, good.head(3)]), BTC, "2024-02-01")

    # Act: re-validate what is stored, as the check step does after bars in every run.
    evaluation = evaluate_ohlcv_schema(warehouse_resource, [str(key)])

    # Assert
    (spec,) = ohlcv_schema.check_specs
    assert spec.blocking
    assert not evaluation.passed
    assert "'ts_unique'" in str(evaluation.metadata["failures"].value)
    assert "month 2024-02" in str(evaluation.metadata["failures"].value)


def test_materialize_bars_range_unknown_instrument_fails_with_clear_error(
    dagster_instance: dg.DagsterInstance, warehouse_resource: WarehouseResource
) -> None:
    # Arrange: a dynamic partition that nothing registered.
    dagster_instance.add_dynamic_partitions("instrument", ["binance.DOGE-USDT.1h"])
    defs = dg.Definitions(
        assets=[bars],
        jobs=[dg.define_asset_job("bars_job", selection=[bars])],
        resources={"warehouse": warehouse_resource},
    )

    # Act
    with pytest.raises(QuantAssetsError) as caught:
        materialize_bars_range(
            dagster_instance, defs, "binance.DOGE-USDT.1h", "2024-01-01", "2024-01-01"
        )

    # Assert
    assert "instrument 'binance.DOGE-USDT.1h' is not registered" in str(caught.value)
    assert warehouse_resource.lake().month_keys("binance.DOGE-USDT.1h") == []


def test_range_tags_name_box_of_one_instrument() -> None:
    # Arrange / Act
    start = str(bars_partition_key(BTC, "2018-01-01"))

    # Assert: dimension order is alphabetical (instrument, month), as the CLI expects.
    assert start == f"{BTC}|2018-01-01"
    assert RANGE_START_TAG.endswith("range_start")
    assert RANGE_END_TAG.endswith("range_end")
