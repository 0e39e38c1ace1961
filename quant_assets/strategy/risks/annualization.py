"""Bars per year of an instrument, for annualizing volatility (the rule of metrics.py).

The strategy layer sits below `quant_assets.backtest`, so it cannot import
`backtest.metrics.annualization_factor`; this mirrors that rule and a test keeps them equal.
"""

import contextlib
import math
from typing import Final

import polars as pl

from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.market import AssetClass, InstrumentKey, Timeframe
from quant_assets.strategy.modules import bar_timeframe

EQUITY_VENUES: Final = frozenset({"yahoo"})
_SECONDS_PER_DAY: Final = 86_400
_EQUITY_SESSIONS_PER_YEAR: Final = 252
_EQUITY_SESSION_SECONDS: Final = 6.5 * 3_600


def asset_class_of(instrument: str) -> AssetClass:
    """Return the calendar family of an instrument key: `yahoo` venues trade equities.

    Raises:
        UnknownInstrumentError: if `instrument` is not `venue.SYMBOL.timeframe`.
    """
    venue = InstrumentKey.parse(instrument).venue
    return AssetClass.EQUITY if venue in EQUITY_VENUES else AssetClass.CRYPTO


def bars_per_year(timeframe: Timeframe, asset_class: AssetClass) -> float:
    """Return bars per year: 365 days of bars for crypto, 252 sessions for equities."""
    if asset_class is AssetClass.CRYPTO:
        return 365 * _SECONDS_PER_DAY / timeframe.seconds
    if timeframe.is_intraday:
        bars_per_session = math.ceil(_EQUITY_SESSION_SECONDS / timeframe.seconds)
        return float(_EQUITY_SESSIONS_PER_YEAR * bars_per_session)
    return _EQUITY_SESSIONS_PER_YEAR * _SECONDS_PER_DAY / timeframe.seconds


def bars_per_year_of(bars: pl.DataFrame) -> float | None:
    """Return bars per year of canonical bars, from their instrument key when it parses.

    Without a key the bar length comes from the bar spacing and the calendar is crypto's;
    None when even the bar length is unknown (fewer than two bars).
    """
    timeframe = bar_timeframe(bars)
    if timeframe is None:
        return None
    asset_class = AssetClass.CRYPTO
    if "instrument" in bars.columns:
        # A bare symbol instead of a key keeps the round-the-clock calendar.
        with contextlib.suppress(QuantAssetsError):
            asset_class = asset_class_of(str(bars["instrument"][0]))
    return bars_per_year(timeframe, asset_class)
