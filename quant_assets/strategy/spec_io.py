"""Strategy specs as YAML: read with field-path errors, write so that a round trip is exact."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import StrategySpec

# Fields whose values are mappings keyed by data (a parameter or search path), not by field name.
_KEYED_FIELDS: Final = frozenset({"search_space", "params", "bounds", "choices"})
# Pydantic adds the tried union member to an error's location; it is not part of the field path.
_UNION_TAGS: Final = frozenset({"int", "float", "bool", "str"})
_FIXES: Final = {
    "missing": "add it",
    "extra_forbidden": "remove it or correct its spelling",
    "timezone_aware": "write the time with a UTC offset, e.g. 2018-01-01T00:00:00Z",
    "too_short": "add at least one item",
    "string_too_short": "write a non-empty value",
    "literal_error": "use one of the listed values",
    "enum": "use one of the listed values",
    "value_error": "",  # the model's own message already names the fix
}
_SHOULD_BE: Final = "Input should be "
_MAX_VALUE_CHARS: Final = 80


def load_spec_yaml(path_or_text: Path | str) -> StrategySpec:
    """Return the spec a YAML document describes (a Path or a one-line `*.yaml` str is a file).

    The spec is only parsed and checked against its model here; catalog bounds, instruments and
    data coverage are checked by `quant_assets.strategy.validation.validate_spec`.

    Raises:
        SpecValidationError: naming the source, each bad field path, its value, the rule and the
            fix (all problems at once), or the line of a YAML syntax error.
    """
    source, text = _read_source(path_or_text)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecValidationError(
            f"{source}: is not valid YAML ({e}); fix the syntax at the position shown"
        ) from e
    if not isinstance(document, dict):
        raise SpecValidationError(
            f"{source}: top level was {type(document).__name__}, not a mapping of spec fields; "
            "start the document with `name:`, `hypothesis:`, `template:` ..."
        )
    try:
        return StrategySpec.model_validate(document)
    except ValidationError as e:
        problems = describe_validation_error(e)
        raise SpecValidationError(
            f"{source}: the spec is malformed ({len(problems)} problem(s)):\n- "
            + "\n- ".join(problems)
        ) from e


def dump_spec_yaml(spec: StrategySpec) -> str:
    """Return the spec as YAML text that `load_spec_yaml` turns back into an equal spec.

    A comment line on top names the spec id; loading ignores it.
    """
    body = yaml.safe_dump(
        spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100
    )
    return f"# spec_id: {spec.spec_id}\n{body}"


def describe_validation_error(error: ValidationError) -> list[str]:
    """Return one line per bad field: its path, value, rule and fix.

    The errors pydantic reports for each member of a union (a parameter value that is neither
    number, bool nor string) are merged into one line.
    """
    rules: dict[str, list[str]] = {}
    details: dict[str, ErrorDetails] = {}
    for detail in error.errors(include_url=False):
        path = field_path(detail["loc"])
        details.setdefault(path, detail)
        rules.setdefault(path, []).append(detail["msg"])
    return [_describe(path, details[path], _joined(rules[path])) for path in details]


def field_path(location: Sequence[int | str]) -> str:
    """Return a readable field path such as `search_space['baseline.lookback_bars'].high`."""
    parts: list[str] = []
    previous: int | str | None = None
    for position, part in enumerate(location):
        is_last = position == len(location) - 1
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif previous in _KEYED_FIELDS:
            parts.append(f"[{part!r}]")
        elif is_last and part in _UNION_TAGS and previous is not None and len(parts) > 1:
            break
        else:
            parts.append(part if not parts else f".{part}")
        previous = part
    return "".join(parts) or "<document>"


def _describe(path: str, detail: ErrorDetails, rule: str) -> str:
    kind = detail["type"]
    if kind == "missing":
        return f"{path} is missing: it is required; add it"
    value = _short(detail["input"])
    if kind in _FIXES:
        fix = _FIXES[kind]
    elif kind.endswith(("_type", "_parsing")):
        fix = "write a value of that type"
    else:
        fix = "change it to satisfy the rule"
    rule = rule.removeprefix("Value error, ")
    return f"{path} was {value}: {rule}; {fix}" if fix else f"{path} was {value}: {rule}"


def _joined(rules: list[str]) -> str:
    # "Input should be a valid number" x4 (one per union member) -> one sentence.
    if len(rules) > 1 and all(rule.startswith(_SHOULD_BE) for rule in rules):
        options = [rule.removeprefix(_SHOULD_BE) for rule in rules]
        return f"{_SHOULD_BE}{', '.join(options[:-1])} or {options[-1]}"
    return "; ".join(rules)


def _short(value: Any) -> str:
    text = repr(dict(value)) if isinstance(value, Mapping) else repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else f"{text[: _MAX_VALUE_CHARS - 3]}..."


def _read_source(path_or_text: Path | str) -> tuple[str, str]:
    is_file_name = (
        isinstance(path_or_text, str)
        and "\n" not in path_or_text
        and path_or_text.strip().endswith((".yaml", ".yml"))
    )
    if isinstance(path_or_text, Path) or is_file_name:
        path = Path(path_or_text)
        if not path.is_file():
            raise SpecValidationError(
                f"spec file {path} does not exist; check the path (specs live in specs/*.yaml)"
            )
        return str(path), path.read_text(encoding="utf-8")
    return "spec YAML", path_or_text
