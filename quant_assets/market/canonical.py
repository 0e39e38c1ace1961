"""The canonical bar frame: column names, dtypes and conversion into it."""

from typing import Final

import polars as pl

TS_DTYPE: Final = pl.Datetime("us", "UTC")
PRICE_COLUMNS: Final = ("open", "high", "low", "close")
BAR_SCHEMA: Final = pl.Schema(
    {  # type: ignore[arg-type]
        "ts": TS_DTYPE,
        "open": pl.Float64,
        "high": pl.Float64,
        "low": pl.Float64,
        "close": pl.Float64,
        "volume": pl.Float64,
        "instrument": pl.String,
    }
)


def empty_bars() -> pl.DataFrame:
    """Return an empty frame in the canonical schema."""
    return pl.DataFrame(schema=BAR_SCHEMA)


def to_canonical(frame: pl.DataFrame, instrument: str) -> pl.DataFrame:
    """Return `frame` cast to the canonical schema with the instrument column set.

    `frame` must already carry a `ts` column (any datetime unit; naive means UTC) and the five
    OHLCV columns; extra columns are dropped and rows are left in their given order, so that
    validation can still see duplicates or disorder.
    """
    ts = pl.col("ts")
    ts_dtype = frame.schema["ts"]
    if isinstance(ts_dtype, pl.Datetime) and ts_dtype.time_zone is None:
        ts = ts.dt.replace_time_zone("UTC")
    return frame.select(
        ts.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("ts"),
        *(pl.col(name).cast(pl.Float64) for name in (*PRICE_COLUMNS, "volume")),
        pl.lit(instrument, dtype=pl.String).alias("instrument"),
    )
