"""Loading months from CSV and the sample: replace, never duplicate; bad input changes nothing."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from quant_assets.domain.errors import DataQualityError, SourceError
from quant_assets.domain.market import AssetClass, InstrumentConfig, SourceKind
from quant_assets.market.ingest import load_months
from quant_assets.market.sources.csv_source import CsvSource
from quant_assets.market.sources.sample import SampleSource
from quant_assets.storage.hashing import bars_content_hash
from quant_assets.storage.lake import Lake

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
FETCHED_AT = datetime(2026, 11, 21, tzinfo=UTC)
MAPPING = {
    "ts": "Date",
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Close",
    "volume": "Volume",
}


def _write_csv(frame: pl.DataFrame, path: Path) -> Path:
    frame.select(
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Date"),
        *(pl.col(c).alias(f) for c, f in MAPPING.items() if c != "ts"),
    ).write_csv(path)
    return path


@pytest.fixture
def btc_q1_2024() -> pl.DataFrame:
    raw = pl.read_parquet(SAMPLE_DIR / "binance_BTC-USDT_1h.parquet")
    return raw.filter(pl.col("ts").dt.strftime("%Y-%m").is_in(["2024-01", "2024-02", "2024-03"]))


def _csv_config(path: Path) -> InstrumentConfig:
    options = {"path": str(path)} | {f"col_{c}": f for c, f in MAPPING.items()}
    return InstrumentConfig(key="csv.BTC-USDT.1h", source=SourceKind.CSV, options=options)


def _load(config: InstrumentConfig, lake: Lake, known: dict[str, str]) -> list[str]:
    source = CsvSource(Path(config.options["path"]), columns=MAPPING)
    loads = load_months(config, source, ["2024-01-01", "2024-02-01"], lake, known, FETCHED_AT)
    return [load.version.content_hash for load in loads]


def test_load_months_csv_twice_replaces_partitions_with_same_hashes(
    tmp_path: Path, btc_q1_2024: pl.DataFrame
) -> None:
    # Arrange
    lake = Lake(tmp_path / "lake")
    config = _csv_config(_write_csv(btc_q1_2024, tmp_path / "btc.csv"))

    # Act
    first = _load(config, lake, {})
    second = _load(config, lake, dict(zip(["2024-01-01", "2024-02-01"], first, strict=True)))

    # Assert: 744 January + 696 February hours (2024 is a leap year), stored once each.
    assert first == second
    stored = lake.read_bars("csv.BTC-USDT.1h")
    assert stored.height == 744 + 696
    assert stored["ts"].is_unique().all()
    assert lake.month_keys("csv.BTC-USDT.1h") == ["2024-01-01", "2024-02-01"]


@pytest.mark.parametrize(
    ("corruption", "rule"),
    [
        ("duplicate", "ts_unique"),
        ("high_below_low", "high_is_max"),
        ("nan", "finite"),
        ("unsorted", "ts_increasing"),
        ("timezone", "ts_on_grid"),
    ],
)
def test_load_months_corrupt_csv_raises_and_keeps_stored_partitions(
    tmp_path: Path, btc_q1_2024: pl.DataFrame, corruption: str, rule: str
) -> None:
    # Arrange: a good load first, then the same file corrupted in February.
    lake = Lake(tmp_path / "lake")
    path = _write_csv(btc_q1_2024, tmp_path / "btc.csv")
    config = _csv_config(path)
    hashes = _load(config, lake, {})
    before = {
        k: bars_content_hash(lake.read_partition(config.key, k))
        for k in lake.month_keys(config.key)
    }
    feb = pl.col("ts").dt.strftime("%Y-%m") == "2024-02"
    row = pl.int_range(pl.len()) == 800  # 2024-02-03 08:00 UTC
    corrupted = {
        "duplicate": pl.concat([btc_q1_2024, btc_q1_2024.filter(feb).head(1)]),
        "high_below_low": btc_q1_2024.with_columns(
            pl.when(row).then(pl.col("low") * 0.5).otherwise(pl.col("high")).alias("high")
        ),
        "nan": btc_q1_2024.with_columns(
            pl.when(row).then(float("nan")).otherwise(pl.col("close")).alias("close")
        ),
        "unsorted": pl.concat([btc_q1_2024.filter(~feb), btc_q1_2024.filter(feb).reverse()]),
        # 30 minutes is a real offset (e.g. Asia/Kolkata) and moves 1h bars off their grid.
        "timezone": btc_q1_2024.with_columns(pl.col("ts").dt.offset_by("30m")),
    }[corruption]
    _write_csv(corrupted, path)

    # Act
    with pytest.raises(DataQualityError) as caught:
        _load(config, lake, dict(zip(["2024-01-01", "2024-02-01"], hashes, strict=True)))

    # Assert: the error names instrument, rule and a row; nothing stored changed.
    message = str(caught.value)
    assert "csv.BTC-USDT.1h" in message
    assert f"'{rule}'" in message
    assert "first: [ts=" in message
    after = {
        k: bars_content_hash(lake.read_partition(config.key, k))
        for k in lake.month_keys(config.key)
    }
    assert after == before


def test_load_months_csv_declared_timezone_converts_to_utc(
    tmp_path: Path, btc_q1_2024: pl.DataFrame
) -> None:
    # Arrange: the file writes Binance's UTC bars as Europe/Berlin wall-clock time (UTC+1 in
    # January); declaring the zone must give back the true UTC opens.
    local = btc_q1_2024.with_columns(
        pl.col("ts").dt.convert_time_zone("Europe/Berlin").dt.replace_time_zone(None)
    )
    path = _write_csv(local, tmp_path / "berlin.csv")
    source = CsvSource(path, columns=MAPPING, timezone="Europe/Berlin")
    config = _csv_config(path)

    # Act
    loads = load_months(config, source, ["2024-01-01"], Lake(tmp_path / "lake"), {}, FETCHED_AT)

    # Assert
    assert loads[0].version.first_ts == datetime(2024, 1, 1, tzinfo=UTC)
    assert loads[0].version.rows == 744


def test_csv_source_missing_column_names_column_and_fix(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "bad.csv"
    path.write_text("Date,Open,High,Low,Close\n2024-01-01 00:00:00,1,2,0.5,1.5\n")
    config = _csv_config(path)

    # Act
    with pytest.raises(SourceError) as caught:
        _load(config, Lake(tmp_path / "lake"), {})

    # Assert
    assert "volume (file column 'Volume')" in str(caught.value)
    assert "column mapping" in str(caught.value)


def test_load_months_sample_before_history_raises_clear_error(tmp_path: Path) -> None:
    # Arrange
    config = InstrumentConfig(key="binance.BTC-USDT.1h", asset_class=AssetClass.CRYPTO)

    # Act
    with pytest.raises(SourceError) as caught:
        load_months(
            config, SampleSource(SAMPLE_DIR), ["2016-01-01"], Lake(tmp_path), {}, FETCHED_AT
        )

    # Assert
    assert "returned no bars" in str(caught.value)
    assert "2016-01" in str(caught.value)
