"""Bars from any ccxt exchange: paged with our own since-cursor, retried, checked for truncation.

ccxt's built-in `paginate` assumes every page is full (1000 bars for Binance) and silently drops
bars when a server returns shorter pages (NOTES-stack.md section 6), so this source drives the
cursor itself: `since = last_ts + bar length` until a page comes back empty or the cursor reaches
the end of the period (or the bar still forming).
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, ParamSpec, TypeVar

import ccxt
import polars as pl

from quant_assets.domain.errors import ConfigurationError, SourceError, UnknownInstrumentError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import empty_bars, to_canonical
from quant_assets.market.sources.base import MarketSource

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)
_OHLCV_COLUMNS: Final = ("open", "high", "low", "close", "volume")

_P = ParamSpec("_P")
_T = TypeVar("_T")


def market_symbol(instrument: InstrumentKey) -> str:
    """Return the ccxt market symbol of an instrument: `binance.BTC-USDT.1h` -> `BTC/USDT`.

    Raises:
        UnknownInstrumentError: if the key's symbol is not `BASE-QUOTE`.
    """
    base, dash, quote = instrument.symbol.partition("-")
    if not (dash and base and quote) or "-" in quote:
        raise UnknownInstrumentError(
            f"instrument '{instrument.key}': symbol '{instrument.symbol}' is not of the form "
            "BASE-QUOTE, which the ccxt source needs to name a spot market; "
            "write it like binance.BTC-USDT.1h"
        )
    return f"{base}/{quote}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class CcxtSource(MarketSource):
    """Spot OHLCV bars from a ccxt exchange (Binance and the other ccxt ids)."""

    name = "ccxt"

    def __init__(
        self,
        *,
        exchange_id: str,
        api_base_url: str | None = None,
        page_limit: int = 1000,
        max_retries: int = 5,
        backoff_seconds: float = 1.0,
        rate_limit_ms: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Build the ccxt client (no network traffic until the first fetch).

        Args:
            exchange_id: Any ccxt exchange id, e.g. "binance".
            api_base_url: Replacement for the exchange's public REST root (for Binance
                `urls['api']['public']`, e.g. "http://127.0.0.1:8000/api/v3"); None keeps it.
            page_limit: Bars asked for per request; servers may return fewer.
            max_retries: Retries of one request after network errors (so 1 + max_retries tries).
            backoff_seconds: First wait before a retry; it doubles on each further retry.
            rate_limit_ms: ccxt's minimum spacing between requests (per unit of endpoint cost);
                None keeps the exchange's default. Only the constructor can set it.
            sleep: Waits between retries (injectable so tests do not wait).
            now: Returns the current UTC time, which decides the bar still forming.

        Raises:
            ConfigurationError: if the exchange id is unknown or a setting is out of range.
        """
        _check_settings(page_limit, max_retries, backoff_seconds, rate_limit_ms)
        if exchange_id not in ccxt.exchanges:
            raise ConfigurationError(
                f"ccxt exchange id '{exchange_id}' is not one of ccxt's {len(ccxt.exchanges)} "
                "exchanges; use a lowercase ccxt id such as 'binance', 'kraken' or 'bybit'"
            )
        exchange_class = getattr(ccxt, exchange_id)
        config = _exchange_config(exchange_class(), api_base_url, rate_limit_ms)
        self.exchange_id = exchange_id
        self.page_limit = page_limit
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._exchange: Any = exchange_class(config)
        self._sleep = sleep
        self._now = now

    def provenance(self, instrument: InstrumentKey) -> str:
        """Return e.g. `ccxt:binance BTC/USDT 1h`."""
        return f"{self.name}:{self.exchange_id} {market_symbol(instrument)} {instrument.timeframe}"

    def close(self) -> None:
        """Close the client's HTTP session."""
        self._exchange.close()

    def fetch(self, instrument: InstrumentKey, start: datetime, end: datetime) -> pl.DataFrame:
        """Return the closed bars with `start <= ts < end`, paging until the period is covered.

        Bars at or after `end` and the bar still forming at `now()` are dropped; overlapping
        pages are deduplicated by ts. Internal gaps (exchange outages) are returned as they are.

        Args:
            instrument: A `venue.BASE-QUOTE.timeframe` key; the venue is not checked against
                `exchange_id`, so any key naming a spot pair of that exchange works.
            start: Inclusive UTC start (naive means UTC).
            end: Exclusive UTC end (naive means UTC).

        Returns:
            The canonical frame (instrument column = the key), sorted by ts, without duplicates;
            empty when the period holds no closed bar or precedes the market's history.

        Raises:
            UnknownInstrumentError: if the key's symbol is not `BASE-QUOTE`.
            SourceError: on a permanent exchange error, on network errors that outlast the
                retries, or when the bars stop before the last complete bar of the period.
        """
        symbol = market_symbol(instrument)
        bar_ms = instrument.bar.seconds * 1000
        start_ms = _epoch_ms(start)
        forming_ms = _epoch_ms(self._now()) // bar_ms * bar_ms
        stop_ms = min(_epoch_ms(end), forming_ms)
        if stop_ms <= start_ms:
            return empty_bars()
        self._prepare(instrument, symbol)
        bars, newest_ms = self._fetch_pages(instrument, symbol, start_ms, stop_ms)
        self._check_complete(instrument, bars, newest_ms, start_ms, stop_ms)
        if not bars:
            return empty_bars()
        open_times = sorted(bars)
        frame = pl.DataFrame(
            {
                "ts": pl.Series(open_times, dtype=pl.Int64),
                **{
                    name: pl.Series([bars[ts][column] for ts in open_times], dtype=pl.Float64)
                    for column, name in enumerate(_OHLCV_COLUMNS)
                },
            }
        ).with_columns(pl.from_epoch("ts", time_unit="ms"))
        return to_canonical(frame, instrument.key)

    def _prepare(self, instrument: InstrumentKey, symbol: str) -> None:
        self._with_retries(instrument, "load_markets", self._exchange.load_markets)
        timeframes = self._exchange.timeframes
        if timeframes and instrument.timeframe not in timeframes:
            raise SourceError(
                f"instrument '{instrument.key}': {self.exchange_id} has no "
                f"'{instrument.timeframe}' candles for {symbol}; use one of {', '.join(timeframes)}"
            )

    def _fetch_pages(
        self, instrument: InstrumentKey, symbol: str, start_ms: int, stop_ms: int
    ) -> tuple[dict[int, list[float]], int | None]:
        # Returns bars in [start_ms, stop_ms) by open time, and the newest open time the exchange
        # returned at all (possibly beyond stop_ms: proof that it has later history).
        bar_ms = instrument.bar.seconds * 1000
        bars: dict[int, list[float]] = {}
        newest_ms: int | None = None
        cursor = start_ms
        while cursor < stop_ms:
            page = self._with_retries(
                instrument,
                f"fetch_ohlcv({symbol}, {instrument.timeframe}, since={_iso(cursor)} "
                f"[{cursor} ms], limit={self.page_limit})",
                self._exchange.fetch_ohlcv,
                symbol,
                instrument.timeframe,
                since=cursor,
                limit=self.page_limit,
            )
            if not page:
                break
            for row in page:
                if start_ms <= int(row[0]) < stop_ms:
                    # A later page wins on overlap: it is the fresher copy of the bar.
                    bars[int(row[0])] = [row[1], row[2], row[3], row[4], row[5]]
            last_ms = max(int(row[0]) for row in page)
            newest_ms = last_ms if newest_ms is None else max(newest_ms, last_ms)
            if last_ms < cursor:
                raise SourceError(
                    f"instrument '{instrument.key}': {self.exchange_id} answered fetch_ohlcv "
                    f"since {_iso(cursor)} with bars up to {_iso(last_ms)}, before the cursor, so "
                    "the page loop cannot advance; the exchange ignores `since` for this market; "
                    "fetch it from another exchange id or report it to ccxt"
                )
            cursor = last_ms + bar_ms
        return bars, newest_ms

    def _check_complete(
        self,
        instrument: InstrumentKey,
        bars: dict[int, list[float]],
        newest_ms: int | None,
        start_ms: int,
        stop_ms: int,
    ) -> None:
        bar_ms = instrument.bar.seconds * 1000
        first_expected = -(-start_ms // bar_ms) * bar_ms
        last_expected = (stop_ms - 1) // bar_ms * bar_ms
        if last_expected < first_expected:
            return  # no whole bar opens inside the period
        last_returned = max(bars) if bars else None
        if last_returned is not None and last_returned >= last_expected:
            return
        if newest_ms is not None and newest_ms >= stop_ms:
            # The exchange has bars after the period, so the missing tail is an outage (or the
            # market was listed later): a real gap, reported by the gap check, not a truncation.
            return
        returned = "no bars" if last_returned is None else f"bars up to {_iso(last_returned)}"
        raise SourceError(
            f"{self.provenance(instrument)} (instrument '{instrument.key}') returned {returned} "
            f"but the period [{_iso(start_ms)}, {_iso(stop_ms)}) needs bars up to "
            f"{_iso(last_expected)}; the exchange truncated its history or the page loop stopped "
            "early; retry later"
        )

    def _with_retries(
        self,
        instrument: InstrumentKey,
        request: str,
        call: Callable[_P, _T],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _T:
        attempts = 0
        while True:
            attempts += 1
            try:
                return call(*args, **kwargs)
            except ccxt.NetworkError as error:
                # Covers RateLimitExceeded, DDoSProtection (HTTP 418/429), ExchangeNotAvailable,
                # RequestTimeout and dropped connections: transient, so wait and try again.
                if attempts > self.max_retries:
                    raise SourceError(
                        f"{self.exchange_id}: {request} for instrument '{instrument.key}' failed "
                        f"after {attempts} attempts (max_retries={self.max_retries}); last error: "
                        f"{type(error).__name__}: {error}; the exchange was unreachable or "
                        "rate-limiting; retry later, or raise max_retries / backoff_seconds, "
                        "or space requests with rate_limit_ms"
                    ) from error
                self._sleep(self.backoff_seconds * 2 ** (attempts - 1))
            except ccxt.BaseError as error:
                # ExchangeError (BadSymbol, BadRequest, ...) and the rest are permanent.
                raise SourceError(
                    f"{self.exchange_id}: {request} for instrument '{instrument.key}' was "
                    f"rejected: {type(error).__name__}: {error}; this error is permanent, so it "
                    f"was not retried; check that the market and timeframe exist on "
                    f"{self.exchange_id}"
                ) from error


def _check_settings(
    page_limit: int, max_retries: int, backoff_seconds: float, rate_limit_ms: int | None
) -> None:
    problems = [
        f"page_limit was {page_limit}, it must be at least 1" if page_limit < 1 else "",
        f"max_retries was {max_retries}, it must be 0 or more" if max_retries < 0 else "",
        f"backoff_seconds was {backoff_seconds}, it must be 0 or more"
        if backoff_seconds < 0
        else "",
        f"rate_limit_ms was {rate_limit_ms}, it must be 0 or more"
        if rate_limit_ms is not None and rate_limit_ms < 0
        else "",
    ]
    found = [problem for problem in problems if problem]
    if found:
        raise ConfigurationError(f"CcxtSource settings: {'; '.join(found)}; fix the settings")


def _exchange_config(
    defaults: Any, api_base_url: str | None, rate_limit_ms: int | None
) -> dict[str, Any]:
    # ccxt deep-merges the constructor config into the exchange's description.
    config: dict[str, Any] = {"enableRateLimit": True}
    if rate_limit_ms is not None:
        # The throttler reads rateLimit at construction; setting it later has no effect.
        config["rateLimit"] = rate_limit_ms
    market_types = defaults.options.get("fetchMarkets")
    if isinstance(market_types, dict) and "spot" in market_types.get("types", []):
        # Spot only: otherwise Binance's load_markets also calls the futures APIs (fapi, dapi).
        config["options"] = {"fetchMarkets": {"types": ["spot"]}}
    if api_base_url is not None:
        config["urls"] = {"api": _api_urls(defaults, api_base_url)}
    return config


def _api_urls(defaults: Any, api_base_url: str) -> str | dict[str, str]:
    api = defaults.urls.get("api")
    if isinstance(api, str):
        return api_base_url
    for key in ("public", "rest"):
        if isinstance(api, dict) and key in api:
            return {key: api_base_url}
    raise ConfigurationError(
        f"ccxt exchange '{defaults.id}': api_base_url was {api_base_url!r}, but its urls['api'] "
        f"has no 'public' or 'rest' entry to replace (keys: {sorted(api or {})}); "
        "leave api_base_url unset for this exchange"
    )


def _epoch_ms(moment: datetime) -> int:
    # Naive datetimes are UTC (as in market.canonical); integer arithmetic keeps milliseconds exact.
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _ONE_MS


def _iso(epoch_ms: int) -> str:
    return (_EPOCH + epoch_ms * _ONE_MS).strftime("%Y-%m-%d %H:%M UTC")
