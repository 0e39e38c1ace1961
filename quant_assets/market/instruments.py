"""The default instrument list (instruments.yaml) and registration checks."""

from pathlib import Path

import yaml
from pydantic import ValidationError

from quant_assets.domain.errors import ConfigurationError
from quant_assets.domain.market import InstrumentConfig


def load_instrument_file(path: Path) -> list[InstrumentConfig]:
    """Return the instruments listed in a YAML file (`instruments: [{key: ..., ...}]`).

    Raises:
        ConfigurationError: naming the entry and the field when the file is malformed.
    """
    if not path.exists():
        raise ConfigurationError(
            f"instrument list {path} does not exist; create it or point the resource at it"
        )
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = document.get("instruments", []) if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: top level must be a mapping with an 'instruments' list")
    configs: list[InstrumentConfig] = []
    for position, entry in enumerate(entries):
        try:
            config = InstrumentConfig.model_validate(entry)
        except ValidationError as e:
            raise ConfigurationError(f"{path}: instruments[{position}] is invalid: {e}") from e
        configs.append(config)
    keys = [c.key for c in configs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ConfigurationError(f"{path}: instruments listed twice: {duplicates}; keep one entry")
    return configs
