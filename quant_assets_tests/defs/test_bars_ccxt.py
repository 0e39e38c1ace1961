"""The bars asset end to end with a ccxt instrument served by the local Binance stub."""

import dagster as dg
import polars as pl

from quant_assets.defs.checks import ohlcv_schema
from quant_assets.defs.launch import register_instruments
from quant_assets.defs.market import bars
from quant_assets.defs.partitions import bars_partition_key
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.market import InstrumentConfig, SourceKind
from quant_assets_tests.stubs.binance_stub import BinanceStub


def test_bars_ccxt_instrument_month_equals_shipped_rows(
    dagster_instance: dg.DagsterInstance,
    warehouse_resource: WarehouseResource,
    sample_bars: pl.DataFrame,
) -> None:
    # Arrange: the stub serves the shipped bars 100 per page, so March takes 8 pages.
    shipped = sample_bars.drop("instrument").with_columns(pl.lit("BTC-USDT").alias("symbol"))
    config = InstrumentConfig(key="binance.BTC-USDT.1h", source=SourceKind.CCXT)
    with BinanceStub({"BTC/USDT": shipped}, interval="1h", page_cap=100) as stub:
        settings = warehouse_resource.model_dump() | {"ccxt_api_base_url": stub.api_url}
        resource = WarehouseResource(**settings)
        register_instruments(dagster_instance, resource, [config])

        # Act
        result = dg.materialize(
            [bars, ohlcv_schema],
            partition_key=str(bars_partition_key(config.key, "2024-03-01")),
            instance=dagster_instance,
            resources={"warehouse": resource},
        )
        pages = len(stub.requests("/api/v3/klines"))

    # Assert
    assert result.success
    stored = resource.lake().read_partition(config.key, "2024-03-01")
    expected = sample_bars.filter(pl.col("ts").dt.strftime("%Y-%m") == "2024-03")
    assert stored.equals(expected)
    assert pages >= 8
    (materialization,) = result.asset_materializations_for_node("bars")
    assert materialization.metadata["source"].value == "ccxt:binance BTC/USDT 1h"
