"""Conformance of a spec to its catalog entry: modules, parameter values and search ranges.

The template bounds the strategy space (DESIGN.md): a spec must use the entry's baseline, only
filters, executions and risks the entry allows (and every filter it requires), parameter values
inside the entry's bounds, and search ranges over numeric parameters inside those bounds. Each
function returns problems as sentences naming the field path, the value, the rule and the fix.
"""

import math
from collections.abc import Mapping
from typing import Final

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import ModuleRef, ModuleRole, ParamRange, StrategySpec
from quant_assets.strategy.catalog.loader import NUMERIC_KINDS, CatalogEntry, ModuleBounds
from quant_assets.strategy.modules import StrategyModule, resolve_params
from quant_assets.strategy.registry import module_class

_UNIT_SECONDS: Final = {"m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
SEARCH_PATH_FORMS: Final = (
    "baseline.<param>, execution.<param>, risk.<param> or filters.<module>.<param>"
)


def template_problems(
    spec: StrategySpec, entry: CatalogEntry, asset_classes: Mapping[str, str] | None = None
) -> list[str]:
    """Return every way the spec departs from its catalog entry (empty when it conforms).

    Args:
        spec: The spec to check.
        entry: The catalog entry named by `spec.template`.
        asset_classes: Per instrument key, its asset class; None skips that check.
    """
    return [
        *_module_problems(spec, entry),
        *_search_space_problems(spec, entry),
        *_scope_problems(spec, entry, asset_classes),
        *_higher_timeframe_problems(spec),
    ]


def _module_problems(spec: StrategySpec, entry: CatalogEntry) -> list[str]:
    problems: list[str] = []
    if spec.baseline.module != entry.baseline.module:
        problems.append(
            f"baseline.module was '{spec.baseline.module}', but template '{entry.name}' is "
            f"expressed by baseline '{entry.baseline.module}'; use it or pick a template "
            f"whose baseline is '{spec.baseline.module}'"
        )
    else:
        problems += _ref_problems("baseline", ModuleRole.BASELINE, spec.baseline, entry)
    seen: dict[str, int] = {}
    for position, ref in enumerate(spec.filters):
        if ref.module in seen:
            problems.append(
                f"filters[{position}].module was '{ref.module}', already used at "
                f"filters[{seen[ref.module]}]; keep one (merge their parameters)"
            )
            continue
        seen[ref.module] = position
        problems += _ref_problems(f"filters[{position}]", ModuleRole.FILTER, ref, entry)
    for allowance in entry.filters:
        if allowance.required and allowance.module not in seen:
            problems.append(
                f"filters lacks '{allowance.module}', which template '{entry.name}' requires; "
                f"add `- module: {allowance.module}`"
            )
    problems += _ref_problems("execution", ModuleRole.EXECUTION, spec.execution, entry)
    problems += _ref_problems("risk", ModuleRole.RISK, spec.risk, entry)
    return problems


def _ref_problems(path: str, role: ModuleRole, ref: ModuleRef, entry: CatalogEntry) -> list[str]:
    try:
        module = module_class(role, ref.module)
    except SpecValidationError as e:
        return [f"{path}.module was '{ref.module}': {e}"]
    allowance = entry.allowance(role, ref.module)
    if allowance is None:
        allowed = [m.module for m in entry.allowed(role)]
        return [
            f"{path}.module was '{ref.module}', which template '{entry.name}' does not allow "
            f"as {role.value}; use one of {allowed}"
        ]
    try:
        values = resolve_params(module, ref.params)
    except SpecValidationError as e:
        return [f"{path}.params: {e}"]
    problems: list[str] = []
    for param, value in values.items():
        definition = module.params[param]
        where = f"{path}.params['{param}'] was {value!r}"
        if param not in ref.params:
            where += " (the module default)"
        if definition.kind in NUMERIC_KINDS and isinstance(value, int | float):
            low, high = allowance.numeric_range(param, definition)
            if not low <= value <= high:
                problems.append(
                    f"{where}, outside the bounds [{low:g}, {high:g}] that template "
                    f"'{entry.name}' allows for {role.value} '{ref.module}'; set it inside them"
                )
        elif definition.kind == "choice":
            choices = allowance.allowed_choices(param, definition)
            if value not in choices:
                problems.append(
                    f"{where}, not one of {list(choices)} that template '{entry.name}' allows; "
                    "pick one of them"
                )
    return problems


def _search_space_problems(spec: StrategySpec, entry: CatalogEntry) -> list[str]:
    problems: list[str] = []
    for key, space in spec.search_space.items():
        where = f"search_space['{key}']"
        target = _search_target(spec, entry, key)
        if isinstance(target, str):
            problems.append(f"{where}: {target}")
            continue
        module, allowance, param = target
        problems += _range_problems(where, space, module, allowance, param, entry.name)
    return problems


def _search_target(
    spec: StrategySpec, entry: CatalogEntry, key: str
) -> tuple[type[StrategyModule], ModuleBounds, str] | str:
    # Returns (module class, template bounds, parameter), or why the key names none.
    parts = key.split(".")
    ref: ModuleRef | None = None
    role: ModuleRole | None = None
    if len(parts) == 2 and parts[0] in ("baseline", "execution", "risk"):
        role = ModuleRole(parts[0])
        ref = {"baseline": spec.baseline, "execution": spec.execution, "risk": spec.risk}[parts[0]]
    elif len(parts) == 3 and parts[0] == "filters":
        role = ModuleRole.FILTER
        ref = next((f for f in spec.filters if f.module == parts[1]), None)
        if ref is None:
            return f"the spec has no filter '{parts[1]}'; add it to filters or remove this key"
    if ref is None or role is None or not all(parts):
        return f"'{key}' is not a parameter path; write {SEARCH_PATH_FORMS}"
    param = parts[-1]
    try:
        module = module_class(role, ref.module)
    except SpecValidationError:
        return f"names unregistered {role.value} '{ref.module}'; fix the module first"
    allowance = entry.allowance(role, ref.module)
    if allowance is None:
        return (
            f"{role.value} '{ref.module}' is not allowed by template '{entry.name}'; fix the "
            "module first (or remove this key)"
        )
    definition = module.params.get(param)
    if definition is None:
        return (
            f"{role.value} '{ref.module}' has no parameter '{param}'; its parameters are "
            f"{sorted(module.params)}"
        )
    if definition.kind not in NUMERIC_KINDS:
        return (
            f"'{param}' is a {definition.kind} parameter; only int and float parameters can be "
            "searched: set it in params instead"
        )
    return module, allowance, param


def _range_problems(
    where: str,
    space: ParamRange,
    module: type[StrategyModule],
    allowance: ModuleBounds,
    param: str,
    template: str,
) -> list[str]:
    definition = module.params[param]
    low, high = allowance.numeric_range(param, definition)
    owner = f"{module.role.value} '{module.name}' in template '{template}'"
    problems: list[str] = []
    if space.kind != definition.kind:
        problems.append(
            f"{where}.kind was '{space.kind}', but '{param}' is a {definition.kind} parameter; "
            f"write kind: {definition.kind}"
        )
    for side, value in (("low", space.low), ("high", space.high)):
        if not math.isfinite(value):
            problems.append(
                f"{where}.{side} was {value}: unbounded search space; write a finite {side} "
                f"inside [{low:g}, {high:g}] ({owner})"
            )
        elif not low <= value <= high:
            problems.append(
                f"{where}.{side} was {value:g}, outside the catalog bounds [{low:g}, {high:g}] "
                f"of {owner}: unbounded search space; keep the range inside those bounds"
            )
        elif definition.kind == "int" and not float(value).is_integer():
            problems.append(f"{where}.{side} was {value:g}: '{param}' counts bars; round it")
    if space.log and space.low <= 0:
        problems.append(
            f"{where}.log was true with low {space.low:g}: a log scale needs low > 0; "
            "set log: false or raise low"
        )
    return problems


def _scope_problems(
    spec: StrategySpec, entry: CatalogEntry, asset_classes: Mapping[str, str] | None
) -> list[str]:
    problems: list[str] = []
    if spec.data.timeframe not in entry.timeframes:
        problems.append(
            f"data.timeframe was '{spec.data.timeframe}', not one of the timeframes "
            f"{list(entry.timeframes)} of template '{entry.name}'; use one of them or pick a "
            f"template meant for {spec.data.timeframe} bars"
        )
    allowed = [c.value for c in entry.asset_classes]
    for position, key in enumerate(spec.data.instruments):
        asset_class = None if asset_classes is None else asset_classes.get(key)
        if asset_class is not None and asset_class not in allowed:
            problems.append(
                f"data.instruments[{position}] was '{key}' (asset class {asset_class}), but "
                f"template '{entry.name}' is meant for {allowed}; trade those or pick another "
                "template"
            )
    return problems


def _higher_timeframe_problems(spec: StrategySpec) -> list[str]:
    # A filter parameter named `timeframe` resamples the bars, so it must be a whole multiple of
    # the spec's bar length (e.g. 4h or 1d on 1h bars, not 4h on 1d bars).
    bar_seconds = _seconds(spec.data.timeframe)
    problems: list[str] = []
    for position, ref in enumerate(spec.filters):
        try:
            values = resolve_params(module_class(ModuleRole.FILTER, ref.module), ref.params)
        except SpecValidationError:
            continue  # reported with the module's other problems
        label = values.get("timeframe")
        if not isinstance(label, str) or bar_seconds is None:
            continue
        seconds = _seconds(label)
        if seconds is not None and (seconds < bar_seconds or seconds % bar_seconds):
            problems.append(
                f"filters[{position}].params['timeframe'] was '{label}', not a whole multiple of "
                f"data.timeframe '{spec.data.timeframe}'; choose a longer timeframe"
            )
    return problems


def _seconds(label: str) -> int | None:
    number, unit = label[:-1], label[-1:]
    if not number.isdigit() or unit not in _UNIT_SECONDS:
        return None
    return int(number) * _UNIT_SECONDS[unit]
