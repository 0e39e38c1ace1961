"""Multi-timeframe features: higher-timeframe bars from closed bars, joined back without peeking.

A higher bar labelled `ts` covers [ts, ts + timeframe) and closes at ts + timeframe. Its values
become visible on the first lower bar whose open is at or after that close, never earlier, so a
4h value computed from the 00:00-04:00 bars is first seen on the 04:00 bar.
"""

from datetime import timedelta

import polars as pl

from quant_assets.domain.errors import DataQualityError, SpecValidationError
from quant_assets.domain.market import Timeframe

_GROUP_COLUMN = "instrument"
_OHLCV = ("open", "high", "low", "close", "volume")


def resample_closed(
    bars: pl.DataFrame, *, timeframe: str = "4h", bar_timeframe: str | None = None
) -> pl.DataFrame:
    """Return higher-timeframe bars built only from closed lower bars.

    Buckets are aligned to the Unix epoch (a 4h bar opens at 00:00, 04:00, ... UTC; 7d bars
    open on Thursdays). A bucket is emitted only once it has closed: its close time is at or
    before the close of the last lower bar of that instrument (its open + `bar_timeframe`), so a
    partly formed last bucket is dropped. Missing lower bars inside a bucket are tolerated and
    counted in `bar_count`. Bars of several instruments are resampled per `instrument`.

    Args:
        bars: Canonical bars (ts = bar open, UTC), sorted by ts within each instrument.
        timeframe: Higher bar length, a whole multiple of the lower one (e.g. 4h, 1d).
        bar_timeframe: Lower bar length; inferred from the smallest step between bars if None.

    Returns:
        Columns ts (higher bar open), [instrument], open, high, low, close, volume, bar_count.

    Raises:
        UnknownInstrumentError: if a timeframe is not of the form <number><m|h|d>.
        SpecValidationError: if the higher timeframe is not a whole multiple of the bar one.
        DataQualityError: if the bar length cannot be inferred (fewer than two distinct ts).
    """
    higher = Timeframe.parse(timeframe)
    lower = Timeframe.parse(bar_timeframe) if bar_timeframe else _infer_timeframe(bars)
    if higher.seconds % lower.seconds != 0:
        raise SpecValidationError(
            f"resample: timeframe '{timeframe}' is not a whole multiple of the bar timeframe "
            f"'{lower.label}'; choose a higher timeframe such as 4h or 1d"
        )
    keys = [_GROUP_COLUMN] if _GROUP_COLUMN in bars.columns else []
    resampled = (
        bars.sort([*keys, "ts"])
        .group_by_dynamic(
            "ts",
            every=f"{higher.seconds}s",
            closed="left",
            label="left",
            group_by=keys or None,
            start_by="window",
        )
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            pl.len().cast(pl.Int64).alias("bar_count"),
            pl.col("ts").max().alias("_last_bar_ts"),
        )
    )
    last_bar_ts = pl.col("_last_bar_ts").max()
    data_closes_at = (last_bar_ts.over(keys) if keys else last_bar_ts) + lower.duration
    return (
        resampled.filter(pl.col("ts") + higher.duration <= data_closes_at)
        .drop("_last_bar_ts")
        .select("ts", *keys, *_OHLCV, "bar_count")
    )


def join_closed(
    bars: pl.DataFrame,
    higher_features: pl.DataFrame,
    *,
    timeframe: str = "4h",
    suffix: str | None = None,
) -> pl.DataFrame:
    """Return `bars` with higher-timeframe columns visible only after their bar has closed.

    Each lower bar gets the values of the latest higher bar whose close (its ts + timeframe) is
    at or before the lower bar's open; earlier lower bars get nulls. Every column of
    `higher_features` except ts and instrument is added with `suffix` (default `_<timeframe>`),
    as is the higher bar's own open time (`ts<suffix>`), for provenance.

    Args:
        bars: Lower-timeframe bars, sorted by ts within each instrument.
        higher_features: One row per higher bar with `ts` = higher bar open (as from
            `resample_closed`, plus any features computed on it).
        timeframe: The higher bar length.
        suffix: Suffix of the joined column names.

    Returns:
        `bars` in its row order with the joined columns appended.

    Raises:
        UnknownInstrumentError: if the timeframe is not of the form <number><m|h|d>.
        SpecValidationError: if a joined column name already exists in `bars`.
    """
    higher = Timeframe.parse(timeframe)
    name_suffix = f"_{timeframe}" if suffix is None else suffix
    keys = [
        key for key in [_GROUP_COLUMN] if key in bars.columns and key in higher_features.columns
    ]
    values = [column for column in higher_features.columns if column not in ("ts", *keys)]
    renamed = {column: f"{column}{name_suffix}" for column in ["ts", *values]}
    clashes = sorted(set(renamed.values()) & set(bars.columns))
    if clashes:
        raise SpecValidationError(
            f"join_closed: joined columns {clashes} already exist in the bars; pass another suffix"
        )
    visible = higher_features.with_columns(
        (pl.col("ts") + higher.duration).alias("_visible_from")
    ).rename(renamed)
    # Both sides sorted by time globally (stable, so each instrument keeps its order).
    joined = (
        bars.with_row_index("_row")
        .sort("ts", maintain_order=True)
        .join_asof(
            visible.sort("_visible_from", maintain_order=True),
            left_on="ts",
            right_on="_visible_from",
            by=keys or None,
            strategy="backward",
        )
    )
    return joined.sort("_row").drop("_row", "_visible_from")


def _infer_timeframe(bars: pl.DataFrame) -> Timeframe:
    steps = bars.select(pl.col("ts").unique().sort().diff().drop_nulls().min()).item()
    if not isinstance(steps, timedelta) or steps <= timedelta(0):
        raise DataQualityError(
            f"resample: cannot infer the bar timeframe from {bars.height} rows (need two "
            "distinct ts); pass bar_timeframe, e.g. '1h'"
        )
    seconds = int(steps.total_seconds())
    for unit, unit_seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % unit_seconds == 0:
            return Timeframe.parse(f"{seconds // unit_seconds}{unit}")
    raise DataQualityError(
        f"resample: the smallest bar step is {steps}, not a whole number of minutes; "
        "pass bar_timeframe explicitly"
    )
