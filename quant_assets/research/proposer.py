"""Proposers: the one interface both share, and the deterministic policy proposer (the default).

`PolicyProposer` turns the state's dimension into specs (the rules are research/policy.py's):
- parameter: the best spec with every search range narrowed around the best region to
  `narrow_fraction` of its width (half that for the next proposal, and so on), fixed values
  set to the best values; an int range that collapses to one value is fixed instead;
- structure: the best template with an untried filter / execution / risk choice, single swaps
  first (execution, then risk, then one filter added or removed), over the template's bounds;
- hypothesis: an untried template meant for the goal's timeframe and asset classes: the seed
  templates first, then the best's family, then the goal's families, each in catalog order;
- induction: the direction the induction summary chooses first, then the best family's other
  templates; every proposal carries the summary as its rationale;
- research: the first templates of a family with no attempts (catalog family order, rotated by
  the iteration), then any untried template.
When a dimension runs out, the rest are filled from parameter, structure, hypothesis and research
in that order. Every spec is built by `goal_spec` (so it lies inside the catalog) and none repeats
a spec tried or in flight; fewer than `n` come back only when the catalog is exhausted.
"""

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol

from quant_assets.domain.errors import QuantAssetsError, SpecValidationError
from quant_assets.domain.research import (
    HYPOTHESIS_CHARS,
    RATIONALE_CHARS,
    Dimension,
    Proposal,
    ResearchState,
)
from quant_assets.domain.strategy import ParamRange, ParamValue, StrategySpec
from quant_assets.research.policy import (
    induction_direction,
    induction_summary,
)
from quant_assets.research.space import (
    Structure,
    goal_families,
    goal_templates,
    structure_of,
    structures,
    untried_families,
    untried_structures,
    untried_templates,
)
from quant_assets.research.spec_builder import describe_modules, goal_spec
from quant_assets.strategy.catalog.loader import Catalog, CatalogEntry

POLICY_PROPOSER: Final = "policy"
FALLBACK_ORDER: Final = (
    Dimension.PARAMETER,
    Dimension.STRUCTURE,
    Dimension.HYPOTHESIS,
    Dimension.RESEARCH,
)
# Narrowing steps tried per parameter round: fraction, fraction/2, ... (floats never collapse).
_NARROWINGS: Final = 8
_LISTED_PARAMS: Final = 4

# A candidate: the spec, and the rationale of its own dimension.
Candidate = tuple[StrategySpec, str]


class Proposer(Protocol):
    """Anything that proposes the next specs of a research loop from its structured state."""

    name: str

    def propose(self, state: ResearchState, catalog: Catalog, n: int) -> list[Proposal]:
        """Return up to `n` new proposals for the iteration after `state.iteration`."""
        ...


class PolicyProposer:
    """Propose specs by the exploration policy: deterministic, offline, no LLM spend."""

    name: str = POLICY_PROPOSER

    def propose(self, state: ResearchState, catalog: Catalog, n: int) -> list[Proposal]:
        """Return up to `n` new, catalog-valid proposals exploring the state's dimension.

        Args:
            state: The loop's state (CONTINUING); its `dimension` says what to explore.
            catalog: The template catalog that bounds the strategy space.
            n: How many proposals to return (fewer only when the catalog is exhausted).

        Raises:
            QuantAssetsError: if the loop has ended or `n` is below 1.
        """
        check_proposable(state, n)
        primary = state.dimension
        summary = induction_summary(state, catalog) if primary is Dimension.INDUCTION else ""
        tried = state.tried_spec_ids()
        proposals: list[Proposal] = []
        for dimension in _dimension_order(state, catalog):
            for spec, rationale in _CANDIDATES[dimension](state, catalog):
                if spec.spec_id in tried:
                    continue
                tried |= {spec.spec_id}
                proposals.append(_proposal(spec, primary, dimension, rationale, summary))
                if len(proposals) == n:
                    return proposals
        return proposals


def check_proposable(state: ResearchState, n: int) -> None:
    """Raise unless the state is running and `n` asks for at least one proposal.

    Raises:
        QuantAssetsError: naming the goal's status, or the bad count.
    """
    if not state.is_running:
        raise QuantAssetsError(
            f"research of goal '{state.goal.name}' ended ({state.status}: {state.reason}); "
            "nothing is proposed for it; start a new state to research again"
        )
    if n < 1:
        raise QuantAssetsError(f"proposal count n was {n}; ask for at least 1 proposal")


def _dimension_order(state: ResearchState, catalog: Catalog) -> list[Dimension]:
    if state.dimension is Dimension.INDUCTION:
        lead, _ = induction_direction(state, catalog)
        rest = (Dimension.HYPOTHESIS, Dimension.STRUCTURE, Dimension.PARAMETER, Dimension.RESEARCH)
        return [lead, *(d for d in rest if d is not lead)]
    return [state.dimension, *(d for d in FALLBACK_ORDER if d is not state.dimension)]


