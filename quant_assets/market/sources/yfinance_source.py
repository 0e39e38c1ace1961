"""Bars from Yahoo Finance through yfinance: daily and intraday, adjusted by default."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl
import yfinance as yf
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError, YFTickerMissingError

from quant_assets.domain.errors import SourceError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import PRICE_COLUMNS, empty_bars, to_canonical
from quant_assets.market.sources.base import MarketSource

# Bar length in seconds -> yfinance interval. Yahoo has no 2h or 4h bars.
_YAHOO_INTERVALS: Final = {
    60: "1m",
    120: "2m",
    300: "5m",
    900: "15m",
    1800: "30m",
    3600: "60m",
    5400: "90m",
    86400: "1d",
}
# A daily bar is labelled with its local trading date at 00:00 UTC, but Yahoo selects bars by the
# instant the session opened, which lies within a day of that label (New York opens at 13:30 or
# 14:30 UTC, Sydney at 23:00 UTC the day before); ask for a wider window and cut it afterwards.
_DAILY_REQUEST_MARGIN: Final = timedelta(days=2)
_YAHOO_COLUMNS: Final = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Volume": "volume",
}
# yfinance's "raise instead of log" switch is process-wide; serialize the fetches that flip it.
_YFINANCE_CONFIG_LOCK: Final = threading.Lock()


class YFinanceSource(MarketSource):
    """Yahoo Finance bars through yfinance (`yahoo.SPY.1d`, `yahoo.SPY.1h`, ...).

    Daily bars are labelled with their trading date at 00:00 UTC (the shipped sample's
    convention: a date label, not the instant the session opened); intraday bars carry their open
    instant in UTC. With `adjusted` (Yahoo's auto_adjust), daily OHLC are adjusted for splits and
    dividends, so close-to-close returns are total returns but old price levels are not the
    traded ones; without it they are split-adjusted only. Yahoo sends no dividend adjustment for
    intraday bars.

    yfinance keeps process-wide state: one HTTP session (a `session` given here replaces it for
    every yfinance user in the process), an in-memory response cache (cleared before each fetch,
    so that a retry or a re-fetch really asks Yahoo again) and a time-zone cache on disk.
    """

    name = "yfinance"

    def __init__(
        self,
        *,
        adjusted: bool = True,
        session: object | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """Configure the source.

        Args:
            adjusted: Ask for split- and dividend-adjusted OHLC (yfinance `auto_adjust`).
            session: A `requests.Session` (or curl_cffi session) for yfinance to use; None
                lets yfinance use its own. Tests pass a session whose only adapter is a stub.
            cache_dir: Where yfinance keeps its time-zone and cookie cache (passed to
                `yf.set_tz_cache_location`); None keeps yfinance's default in the home directory.
                yfinance honours only the location set before its cache is first used in the
                process; later changes are ignored.
        """
        self.adjusted = adjusted
        self.session = session
        self.cache_dir = cache_dir
        if cache_dir is not None:
            yf.set_tz_cache_location(str(cache_dir))

    def provenance(self, instrument: InstrumentKey) -> str:
        """Return where the bars come from and how they were adjusted.

        Example: "yfinance:SPY 1d auto_adjust=True (split- and dividend-adjusted)".
        """
        interval = _yahoo_interval(instrument)
        if interval != "1d":
            adjustment = "split-adjusted; Yahoo sends no dividend adjustment for intraday bars"
        elif self.adjusted:
            adjustment = "split- and dividend-adjusted"
        else:
            adjustment = "split-adjusted, not dividend-adjusted"
        return (
            f"{self.name}:{instrument.symbol} {interval} auto_adjust={self.adjusted} ({adjustment})"
        )

    def fetch(self, instrument: InstrumentKey, start: datetime, end: datetime) -> pl.DataFrame:
        """Return the instrument's bars with `start <= ts < end` in the canonical schema.

        Args:
            instrument: A key like `yahoo.SPY.1d`; the symbol is the Yahoo ticker.
            start: Inclusive start; a naive datetime is read as UTC.
            end: Exclusive end; a naive datetime is read as UTC.

        Returns:
            Bars sorted by ts, without the all-null rows Yahoo emits; empty when Yahoo knows the
            ticker but has no bars in the window.

        Raises:
            SourceError: if the timeframe has no Yahoo interval, or yfinance fails (network,
                HTTP error, rate limit, unknown ticker, unusable answer).
        """
        interval = _yahoo_interval(instrument)
        start_utc, end_utc = _as_utc(start), _as_utc(end)
        if start_utc >= end_utc:
            return empty_bars()
        margin = _DAILY_REQUEST_MARGIN if interval == "1d" else instrument.bar.duration
        try:
            history = self._download(instrument, interval, start_utc - margin, end_utc + margin)
        except Exception as e:
            raise SourceError(_failure_message(instrument, interval, start_utc, end_utc, e)) from e
        if history is None:
            return empty_bars()
        bars = history.filter(
            ~pl.all_horizontal(pl.col(name).is_null() for name in PRICE_COLUMNS),
            pl.col("ts") >= start_utc,
            pl.col("ts") < end_utc,
        ).sort("ts")
        return to_canonical(bars, instrument.key)

    def _download(
        self, instrument: InstrumentKey, interval: str, start: datetime, end: datetime
    ) -> pl.DataFrame | None:
        # Return the bars with ts as in BAR_SCHEMA (unfiltered), or None when Yahoo knows the
        # ticker but has no bars in the window. Failures propagate to fetch().
        try:
            with _yfinance_raises():
                _forget_cached_responses()
                history = yf.Ticker(instrument.symbol, session=self.session).history(
                    start=start,
                    end=end,
                    interval=interval,
                    auto_adjust=self.adjusted,
                    actions=False,
                    keepna=True,  # fetch() drops the all-null rows itself, by one rule
                )
        except YFPricesMissingError as e:
            if e.yahoo_reason is not None:
                raise
            # The ticker had a time zone, so Yahoo knows it; it just has no bars here.
            return None
        frame = pl.from_pandas(history, include_index=True)  # NaN prices become nulls
        assert isinstance(frame, pl.DataFrame)  # a pandas DataFrame converts to one
        local_ts = pl.col(frame.columns[0])  # the Date/Datetime index, exchange-local time
        if interval == "1d":
            # The daily label is the local trading date at 00:00 UTC, not the session's open.
            ts = local_ts.dt.date().cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        else:
            ts = local_ts.dt.convert_time_zone("UTC")
        renamed = (pl.col(yahoo).alias(name) for yahoo, name in _YAHOO_COLUMNS.items())
        return frame.select(ts.alias("ts"), *renamed)


def _yahoo_interval(instrument: InstrumentKey) -> str:
    interval = _YAHOO_INTERVALS.get(instrument.bar.seconds)
    if interval is None:
        supported = ", ".join(_YAHOO_INTERVALS.values())
        raise SourceError(
            f"instrument {instrument.key}: timeframe '{instrument.timeframe}' has no Yahoo "
            f"interval; Yahoo serves {supported} (1h is 60m); fetch a supported timeframe and "
            "resample it"
        )
    return interval


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@contextmanager
def _yfinance_raises() -> Iterator[None]:
    # By default yfinance logs a failure and returns an empty frame, which would look like "no
    # bars"; switched off it raises, so the cause reaches SourceError. The switch is global.
    with _YFINANCE_CONFIG_LOCK:
        hidden = yf.config.debug.hide_exceptions
        yf.config.debug.hide_exceptions = False
        try:
            yield
        finally:
            yf.config.debug.hide_exceptions = hidden


def _forget_cached_responses() -> None:
    # yfinance memoizes every past-range chart response for the life of the process (an LRU on
    # YfData.cache_get), failed ones included; a retry would replay the failure and a re-fetch
    # would miss Yahoo's revised adjustments. Private API, so tolerate its absence.
    cache_clear = getattr(getattr(yf.data.YfData, "cache_get", None), "cache_clear", None)
    if callable(cache_clear):
        cache_clear()


def _failure_message(
    instrument: InstrumentKey, interval: str, start: datetime, end: datetime, error: Exception
) -> str:
    return (
        f"yfinance could not fetch {instrument.key} (ticker '{instrument.symbol}', interval "
        f"{interval}) for {start.isoformat()} to {end.isoformat()}: "
        f"{type(error).__name__}: {error}; {_fix_for(error, instrument.symbol)}"
    )


def _fix_for(error: Exception, symbol: str) -> str:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(error, YFTickerMissingError) or status == 404:
        # An unknown ticker fails either way: no time zone, or a 404 from the quote lookup.
        return (
            f"check that '{symbol}' exists on finance.yahoo.com, spelled as Yahoo spells it "
            "(BRK-B, ^GSPC, EURUSD=X), and that the period is inside its history (Yahoo keeps "
            "1m bars for 30 days and other intraday bars for 60 or 730 days)"
        )
    if isinstance(error, YFRateLimitError) or status == 429:
        return "Yahoo rate-limited this client; wait a few minutes and retry"
    if isinstance(status, int):
        return f"Yahoo answered HTTP {status}; retry later"
    if isinstance(error, ValueError):
        # Checked before OSError: requests' JSONDecodeError is both.
        return (
            "Yahoo answered with something other than chart data (an HTTP error page or an "
            "outage); retry later, and upgrade yfinance if it persists"
        )
    if isinstance(error, OSError):  # requests' and curl_cffi's errors both derive from OSError
        return "check the network connection to Yahoo Finance and retry later"
    return "retry later; if it persists, check the ticker on finance.yahoo.com"
