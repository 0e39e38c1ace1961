"""The template catalog: documented strategy families that bound the strategy space.

Each `*.yaml` file in this package is one `CatalogEntry`: a family's hypothesis, the baseline that
expresses it, the filter, execution and risk modules it allows with their parameter bounds, the
timeframes and asset classes it is meant for, how it fails, and where it was published. A spec
whose template, modules or parameters fall outside its entry is rejected
(`quant_assets.strategy.validation.validate_spec`).
"""

import math
from enum import StrEnum
from importlib import resources
from importlib.abc import Traversable
from itertools import product
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quant_assets.domain.errors import (
    ConfigurationError,
    SpecValidationError,
    UnknownInstrumentError,
)
from quant_assets.domain.ids import content_id
from quant_assets.domain.market import AssetClass, Timeframe
from quant_assets.domain.strategy import ModuleRole, ParamValue, StrategySpec
from quant_assets.strategy.modules import ParamDef, StrategyModule
from quant_assets.strategy.registry import module_class
from quant_assets.strategy.spec_io import describe_validation_error

CATALOG_PACKAGE: Final = "quant_assets.strategy.catalog"
NUMERIC_KINDS: Final = frozenset({"int", "float"})
# Corners of a module's bounds checked on load: 2**4 = 16 for the largest module.
_MAX_CORNER_PARAMS: Final = 6


class StrategyFamily(StrEnum):
    """The kind of market behaviour a template bets on."""

    TREND = "trend"
    BREAKOUT = "breakout"
    MEAN_REVERSION = "mean_reversion"
    MOMENTUM = "momentum"
    VOLATILITY = "volatility"
    CARRY_SEASONALITY = "carry_seasonality"


class Reference(BaseModel):
    """The public source (paper or book) a template is drawn from."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    author: str = Field(min_length=1)
    title: str = Field(min_length=1)
    year: int = Field(ge=1900, le=2100)
    venue: str = Field(min_length=1, description="Journal, magazine or publisher.")


class ModuleBounds(BaseModel):
    """A module a template allows, with the catalog's bounds on its parameters.

    Numeric parameters without an entry in `bounds` keep the module's own bounds; choice
    parameters without an entry in `choices` keep all the module's choices.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    module: str = Field(min_length=1)
    bounds: dict[str, tuple[float, float]] = Field(default_factory=dict)
    choices: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    required: bool = Field(
        default=False, description="Filters only: every spec of the template must use it."
    )

    @field_validator("bounds")
    @classmethod
    def _ordered_finite(cls, bounds: dict[str, tuple[float, float]]) -> dict[str, Any]:
        for param, (low, high) in bounds.items():
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(
                    f"bounds of '{param}' were [{low}, {high}]; write two finite numbers, low first"
                )
        return bounds

    def numeric_range(self, param: str, definition: ParamDef) -> tuple[float, float]:
        """Return the inclusive range the template allows for a numeric parameter."""
        if param in self.bounds:
            return self.bounds[param]
        low = definition.low if definition.low is not None else -math.inf
        high = definition.high if definition.high is not None else math.inf
        return (low, high)

    def allowed_choices(self, param: str, definition: ParamDef) -> tuple[str, ...]:
        """Return the choices the template allows for a choice parameter."""
        return self.choices.get(param, definition.choices)


class CatalogEntry(BaseModel):
    """One documented strategy family: hypothesis, modules and bounds, scope, failures, source."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=80)
    family: StrategyFamily
    hypothesis: str = Field(min_length=20, max_length=2000)
    baseline: ModuleBounds
    filters: tuple[ModuleBounds, ...] = ()
    executions: tuple[ModuleBounds, ...] = Field(min_length=1)
    risks: tuple[ModuleBounds, ...] = Field(min_length=1)
    timeframes: tuple[str, ...] = Field(min_length=1)
    asset_classes: tuple[AssetClass, ...] = Field(min_length=1)
    failure_modes: tuple[str, ...] = Field(min_length=1)
    reference: Reference

    @field_validator("timeframes")
    @classmethod
    def _timeframes_parse(cls, timeframes: tuple[str, ...]) -> tuple[str, ...]:
        for label in timeframes:
            try:
                Timeframe.parse(label)
            except UnknownInstrumentError as e:
                raise ValueError(str(e)) from e
        return timeframes

    def allowed(self, role: ModuleRole) -> tuple[ModuleBounds, ...]:
        """Return the modules this template allows in a role (the baseline is one module)."""
        match role:
            case ModuleRole.BASELINE:
                return (self.baseline,)
            case ModuleRole.FILTER:
                return self.filters
            case ModuleRole.EXECUTION:
                return self.executions
            case ModuleRole.RISK:
                return self.risks

    def allowance(self, role: ModuleRole, module: str) -> ModuleBounds | None:
        """Return the template's bounds for a module in a role, or None if it is not allowed."""
        return next((m for m in self.allowed(role) if m.module == module), None)


