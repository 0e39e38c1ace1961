"""A local stand-in for Binance's public spot REST API, serving given bars on 127.0.0.1.

It answers the two endpoints ccxt's binance client needs to read candles: `/api/v3/exchangeInfo`
(enough for `load_markets` to know the served pairs as spot markets) and `/api/v3/klines` (Binance's
row format). Like the real server it returns at most `page_cap` rows per call whatever `limit` the
client asks for, so a client that assumes full pages loses bars. Faults are scripted per path as a
queue of replies served before the normal answers, and every request is logged.
"""

import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import polars as pl

from quant_assets.domain.arrays import FloatArray, Int64Array
from quant_assets_tests.stubs.local_server import LocalServer

EXCHANGE_INFO_PATH: Final = "/api/v3/exchangeInfo"
KLINES_PATH: Final = "/api/v3/klines"
_DEFAULT_LIMIT: Final = 500  # Binance spot klines: default 500, maximum 1000
_MAX_LIMIT: Final = 1000
_INTERVAL_MS: Final = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "1d": 86_400_000,
}


@dataclass(frozen=True)
class ScriptedReply:
    """One reply the stub serves instead of its normal answer.

    Attributes:
        status: HTTP status to send; None closes the connection without sending anything.
        body: Response body (JSON text); None answers normally (to let requests through).
    """

    status: int | None
    body: str | None = ""


DROP_CONNECTION: Final = ScriptedReply(status=None)
NORMAL_REPLY: Final = ScriptedReply(status=200, body=None)
EMPTY_PAGE: Final = ScriptedReply(status=200, body="[]")


def http_error(status: int, code: int | None = None, message: str = "") -> ScriptedReply:
    """Return a scripted HTTP error, with a Binance `{"code", "msg"}` body when `code` is given."""
    body = "" if code is None else json.dumps({"code": code, "msg": message})
    return ScriptedReply(status=status, body=body)


@dataclass(frozen=True)
class LoggedRequest:
    """One request the stub received (faulted ones included)."""

    path: str
    query: dict[str, str]


@dataclass
class _Series:
    """The bars of one served market as arrays indexed by open time."""

    open_ms: Int64Array
    columns: dict[str, FloatArray]


