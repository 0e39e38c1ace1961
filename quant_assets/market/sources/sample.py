"""The shipped sample: real Binance and Yahoo bars under data/sample/ (offline default)."""

from datetime import datetime
from functools import lru_cache
from pathlib import Path

import polars as pl

from quant_assets.domain.errors import SourceError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import to_canonical
from quant_assets.market.sources.base import MarketSource


class SampleSource(MarketSource):
    """Bars from `<sample_dir>/<venue>_<SYMBOL>_<timeframe>.parquet`."""

    name = "sample"

    def __init__(self, sample_dir: Path) -> None:
        self.sample_dir = sample_dir

    def path_of(self, instrument: InstrumentKey) -> Path:
        """Return the shipped file holding an instrument's bars."""
        return (
            self.sample_dir
            / f"{instrument.venue}_{instrument.symbol}_{instrument.timeframe}.parquet"
        )

    def fetch(self, instrument: InstrumentKey, start: datetime, end: datetime) -> pl.DataFrame:
        """Return the shipped bars with `start <= ts < end`.

        Raises:
            SourceError: if the sample has no file for this instrument.
        """
        frame = _read_sample(self.path_of(instrument), instrument.key)
        return frame.filter(pl.col("ts").is_between(start, end, closed="left"))

    def provenance(self, instrument: InstrumentKey) -> str:
        """Return the shipped file name (its origin is in data/sample/README.md)."""
        return f"sample:{self.path_of(instrument).name}"

    def first_ts(self, instrument: InstrumentKey) -> datetime:
        """Return the first bar's open time in the shipped file."""
        return _read_sample(self.path_of(instrument), instrument.key)["ts"].min()  # type: ignore[return-value]

    def last_ts(self, instrument: InstrumentKey) -> datetime:
        """Return the last bar's open time in the shipped file."""
        return _read_sample(self.path_of(instrument), instrument.key)["ts"].max()  # type: ignore[return-value]


@lru_cache(maxsize=8)
def _read_sample(path: Path, key: str) -> pl.DataFrame:
    # A range backfill asks for hundreds of months of one file; read it once.
    if not path.exists():
        shipped = ", ".join(sorted(p.stem for p in path.parent.glob("*.parquet"))) or "none"
        raise SourceError(
            f"the shipped sample has no file {path.name} for instrument '{key}' (shipped: "
            f"{shipped}); register the instrument with source ccxt, yfinance or csv instead"
        )
    return to_canonical(pl.read_parquet(path), key)
