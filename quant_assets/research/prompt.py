"""The LLM proposer's prompt, built from structured data only (never from transcripts).

Two parts: `catalog_prompt`, the instructions and every template usable on the goal's timeframe
(deterministic, so that it is sent as a cached prefix), and `state_prompt`, the research state of
this iteration with a guaranteed size bound. Compaction drops the oldest attempt detail first,
then the oldest attempts, then older induction summaries, then older falsified hypotheses, and
always keeps the goal, the budget, the requested dimension, the best result and the most recent
attempts.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from quant_assets.domain.research import Attempt, AttemptMetrics, Dimension, ResearchState
from quant_assets.domain.strategy import ModuleRole, ParamRange, ParamValue, StrategySpec
from quant_assets.research.tool_schema import TOOL_NAME, usable_templates
from quant_assets.strategy.catalog.conformance import SEARCH_PATH_FORMS
from quant_assets.strategy.catalog.loader import NUMERIC_KINDS, Catalog, CatalogEntry, ModuleBounds
from quant_assets.strategy.registry import module_class

STATE_PROMPT_CHARS: Final = 12_000
"""Default bound on the state prompt's length."""
RECENT_ATTEMPTS: Final = 3
"""Attempts that keep their full detail whatever the compaction (the newest ones)."""
KEPT_INDUCTIONS: Final = 1
KEPT_FALSIFIED: Final = 5
_LINE_CHARS: Final = 300
_INDUCTION_CHARS: Final = 1000
_CUT_MARK: Final = "\n[cut to fit the prompt bound]"
_DIMENSIONS: Final = {
    Dimension.PARAMETER: "search inside the best signal: narrow or shift its parameter ranges.",
    Dimension.STRUCTURE: "keep the best baseline, swap its filters, execution or risk modules.",
    Dimension.HYPOTHESIS: "change the baseline family: a different market behaviour to bet on.",
    Dimension.INDUCTION: "read what was falsified and propose the directions it points to.",
    Dimension.RESEARCH: "draw a family from the catalog that no attempt has tried yet.",
}
_INSTRUCTIONS: Final = "\n".join(
    [
        "You are the proposer of an autonomous strategy-research loop for systematic trading. "
        f"Each iteration you propose strategy specs by calling the tool {TOOL_NAME}; the loop "
        "backtests them walk-forward (out of sample, with a parameter search on each train "
        "window) and reports the results back in the next iteration's state.",
        "",
        "Rules:",
        "- Propose specs as data only. Every spec instantiates one template below, uses only the "
        "modules that template allows, and keeps every parameter value and search range inside "
        "its bounds.",
        "- A parameter without template bounds keeps the module's range listed under Modules.",
        f"- Parameter paths in search_space: {SEARCH_PATH_FORMS}.",
        "- Never repeat a spec already tried: an identical spec is rejected.",
        "- hypothesis: one falsifiable sentence about market behaviour; rationale: why this spec "
        "tests it, given the results so far. Plain text, no code.",
        "",
        "Exploration dimensions (the state names the one requested):",
        *(f"- {dimension.value}: {text}" for dimension, text in _DIMENSIONS.items()),
    ]
)


def catalog_prompt(catalog: Catalog, timeframe: str) -> str:
    """Return the cached prompt prefix: instructions, modules, and every usable template.

    The text is a pure function of the catalog and the timeframe (same input, same bytes), so
    that the API can serve it from the prompt cache.

    Args:
        catalog: The template catalog.
        timeframe: The goal's bar timeframe; only templates meant for it are listed.
    """
    entries = usable_templates(catalog, timeframe)
    lines = [_INSTRUCTIONS, "", "## Modules (parameters: kind, module range, default)"]
    for role in ModuleRole:
        names = sorted({a.module for entry in entries for a in entry.allowed(role)})
        lines += [line for name in names for line in _module_lines(role, name)]
    lines += ["", f"## Templates meant for {timeframe} bars ({len(entries)})"]
    for entry in entries:
        lines += _template_lines(entry)
    return "\n".join(lines)


