"""Market vocabulary: instrument keys, timeframes, source kinds and partition records."""

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from quant_assets.domain.errors import UnknownInstrumentError

_TIMEFRAME_PATTERN: Final = re.compile(r"^(\d+)(m|h|d)$")
_UNIT_SECONDS: Final = {"m": 60, "h": 3600, "d": 86400}
_KEY_PATTERN: Final = re.compile(r"^([a-z][a-z0-9_]*)\.([A-Za-z0-9^=_-]+)\.(\d+[mhd])$")


class SourceKind(StrEnum):
    """Where an instrument's bars come from."""

    SAMPLE = "sample"
    CSV = "csv"
    CCXT = "ccxt"
    YFINANCE = "yfinance"


class AssetClass(StrEnum):
    """Trading calendar family, which sets annualization and grid rules."""

    CRYPTO = "crypto"
    EQUITY = "equity"


class Timeframe(BaseModel):
    """A bar length such as 1m, 1h, 4h or 1d."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    label: str

    @classmethod
    def parse(cls, label: str) -> "Timeframe":
        """Return the timeframe for a label like '1h'.

        Raises:
            UnknownInstrumentError: if the label is not <int><m|h|d>.
        """
        if not _TIMEFRAME_PATTERN.match(label):
            raise UnknownInstrumentError(
                f"timeframe '{label}' is not of the form <number><m|h|d>; use e.g. 1m, 1h, 4h or 1d"
            )
        return cls(label=label)

    @property
    def seconds(self) -> int:
        """Return the bar length in seconds."""
        match = _TIMEFRAME_PATTERN.match(self.label)
        assert match is not None  # guaranteed by parse()
        return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]

    @property
    def duration(self) -> timedelta:
        """Return the bar length as a timedelta."""
        return timedelta(seconds=self.seconds)

    @property
    def is_intraday(self) -> bool:
        """Return whether bars are shorter than one day."""
        return self.seconds < 86400


class InstrumentKey(BaseModel):
    """An instrument identified as `venue.SYMBOL.timeframe` (e.g. binance.BTC-USDT.1h)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    venue: str
    symbol: str
    timeframe: str

    @classmethod
    def parse(cls, key: str) -> "InstrumentKey":
        """Return the parsed key.

        Raises:
            UnknownInstrumentError: if the key is not `venue.SYMBOL.timeframe`.
        """
        match = _KEY_PATTERN.match(key)
        if match is None:
            raise UnknownInstrumentError(
                f"instrument key '{key}' is not of the form venue.SYMBOL.timeframe; "
                "write it like binance.BTC-USDT.1h or yahoo.SPY.1d"
            )
        Timeframe.parse(match.group(3))
        return cls(venue=match.group(1), symbol=match.group(2), timeframe=match.group(3))

    @property
    def key(self) -> str:
        """Return the canonical string form."""
        return f"{self.venue}.{self.symbol}.{self.timeframe}"

    @property
    def bar(self) -> Timeframe:
        """Return the bar timeframe."""
        return Timeframe.parse(self.timeframe)

    def __str__(self) -> str:
        return self.key


class InstrumentConfig(BaseModel):
    """A registered instrument: its key, where its bars come from and how to read them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str
    source: SourceKind = SourceKind.SAMPLE
    asset_class: AssetClass = AssetClass.CRYPTO
    whole_units: bool = Field(default=False, description="Trade whole units only (equities).")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="Source options: csv path, column mapping (col_<canonical>=<name>), timezone, "
        "ccxt exchange id, yfinance adjustment.",
    )

    @field_validator("key")
    @classmethod
    def _key_is_well_formed(cls, key: str) -> str:
        try:
            InstrumentKey.parse(key)
        except UnknownInstrumentError as e:
            raise ValueError(str(e)) from e
        return key

    @property
    def instrument(self) -> InstrumentKey:
        """Return the parsed key."""
        return InstrumentKey.parse(self.key)


class PartitionVersion(BaseModel):
    """The manifest row of one stored bars partition (instrument x month)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    instrument: str
    month: str = Field(description="First day of the month, YYYY-MM-DD.")
    rows: int
    first_ts: datetime | None
    last_ts: datetime | None
    content_hash: str
    source: str
    fetched_at: datetime
