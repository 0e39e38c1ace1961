"""The strategy space a goal may explore: its templates, families and module structures.

A structure is the part of a spec the structure dimension swaps: its filter set, execution
and risk module. Attempts record their modules as a `describe_modules` line, which
`structure_of` reads back.
"""

from collections.abc import Iterator, Sequence
from itertools import combinations

from quant_assets.domain.research import ResearchGoal, ResearchState
from quant_assets.strategy.catalog.loader import Catalog, CatalogEntry, StrategyFamily
from quant_assets.strategy.risks.annualization import asset_class_of

Structure = tuple[frozenset[str], str, str]
"""A filter set, an execution module and a risk module."""


def goal_families(goal: ResearchGoal) -> tuple[str, ...]:
    """Return the goal's families (every catalog family when the goal names none)."""
    return goal.families or tuple(f.value for f in StrategyFamily)


def goal_templates(goal: ResearchGoal, catalog: Catalog) -> tuple[CatalogEntry, ...]:
    """Return the entries meant for the goal's timeframe and asset classes, in catalog order."""
    classes = {asset_class_of(key) for key in goal.data.instruments}
    return tuple(
        entry
        for entry in catalog.entries
        if goal.data.timeframe in entry.timeframes and classes <= set(entry.asset_classes)
    )


def untried_templates(
    state: ResearchState, catalog: Catalog, families: Sequence[str]
) -> list[CatalogEntry]:
    """Return the goal's templates of some families that no attempt used, family by family."""
    tried = {a.template for a in state.attempts}
    fitting = goal_templates(state.goal, catalog)
    return [
        entry
        for family in dict.fromkeys(families)
        for entry in fitting
        if entry.family == family and entry.name not in tried
    ]


def untried_families(state: ResearchState, catalog: Catalog) -> list[str]:
    """Return the families (catalog order) with templates for the goal and no attempt yet."""
    tried = {a.family for a in state.attempts}
    fitting = {entry.family.value for entry in goal_templates(state.goal, catalog)}
    return [f.value for f in StrategyFamily if f.value in fitting and f.value not in tried]


def structures(entry: CatalogEntry) -> Iterator[Structure]:
    """Yield every structure a template allows: filter sets by size, then executions, risks."""
    required = frozenset(m.module for m in entry.filters if m.required)
    optional = [m.module for m in entry.filters if not m.required]
    for size in range(len(optional) + 1):
        for chosen in combinations(optional, size):
            for execution in entry.executions:
                for risk in entry.risks:
                    yield required | frozenset(chosen), execution.module, risk.module


def structure_of(modules: str) -> Structure | None:
    """Return the structure of a `describe_modules` line, or None if it is not one."""
    parts = modules.split(" / ")
    if len(parts) != 3:
        return None
    head, execution, risk = parts
    filters: frozenset[str] = frozenset()
    if " + [" in head and head.endswith("]"):
        filters = frozenset(name for name in head.split(" + [", 1)[1][:-1].split(", ") if name)
    return filters, execution, risk


def untried_structures(state: ResearchState, catalog: Catalog) -> list[Structure]:
    """Return the best template's structures that no attempt of that template used."""
    if state.best is None or state.best.template not in catalog.names():
        return []
    template = state.best.template
    tried = {structure_of(a.modules) for a in state.attempts if a.template == template}
    return [s for s in structures(catalog.entry(template)) if s not in tried]