class Catalog(BaseModel):
    """All catalog entries, in name order; the bounded strategy space."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    entries: tuple[CatalogEntry, ...]

    @property
    def catalog_id(self) -> str:
        """Return the content hash of the whole catalog (provenance for research records)."""
        return content_id(self)

    def names(self) -> tuple[str, ...]:
        """Return the template names in sorted order."""
        return tuple(entry.name for entry in self.entries)

    def entry(self, name: str) -> CatalogEntry:
        """Return the entry called `name`.

        Raises:
            SpecValidationError: if there is no such template, listing the ones there are.
        """
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise SpecValidationError(
            f"template '{name}' is not in the catalog; use one of {list(self.names())}"
        )

    def by_family(self, family: StrategyFamily) -> tuple[CatalogEntry, ...]:
        """Return the entries of one family."""
        return tuple(entry for entry in self.entries if entry.family == family)

    def json_schema(self) -> dict[str, Any]:
        """Return JSON schemas for tool use: catalog entries, and specs limited to its templates."""
        spec_schema = StrategySpec.model_json_schema()
        spec_schema["properties"]["template"]["enum"] = list(self.names())
        return {
            "templates": list(self.names()),
            "catalog_entry": CatalogEntry.model_json_schema(),
            "strategy_spec": spec_schema,
        }


def load_catalog(path: Path | None = None) -> Catalog:
    """Return the catalog read from the `*.yaml` files of a directory (default: this package).

    Every entry is checked on load: it parses, its name equals its file stem, its modules are
    registered in their roles, its bounds lie inside the modules' bounds, every numeric baseline
    parameter has a range, and every module can be built at every corner of its bounds.

    Raises:
        ConfigurationError: naming the file, the field path, the value, the rule and the fix.
    """
    root: Traversable = path if path is not None else resources.files(CATALOG_PACKAGE)
    if not root.is_dir():
        raise ConfigurationError(f"catalog directory {root} does not exist; point at a directory")
    files = sorted((f for f in root.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    if not files:
        raise ConfigurationError(f"catalog directory {root} has no *.yaml entries; add some")
    entries = tuple(_read_entry(file) for file in files)
    return Catalog(entries=entries)


def default_params(role: ModuleRole, allowance: ModuleBounds) -> dict[str, ParamValue]:
    """Return the values a template instantiates a module with.

    A parameter takes the module default when the template allows it, else the middle of the
    template's range (rounded for whole-bar parameters), or the first allowed choice.
    """
    values: dict[str, ParamValue] = {}
    for param, definition in module_class(role, allowance.module).params.items():
        if definition.kind in NUMERIC_KINDS:
            low, high = allowance.numeric_range(param, definition)
            default = definition.default
            inside = isinstance(default, int | float) and low <= default <= high
            middle = (low + high) / 2
            chosen = default if inside else (round(middle) if definition.kind == "int" else middle)
            values[param] = int(chosen) if definition.kind == "int" else float(chosen)
        elif definition.kind == "choice":
            allowed = allowance.allowed_choices(param, definition)
            values[param] = definition.default if definition.default in allowed else allowed[0]
        else:
            values[param] = definition.default
    return values


def check_entry(entry: CatalogEntry) -> None:
    """Check an entry against the module registry.

    Raises:
        SpecValidationError: naming the field path, the value, the rule and the fix.
    """
    for role in ModuleRole:
        listed = [allowance.module for allowance in entry.allowed(role)]
        duplicates = sorted({name for name in listed if listed.count(name) > 1})
        if duplicates:
            raise SpecValidationError(
                f"{_role_field(role)} lists {duplicates} more than once; keep one entry each"
            )
        for position, allowance in enumerate(entry.allowed(role)):
            where = (
                "baseline" if role == ModuleRole.BASELINE else f"{_role_field(role)}[{position}]"
            )
            _check_allowance(role, allowance, where)
            if allowance.required and role != ModuleRole.FILTER:
                raise SpecValidationError(
                    f"{where}.required was true: only filters can be required; remove it"
                )
    _check_baseline_complete(entry.baseline)
    for role in ModuleRole:
        for allowance in entry.allowed(role):
            _check_corners(role, allowance)


def _read_entry(file: Traversable) -> CatalogEntry:
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigurationError(f"catalog file {file.name} is not valid YAML ({e})") from e
    try:
        entry = CatalogEntry.model_validate(document)
    except ValidationError as e:
        problems = "\n- ".join(describe_validation_error(e))
        raise ConfigurationError(f"catalog file {file.name} is malformed:\n- {problems}") from e
    stem = file.name.removesuffix(".yaml")
    if entry.name != stem:
        raise ConfigurationError(
            f"catalog file {file.name}: name was '{entry.name}', not the file stem '{stem}'; "
            "rename the file or the entry so that they agree"
        )
    try:
        check_entry(entry)
    except SpecValidationError as e:
        raise ConfigurationError(f"catalog file {file.name}: {e}") from e
    return entry


def _check_allowance(role: ModuleRole, allowance: ModuleBounds, where: str) -> None:
    try:
        module = module_class(role, allowance.module)
    except SpecValidationError as e:
        raise SpecValidationError(f"{where}.module was '{allowance.module}': {e}") from e
    for param, (low, high) in allowance.bounds.items():
        path = f"{where}.bounds['{param}']"
        definition = _param_definition(module, param, path)
        if definition.kind not in NUMERIC_KINDS:
            raise SpecValidationError(
                f"{path}: '{param}' is a {definition.kind} parameter, not a number; "
                "list its allowed values under `choices` instead"
            )
        if definition.kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
            raise SpecValidationError(
                f"{path} was [{low}, {high}]: '{param}' counts whole bars; use whole numbers"
            )
        module_low = definition.low if definition.low is not None else -math.inf
        module_high = definition.high if definition.high is not None else math.inf
        if low < module_low or high > module_high:
            raise SpecValidationError(
                f"{path} was [{low}, {high}], outside the module bounds [{module_low}, "
                f"{module_high}] of {role.value} '{allowance.module}'; narrow it to lie inside"
            )
    for param, choices in allowance.choices.items():
        path = f"{where}.choices['{param}']"
        definition = _param_definition(module, param, path)
        unknown = sorted(set(choices) - set(definition.choices))
        if definition.kind != "choice" or unknown or not choices:
            raise SpecValidationError(
                f"{path} was {list(choices)}: it must be a non-empty subset of the module's "
                f"choices {list(definition.choices)}; list only those"
            )


def _param_definition(module: type[StrategyModule], param: str, path: str) -> ParamDef:
    if param not in module.params:
        raise SpecValidationError(
            f"{path}: {module.role.value} '{module.name}' has no parameter '{param}'; "
            f"its parameters are {sorted(module.params)}"
        )
    return module.params[param]


def _check_baseline_complete(allowance: ModuleBounds) -> None:
    # The baseline expresses the hypothesis: every numeric parameter gets a documented range.
    params = module_class(ModuleRole.BASELINE, allowance.module).params
    numeric = {name for name, definition in params.items() if definition.kind in NUMERIC_KINDS}
    missing = sorted(numeric - set(allowance.bounds))
    if missing:
        raise SpecValidationError(
            f"baseline.bounds has no range for {missing} of baseline '{allowance.module}'; "
            "give every numeric baseline parameter a [low, high] range"
        )


def _check_corners(role: ModuleRole, allowance: ModuleBounds) -> None:
    # Cross-parameter rules (fast < slow, start < end) must hold everywhere a search may go.
    module = module_class(role, allowance.module)
    names = sorted(allowance.bounds)[:_MAX_CORNER_PARAMS]
    for corner in product(*(allowance.bounds[name] for name in names)):
        values = default_params(role, allowance)
        for name, value in zip(names, corner, strict=True):
            values[name] = int(value) if module.params[name].kind == "int" else float(value)
        try:
            module(**values)
        except SpecValidationError as e:
            raise SpecValidationError(
                f"the bounds of {role.value} '{allowance.module}' admit {values}, which the "
                f"module rejects ({e}); separate the ranges so that every combination is valid"
            ) from e


def _role_field(role: ModuleRole) -> str:
    return {
        ModuleRole.BASELINE: "baseline",
        ModuleRole.FILTER: "filters",
        ModuleRole.EXECUTION: "executions",
        ModuleRole.RISK: "risks",
    }[role]
