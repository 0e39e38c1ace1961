"""An in-process Yahoo Finance stub: a requests adapter that answers yfinance with canned JSON.

yfinance 1.7 accepts a `requests.Session` (NOTES-stack.md section 7). Mount `YahooStubAdapter` as
the session's only adapter (`yahoo_stub_session`) and every request yfinance makes is answered
here, without a socket: the cookie (`fc.yahoo.com`), the crumb (`/v1/test/getcrumb`) and the chart
(`/v8/finance/chart/{symbol}`) in Yahoo's JSON shape (meta, timestamp, events, indicators.quote
and, for daily bars, indicators.adjclose). Charts are built from real bars (data/sample/).
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import polars as pl
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

SAMPLE_DIR: Final = Path(__file__).resolve().parents[2] / "data" / "sample"
STUB_CRUMB: Final = "stub-crumb"
_SESSION_OPEN: Final = time(9, 30)  # NYSE regular session open, local time
_VALID_RANGES: Final = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]


@dataclass(frozen=True)
class Dividend:
    """A cash dividend: `amount` per share, going ex on `ex_date`."""

    ex_date: date
    amount: float


@dataclass(frozen=True)
class YahooChart:
    """The bars the stub serves for one symbol at one Yahoo interval.

    `bars` has ts, open, high, low, close, volume. For `interval` "1d", ts is the trading date at
    00:00 UTC (the shipped sample's label) and its OHLC are the adjusted prices; the stub sends
    Yahoo's raw close and adjclose so that Yahoo's adjustment reproduces them (see `_daily_quote`).
    For intraday intervals, ts is the bar open instant in UTC and prices are sent as they are.
    """

    symbol: str
    bars: pl.DataFrame
    interval: str = "1d"
    exchange_timezone: str = "America/New_York"
    instrument_type: str = "ETF"
    dividend: Dividend | None = None
    null_bars_at: tuple[datetime, ...] = ()  # Yahoo's all-null rows (intraday)


def sample_daily_chart(symbol: str, dividend: Dividend | None = None) -> YahooChart:
    """Return a daily chart of the shipped `data/sample/yahoo_<symbol>_1d.parquet` bars."""
    bars = pl.read_parquet(SAMPLE_DIR / f"yahoo_{symbol}_1d.parquet").drop("symbol")
    return YahooChart(symbol=symbol, bars=bars, dividend=dividend)


def yahoo_stub_session(adapter: "YahooStubAdapter") -> requests.Session:
    """Return a session whose only adapter is `adapter`, so no request can reach a socket."""
    session = requests.Session()
    session.adapters.clear()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class YahooStubAdapter(BaseAdapter):
    """Answer yfinance's cookie, crumb and chart requests from canned charts.

    Args:
        charts: The symbols the stub knows; any other symbol gets Yahoo's 404 "No data found".
        chart_status: When set, every chart request is answered with this HTTP status and an
            HTML error page (a Yahoo outage).
        offline: When True, every request raises `requests.ConnectionError` (no network).
    """

    def __init__(
        self,
        charts: Iterable[YahooChart],
        *,
        chart_status: int | None = None,
        offline: bool = False,
    ) -> None:
        super().__init__()
        self.charts: Mapping[str, YahooChart] = {chart.symbol: chart for chart in charts}
        self.chart_status = chart_status
        self.offline = offline
        self.requested_urls: list[str] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: object = None,
        verify: object = True,
        cert: object = None,
        proxies: object = None,
    ) -> requests.Response:
        """Return the canned response to one request."""
        url = request.url or ""
        self.requested_urls.append(url)
        if self.offline:
            raise requests.ConnectionError(f"stub is offline: {url}", request=request)
        parts = urlsplit(url)
        if parts.hostname == "fc.yahoo.com":
            # Yahoo answers 404 here and sets its A3 cookie; yfinance only needs the call to work.
            return _response(request, 404, "", "text/html")
        if parts.path == "/v1/test/getcrumb":
            return _response(request, 200, STUB_CRUMB, "text/plain")
        if parts.path.startswith("/v8/finance/chart/"):
            return self._chart(request, parts.path.rsplit("/", 1)[-1], parse_qs(parts.query))
        return _response(request, 404, "<html><body>Not Found</body></html>", "text/html")

    def close(self) -> None:
        """Release nothing: the stub holds no connections."""

    def _chart(
        self, request: requests.PreparedRequest, symbol: str, query: dict[str, list[str]]
    ) -> requests.Response:
        if self.chart_status is not None:
            page = f"<html><body>HTTP {self.chart_status}: Yahoo is unavailable</body></html>"
            return _response(request, self.chart_status, page, "text/html")
        chart = self.charts.get(symbol)
        if chart is None:
            body = _chart_error("Not Found", "No data found, symbol may be delisted")
            return _response(request, 404, body, "application/json")
        interval = query.get("interval", ["1d"])[0]
        if "range" in query:  # yfinance's time-zone probe: range=1d, any bars will do
            period1, period2 = 0, 2**40
        elif interval != chart.interval:
            body = _chart_error("Bad Request", f"Invalid input - interval={interval}")
            return _response(request, 400, body, "application/json")
        else:
            period1, period2 = int(query["period1"][0]), int(query["period2"][0])
        chart_json = {"chart": {"result": [_chart_result(chart, period1, period2)], "error": None}}
        return _response(request, 200, json.dumps(chart_json), "application/json")


@dataclass(frozen=True)
class _YahooBar:
    timestamp: int  # epoch seconds
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    volume: int | None
    adjclose: float | None


def _chart_result(chart: YahooChart, period1: int, period2: int) -> dict[str, object]:
    # Yahoo's chart.result[0] for the bars stamped in [period1, period2).
    bars = [bar for bar in _yahoo_bars(chart) if period1 <= bar.timestamp < period2]
    result: dict[str, object] = {"meta": _meta(chart)}
    if not bars:
        # A known symbol with no bars in the window: Yahoo sends meta and an empty quote.
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return result
    result["timestamp"] = [bar.timestamp for bar in bars]
    quote = {
        "open": [bar.open for bar in bars],
        "high": [bar.high for bar in bars],
        "low": [bar.low for bar in bars],
        "close": [bar.close for bar in bars],
        "volume": [bar.volume for bar in bars],
    }
    indicators: dict[str, object] = {"quote": [quote]}
    if chart.interval == "1d":  # Yahoo sends no adjclose for intraday bars
        indicators["adjclose"] = [{"adjclose": [bar.adjclose for bar in bars]}]
    result["indicators"] = indicators
    if chart.dividend is not None:
        stamp = _session_open_epoch(chart.dividend.ex_date, chart.exchange_timezone)
        if period1 <= stamp < period2:
            dividend = {"amount": chart.dividend.amount, "date": stamp}
            result["events"] = {"dividends": {str(stamp): dividend}}
    return result


def _yahoo_bars(chart: YahooChart) -> list[_YahooBar]:
    if chart.interval == "1d":
        return _daily_bars(chart)
    # Yahoo sends whole-unit volumes, so a fractional crypto volume is rounded.
    bars = [
        _YahooBar(
            timestamp=int(row["ts"].timestamp()),
            open=row["open"],
            high=row["high"],
            low=row["low"],
            close=row["close"],
            volume=round(row["volume"]),
            adjclose=None,
        )
        for row in chart.bars.iter_rows(named=True)
    ]
    empty = dict.fromkeys(("open", "high", "low", "close", "volume", "adjclose"))
    bars.extend(_YahooBar(int(at.timestamp()), **empty) for at in chart.null_bars_at)
    return sorted(bars, key=lambda bar: bar.timestamp)


def _daily_bars(chart: YahooChart) -> list[_YahooBar]:
    # Yahoo's adjclose = raw close x factor, with factor = 1 - amount / raw close of the day
    # before the ex-date for every bar before it (the CRSP method). The sample holds adjusted
    # prices, so raw = adjusted / factor before the ex-date; solving
    # factor = 1 - amount / (adjusted_prev / factor) gives raw = adjusted x scale with
    # scale = 1 + amount / adjusted_prev, adjusted_prev being the last adjusted close before it.
    scale_before = 1.0
    if chart.dividend is not None:
        before = chart.bars.filter(pl.col("ts").dt.date() < chart.dividend.ex_date)
        scale_before = 1.0 + chart.dividend.amount / float(before["close"][-1])
    bars: list[_YahooBar] = []
    for row in chart.bars.iter_rows(named=True):
        trading_date: date = row["ts"].date()
        is_before = chart.dividend is not None and trading_date < chart.dividend.ex_date
        scale = scale_before if is_before else 1.0
        bar = _YahooBar(
            timestamp=_session_open_epoch(trading_date, chart.exchange_timezone),
            open=row["open"] * scale,
            high=row["high"] * scale,
            low=row["low"] * scale,
            close=row["close"] * scale,
            volume=round(row["volume"]),
            adjclose=row["close"],
        )
        bars.append(bar)
    return bars


def _session_open_epoch(trading_date: date, timezone: str) -> int:
    # Yahoo stamps a daily bar with the instant its session opened (09:30 local here).
    opened = datetime.combine(trading_date, _SESSION_OPEN, tzinfo=ZoneInfo(timezone))
    return int(opened.timestamp())


def _meta(chart: YahooChart) -> dict[str, object]:
    zone = ZoneInfo(chart.exchange_timezone)
    first = chart.bars["ts"].min()
    last = chart.bars["ts"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    offset = last.astimezone(zone).utcoffset()
    gmtoffset = int(offset.total_seconds()) if offset is not None else 0
    meta: dict[str, object] = {
        "currency": "USD",
        "symbol": chart.symbol,
        "exchangeName": "PCX",
        "instrumentType": chart.instrument_type,
        "firstTradeDate": int(first.timestamp()),
        "regularMarketTime": int(last.timestamp()),
        "gmtoffset": gmtoffset,
        "timezone": last.astimezone(zone).tzname(),
        "exchangeTimezoneName": chart.exchange_timezone,
        "priceHint": 2,
        "dataGranularity": chart.interval,
        "range": "",
        "validRanges": _VALID_RANGES,
    }
    if chart.interval != "1d":
        meta["tradingPeriods"] = _trading_periods(chart, zone)
    return meta


def _trading_periods(chart: YahooChart, zone: ZoneInfo) -> list[list[object]]:
    # One regular period per local date that has bars; yfinance drops bars outside them. The
    # stub's intraday charts span each whole local day (a market that trades around the clock).
    local_dates = sorted({ts.astimezone(zone).date() for ts in chart.bars["ts"]})
    periods: list[list[object]] = []
    for local_date in local_dates:
        start = datetime.combine(local_date, time(0), tzinfo=zone)
        end = datetime.combine(date.fromordinal(local_date.toordinal() + 1), time(0), tzinfo=zone)
        offset = start.utcoffset()
        period = {
            "timezone": start.tzname(),
            "start": int(start.timestamp()),
            "end": int(end.timestamp()),
            "gmtoffset": int(offset.total_seconds()) if offset is not None else 0,
        }
        periods.append([period])
    return periods


def _chart_error(code: str, description: str) -> str:
    return json.dumps(
        {"chart": {"result": None, "error": {"code": code, "description": description}}}
    )


def _response(
    request: requests.PreparedRequest, status: int, body: str, content_type: str
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.reason = "OK" if status < 400 else "Error"
    response.headers = CaseInsensitiveDict({"Content-Type": content_type})
    response._content = body.encode("utf-8")
    response.encoding = "utf-8"
    response.url = request.url or ""
    response.request = request
    response.raw = None
    return response
