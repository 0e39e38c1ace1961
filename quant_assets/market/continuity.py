"""Missing bars and zero-volume flat bars: reported, never repaired silently."""

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from quant_assets.domain.market import AssetClass, InstrumentKey

# A one-weekday hole in daily equity bars is an exchange holiday, not an outage; longer holes
# (2012's hurricane Sandy closed NYSE two days) are worth a warning.
EQUITY_HOLIDAY_WEEKDAYS = 1


@dataclass(frozen=True)
class ContinuityReport:
    """Gaps and flat bars in one instrument's bars."""

    bars: int
    missing_bars: int
    gaps: int
    longest_gap_bars: int
    longest_gap_after: datetime | None
    zero_volume_flat_bars: int
    suspicious_gaps: int

    def summary(self) -> str:
        """Return a one-line human summary."""
        where = f" after {self.longest_gap_after:%Y-%m-%d %H:%M}" if self.longest_gap_after else ""
        return (
            f"{self.missing_bars} missing bar(s) in {self.gaps} gap(s), longest "
            f"{self.longest_gap_bars}{where}; {self.zero_volume_flat_bars} zero-volume flat bar(s)"
        )


def continuity_report(
    frame: pl.DataFrame, instrument: InstrumentKey, asset_class: AssetClass
) -> ContinuityReport:
    """Count missing bars between the first and last bar, and zero-volume flat bars.

    Crypto trades around the clock, so every missing grid step counts. Daily equity bars are
    measured in weekdays (weekends are not gaps); single-weekday holes are holidays and are
    counted as gaps but not flagged as suspicious.
    """
    flat = frame.filter(
        (pl.col("volume") == 0)
        & (pl.col("open") == pl.col("high"))
        & (pl.col("high") == pl.col("low"))
        & (pl.col("low") == pl.col("close"))
    ).height
    if frame.height < 2:
        return ContinuityReport(frame.height, 0, 0, 0, None, flat, 0)
    ts = frame["ts"]
    if asset_class is AssetClass.EQUITY and not instrument.bar.is_intraday:
        missing = _business_day_gaps(frame)
        tolerated = EQUITY_HOLIDAY_WEEKDAYS
    else:
        step_us = instrument.bar.seconds * 1_000_000
        missing = (ts.dt.epoch("us").diff().fill_null(step_us) // step_us - 1).clip(0)
        tolerated = 0
    gaps = missing.filter(missing > 0)
    longest = int(missing.max() or 0)  # type: ignore[arg-type]
    longest_after = ts[int(missing.arg_max() or 0) - 1] if longest > 0 else None
    return ContinuityReport(
        bars=frame.height,
        missing_bars=int(gaps.sum()),
        gaps=gaps.len(),
        longest_gap_bars=longest,
        longest_gap_after=longest_after,
        zero_volume_flat_bars=flat,
        suspicious_gaps=int((missing > tolerated).sum()),
    )


def _business_day_gaps(frame: pl.DataFrame) -> pl.Series:
    days = frame.select(
        pl.business_day_count(pl.col("ts").dt.date().shift(1), pl.col("ts").dt.date())
        .fill_null(1)
        .alias("weekdays")
    )["weekdays"]
    return (days - 1).clip(0)