def state_prompt(state: ResearchState, max_chars: int = STATE_PROMPT_CHARS) -> str:
    """Return the research state as prompt text of at most `max_chars` characters.

    Compaction, applied only as far as needed: older attempts lose their detail (oldest first)
    down to the most recent `RECENT_ATTEMPTS`, then the oldest attempts are left out, then older
    induction summaries, then older falsified hypotheses; the goal, budget, requested dimension
    and best result always stay. If that still does not fit, the text is cut at the bound.

    Args:
        state: The loop's structured state.
        max_chars: The bound on the result's length.
    """
    parts = _StateParts(
        head=_head_lines(state),
        falsified=[_line(text) for text in state.falsified],
        inductions=[_line(text, _INDUCTION_CHARS) for text in state.inductions],
        detailed=[_attempt_detail(attempt) for attempt in state.attempts],
        brief=[_attempt_brief(attempt) for attempt in state.attempts],
    )
    count = len(state.attempts)
    view = _View()
    # Each step keeps the smallest compaction that fits (sizes shrink monotonically in each).
    for name, limit in (
        ("detail_from", max(count - RECENT_ATTEMPTS, 0)),
        ("shown_from", max(count - RECENT_ATTEMPTS, 0)),
        ("inductions_from", max(len(parts.inductions) - KEPT_INDUCTIONS, 0)),
        ("falsified_from", max(len(parts.falsified) - KEPT_FALSIFIED, 0)),
    ):
        if len(parts.render(view)) <= max_chars:
            break
        view = _least_that_fits(parts, view, name, limit, max_chars)
    return _cut(parts.render(view), max_chars)


@dataclass(frozen=True)
class _View:
    """How much of each compactable section is shown (indices of the first item kept)."""

    detail_from: int = 0
    shown_from: int = 0
    inductions_from: int = 0
    falsified_from: int = 0


@dataclass(frozen=True)
class _StateParts:
    head: list[str]
    falsified: list[str]
    inductions: list[str]
    detailed: list[str]
    brief: list[str]

    def render(self, view: _View) -> str:
        lines = list(self.head)
        if self.falsified:
            lines.append(_section("Falsified hypotheses", self.falsified, view.falsified_from))
            lines += [f"- {text}" for text in self.falsified[view.falsified_from :]]
        if self.inductions:
            lines.append(_section("Induction summaries", self.inductions, view.inductions_from))
            lines += [f"- {text}" for text in self.inductions[view.inductions_from :]]
        total = len(self.detailed)
        shown_from = min(view.shown_from, view.detail_from)
        if total:
            title = f"Attempts, oldest first, {view.detail_from - shown_from} in brief"
            lines.append(_section(title, self.detailed, shown_from))
            lines += self.brief[shown_from : view.detail_from]
            lines += self.detailed[view.detail_from :]
        else:
            lines.append("## Attempts: none yet")
        return "\n".join(lines)


def _least_that_fits(
    parts: _StateParts, view: _View, name: str, limit: int, max_chars: int
) -> _View:
    # Binary search for the smallest compaction in [current, limit] that fits, else the limit.
    low, high = getattr(view, name), limit
    if low >= high:
        return view
    while low < high:
        middle = (low + high) // 2
        if len(parts.render(_replace(view, name, middle))) <= max_chars:
            high = middle
        else:
            low = middle + 1
    return _replace(view, name, low)


def _replace(view: _View, name: str, value: int) -> _View:
    values = {field: getattr(view, field) for field in _View.__dataclass_fields__}
    values[name] = value
    return _View(**values)


def _section(title: str, items: Sequence[str], first: int) -> str:
    omitted = f"; {first} older omitted" if first else ""
    return f"## {title} ({len(items) - first} of {len(items)}{omitted})"


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    if max_chars <= len(_CUT_MARK):
        return text[:max_chars]
    return text[: max_chars - len(_CUT_MARK)] + _CUT_MARK


def _head_lines(state: ResearchState) -> list[str]:
    goal = state.goal
    budget = goal.budget
    families = ", ".join(goal.families) or "any"
    seeds = ", ".join(goal.seed_templates) or "none"
    lines = [
        f"# Research goal: {goal.name}",
        _line(" ".join(goal.description.split()), 2000),
        f"Data: {', '.join(goal.data.instruments)} on {goal.data.timeframe} bars, "
        f"{goal.data.start:%Y-%m-%d} to {goal.data.end:%Y-%m-%d}; the end of the period is a "
        "sealed holdout that no proposal sees.",
        f"Targets (out of sample): Sharpe >= {goal.targets.min_oos_sharpe}, max drawdown no "
        f"worse than {goal.targets.max_drawdown} (a negative fraction).",
        f"Start from families: {families}; seed templates: {seeds}.",
        f"Budget: {state.iteration} of {budget.max_iterations} iterations done; LLM spend "
        f"${state.spend.cost_usd:.4f} of ${budget.max_llm_usd:.2f}.",
        f"Specs tried: {len(state.attempts)}; in flight: {len(state.pending)}; iterations "
        f"without gain: {state.dead_ends}.",
        f"## Requested dimension: {state.dimension.value}: {_DIMENSIONS[state.dimension]}",
        f"Next action: {_line(state.next_action)}",
        "## Best result",
    ]
    if state.best is None:
        return [*lines, "none yet"]
    lines.append(_attempt_detail(state.best))
    if state.best_spec is not None:
        lines.append(_spec_line(state.best_spec))
    return lines


