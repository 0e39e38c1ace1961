"""YFinanceSource through the real yfinance code path, answered by an in-process Yahoo stub."""

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
import yfinance as yf

from quant_assets.domain.errors import SourceError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import BAR_SCHEMA
from quant_assets.market.sources.yfinance_source import YFinanceSource
from quant_assets_tests.stubs.yahoo_stub import (
    SAMPLE_DIR,
    Dividend,
    YahooChart,
    YahooStubAdapter,
    sample_daily_chart,
    yahoo_stub_session,
)

pytestmark = [
    # yfinance 1.7 calls pandas methods with inplace=True, deprecated in pandas 3.1
    # (Pandas4Warning); the calls work, and the code is not ours to change.
    pytest.mark.filterwarnings("ignore:The inplace keyword:pandas.errors.Pandas4Warning"),
]

SPY_DAILY = InstrumentKey.parse("yahoo.SPY.1d")
MARCH_2024 = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
# SPY's first-quarter 2024 dividend: $1.594937 a share, ex-date 2024-03-15 (a Friday).
SPY_DIVIDEND = Dividend(ex_date=date(2024, 3, 15), amount=1.594937)
PRICES = ["open", "high", "low", "close"]


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Fail any attempt to connect a Python socket, and record it."""
    attempts: list[object] = []

    def refuse(_sock: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"test tried to open a socket to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == [], f"sockets were opened: {attempts}"


def shipped_spy(start: datetime, end: datetime) -> pl.DataFrame:
    return pl.read_parquet(SAMPLE_DIR / "yahoo_SPY_1d.parquet").filter(
        pl.col("ts") >= start, pl.col("ts") < end
    )


def stub_source(
    adapter: YahooStubAdapter, cache_dir: Path, adjusted: bool = True
) -> YFinanceSource:
    return YFinanceSource(
        adjusted=adjusted, session=yahoo_stub_session(adapter), cache_dir=cache_dir
    )


@pytest.mark.parametrize(
    "exchange_timezone",
    [
        # New York opens at 14:30 UTC before the DST switch of 2024-03-10, 13:30 UTC after it.
        "America/New_York",
        # Sydney's 09:30 open is 22:30 UTC the day before (AEDT, UTC+11): a UTC date would be
        # one day early, so this catches a label taken from the instant instead of local time.
        "Australia/Sydney",
    ],
    ids=["new-york", "sydney"],
)
def test_fetch_daily_month_equals_shipped_rows(tmp_path: Path, exchange_timezone: str) -> None:
    # Arrange: the stub sends Yahoo's raw prices and adjclose for March 2024 (which holds a
    # dividend, ex 2024-03-15), stamped at each session's 09:30 local open.
    chart = replace(sample_daily_chart("SPY", SPY_DIVIDEND), exchange_timezone=exchange_timezone)
    adapter = YahooStubAdapter([chart])
    source = stub_source(adapter, tmp_path)
    expected = shipped_spy(*MARCH_2024)

    # Act
    bars = source.fetch(SPY_DAILY, *MARCH_2024)

    # Assert
    assert bars.schema == BAR_SCHEMA
    assert bars.height == expected.height == 20  # 21 weekdays in March 2024, less Good Friday
    assert bars["ts"].to_list() == expected["ts"].to_list()  # trading dates at 00:00 UTC
    for name in PRICES:
        relative = (bars[name] / expected[name] - 1).abs().max()
        assert isinstance(relative, float)
        assert relative < 1e-9, f"{name} differs from the shipped rows by {relative:.2e}"
    assert bars["volume"].to_list() == expected["volume"].to_list()
    assert bars["instrument"].unique().to_list() == ["yahoo.SPY.1d"]
    charts = [url for url in adapter.requested_urls if "/v8/finance/chart/SPY" in url]
    assert any("interval=1d" in url and "period1=" in url for url in charts)


def test_fetch_daily_unadjusted_keeps_the_dividend_in_earlier_prices(tmp_path: Path) -> None:
    # Arrange: unadjusted, the closes before the ex-date are the traded ones, higher than the
    # adjusted ones by (close_before + dividend) / close_before, with close_before the adjusted
    # close of 2024-03-14 = 501.158295: 1 + 1.594937 / 501.158295 = 1.0031825 (by hand).
    adapter = YahooStubAdapter([sample_daily_chart("SPY", SPY_DIVIDEND)])
    source = stub_source(adapter, tmp_path, adjusted=False)
    expected = shipped_spy(*MARCH_2024)
    close_before = expected.filter(pl.col("ts").dt.date() == date(2024, 3, 14))["close"].item()
    before_factor = 1 + SPY_DIVIDEND.amount / close_before

    # Act
    bars = source.fetch(SPY_DAILY, *MARCH_2024)

    # Assert
    ratios = (bars["close"] / expected["close"]).to_list()
    dates = bars["ts"].dt.date().to_list()
    assert before_factor == pytest.approx(1.0031825, abs=1e-7)
    for day, ratio in zip(dates, ratios, strict=True):
        want = before_factor if day < SPY_DIVIDEND.ex_date else 1.0
        assert ratio == pytest.approx(want, rel=1e-12), f"close ratio on {day}"


@pytest.mark.parametrize(
    ("start", "end", "expected_days"),
    [
        # Both bounds at midnight: the start day is in, the end day is out.
        (datetime(2024, 3, 5, tzinfo=UTC), datetime(2024, 3, 8, tzinfo=UTC), [5, 6, 7]),
        # Bounds inside a day: a daily bar is labelled 00:00, so 03-05 12:00 excludes 03-05.
        (datetime(2024, 3, 5, 12, tzinfo=UTC), datetime(2024, 3, 7, 1, tzinfo=UTC), [6, 7]),
        # A weekend: Yahoo sends bars around it, none inside it.
        (datetime(2024, 3, 9, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC), []),
        # Bounds in another zone: 20:00 New York (EDT, UTC-4) is 00:00 UTC the next day.
        (
            datetime(2024, 3, 26, 20, tzinfo=ZoneInfo("America/New_York")),
            datetime(2024, 3, 31, 20, tzinfo=ZoneInfo("America/New_York")),
            [27, 28],
        ),
        # Naive bounds are read as UTC (the input under test, hence the noqa).
        (datetime(2024, 3, 27), datetime(2024, 4, 1), [27, 28]),  # noqa: DTZ001
    ],
    ids=["midnight-bounds", "intraday-bounds", "weekend", "new-york-bounds", "naive-utc"],
)
def test_fetch_daily_window_keeps_start_and_drops_end(
    tmp_path: Path, start: datetime, end: datetime, expected_days: list[int]
) -> None:
    # Arrange
    source = stub_source(YahooStubAdapter([sample_daily_chart("SPY")]), tmp_path)

    # Act
    bars = source.fetch(SPY_DAILY, start, end)

    # Assert
    assert bars.schema == BAR_SCHEMA
    assert [ts.day for ts in bars["ts"].to_list()] == expected_days


def test_fetch_before_listing_returns_empty_frame(tmp_path: Path) -> None:
    # Arrange: SPY's first shipped bar is 1993-01-29; Yahoo knows the ticker but has no bars.
    source = stub_source(YahooStubAdapter([sample_daily_chart("SPY")]), tmp_path)

    # Act
    bars = source.fetch(
        SPY_DAILY, datetime(1993, 1, 1, tzinfo=UTC), datetime(1993, 1, 20, tzinfo=UTC)
    )

    # Assert
    assert bars.schema == BAR_SCHEMA
    assert bars.height == 0


def test_fetch_intraday_returns_utc_bar_opens(tmp_path: Path) -> None:
    # Arrange: real hourly bars (shipped BTC-USDT, 2024-03-09 to 03-11 UTC) served as Yahoo's
    # 60m BTC-USD in the New York time zone across its DST switch (2024-03-10 07:00 UTC), plus
    # one all-null row at 12:30 UTC, as Yahoo emits them. yfinance hands back New York times.
    start, end = datetime(2024, 3, 9, tzinfo=UTC), datetime(2024, 3, 12, tzinfo=UTC)
    hourly = (
        pl.read_parquet(SAMPLE_DIR / "binance_BTC-USDT_1h.parquet")
        .filter(pl.col("ts") >= start, pl.col("ts") < end)
        .drop("symbol")
    )
    chart = YahooChart(
        symbol="BTC-USD",
        bars=hourly,
        interval="60m",
        instrument_type="CRYPTOCURRENCY",
        null_bars_at=(datetime(2024, 3, 10, 12, 30, tzinfo=UTC),),
    )
    adapter = YahooStubAdapter([chart])
    source = stub_source(adapter, tmp_path)

    # Act
    bars = source.fetch(InstrumentKey.parse("yahoo.BTC-USD.1h"), start, end)

    # Assert: 3 days x 24 bars, each at its UTC open; the null row is gone.
    assert bars.schema == BAR_SCHEMA
    assert bars.height == hourly.height == 72
    assert bars["ts"].to_list() == hourly["ts"].to_list()
    assert bars["ts"][0] == datetime(2024, 3, 9, 0, tzinfo=UTC)
    assert bars.select(PRICES).equals(hourly.select(PRICES))
    # Yahoo's volumes are whole units, so the stub rounded the fractional BTC volumes.
    assert bars["volume"].to_list() == hourly["volume"].round(0).to_list()
    assert any("interval=60m" in url for url in adapter.requested_urls)


def test_fetch_unknown_ticker_raises_source_error_naming_ticker_and_fix(tmp_path: Path) -> None:
    # Arrange: the stub answers Yahoo's 404 "No data found, symbol may be delisted".
    source = stub_source(YahooStubAdapter([sample_daily_chart("SPY")]), tmp_path)
    unknown = InstrumentKey.parse("yahoo.NOSUCHTICKER.1d")

    # Act
    with pytest.raises(SourceError) as caught:
        source.fetch(unknown, *MARCH_2024)

    # Assert
    message = str(caught.value)
    assert "'NOSUCHTICKER'" in message
    assert "2024-03-01T00:00:00+00:00 to 2024-04-01T00:00:00+00:00" in message
    assert "exists on finance.yahoo.com" in message
    assert caught.value.__cause__ is not None
    assert yf.config.debug.hide_exceptions is True  # yfinance's global switch was restored


@pytest.mark.parametrize(
    ("status", "fix"),
    [(503, "retry later"), (429, "rate-limited")],
    ids=["outage", "rate-limit"],
)
def test_fetch_http_error_raises_source_error_with_fix(
    tmp_path: Path, status: int, fix: str
) -> None:
    # Arrange: every chart request is answered with the status.
    adapter = YahooStubAdapter([sample_daily_chart("SPY")], chart_status=status)
    source = stub_source(adapter, tmp_path)

    # Act
    with pytest.raises(SourceError) as caught:
        source.fetch(SPY_DAILY, *MARCH_2024)

    # Assert
    message = str(caught.value)
    assert "yahoo.SPY.1d" in message
    assert "2024-03-01T00:00:00+00:00" in message
    assert fix in message
    assert caught.value.__cause__ is not None


def test_fetch_without_network_raises_source_error_naming_network(tmp_path: Path) -> None:
    # Arrange: every request raises requests.ConnectionError, as with no route to Yahoo.
    source = stub_source(YahooStubAdapter([], offline=True), tmp_path)

    # Act
    with pytest.raises(SourceError) as caught:
        source.fetch(SPY_DAILY, *MARCH_2024)

    # Assert
    assert "ConnectionError" in str(caught.value)
    assert "check the network connection" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)


def test_fetch_after_a_failure_asks_yahoo_again(tmp_path: Path) -> None:
    # Arrange: yfinance memoizes past-range responses for the process, failures included; a
    # first fetch fails, then Yahoo recovers.
    adapter = YahooStubAdapter([sample_daily_chart("SPY")], chart_status=503)
    source = stub_source(adapter, tmp_path)
    with pytest.raises(SourceError):
        source.fetch(SPY_DAILY, *MARCH_2024)
    adapter.chart_status = None

    # Act
    bars = source.fetch(SPY_DAILY, *MARCH_2024)

    # Assert
    assert bars.height == 20


def test_fetch_timeframe_without_yahoo_interval_raises_before_any_request(tmp_path: Path) -> None:
    # Arrange
    adapter = YahooStubAdapter([sample_daily_chart("SPY")])
    source = stub_source(adapter, tmp_path)

    # Act
    with pytest.raises(SourceError) as caught:
        source.fetch(InstrumentKey.parse("yahoo.SPY.4h"), *MARCH_2024)

    # Assert
    assert "timeframe '4h'" in str(caught.value)
    assert "resample" in str(caught.value)
    assert adapter.requested_urls == []


def test_fetch_empty_period_returns_empty_frame_without_request(tmp_path: Path) -> None:
    # Arrange
    adapter = YahooStubAdapter([sample_daily_chart("SPY")])
    source = stub_source(adapter, tmp_path)

    # Act
    bars = source.fetch(SPY_DAILY, MARCH_2024[1], MARCH_2024[0])

    # Assert
    assert bars.schema == BAR_SCHEMA
    assert bars.height == 0
    assert adapter.requested_urls == []


@pytest.mark.parametrize(
    ("key", "adjusted", "expected"),
    [
        ("yahoo.SPY.1d", True, "yfinance:SPY 1d auto_adjust=True (split- and dividend-adjusted)"),
        (
            "yahoo.SPY.1d",
            False,
            "yfinance:SPY 1d auto_adjust=False (split-adjusted, not dividend-adjusted)",
        ),
        (
            "yahoo.SPY.1h",
            True,
            "yfinance:SPY 60m auto_adjust=True "
            "(split-adjusted; Yahoo sends no dividend adjustment for intraday bars)",
        ),
    ],
    ids=["daily-adjusted", "daily-unadjusted", "intraday"],
)
def test_provenance_declares_adjustment(
    tmp_path: Path, key: str, adjusted: bool, expected: str
) -> None:
    # Arrange
    source = YFinanceSource(adjusted=adjusted, cache_dir=tmp_path)

    # Act
    provenance = source.provenance(InstrumentKey.parse(key))

    # Assert
    assert provenance == expected
