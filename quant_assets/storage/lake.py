"""The Parquet lake: bars partitions (instrument x month) and feature slices, written atomically."""

import os
import tempfile
from pathlib import Path

import polars as pl

from quant_assets.market.canonical import BAR_SCHEMA, empty_bars


class Lake:
    """Bulk data: `bars/<instrument>/<YYYY-MM>.parquet` and `features/<instrument>.parquet`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def bars_dir(self) -> Path:
        """Return the directory holding every instrument's partitions."""
        return self.root / "bars"

    def partition_path(self, instrument: str, month_key: str) -> Path:
        """Return the file of one partition (month_key like 2024-03-01)."""
        return self.bars_dir / instrument / f"{month_key[:7]}.parquet"

    def write_partition(self, frame: pl.DataFrame, instrument: str, month_key: str) -> Path:
        """Replace one partition atomically: write a temp file, then rename over the old one."""
        return write_atomically(frame, self.partition_path(instrument, month_key))

    def feature_slice_path(self, instrument: str) -> Path:
        """Return the file of one instrument's base feature slice."""
        return self.root / "features" / f"{instrument}.parquet"

    def write_feature_slice(self, frame: pl.DataFrame, instrument: str) -> Path:
        """Replace one instrument's feature slice atomically."""
        return write_atomically(frame, self.feature_slice_path(instrument))

    def read_feature_slice(self, instrument: str) -> pl.DataFrame | None:
        """Return one instrument's feature slice, or None if it was never computed."""
        path = self.feature_slice_path(instrument)
        return pl.read_parquet(path) if path.exists() else None

    def delete_partition(self, instrument: str, month_key: str) -> None:
        """Remove one partition's file if it exists."""
        self.partition_path(instrument, month_key).unlink(missing_ok=True)

    def month_keys(self, instrument: str) -> list[str]:
        """Return the sorted month keys stored for an instrument."""
        folder = self.bars_dir / instrument
        if not folder.is_dir():
            return []
        return sorted(f"{path.stem}-01" for path in folder.glob("*.parquet"))

    def instruments(self) -> list[str]:
        """Return the instruments that have at least one stored partition."""
        if not self.bars_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.bars_dir.iterdir() if p.is_dir() and self.month_keys(p.name)
        )

    def read_partition(self, instrument: str, month_key: str) -> pl.DataFrame:
        """Return one stored partition, or an empty canonical frame if it is absent."""
        path = self.partition_path(instrument, month_key)
        return pl.read_parquet(path) if path.exists() else empty_bars()

    def read_bars(self, instrument: str, month_keys: list[str] | None = None) -> pl.DataFrame:
        """Return an instrument's stored bars (all months, or the given ones), sorted by ts."""
        keys = self.month_keys(instrument) if month_keys is None else month_keys
        paths = [self.partition_path(instrument, k) for k in keys]
        paths = [p for p in paths if p.exists()]
        if not paths:
            return empty_bars()
        return pl.read_parquet(paths, schema=BAR_SCHEMA).sort("ts")


def write_atomically(frame: pl.DataFrame, path: Path) -> Path:
    """Write Parquet to a temp file in the target folder, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, suffix=".parquet.tmp")
    os.close(handle)
    try:
        frame.write_parquet(temp_name, compression="zstd", statistics=True)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path
