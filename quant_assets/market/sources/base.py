"""The one interface every market data source implements."""

from abc import ABC, abstractmethod
from datetime import datetime

import polars as pl

from quant_assets.domain.market import InstrumentKey


class MarketSource(ABC):
    """A place bars come from (shipped sample, CSV files, an exchange, Yahoo)."""

    name: str = "source"

    @abstractmethod
    def fetch(self, instrument: InstrumentKey, start: datetime, end: datetime) -> pl.DataFrame:
        """Return bars with `start <= ts < end` in the canonical schema (market.canonical).

        Args:
            instrument: The instrument to fetch.
            start: Inclusive UTC start (a bar open time).
            end: Exclusive UTC end.

        Returns:
            A frame in `BAR_SCHEMA`, sorted by ts; empty when the source has no bars there.

        Raises:
            SourceError: when the source fails permanently or returns unusable data.
        """

    def provenance(self, instrument: InstrumentKey) -> str:
        """Return a one-line description of where this instrument's bars come from."""
        return f"{self.name}:{instrument.key}"
