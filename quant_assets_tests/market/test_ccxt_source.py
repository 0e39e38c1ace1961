"""CcxtSource: the real ccxt binance client against the local Binance stub serving shipped bars."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.domain.errors import ConfigurationError, SourceError, UnknownInstrumentError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import BAR_SCHEMA, to_canonical
from quant_assets.market.sources.ccxt_source import CcxtSource, market_symbol
from quant_assets_tests.stubs.binance_stub import (
    DROP_CONNECTION,
    EMPTY_PAGE,
    EXCHANGE_INFO_PATH,
    KLINES_PATH,
    NORMAL_REPLY,
    BinanceStub,
    ScriptedReply,
    http_error,
)

BTC = InstrumentKey.parse("binance.BTC-USDT.1h")
MARCH_2024 = (datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC))
MARCH_2024_START_MS = 1_709_251_200_000  # 2024-03-01 00:00 UTC = 19,783 days x 86,400,000 ms
HOUR_MS = 3_600_000
LATER = datetime(2026, 1, 1, tzinfo=UTC)  # "now" after every shipped bar: nothing is forming

SourceFactory = Callable[..., CcxtSource]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_source(sleeps: list[float]) -> Iterator[SourceFactory]:
    created: list[CcxtSource] = []

    def build(stub: BinanceStub, **overrides: Any) -> CcxtSource:
        settings: dict[str, Any] = {
            "exchange_id": "binance",
            "api_base_url": stub.api_url,
            "rate_limit_ms": 1,  # keep ccxt's own throttle negligible
            "sleep": sleeps.append,
            "now": lambda: LATER,
        }
        source = CcxtSource(**(settings | overrides))
        created.append(source)
        return source

    yield build
    for source in created:
        source.close()


def shipped_rows(
    bars: dict[str, pl.DataFrame], instrument: InstrumentKey, start: datetime, end: datetime
) -> pl.DataFrame:
    frame = bars[market_symbol(instrument)]
    window = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    return to_canonical(window, instrument.key)


def kline_starts(stub: BinanceStub) -> list[int]:
    return [int(request.query["startTime"]) for request in stub.requests(KLINES_PATH)]


@pytest.mark.parametrize(
    ("key", "page_limit", "expected_pages", "bars_per_page"),
    [
        # March has 31 x 24 = 744 bars; the server caps pages at 100 rows: ceil(744 / 100) = 8.
        ("binance.BTC-USDT.1h", 1000, 8, 100),
        ("binance.ETH-USDT.1h", 1000, 8, 100),
        # Asking for 50 gets 50: ceil(744 / 50) = 15 pages.
        ("binance.BTC-USDT.1h", 50, 15, 50),
    ],
)
def test_ccxt_source_month_over_short_pages_equals_shipped_rows(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    shipped_binance_bars: dict[str, pl.DataFrame],
    key: str,
    page_limit: int,
    expected_pages: int,
    bars_per_page: int,
) -> None:
    # Arrange
    instrument = InstrumentKey.parse(key)
    source = make_source(exchange_stub, page_limit=page_limit)
    expected = shipped_rows(shipped_binance_bars, instrument, *MARCH_2024)

    # Act
    bars = source.fetch(instrument, *MARCH_2024)

    # Assert
    assert expected.height == 744
    assert_frame_equal(bars, expected)
    # The cursor advances by one page of bars each call: since = last ts + 1 h.
    assert kline_starts(exchange_stub) == [
        MARCH_2024_START_MS + page * bars_per_page * HOUR_MS for page in range(expected_pages)
    ]
    assert {r.query["limit"] for r in exchange_stub.requests(KLINES_PATH)} == {str(page_limit)}


@pytest.mark.parametrize(
    "fault",
    [
        http_error(429, -1003, "Too many requests."),
        http_error(418),
        http_error(503),
        http_error(504),
        DROP_CONNECTION,
    ],
    ids=["429", "418", "503", "504", "dropped"],
)
def test_ccxt_source_transient_fault_is_retried_and_month_complete(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    shipped_binance_bars: dict[str, pl.DataFrame],
    sleeps: list[float],
    fault: ScriptedReply,
) -> None:
    # Arrange
    exchange_stub.script(KLINES_PATH, NORMAL_REPLY, fault)
    source = make_source(exchange_stub)
    expected = shipped_rows(shipped_binance_bars, BTC, *MARCH_2024)

    # Act
    bars = source.fetch(BTC, *MARCH_2024)

    # Assert
    assert_frame_equal(bars, expected)
    assert sleeps == [1.0]  # one retry after the first backoff step
    second_page = MARCH_2024_START_MS + 100 * HOUR_MS
    starts = kline_starts(exchange_stub)
    assert len(starts) == 8 + 1  # the 8 pages plus the repeated second one
    assert starts[1] == starts[2] == second_page


def test_ccxt_source_market_load_fault_is_retried(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    shipped_binance_bars: dict[str, pl.DataFrame],
    sleeps: list[float],
) -> None:
    # Arrange
    exchange_stub.script(EXCHANGE_INFO_PATH, http_error(429))
    source = make_source(exchange_stub)

    # Act
    bars = source.fetch(BTC, *MARCH_2024)

    # Assert
    assert_frame_equal(bars, shipped_rows(shipped_binance_bars, BTC, *MARCH_2024))
    assert sleeps == [1.0]
    assert len(exchange_stub.requests(EXCHANGE_INFO_PATH)) == 2


@pytest.mark.parametrize(
    "fault", [DROP_CONNECTION, http_error(504), http_error(429)], ids=["dropped", "504", "429"]
)
def test_ccxt_source_faults_outlasting_retries_raise_source_error(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    sleeps: list[float],
    fault: ScriptedReply,
) -> None:
    # Arrange: two good pages, then the third page fails 1 + 3 times.
    exchange_stub.script(KLINES_PATH, NORMAL_REPLY, NORMAL_REPLY, *[fault] * 4)
    source = make_source(exchange_stub, max_retries=3, backoff_seconds=1.0)

    # Act
    with pytest.raises(SourceError) as raised:
        source.fetch(BTC, *MARCH_2024)

    # Assert
    message = str(raised.value)
    assert "binance" in message
    assert "binance.BTC-USDT.1h" in message
    assert "4 attempts" in message
    # Third page cursor: 2024-03-01 00:00 + 200 h = 2024-03-09 08:00.
    assert "since=2024-03-09 08:00 UTC" in message
    assert "retry later" in message
    assert isinstance(raised.value.__cause__, ccxt.NetworkError)
    assert sleeps == [1.0, 2.0, 4.0]  # exponential backoff between the 4 attempts
    assert len(exchange_stub.requests(KLINES_PATH)) == 2 + 4


@pytest.mark.parametrize(
    ("key", "script", "expected_kline_requests"),
    [
        # ccxt knows from exchangeInfo that DOGE/USDT is not listed: BadSymbol before any request.
        ("binance.DOGE-USDT.1h", [], 0),
        # The server rejects the symbol (Binance code -1121): BadSymbol from the reply.
        ("binance.BTC-USDT.1h", [http_error(400, -1121, "Invalid symbol.")], 1),
    ],
    ids=["unlisted-symbol", "server-rejects-symbol"],
)
def test_ccxt_source_exchange_error_is_not_retried(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    sleeps: list[float],
    key: str,
    script: list[ScriptedReply],
    expected_kline_requests: int,
) -> None:
    # Arrange
    exchange_stub.script(KLINES_PATH, *script)
    source = make_source(exchange_stub)

    # Act
    with pytest.raises(SourceError, match="not retried") as raised:
        source.fetch(InstrumentKey.parse(key), *MARCH_2024)

    # Assert
    assert isinstance(raised.value.__cause__, ccxt.BadSymbol)
    assert key in str(raised.value)
    assert sleeps == []
    assert len(exchange_stub.requests(KLINES_PATH)) == expected_kline_requests


def test_ccxt_source_truncated_history_raises_instead_of_partial_month(
    exchange_stub: BinanceStub, make_source: SourceFactory
) -> None:
    # Arrange: the exchange has nothing from 2024-03-15 00:00 on.
    exchange_stub.truncate_history(datetime(2024, 3, 15, tzinfo=UTC))
    source = make_source(exchange_stub)

    # Act
    with pytest.raises(SourceError) as raised:
        source.fetch(BTC, *MARCH_2024)

    # Assert
    message = str(raised.value)
    assert "ccxt:binance BTC/USDT 1h" in message
    assert "returned bars up to 2024-03-14 23:00 UTC" in message
    assert "needs bars up to 2024-03-31 23:00 UTC" in message


def test_ccxt_source_empty_page_mid_month_raises_instead_of_partial_month(
    exchange_stub: BinanceStub, make_source: SourceFactory
) -> None:
    # Arrange: pages 1 and 2 (200 bars) arrive, then the server answers an empty page.
    exchange_stub.script(KLINES_PATH, NORMAL_REPLY, NORMAL_REPLY, EMPTY_PAGE)
    source = make_source(exchange_stub)

    # Act
    with pytest.raises(SourceError) as raised:
        source.fetch(BTC, *MARCH_2024)

    # Assert: bar 200 opens at 2024-03-01 00:00 + 199 h = 2024-03-09 07:00.
    assert "returned bars up to 2024-03-09 07:00 UTC" in str(raised.value)
    assert len(exchange_stub.requests(KLINES_PATH)) == 3


def test_ccxt_source_outage_month_keeps_gap(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    shipped_binance_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange: February 2018 holds Binance's 33 h outage (2018-02-08 00h -> 2018-02-09 10h).
    february = (datetime(2018, 2, 1, tzinfo=UTC), datetime(2018, 3, 1, tzinfo=UTC))
    source = make_source(exchange_stub)

    # Act
    bars = source.fetch(BTC, *february)

    # Assert
    assert bars.height == 28 * 24 - 33
    assert_frame_equal(bars, shipped_rows(shipped_binance_bars, BTC, *february))
    steps = bars.select(pl.col("ts"), pl.col("ts").diff().alias("step")).filter(
        pl.col("step") > timedelta(hours=1)
    )
    assert steps.rows() == [(datetime(2018, 2, 9, 10, tzinfo=UTC), timedelta(hours=34))]


@pytest.mark.parametrize(
    ("start", "end", "expected_rows"),
    [
        # Ends at 12:00 on 2018-02-08, inside the 33 h outage: 7 x 24 + the 00:00 bar = 169.
        (datetime(2018, 2, 1, tzinfo=UTC), datetime(2018, 2, 8, 12, tzinfo=UTC), 169),
        # December 2017, before the stub's history (it starts 2018-01-01): no bars at all.
        (datetime(2017, 12, 1, tzinfo=UTC), datetime(2018, 1, 1, tzinfo=UTC), 0),
    ],
    ids=["ends-inside-outage", "before-listing"],
)
def test_ccxt_source_missing_tail_with_later_bars_is_returned_as_gap(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    shipped_binance_bars: dict[str, pl.DataFrame],
    start: datetime,
    end: datetime,
    expected_rows: int,
) -> None:
    # Arrange: the exchange has bars after `end`, so the missing tail is no truncation.
    source = make_source(exchange_stub)

    # Act
    bars = source.fetch(BTC, start, end)

    # Assert
    assert bars.height == expected_rows
    assert_frame_equal(bars, shipped_rows(shipped_binance_bars, BTC, start, end))
    assert bars.schema == BAR_SCHEMA


def test_ccxt_source_forming_bar_is_dropped(
    exchange_stub: BinanceStub,
    make_source: SourceFactory,
    shipped_binance_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange: at 22:30 on March 31 the 22:00 bar is still forming (the stub knows it anyway).
    now = datetime(2024, 3, 31, 22, 30, tzinfo=UTC)
    source = make_source(exchange_stub, now=lambda: now)

    # Act
    bars = source.fetch(BTC, *MARCH_2024)

    # Assert: 744 - 2 bars (22:00 forming, 23:00 in the future), the last at 21:00.
    assert bars.height == 742
    expected_end = datetime(2024, 3, 31, 22, tzinfo=UTC)
    assert_frame_equal(bars, shipped_rows(shipped_binance_bars, BTC, MARCH_2024[0], expected_end))


def test_ccxt_source_period_not_started_makes_no_request(
    exchange_stub: BinanceStub, make_source: SourceFactory
) -> None:
    # Arrange: at 00:30 on March 1 the first bar of March is still forming.
    source = make_source(exchange_stub, now=lambda: datetime(2024, 3, 1, 0, 30, tzinfo=UTC))

    # Act
    bars = source.fetch(BTC, *MARCH_2024)

    # Assert
    assert bars.height == 0
    assert exchange_stub.requests() == []


def test_ccxt_source_overlapping_pages_are_deduplicated(
    shipped_binance_bars: dict[str, pl.DataFrame], make_source: SourceFactory
) -> None:
    # Arrange: every page repeats the 5 bars before `startTime`.
    with BinanceStub(shipped_binance_bars, page_cap=100, page_overlap=5) as stub:
        source = make_source(stub)

        # Act
        bars = source.fetch(BTC, *MARCH_2024)

        # Assert: each page adds 95 new bars after the first: starts 0, 95, 190, ... hours.
        assert_frame_equal(bars, shipped_rows(shipped_binance_bars, BTC, *MARCH_2024))
        assert kline_starts(stub) == [MARCH_2024_START_MS + k * 95 * HOUR_MS for k in range(8)]


def test_ccxt_source_server_ignoring_start_time_raises(
    shipped_binance_bars: dict[str, pl.DataFrame], make_source: SourceFactory
) -> None:
    # Arrange: every page ends just before `startTime`; ccxt drops rows older than `since`, so
    # the source sees an empty first page and must not return an empty month as complete.
    with BinanceStub(shipped_binance_bars, page_cap=100, page_overlap=100) as stub:
        source = make_source(stub)

        # Act
        with pytest.raises(SourceError) as raised:
            source.fetch(BTC, *MARCH_2024)

        # Assert
        assert "returned no bars" in str(raised.value)
        assert len(stub.requests(KLINES_PATH)) == 1


def test_ccxt_source_unsupported_timeframe_raises_before_requesting(
    exchange_stub: BinanceStub, make_source: SourceFactory
) -> None:
    # Arrange: Binance has 1m, 3m, 5m, ... candles but no 7m ones.
    source = make_source(exchange_stub)

    # Act
    with pytest.raises(SourceError, match="no '7m' candles"):
        source.fetch(InstrumentKey.parse("binance.BTC-USDT.7m"), *MARCH_2024)

    # Assert
    assert exchange_stub.requests(KLINES_PATH) == []


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("binance.BTC-USDT.1h", "BTC/USDT"),
        ("binance.ETH-USDT.1d", "ETH/USDT"),
        ("kraken.XBT-EUR.4h", "XBT/EUR"),
    ],
)
def test_market_symbol_base_quote_key_maps_to_ccxt_symbol(key: str, expected: str) -> None:
    # Act
    symbol = market_symbol(InstrumentKey.parse(key))

    # Assert
    assert symbol == expected


@pytest.mark.parametrize("key", ["binance.BTCUSDT.1h", "binance.BTC-USDT-PERP.1h", "x.-USDT.1h"])
def test_market_symbol_key_without_base_quote_raises(key: str) -> None:
    # Act / Assert
    with pytest.raises(UnknownInstrumentError, match="BASE-QUOTE"):
        market_symbol(InstrumentKey.parse(key))


def test_ccxt_source_provenance_names_exchange_symbol_and_timeframe() -> None:
    # Arrange
    source = CcxtSource(exchange_id="binance")

    # Act
    provenance = source.provenance(BTC)
    source.close()

    # Assert
    assert provenance == "ccxt:binance BTC/USDT 1h"


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ({"exchange_id": "no_such_exchange"}, "'no_such_exchange' is not one of ccxt's"),
        ({"exchange_id": "binance", "page_limit": 0}, "page_limit was 0"),
        ({"exchange_id": "binance", "max_retries": -1}, "max_retries was -1"),
        ({"exchange_id": "binance", "backoff_seconds": -0.5}, "backoff_seconds was -0.5"),
    ],
)
def test_ccxt_source_bad_settings_raise_configuration_error(
    settings: dict[str, Any], fragment: str
) -> None:
    # Act / Assert
    with pytest.raises(ConfigurationError, match=fragment):
        CcxtSource(**settings)
