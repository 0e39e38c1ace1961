"""The data_versions manifest: per-instrument summaries and the digest of partition hashes."""

import polars as pl

from quant_assets.domain.ids import digest_of


def manifest_digest(manifest: pl.DataFrame) -> str:
    """Return the digest of every (instrument, month, content_hash), in key order."""
    if manifest.is_empty():
        return digest_of([])
    rows = manifest.sort("instrument", "month").select("instrument", "month", "content_hash")
    return digest_of([f"{i}|{m}|{h}" for i, m, h in rows.iter_rows()])


def manifest_summary(manifest: pl.DataFrame) -> pl.DataFrame:
    """Return one row per instrument: months, rows, first and last ts."""
    if manifest.is_empty():
        return pl.DataFrame(
            schema={
                "instrument": pl.String,
                "months": pl.UInt32,
                "rows": pl.Int64,
                "first_ts": pl.Datetime("us", "UTC"),
                "last_ts": pl.Datetime("us", "UTC"),
            }
        )
    return (
        manifest.group_by("instrument")
        .agg(
            pl.len().alias("months"),
            pl.col("rows").sum().alias("rows"),
            pl.col("first_ts").min().dt.convert_time_zone("UTC").alias("first_ts"),
            pl.col("last_ts").max().dt.convert_time_zone("UTC").alias("last_ts"),
        )
        .sort("instrument")
    )
