"""Build the source an instrument's registration asks for."""

from dataclasses import dataclass, field
from pathlib import Path

from quant_assets.domain.errors import ConfigurationError
from quant_assets.domain.market import InstrumentConfig, SourceKind
from quant_assets.market.sources.base import MarketSource
from quant_assets.market.sources.csv_source import CANONICAL_COLUMNS, CsvSource
from quant_assets.market.sources.sample import SampleSource


@dataclass(frozen=True)
class SourceSettings:
    """Where sources find their inputs; built by the Dagster resource or the CLI."""

    sample_dir: Path
    project_dir: Path
    ccxt_api_base_urls: dict[str, str] = field(default_factory=dict)


def build_source(config: InstrumentConfig, settings: SourceSettings) -> MarketSource:
    """Return the source for one registered instrument.

    Raises:
        ConfigurationError: if the registration lacks an option its source needs.
    """
    options = config.options
    instrument = config.instrument
    if config.source is SourceKind.SAMPLE:
        return SampleSource(settings.sample_dir)
    if config.source is SourceKind.CSV:
        if "path" not in options:
            raise ConfigurationError(
                f"instrument {config.key} uses source csv but has no 'path' option; register it "
                f"with `quant-assets instruments add {config.key} --source csv --path FILE.csv`"
            )
        path = Path(options["path"])
        columns = {c: options[f"col_{c}"] for c in CANONICAL_COLUMNS if f"col_{c}" in options}
        return CsvSource(
            path if path.is_absolute() else settings.project_dir / path,
            columns=columns,
            timezone=options.get("timezone", "UTC"),
            ts_format=options.get("ts_format"),
            epoch_unit=options.get("epoch_unit", "ms"),
        )
    if config.source is SourceKind.CCXT:
        from quant_assets.market.sources.ccxt_source import CcxtSource

        exchange_id = options.get("exchange", instrument.venue)
        return CcxtSource(
            exchange_id=exchange_id, api_base_url=settings.ccxt_api_base_urls.get(exchange_id)
        )
    from quant_assets.market.sources.yfinance_source import YFinanceSource

    return YFinanceSource(adjusted=options.get("adjusted", "true").lower() == "true")
