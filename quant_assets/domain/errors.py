"""One error hierarchy for the whole package.

Every message names the thing, the value, the rule and the fix (STYLE.md section 6).
"""


class QuantAssetsError(Exception):
    """Base class of every error quant_assets raises on purpose."""


class ConfigurationError(QuantAssetsError):
    """A configuration file or setting is malformed or inconsistent."""


class UnknownInstrumentError(QuantAssetsError):
    """An instrument key is malformed or not registered."""


class SourceError(QuantAssetsError):
    """A market data source failed permanently or returned unusable data."""


class DataQualityError(QuantAssetsError):
    """Bars violate the canonical OHLCV schema or its integrity rules."""


class SpecValidationError(QuantAssetsError):
    """A strategy spec is malformed or outside the catalog's bounds."""


class BacktestInputError(QuantAssetsError):
    """Inputs to the backtest engine are inconsistent (lengths, dtypes, ranges)."""


class LifecycleError(QuantAssetsError):
    """An archive record was asked to move between states along a path the lifecycle forbids."""


class ApprovalError(LifecycleError):
    """A person's decision on an archive record was refused (name, state, audits or data)."""


class HoldoutSealedError(QuantAssetsError):
    """Bars of a goal's sealed holdout were requested outside the one freeze-time evaluation."""


class ArchiveError(QuantAssetsError):
    """The archive store was asked for something it does not hold or does not allow."""


class AppendOnlyError(ArchiveError):
    """An archive record or transition row would be changed or removed (the trail only grows)."""


class TrailIntegrityError(ArchiveError):
    """A stored archive row no longer matches its hash chain: it was changed or removed."""
