"""Specs for a research goal: a catalog template on the goal's data, costs and windows.

Both proposers build specs here, so every proposal trades the goal's slice with the goal's costs
and walk-forward windows, carries its lineage, and lies inside the catalog.
"""

from collections.abc import Mapping, Sequence
from typing import Final

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.research import HYPOTHESIS_CHARS, ResearchGoal
from quant_assets.domain.strategy import (
    Lineage,
    ModuleRef,
    ParamRange,
    ParamValue,
    StrategySpec,
    WalkForwardConfig,
)
from quant_assets.strategy.catalog.loader import Catalog
from quant_assets.strategy.validation import default_walk_forward, spec_from_entry, validate_spec

_NAME_CHARS: Final = 120


def goal_walk_forward(goal: ResearchGoal) -> WalkForwardConfig:
    """Return the windows and trials every spec of the goal uses."""
    return goal.walk_forward or default_walk_forward(goal.data.timeframe)


def goal_spec(
    goal: ResearchGoal,
    catalog: Catalog,
    template: str,
    *,
    filters: Sequence[str] | None = None,
    execution: str | None = None,
    risk: str | None = None,
    params: Mapping[str, ParamValue] | None = None,
    search_space: Mapping[str, ParamRange] | None = None,
    hypothesis: str | None = None,
    parent: StrategySpec | None = None,
    created_by: str = "policy",
    seed: int | None = None,
) -> StrategySpec:
    """Return a validated spec of a catalog template on the goal's data, costs and windows.

    Args:
        goal: The research goal (data slice, costs, walk-forward windows).
        catalog: The template catalog.
        template: The catalog entry to instantiate.
        filters: Filter module names (None: the template's required filters).
        execution: Execution module name (None: the template's first).
        risk: Risk module name (None: the template's first).
        params: Fixed parameter values by path (`baseline.<p>`, `execution.<p>`, `risk.<p>`,
            `filters.<module>.<p>`), overriding the template's defaults.
        search_space: The ranges to search by path (None: the template's full bounds).
        hypothesis: The spec's hypothesis text (None: the template's).
        parent: The spec this one derives from (sets lineage parent and generation).
        created_by: Lineage author (`policy` or `anthropic:<model>`).
        seed: The walk-forward seed (None: the goal's).

    Raises:
        SpecValidationError: if a module, parameter or range falls outside the catalog, naming
            each field path and the fix.
    """
    entry = catalog.entry(template)
    walk_forward = goal_walk_forward(goal)
    if seed is not None:
        walk_forward = walk_forward.model_copy(update={"seed": seed})
    spec = spec_from_entry(
        entry,
        goal.data,
        filters=filters,
        execution=execution,
        risk=risk,
        cost=goal.cost,
        walk_forward=walk_forward,
        created_by=created_by,
    )
    update: dict[str, object] = {
        "name": f"{template} for {goal.name}"[:_NAME_CHARS],
        "lineage": Lineage(
            parent_id=parent.spec_id if parent is not None else None,
            generation=parent.lineage.generation + 1 if parent is not None else 0,
            created_by=created_by,
        ),
    }
    if hypothesis is not None:
        update["hypothesis"] = hypothesis[:HYPOTHESIS_CHARS]
    if search_space is not None:
        update["search_space"] = dict(search_space)
    spec = spec.model_copy(update=update)
    if params:
        spec = with_params(spec, params)
    # model_copy skips validation: round-trip through the model, then check the catalog.
    spec = StrategySpec.model_validate(spec.model_dump())
    return validate_spec(spec, catalog)


def with_params(spec: StrategySpec, params: Mapping[str, ParamValue]) -> StrategySpec:
    """Return the spec with fixed parameter values set by path.

    Raises:
        SpecValidationError: if a path names no module of the spec.
    """
    baseline = dict(spec.baseline.params)
    execution = dict(spec.execution.params)
    risk = dict(spec.risk.params)
    filters = {ref.module: dict(ref.params) for ref in spec.filters}
    for path, value in params.items():
        role, _, rest = path.partition(".")
        if role == "baseline" and rest:
            baseline[rest] = value
        elif role == "execution" and rest:
            execution[rest] = value
        elif role == "risk" and rest:
            risk[rest] = value
        elif role == "filters" and rest.count(".") == 1 and rest.split(".")[0] in filters:
            module, param = rest.split(".")
            filters[module][param] = value
        else:
            raise SpecValidationError(
                f"parameter path '{path}' names no module of spec '{spec.name}'; use "
                "baseline.<param>, execution.<param>, risk.<param> or filters.<module>.<param> "
                "of a filter the spec uses"
            )
    return spec.model_copy(
        update={
            "baseline": ModuleRef(module=spec.baseline.module, params=baseline),
            "execution": ModuleRef(module=spec.execution.module, params=execution),
            "risk": ModuleRef(module=spec.risk.module, params=risk),
            "filters": tuple(ModuleRef(module=m, params=p) for m, p in filters.items()),
        }
    )


def describe_modules(spec: StrategySpec) -> str:
    """Return a spec's modules in one line: `baseline + [filters] / execution / risk`."""
    filters = f" + [{', '.join(ref.module for ref in spec.filters)}]" if spec.filters else ""
    return f"{spec.baseline.module}{filters} / {spec.execution.module} / {spec.risk.module}"
