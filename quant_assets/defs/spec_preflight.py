"""Pre-flight of a strategy spec against the catalog and what the warehouse holds."""

from datetime import datetime

import polars as pl

from quant_assets.domain.strategy import StrategySpec
from quant_assets.storage.warehouse import Warehouse
from quant_assets.strategy.catalog.loader import load_catalog
from quant_assets.strategy.validation import validate_spec


def preflight_spec(spec: StrategySpec, warehouse: Warehouse) -> StrategySpec:
    """Validate a spec: catalog bounds, registered instruments, and bars stored for its period.

    Bars are validated before they are stored, so a stored partition has passed the OHLCV
    rules; the period must lie inside the stored bars of every instrument.

    Raises:
        SpecValidationError: listing every problem with its field path, value, rule and fix.
    """
    instruments = {config.key: config for config in warehouse.instruments()}
    return validate_spec(
        spec,
        load_catalog(),
        registered_instruments=set(instruments),
        data_ranges=stored_ranges(warehouse),
        instrument_asset_classes={k: c.asset_class.value for k, c in instruments.items()},
    )


def stored_ranges(warehouse: Warehouse) -> dict[str, tuple[datetime, datetime]]:
    """Return per instrument the open times of its first and last stored bar."""
    manifest = warehouse.partition_versions()
    if manifest.is_empty():
        return {}
    spans = manifest.group_by("instrument").agg(
        pl.col("first_ts").min().alias("first"), pl.col("last_ts").max().alias("last")
    )
    return {row[0]: (row[1], row[2]) for row in spans.iter_rows()}
