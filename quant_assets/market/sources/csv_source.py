"""A user's own CSV files, with a column mapping and a timezone declaration."""

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from quant_assets.domain.errors import SourceError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import to_canonical
from quant_assets.market.sources.base import MarketSource

CANONICAL_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
_EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}


class CsvSource(MarketSource):
    """Bars read from one CSV file.

    The file keeps its own column names (`columns` maps canonical name -> file column) and
    may write naive timestamps in a local `timezone` (declared, never guessed). Timestamps
    with an explicit UTC offset are converted. Rows are neither sorted nor de-duplicated:
    disorder and duplicates are data errors that validation reports.
    """

    name = "csv"

    def __init__(
        self,
        path: Path,
        columns: dict[str, str] | None = None,
        timezone: str = "UTC",
        ts_format: str | None = None,
        epoch_unit: str = "ms",
    ) -> None:
        self.path = path
        self.columns = {name: name for name in CANONICAL_COLUMNS} | (columns or {})
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise SourceError(
                f"CSV {path}: timezone '{timezone}' is not an IANA zone name; declare it like "
                "UTC, Europe/London or America/New_York"
            ) from e
        if epoch_unit not in _EPOCH_UNITS:
            raise SourceError(
                f"CSV {path}: epoch_unit '{epoch_unit}' is not one of s, ms, us; set the unit of "
                "integer timestamps"
            )
        self.timezone = timezone
        self.ts_format = ts_format
        self.epoch_unit = epoch_unit

    def fetch(self, instrument: InstrumentKey, start: datetime, end: datetime) -> pl.DataFrame:
        """Return the file's bars with `start <= ts < end`, in file order.

        Raises:
            SourceError: if the file is missing, a mapped column is absent or ts cannot be parsed.
        """
        raw = self._read()
        missing = [
            f"{c} (file column '{f}')" for c, f in self.columns.items() if f not in raw.columns
        ]
        if missing:
            raise SourceError(
                f"CSV {self.path} for {instrument.key}: missing {', '.join(missing)}; the file has "
                f"columns {raw.columns}; fix the column mapping (e.g. --column open=Open)"
            )
        renamed = raw.select(pl.col(f).alias(c) for c, f in self.columns.items())
        with_ts = self._with_parsed_ts(renamed)
        frame = to_canonical(with_ts, instrument.key)
        return frame.filter(pl.col("ts").is_between(start, end, closed="left"))

    def provenance(self, instrument: InstrumentKey) -> str:
        """Return the file and the declared timezone."""
        return f"csv:{self.path} tz={self.timezone}"

    def _read(self) -> pl.DataFrame:
        if not self.path.exists():
            raise SourceError(
                f"CSV file {self.path} does not exist; check the instrument's path option"
            )
        return pl.read_csv(self.path, infer_schema_length=10_000, try_parse_dates=False)

    def _with_parsed_ts(self, frame: pl.DataFrame) -> pl.DataFrame:
        ts = pl.col("ts")
        if frame.schema["ts"].is_integer():
            scale = _EPOCH_UNITS[self.epoch_unit]
            return frame.with_columns(
                pl.from_epoch(ts * scale, time_unit="us").dt.replace_time_zone("UTC")
            )
        try:
            # Parsed eagerly on the Series: polars infers offsets there, not inside an Expr.
            parsed = frame.with_columns(
                frame["ts"].cast(pl.String).str.to_datetime(self.ts_format, time_unit="us")
            )
        except pl.exceptions.PolarsError as e:
            raise SourceError(
                f"CSV {self.path}: column '{self.columns['ts']}' has timestamps that do not parse "
                f"({str(e).splitlines()[0]}); pass ts_format (e.g. %Y-%m-%d %H:%M:%S)"
            ) from e
        dtype = parsed.schema["ts"]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            # Naive text is wall-clock time in the declared zone; text with an offset is absolute.
            return parsed.with_columns(ts.dt.replace_time_zone(self.timezone, ambiguous="earliest"))
        return parsed
