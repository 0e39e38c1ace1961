"""Asset checks: the OHLCV integrity rules (blocking) and continuity warnings."""

import dagster as dg

from quant_assets.defs.market import bars
from quant_assets.defs.partitions import bars_partitions, instrument_months
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.errors import DataQualityError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.continuity import continuity_report
from quant_assets.market.validation import validate_bars


@dg.asset_check(asset=bars, blocking=True, partitions_def=bars_partitions)
def ohlcv_schema(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Stored bars follow the canonical schema: dtypes, unique on-grid ts, sane OHLC, no NaN."""
    return evaluate_ohlcv_schema(warehouse, list(context.partition_keys))


def evaluate_ohlcv_schema(
    warehouse: WarehouseResource, partition_keys: list[str]
) -> dg.AssetCheckResult:
    """Validate the stored partitions named by `partition_keys` (instrument|month keys)."""
    lake = warehouse.lake()
    checked_rows = 0
    failures: list[str] = []
    for instrument, months in instrument_months(partition_keys).items():
        frame = lake.read_bars(instrument, months)
        checked_rows += frame.height
        try:
            validate_bars(frame, InstrumentKey.parse(instrument))
        except DataQualityError as e:
            failures.append(str(e))
    return dg.AssetCheckResult(
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "rows_checked": checked_rows,
            "failures": dg.MetadataValue.md("\n\n".join(failures) or "none"),
        },
        description=failures[0] if failures else None,
    )


@dg.asset_check(asset=bars, partitions_def=bars_partitions)
def ohlcv_continuity(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Missing bars and zero-volume flat bars (a warning: real exchanges have outages)."""
    lake = warehouse.lake()
    missing = gaps = longest = flat = suspicious = 0
    for instrument, months in instrument_months(list(context.partition_keys)).items():
        config = warehouse.instrument(instrument)
        report = continuity_report(
            lake.read_bars(instrument, months), config.instrument, config.asset_class
        )
        missing += report.missing_bars
        gaps += report.gaps
        longest = max(longest, report.longest_gap_bars)
        flat += report.zero_volume_flat_bars
        suspicious += report.suspicious_gaps
    return dg.AssetCheckResult(
        passed=suspicious == 0 and flat == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "missing_bars": missing,
            "gaps": gaps,
            "longest_gap_bars": longest,
            "zero_volume_flat_bars": flat,
        },
    )
