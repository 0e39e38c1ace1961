"""The lake and the warehouse on real DuckDB files: atomic replaces and whole transactions."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from quant_assets.domain.errors import UnknownInstrumentError
from quant_assets.domain.market import InstrumentConfig, PartitionVersion
from quant_assets.storage.hashing import bars_content_hash
from quant_assets.storage.lake import Lake
from quant_assets.storage.warehouse import Warehouse


def _version(month: str, content_hash: str) -> PartitionVersion:
    return PartitionVersion(
        instrument="binance.BTC-USDT.1h",
        month=month,
        rows=1,
        first_ts=None,
        last_ts=None,
        content_hash=content_hash,
        source="test",
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_write_partition_twice_replaces_file_without_leftovers(
    tmp_path: Path, sample_bars: pl.DataFrame
) -> None:
    # Arrange
    lake = Lake(tmp_path)
    january = sample_bars.head(744)

    # Act
    lake.write_partition(january, "binance.BTC-USDT.1h", "2018-01-01")
    lake.write_partition(january, "binance.BTC-USDT.1h", "2018-01-01")

    # Assert
    folder = tmp_path / "bars" / "binance.BTC-USDT.1h"
    assert sorted(p.name for p in folder.iterdir()) == ["2018-01.parquet"]
    assert bars_content_hash(lake.read_partition("binance.BTC-USDT.1h", "2018-01-01")) == (
        bars_content_hash(january)
    )


def test_bars_content_hash_changes_with_one_price(sample_bars: pl.DataFrame) -> None:
    # Arrange
    frame = sample_bars.head(100)
    nudged = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 50)
        .then(pl.col("close") + 0.01)
        .otherwise("close")
        .alias("close")
    )

    # Act / Assert
    assert bars_content_hash(frame) == bars_content_hash(frame.clone())
    assert bars_content_hash(frame) != bars_content_hash(nudged)


def test_save_partition_versions_failure_rolls_back_whole_batch(tmp_path: Path) -> None:
    # Arrange
    warehouse = Warehouse(tmp_path / "w.duckdb", Lake(tmp_path / "lake"))
    warehouse.save_partition_versions([_version("2024-01-01", "a")])
    broken = _version("2024-03-01", "c").model_copy(update={"month": "not-a-date"})

    # Act
    with pytest.raises(Exception, match="not-a-date"):
        warehouse.save_partition_versions([_version("2024-02-01", "b"), broken])

    # Assert: neither row of the failed batch landed; the earlier row is intact.
    stored = warehouse.partition_versions()
    assert stored["content_hash"].to_list() == ["a"]


def test_save_partition_versions_same_key_replaces_row(tmp_path: Path) -> None:
    # Arrange
    warehouse = Warehouse(tmp_path / "w.duckdb", Lake(tmp_path / "lake"))

    # Act
    warehouse.save_partition_versions([_version("2024-01-01", "a")])
    warehouse.save_partition_versions([_version("2024-01-01", "b")])

    # Assert
    assert warehouse.partition_versions()["content_hash"].to_list() == ["b"]


def test_instrument_unknown_key_names_key_and_fix(tmp_path: Path) -> None:
    # Arrange
    warehouse = Warehouse(tmp_path / "w.duckdb", Lake(tmp_path / "lake"))
    warehouse.register_instrument(InstrumentConfig(key="binance.BTC-USDT.1h"))

    # Act
    with pytest.raises(UnknownInstrumentError) as caught:
        warehouse.instrument("binance.DOGE-USDT.1h")

    # Assert
    assert "binance.DOGE-USDT.1h" in str(caught.value)
    assert "quant-assets instruments add" in str(caught.value)


@pytest.mark.parametrize("key", ["BTC-USDT", "binance.BTC/USDT.1h", "binance.BTC-USDT.1x"])
def test_instrument_config_malformed_key_is_rejected(key: str) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match=r"timeframe"):
        InstrumentConfig(key=key)