def _proposal(
    spec: StrategySpec, primary: Dimension, dimension: Dimension, rationale: str, summary: str
) -> Proposal:
    if primary is Dimension.INDUCTION:
        label, text = Dimension.INDUCTION, f"{summary}\nThis proposal: {rationale}"
    elif dimension is not primary:
        label, text = dimension, f"{primary.value} had no untried spec left; {rationale}"
    else:
        label, text = dimension, rationale
    return Proposal(
        spec=spec,
        dimension=label,
        hypothesis=spec.hypothesis[:HYPOTHESIS_CHARS],
        rationale=text[:RATIONALE_CHARS],
        proposer=POLICY_PROPOSER,
    )


def _parameter_candidates(state: ResearchState, catalog: Catalog) -> Iterator[Candidate]:
    best, parent = state.best, state.best_spec
    if best is None or parent is None or best.metrics is None:
        return
    for step in range(_NARROWINGS):
        fraction = state.goal.rules.narrow_fraction / 2**step
        space, fixed = narrowed(parent.search_space, best.best_params, fraction)
        values = {**spec_params(parent), **fixed}
        centre = ", ".join(f"{p}={v}" for p, v in list(fixed.items())[:_LISTED_PARAMS])
        hypothesis = (
            f"{parent.template}: the edge found around {centre or 'the best values'} persists "
            f"when each search range keeps {fraction:.1%} of its width around them."
        )
        spec = _build(
            state,
            catalog,
            parent.template,
            filters=[ref.module for ref in parent.filters],
            execution=parent.execution.module,
            risk=parent.risk.module,
            params=values,
            search_space=space,
            hypothesis=hypothesis,
            parent=parent,
        )
        if spec is not None:
            yield (
                spec,
                (
                    f"parameter: best OOS Sharpe {best.metrics.oos_sharpe:.2f} by spec "
                    f"{best.spec_id}; ranges narrowed to {fraction:.1%} of their width"
                ),
            )


def _structure_candidates(state: ResearchState, catalog: Catalog) -> Iterator[Candidate]:
    parent = state.best_spec
    if parent is None or parent.template not in catalog.names():
        return
    entry = catalog.entry(parent.template)
    current = structure_of(describe_modules(parent))
    untried = set(untried_structures(state, catalog))
    for structure in ordered_structures(entry, current, failing_part(state)):
        if structure not in untried:
            continue
        filters, execution, risk = structure
        chosen = [m.module for m in entry.filters if m.module in filters]
        hypothesis = (
            f"The {entry.name} signal pays more with filters {chosen or 'none'}, execution "
            f"{execution} and risk {risk}: {entry.hypothesis}"
        )
        spec = _build(
            state,
            catalog,
            entry.name,
            filters=chosen,
            execution=execution,
            risk=risk,
            hypothesis=hypothesis,
            parent=parent,
        )
        if spec is not None:
            yield spec, f"structure: {describe_modules(spec)} instead of {describe_modules(parent)}"


def _hypothesis_candidates(state: ResearchState, catalog: Catalog) -> Iterator[Candidate]:
    fitting = {entry.name: entry for entry in goal_templates(state.goal, catalog)}
    seeds = [fitting[name] for name in state.goal.seed_templates if name in fitting]
    tried = {a.template for a in state.attempts}
    entries = untried_templates(state, catalog, [state.best.family]) if state.best else []
    entries += [e for e in seeds if e.name not in tried]
    entries += untried_templates(state, catalog, goal_families(state.goal))
    for entry in _unique(entries):
        yield from _template_candidate(state, catalog, entry, "hypothesis: untried template")


def _research_candidates(state: ResearchState, catalog: Catalog) -> Iterator[Candidate]:
    families = untried_families(state, catalog)
    if families:
        shift = state.iteration % len(families)
        families = families[shift:] + families[:shift]
    entries = untried_templates(state, catalog, families)
    tried = {a.template for a in state.attempts}
    entries += [e for e in goal_templates(state.goal, catalog) if e.name not in tried]
    for entry in _unique(entries):
        yield from _template_candidate(state, catalog, entry, "research: untried")


def _unique(entries: list[CatalogEntry]) -> list[CatalogEntry]:
    # Entries hold dicts (unhashable): keep the first of each name.
    firsts: dict[str, CatalogEntry] = {}
    for entry in entries:
        firsts.setdefault(entry.name, entry)
    return list(firsts.values())


