"""The human risk limits of `preferences.yaml`: loaded once, frozen, hashed into every record.

The file at the project root is the only source of `Preferences`: a person changes a limit by
editing it, and research code (proposers, specs, the walk-forward, the audits) receives the loaded
object read-only. The object offers no mutators: attribute assignment and deletion raise, and the
two pydantic shortcuts that would yield a changed copy without the file (`model_copy(update=...)`
and the unvalidated `model_construct`) raise too. Building a different `Preferences` in code is
possible, but its `preferences_hash` then differs from the file's on every record it touches.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quant_assets.domain.errors import ConfigurationError
from quant_assets.domain.ids import content_id
from quant_assets.strategy.spec_io import describe_validation_error

PREFERENCES_FILE_NAME: Final = "preferences.yaml"
_READ_ONLY_FIX: Final = (
    "preferences are read-only; a person changes a limit by editing preferences.yaml, and the "
    "new file is loaded with load_preferences"
)


class Preferences(BaseModel):
    """Human risk limits that every strategy must respect (read-only; see the module doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    max_drawdown: float = Field(
        ge=-1.0, lt=0.0, description="Deepest out-of-sample drawdown allowed (negative fraction)."
    )
    min_trades: int = Field(
        ge=1, le=100_000, description="Fewest out-of-sample round-trip trades for metrics to count."
    )
    max_sharpe_gap: float = Field(
        gt=0.0, le=10.0, description="Largest in-sample minus out-of-sample Sharpe ratio."
    )
    min_deflated_sharpe: float = Field(
        ge=0.0, le=1.0, description="Smallest deflated Sharpe probability (a probability)."
    )
    max_position_fraction: float = Field(
        gt=0.0, le=1.0, description="Largest fraction of equity committed to one position."
    )

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Return a copy; refuse updates, which would change limits without the file.

        Raises:
            ConfigurationError: if `update` names any field.
        """
        if update:
            raise ConfigurationError(
                f"preferences: model_copy tried to change {sorted(update)} to "
                f"{dict(update)!r}; {_READ_ONLY_FIX}"
            )
        return super().model_copy(deep=deep)

    @classmethod
    # The pydantic mypy plugin types model_construct with the fields; this keeps the base's.
    def model_construct(  # type: ignore[override]
        cls, _fields_set: set[str] | None = None, **values: Any
    ) -> Self:
        """Refuse to build preferences without validation.

        Raises:
            ConfigurationError: always; validated preferences come from `load_preferences`.
        """
        raise ConfigurationError(
            f"preferences: model_construct would skip validation of {sorted(values)}; "
            f"{_READ_ONLY_FIX}"
        )


def load_preferences(path: Path) -> Preferences:
    """Return the frozen preferences a `preferences.yaml` file holds.

    Args:
        path: The file (normally `preferences.yaml` at the project root).

    Raises:
        ConfigurationError: if the file is missing or not YAML, its top level is not a mapping,
            or a field is missing, unknown, of the wrong type or out of range (every problem is
            named with its field, value, rule and fix).
    """
    if not path.is_file():
        raise ConfigurationError(
            f"preferences file {path} does not exist; create it (the project ships one at "
            f"the project root, {PREFERENCES_FILE_NAME}) or point at the right path"
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigurationError(
            f"preferences file {path} is not valid YAML ({e}); fix the syntax at the position shown"
        ) from e
    if not isinstance(document, dict):
        raise ConfigurationError(
            f"preferences file {path}: top level was {type(document).__name__}, not a mapping of "
            "limits; write `max_drawdown: -0.25`, `min_trades: 20`, ... one per line"
        )
    try:
        return Preferences.model_validate(document)
    except ValidationError as e:
        problems = describe_validation_error(e)
        raise ConfigurationError(
            f"preferences file {path} is malformed ({len(problems)} problem(s)):\n- "
            + "\n- ".join(problems)
        ) from e


def preferences_hash(prefs: Preferences) -> str:
    """Return the content hash of the limits (16 hex digits; comments and layout do not count)."""
    return content_id(prefs)
