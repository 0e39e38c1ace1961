"""Content hashes of bar frames, stable across library versions."""

import hashlib

import polars as pl

from quant_assets.market.canonical import BAR_SCHEMA


def bars_content_hash(frame: pl.DataFrame) -> str:
    """Return the sha256 of a canonical bar frame's rows.

    Hashes the raw little-endian bytes of each column (ts as int64 microseconds, prices and
    volume as float64) plus the instrument strings, so the hash depends on content only, not
    on Parquet encoding or polars' internal row hashing (which is not stable across versions).
    """
    canonical = frame.select(list(BAR_SCHEMA.names()))
    hasher = hashlib.sha256()
    hasher.update(f"rows={canonical.height};".encode())
    hasher.update(canonical["ts"].dt.epoch("us").to_numpy().astype("<i8").tobytes())
    for name in ("open", "high", "low", "close", "volume"):
        hasher.update(canonical[name].to_numpy().astype("<f8").tobytes())
    for value in canonical["instrument"].unique(maintain_order=True).to_list():
        hasher.update(str(value).encode("utf-8"))
    return hasher.hexdigest()
