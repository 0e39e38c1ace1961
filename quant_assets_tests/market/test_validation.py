"""The OHLCV integrity rules on real shipped data and on each kind of corrupt input."""

from pathlib import Path

import polars as pl
import pytest

from quant_assets.domain.errors import DataQualityError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import to_canonical
from quant_assets.market.validation import validate_bars

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
BTC = InstrumentKey.parse("binance.BTC-USDT.1h")


def _shipped(path: Path) -> tuple[InstrumentKey, pl.DataFrame]:
    venue, symbol, timeframe = path.stem.split("_")
    key = InstrumentKey.parse(f"{venue}.{symbol}.{timeframe}")
    return key, to_canonical(pl.read_parquet(path), key.key)


@pytest.mark.parametrize("path", sorted(SAMPLE_DIR.glob("*.parquet")), ids=lambda p: p.stem)
def test_validate_bars_every_shipped_file_passes(path: Path) -> None:
    # Arrange
    key, frame = _shipped(path)

    # Act / Assert (raises on any broken rule)
    validate_bars(frame, key)


def _march_2024(sample_bars: pl.DataFrame) -> pl.DataFrame:
    return sample_bars.filter(pl.col("ts").dt.strftime("%Y-%m") == "2024-03")


def _with_value(frame: pl.DataFrame, row: int, column: str, value: float) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(value).otherwise(pl.col(column)).alias(column)
    )


def test_validate_bars_duplicate_rows_names_rule_month_and_row(sample_bars: pl.DataFrame) -> None:
    # Arrange
    month = _march_2024(sample_bars)
    corrupt = pl.concat([month.head(10), month.slice(9, 1), month.slice(10)])

    # Act
    with pytest.raises(DataQualityError) as caught:
        validate_bars(corrupt, BTC)

    # Assert
    message = str(caught.value)
    assert "binance.BTC-USDT.1h" in message
    assert "month 2024-03" in message
    assert "'ts_unique'" in message
    assert "ts=2024-03-01 09:00:00+00:00" in message


def test_validate_bars_high_below_low_names_rule_and_row(sample_bars: pl.DataFrame) -> None:
    # Arrange: row 100 of March 2024 is 2024-03-05 04:00; its high drops below its low.
    month = _march_2024(sample_bars)
    low = month["low"][100]
    corrupt = _with_value(month, 100, "high", low * 0.99)

    # Act
    with pytest.raises(DataQualityError) as caught:
        validate_bars(corrupt, BTC)

    # Assert
    message = str(caught.value)
    assert "'high_is_max'" in message
    assert "ts=2024-03-05 04:00:00+00:00" in message
    assert "high and low swapped" in message


def test_validate_bars_nan_close_fails_finite_rule(sample_bars: pl.DataFrame) -> None:
    # Arrange
    corrupt = _with_value(_march_2024(sample_bars), 5, "close", float("nan"))

    # Act
    with pytest.raises(DataQualityError) as caught:
        validate_bars(corrupt, BTC)

    # Assert
    assert "'finite'" in str(caught.value)
    assert "ts=2024-03-01 05:00:00+00:00" in str(caught.value)


def test_validate_bars_non_monotonic_ts_fails_increasing_rule(sample_bars: pl.DataFrame) -> None:
    # Arrange: swap two adjacent bars.
    month = _march_2024(sample_bars)
    corrupt = pl.concat([month.head(20), month.slice(21, 1), month.slice(20, 1), month.slice(22)])

    # Act
    with pytest.raises(DataQualityError) as caught:
        validate_bars(corrupt, BTC)

    # Assert
    assert "'ts_increasing'" in str(caught.value)
    assert "sort the rows by ts" in str(caught.value)


def test_validate_bars_shifted_timezone_fails_grid_rule() -> None:
    # Arrange: daily SPY bars read as New York midnight land at 05:00 UTC, off the 1d grid.
    spy = InstrumentKey.parse("yahoo.SPY.1d")
    frame = to_canonical(pl.read_parquet(SAMPLE_DIR / "yahoo_SPY_1d.parquet"), spy.key).head(40)
    shifted = frame.with_columns(pl.col("ts").dt.offset_by("5h"))

    # Act
    with pytest.raises(DataQualityError) as caught:
        validate_bars(shifted, spy)

    # Assert
    assert "'ts_on_grid'" in str(caught.value)
    assert "declare the file's timezone" in str(caught.value)


def test_validate_bars_equity_rounding_noise_within_tolerance_passes() -> None:
    # Arrange: adjusted prices put high below close by ~2e-16 relative (shared README).
    spy = InstrumentKey.parse("yahoo.SPY.1d")
    frame = to_canonical(pl.read_parquet(SAMPLE_DIR / "yahoo_SPY_1d.parquet"), spy.key).head(5)
    noisy = frame.with_columns((pl.col("close") * (1 + 2e-16)).alias("high"))
    noisy = noisy.with_columns(pl.max_horizontal("high", "open").alias("high"))

    # Act / Assert
    validate_bars(noisy.with_columns((pl.col("high") * (1 - 2e-16)).alias("high")), spy)


def test_validate_bars_wrong_dtype_fails_schema_rule(sample_bars: pl.DataFrame) -> None:
    # Arrange
    corrupt = sample_bars.head(5).with_columns(pl.col("volume").cast(pl.Float32))

    # Act
    with pytest.raises(DataQualityError) as caught:
        validate_bars(corrupt, BTC)

    # Assert
    assert "'schema'" in str(caught.value)
    assert "volume: Float32" in str(caught.value)
