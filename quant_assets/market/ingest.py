"""Fetch, validate and store bars partitions (instrument x month)."""

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from quant_assets.domain.errors import SourceError
from quant_assets.domain.market import InstrumentConfig, PartitionVersion
from quant_assets.domain.progress import Progress, SilentProgress
from quant_assets.market.continuity import ContinuityReport, continuity_report
from quant_assets.market.months import month_bounds, month_key_of
from quant_assets.market.sources.base import MarketSource
from quant_assets.market.validation import validate_bars
from quant_assets.storage.hashing import bars_content_hash
from quant_assets.storage.lake import Lake


@dataclass(frozen=True)
class PartitionLoad:
    """What loading one month did: its manifest row, whether its content changed, its gaps."""

    version: PartitionVersion
    changed: bool
    continuity: ContinuityReport


def load_months(
    config: InstrumentConfig,
    source: MarketSource,
    month_keys: list[str],
    lake: Lake,
    known_hashes: dict[str, str],
    fetched_at: datetime,
    progress: Progress | None = None,
) -> list[PartitionLoad]:
    """Fetch the months' bars in one call, validate them all, then replace changed partitions.

    Validation runs on the whole fetch before any write, so bad input leaves every stored
    partition as it was. A partition whose content hash equals `known_hashes[month]` is not
    rewritten. Months without any bar (before the instrument's history) are skipped.

    Raises:
        DataQualityError: if the fetched bars break an integrity rule (nothing is written).
        SourceError: if the source fails, or returns no bar for any requested month.
    """
    progress = progress or SilentProgress()
    instrument = config.instrument
    keys = sorted(set(month_keys))
    start, end = month_bounds(keys[0])[0], month_bounds(keys[-1])[1]
    frame = source.fetch(instrument, start, end)
    validate_bars(frame, instrument)
    if frame.is_empty():
        raise SourceError(
            f"{source.provenance(instrument)} returned no bars for {instrument.key} in "
            f"{keys[0][:7]}..{keys[-1][:7]}; choose months inside the instrument's history"
        )
    by_month = frame.with_columns(pl.col("ts").dt.truncate("1mo").alias("_month"))
    provenance = source.provenance(instrument)
    loads: list[PartitionLoad] = []
    wanted = set(keys)
    parts = by_month.partition_by("_month", as_dict=True, include_key=False, maintain_order=True)
    for done, ((month_ts,), part) in enumerate(parts.items(), start=1):
        month_key = month_key_of(month_ts)
        if month_key not in wanted:
            continue
        content_hash = bars_content_hash(part)
        changed = known_hashes.get(month_key) != content_hash
        if changed or not lake.partition_path(instrument.key, month_key).exists():
            lake.write_partition(part, instrument.key, month_key)
        version = PartitionVersion(
            instrument=instrument.key,
            month=month_key,
            rows=part.height,
            first_ts=part["ts"][0],
            last_ts=part["ts"][-1],
            content_hash=content_hash,
            source=provenance,
            fetched_at=fetched_at,
        )
        loads.append(
            PartitionLoad(version, changed, continuity_report(part, instrument, config.asset_class))
        )
        progress.update(done, len(parts), f"{instrument.key} {month_key[:7]}")
    return loads