def _template_candidate(
    state: ResearchState, catalog: Catalog, entry: CatalogEntry, why: str
) -> Iterator[Candidate]:
    spec = _build(state, catalog, entry.name)
    if spec is not None:
        yield spec, f"{why} {entry.name} of family {entry.family.value}"


_CANDIDATES: Final[dict[Dimension, Callable[[ResearchState, Catalog], Iterator[Candidate]]]] = {
    Dimension.PARAMETER: _parameter_candidates,
    Dimension.STRUCTURE: _structure_candidates,
    Dimension.HYPOTHESIS: _hypothesis_candidates,
    Dimension.RESEARCH: _research_candidates,
}


def _build(
    state: ResearchState, catalog: Catalog, template: str, **choices: Any
) -> StrategySpec | None:
    # `choices` are goal_spec's keyword arguments. A template the goal's data cannot trade (or
    # a combination its modules reject) is skipped.
    try:
        return goal_spec(state.goal, catalog, template, created_by=POLICY_PROPOSER, **choices)
    except SpecValidationError:
        return None


def ordered_structures(
    entry: CatalogEntry, current: Structure | None, first: str = "execution"
) -> list[Structure]:
    """Return a template's structures other than `current`, single swaps first.

    Single swaps come in the order execution, risk, then one optional filter added or removed,
    except that the part named by `first` (execution, risk or filter) leads; every other
    structure follows in `structures` order.
    """
    everything = list(structures(entry))
    if current is None:
        return everything
    filters, execution, risk = current
    optional = [m.module for m in entry.filters if not m.required]
    swaps: dict[str, list[Structure]] = {
        "execution": [(filters, e.module, risk) for e in entry.executions],
        "risk": [(filters, execution, r.module) for r in entry.risks],
        "filter": [(filters ^ {name}, execution, risk) for name in optional],
    }
    order = [first, *(part for part in swaps if part != first)]
    singles = [structure for part in order for structure in swaps[part]]
    return [s for s in dict.fromkeys([*singles, *everything]) if s != current]


def failing_part(state: ResearchState) -> str:
    """Return which part of the best spec to swap first, from how the best result fails.

    A drawdown deeper than the goal allows is a sizing problem (risk first); too few trades
    or a failed overfitting audit points at the entry conditions (filters first); otherwise
    the exits (execution first).
    """
    best = state.best
    if best is None or best.metrics is None:
        return "execution"
    floor = max(state.goal.targets.max_drawdown, state.goal.archive_thresholds().max_drawdown)
    if "drawdown_limit" in best.failed_audits or best.metrics.oos_max_drawdown < floor:
        return "risk"
    if {"min_trades", "overfitting_gap"} & set(best.failed_audits):
        return "filter"
    return "execution"


def narrowed(
    space: Mapping[str, ParamRange], centres: Mapping[str, ParamValue], fraction: float
) -> tuple[dict[str, ParamRange], dict[str, ParamValue]]:
    """Return search ranges narrowed around centres, and the fixed value of each parameter.

    Each range keeps `fraction` of its width around its centre (the range's middle when the
    centre is missing), shifted to stay inside the original range; int ranges are rounded, and
    one that collapses to a single value leaves the search space (its value is fixed).

    Args:
        space: The current search space by parameter path.
        centres: The best values by parameter path.
        fraction: The share of each range's width to keep, in (0, 1].
    """
    ranges: dict[str, ParamRange] = {}
    fixed: dict[str, ParamValue] = {}
    for path, old in space.items():
        value = centres.get(path)
        centre = (old.low + old.high) / 2
        if isinstance(value, int | float) and not isinstance(value, bool):
            centre = min(max(float(value), old.low), old.high)
        half = (old.high - old.low) * fraction / 2
        low = max(old.low, min(centre - half, old.high - 2 * half))
        high = min(old.high, max(centre + half, old.low + 2 * half))
        if old.kind == "int":
            point = math.floor(centre + 0.5)
            low, high = min(math.floor(low + 0.5), point), max(math.floor(high + 0.5), point)
            fixed[path] = point
        else:
            fixed[path] = centre
        if high > low:
            ranges[path] = ParamRange(low=low, high=high, kind=old.kind, log=old.log)
    return ranges, fixed


def spec_params(spec: StrategySpec) -> dict[str, ParamValue]:
    """Return every fixed parameter value of a spec by path (`baseline.<p>`, ...)."""
    values: dict[str, ParamValue] = {}
    for role, ref in (("baseline", spec.baseline), ("execution", spec.execution)):
        values.update({f"{role}.{p}": v for p, v in ref.params.items()})
    values.update({f"risk.{p}": v for p, v in spec.risk.params.items()})
    for ref in spec.filters:
        values.update({f"filters.{ref.module}.{p}": v for p, v in ref.params.items()})
    return values