def _attempt_detail(attempt: Attempt) -> str:
    lines = [
        f"- iteration {attempt.iteration}, spec {attempt.spec_id}: {attempt.template} "
        f"({attempt.family}), {attempt.dimension.value}, by {attempt.proposer}; "
        f"verdict {attempt.verdict.value}",
        f"  modules: {attempt.modules}",
        f"  {_metrics_text(attempt.metrics)}",
    ]
    if attempt.best_params:
        lines.append(f"  best params: {_values_text(attempt.best_params)}")
    if attempt.failed_audits:
        lines.append(f"  failed audits: {', '.join(attempt.failed_audits)}")
    lines.append(f"  hypothesis: {_line(attempt.hypothesis)}")
    if attempt.note:
        lines.append(f"  note: {_line(attempt.note)}")
    return "\n".join(lines)


def _attempt_brief(attempt: Attempt) -> str:
    metrics = attempt.metrics
    result = (
        "no result"
        if metrics is None
        else f"OOS Sharpe {metrics.oos_sharpe:.2f}, drawdown {metrics.oos_max_drawdown:.3f}"
    )
    return (
        f"- iteration {attempt.iteration}: {attempt.template}, {attempt.dimension.value}, "
        f"{attempt.verdict.value}, {result}"
    )


def _metrics_text(metrics: AttemptMetrics | None) -> str:
    if metrics is None:
        return "no result (rejected before or during its run)"
    return (
        f"OOS Sharpe {metrics.oos_sharpe:.2f}, max drawdown {metrics.oos_max_drawdown:.3f}, "
        f"total return {metrics.oos_total_return:.3f}, {metrics.oos_trades} trades; IS Sharpe "
        f"{metrics.is_sharpe:.2f}; deflated Sharpe {metrics.deflated_sharpe:.2f}"
    )


def _spec_line(spec: StrategySpec) -> str:
    fixed: dict[str, ParamValue] = {f"baseline.{k}": v for k, v in spec.baseline.params.items()}
    fixed |= {f"execution.{k}": v for k, v in spec.execution.params.items()}
    fixed |= {f"risk.{k}": v for k, v in spec.risk.params.items()}
    for ref in spec.filters:
        fixed |= {f"filters.{ref.module}.{k}": v for k, v in ref.params.items()}
    return (
        f"  best spec: template {spec.template}; fixed params: {_values_text(fixed)}; "
        f"search space: {_ranges_text(spec.search_space)}"
    )


def _values_text(values: dict[str, ParamValue]) -> str:
    return ", ".join(f"{path}={_number(value)}" for path, value in sorted(values.items()))


def _ranges_text(ranges: dict[str, ParamRange]) -> str:
    if not ranges:
        return "none"
    return ", ".join(
        f"{path} [{_number(r.low)}, {_number(r.high)}] {r.kind}{' log' if r.log else ''}"
        for path, r in sorted(ranges.items())
    )


def _module_lines(role: ModuleRole, name: str) -> list[str]:
    module = module_class(role, name)
    lines = [f"- {role.value} {name}: {module.description}"]
    for param, definition in module.params.items():
        if definition.kind in NUMERIC_KINDS:
            kind = f"{definition.kind} [{_number(definition.low)}, {_number(definition.high)}]"
        elif definition.kind == "choice":
            kind = f"one of {'|'.join(definition.choices)}"
        else:
            kind = definition.kind
        described = f": {definition.description}" if definition.description else ""
        lines.append(f"    {param} {kind}, default {_number(definition.default)}{described}")
    return lines


def _template_lines(entry: CatalogEntry) -> list[str]:
    reference = entry.reference
    return [
        f"### {entry.name} ({entry.family.value}; timeframes {', '.join(entry.timeframes)}; "
        f"{', '.join(c.value for c in entry.asset_classes)})",
        f"Hypothesis: {' '.join(entry.hypothesis.split())}",
        f"Baseline: {_allowance_text(entry.baseline)}",
        f"Filters: {_allowances_text(entry.filters)}",
        f"Executions: {_allowances_text(entry.executions)}",
        f"Risks: {_allowances_text(entry.risks)}",
        f"Fails when: {' '.join(entry.failure_modes)}",
        f"Source: {reference.author}, {reference.title} ({reference.year})",
    ]


def _allowances_text(allowances: Sequence[ModuleBounds]) -> str:
    return "; ".join(_allowance_text(a) for a in allowances) or "none"


def _allowance_text(allowance: ModuleBounds) -> str:
    bounds = [
        f"{p} [{_number(low)}, {_number(high)}]" for p, (low, high) in allowance.bounds.items()
    ]
    bounds += [f"{p} one of {'|'.join(values)}" for p, values in allowance.choices.items()]
    required = " (required)" if allowance.required else ""
    return f"{allowance.module}{required}" + (f" {{{', '.join(bounds)}}}" if bounds else "")


def _number(value: ParamValue | None) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _line(text: str, limit: int = _LINE_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 3]}..."
