"""Gap and flat-bar counts on the shipped data, matching its provenance README."""

from pathlib import Path

import polars as pl

from quant_assets.domain.market import AssetClass, InstrumentKey
from quant_assets.market.canonical import to_canonical
from quant_assets.market.continuity import continuity_report

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_continuity_report_btc_matches_provenance_readme(sample_bars: pl.DataFrame) -> None:
    # Act
    report = continuity_report(
        sample_bars, InstrumentKey.parse("binance.BTC-USDT.1h"), AssetClass.CRYPTO
    )

    # Assert: the shared README lists 122 missing bars in 27 gaps and 3 zero-volume bars.
    assert (report.missing_bars, report.gaps, report.zero_volume_flat_bars) == (122, 27, 3)
    assert report.suspicious_gaps == 27


def test_continuity_report_spy_flags_only_multi_day_closures() -> None:
    # Arrange
    spy = InstrumentKey.parse("yahoo.SPY.1d")
    frame = to_canonical(pl.read_parquet(SAMPLE_DIR / "yahoo_SPY_1d.parquet"), spy.key)

    # Act
    report = continuity_report(frame, spy, AssetClass.EQUITY)

    # Assert: the longest closure is 2001-09-11..14 (4 weekdays after 2001-09-10); one-day
    # holidays are gaps but not suspicious.
    assert report.longest_gap_bars == 4
    assert report.longest_gap_after is not None
    assert report.longest_gap_after.strftime("%Y-%m-%d") == "2001-09-10"
    assert report.suspicious_gaps < report.gaps
    assert report.zero_volume_flat_bars == 0