@dataclass
class _State:
    """Everything the request handler threads share (guarded by `lock`)."""

    series: dict[str, _Series]
    markets: list[tuple[str, str]]
    interval: str
    page_cap: int
    page_overlap: int
    history_end_ms: int | None = None
    scripted: dict[str, deque[ScriptedReply]] = field(default_factory=dict)
    log: list[LoggedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class BinanceStub(LocalServer):
    """A threaded HTTP server on 127.0.0.1 imitating Binance's public spot market-data API."""

    def __init__(
        self,
        bars: Mapping[str, pl.DataFrame],
        *,
        interval: str = "1h",
        page_cap: int = 100,
        page_overlap: int = 0,
    ) -> None:
        """Prepare the stub; `start()` (or `with`) binds a free port and serves.

        Args:
            bars: Bars per ccxt spot symbol ("BTC/USDT"), with a UTC `ts` (bar open) column and
                open, high, low, close, volume.
            interval: The one kline interval served; other intervals get Binance's -1120 error.
            page_cap: Most rows returned by one klines call, whatever `limit` asks for.
            page_overlap: Bars before `startTime` that each page repeats (servers that overlap).
        """
        markets = [tuple(symbol.split("/")) for symbol in bars]
        self._state = _State(
            series={symbol.replace("/", ""): _to_series(frame) for symbol, frame in bars.items()},
            markets=[(base, quote) for base, quote in markets],
            interval=interval,
            page_cap=page_cap,
            page_overlap=page_overlap,
        )
        super().__init__("the Binance stub", _Handler, self._state)

    @property
    def api_url(self) -> str:
        """Return the public spot API root (ccxt's `urls['api']['public']`)."""
        return f"{self.base_url}/api/v3"

    def truncate_history(self, end: datetime | None) -> None:
        """Serve no bars opening at or after `end` (an exchange whose history stops early)."""
        with self._state.lock:
            self._state.history_end_ms = None if end is None else _epoch_ms(end)

    def script(self, path: str, *replies: ScriptedReply) -> None:
        """Queue replies that requests to `path` receive, in order, before normal answers."""
        with self._state.lock:
            self._state.scripted.setdefault(path, deque()).extend(replies)

    def requests(self, path: str | None = None) -> list[LoggedRequest]:
        """Return the requests received so far, optionally only those to `path`."""
        with self._state.lock:
            return [entry for entry in self._state.log if path is None or entry.path == path]


class _Handler(BaseHTTPRequestHandler):
    state: _State

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        with self.state.lock:
            self.state.log.append(LoggedRequest(path=parts.path, query=query))
            pending = self.state.scripted.get(parts.path)
            scripted = pending.popleft() if pending else None
        if scripted is not None and scripted.body is not None:
            self._send_scripted(scripted)
        elif parts.path == EXCHANGE_INFO_PATH:
            self._send_json(200, _exchange_info(self.state.markets))
        elif parts.path == KLINES_PATH:
            status, payload = _klines(self.state, query)
            self._send_json(status, payload)
        else:
            self._send_json(404, {"code": -1, "msg": f"no such path {parts.path}"})

    def _send_scripted(self, reply: ScriptedReply) -> None:
        if reply.status is None:
            # Close without a status line: the client sees the connection dropped.
            self.close_connection = True
            return
        self._send_body(reply.status, (reply.body or "").encode("utf-8"))

    def _send_json(self, status: int, payload: Any) -> None:
        self._send_body(status, json.dumps(payload).encode("utf-8"))

    def _send_body(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the request log is kept in the stub's state instead of stderr.
        return


def _klines(state: _State, query: dict[str, str]) -> tuple[int, Any]:
    series = state.series.get(query.get("symbol", ""))
    if series is None:
        return 400, {"code": -1121, "msg": "Invalid symbol."}
    if query.get("interval") != state.interval:
        return 400, {"code": -1120, "msg": "Invalid interval."}
    limit = min(int(query.get("limit", _DEFAULT_LIMIT)), _MAX_LIMIT, state.page_cap)
    with state.lock:
        history_end_ms = state.history_end_ms
    # Binance: openTime >= startTime and openTime <= endTime; without startTime the newest bars.
    stop = len(series.open_ms)
    if history_end_ms is not None:
        stop = int(np.searchsorted(series.open_ms, history_end_ms, side="left"))
    if "endTime" in query:
        stop = min(stop, int(np.searchsorted(series.open_ms, int(query["endTime"]), side="right")))
    if "startTime" in query:
        first = int(np.searchsorted(series.open_ms, int(query["startTime"]), side="left"))
        first = max(first - state.page_overlap, 0)
        rows = range(first, min(first + limit, stop))
    else:
        rows = range(max(stop - limit, 0), stop)
    interval_ms = _INTERVAL_MS[state.interval]
    return 200, [_kline_row(series, index, interval_ms) for index in rows]


def _kline_row(series: _Series, index: int, interval_ms: int) -> list[Any]:
    # Binance row: open time, o, h, l, c, volume (decimal strings, 8 places), close time,
    # quote volume, trade count, taker buy base, taker buy quote, ignore.
    open_ms = int(series.open_ms[index])
    prices = [f"{series.columns[name][index]:.8f}" for name in ("open", "high", "low", "close")]
    volume = f"{series.columns['volume'][index]:.8f}"
    return [open_ms, *prices, volume, open_ms + interval_ms - 1, "0", 0, "0", "0", "0"]


def _exchange_info(markets: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": 0,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [_spot_symbol(base, quote) for base, quote in markets],
    }


def _spot_symbol(base: str, quote: str) -> dict[str, Any]:
    return {
        "symbol": f"{base}{quote}",
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": "0.01",
                "maxPrice": "1000000.00",
                "tickSize": "0.01",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001",
                "maxQty": "9000.0",
                "stepSize": "0.00001",
            },
        ],
        "permissions": ["SPOT"],
        "permissionSets": [["SPOT"]],
    }


def _to_series(frame: pl.DataFrame) -> _Series:
    ordered = frame.sort("ts")
    open_ms = ordered["ts"].dt.epoch("ms").to_numpy().astype(np.int64)
    columns = {
        name: ordered[name].cast(pl.Float64).to_numpy()
        for name in ("open", "high", "low", "close", "volume")
    }
    return _Series(open_ms=open_ms, columns=columns)


def _epoch_ms(moment: datetime) -> int:
    # Integer arithmetic: float seconds times 1000 can round a millisecond away.
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
