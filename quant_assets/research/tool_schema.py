"""The LLM's one tool, `propose_strategy_specs`: its JSON schema, its input model, and validation.

The schema is generated from the catalog (templates usable on the goal's timeframe, the modules
they allow) and from the spec models (`ParamRange`, the text bounds of a `Proposal`). The model
proposes specs as data, never code: each proposal is parsed by `ProposedSpec`, built into a
`StrategySpec` by `goal_spec` (which checks it against the catalog) and checked against the specs
already tried. Every problem is reported at once, by field path, so that it can be sent back to the
model as a repair message.
"""

from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.research import (
    HYPOTHESIS_CHARS,
    RATIONALE_CHARS,
    Dimension,
    Proposal,
    ResearchState,
)
from quant_assets.domain.strategy import ModuleRole, ParamRange, ParamValue, StrategySpec
from quant_assets.research.spec_builder import goal_spec
from quant_assets.strategy.catalog.conformance import SEARCH_PATH_FORMS
from quant_assets.strategy.catalog.loader import Catalog, CatalogEntry
from quant_assets.strategy.spec_io import describe_validation_error

TOOL_NAME: Final = "propose_strategy_specs"
PROPOSER_CHARS: Final = 80
"""Longest proposer / lineage author name (`anthropic:<model>`) the models keep."""
_PARAM_VALUE_SCHEMA: Final[dict[str, Any]] = {"type": ["number", "boolean", "string"]}


def _truncated(value: object, limit: int) -> object:
    # LLM free text is stored as text only, cut to its bound rather than rejected for length.
    return value.strip()[:limit] if isinstance(value, str) else value


class ModuleChoice(BaseModel):
    """A module the proposal uses in a role, with fixed parameter values by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    module: str = Field(min_length=1)
    params: dict[str, ParamValue] = Field(default_factory=dict)


class ProposedSpec(BaseModel):
    """One proposal as the tool receives it (mirrors one item of the tool's input schema).

    Attributes:
        filters: Filter modules; None: the template's required filters.
        execution: Execution module; None: the template's first.
        risk: Risk module; None: the template's first.
        baseline_params: Fixed baseline parameter values by name.
        search_space: Ranges to search by parameter path; empty: the template's full bounds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    template: str = Field(min_length=1)
    dimension: Dimension
    filters: tuple[ModuleChoice, ...] | None = None
    execution: ModuleChoice | None = None
    risk: ModuleChoice | None = None
    baseline_params: dict[str, ParamValue] = Field(default_factory=dict)
    search_space: dict[str, ParamRange] = Field(default_factory=dict)
    hypothesis: str = Field(min_length=1, max_length=HYPOTHESIS_CHARS)
    rationale: str = Field(default="", max_length=RATIONALE_CHARS)

    @field_validator("hypothesis", mode="before")
    @classmethod
    def _bound_hypothesis(cls, value: object) -> object:
        return _truncated(value, HYPOTHESIS_CHARS)

    @field_validator("rationale", mode="before")
    @classmethod
    def _bound_rationale(cls, value: object) -> object:
        return _truncated(value, RATIONALE_CHARS)

    def params(self) -> dict[str, ParamValue]:
        """Return every fixed parameter value by path (`baseline.<p>`, `filters.<m>.<p>`, ...)."""
        values = {f"baseline.{name}": value for name, value in self.baseline_params.items()}
        for role, choice in (("execution", self.execution), ("risk", self.risk)):
            if choice is not None:
                values |= {f"{role}.{name}": value for name, value in choice.params.items()}
        for ref in self.filters or ():
            values |= {f"filters.{ref.module}.{name}": value for name, value in ref.params.items()}
        return values


class ProposedBatch(BaseModel):
    """The whole tool input: one or more proposals."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Emptiness is checked after parsing: a min_length here repeats every item's error.
    proposals: tuple[ProposedSpec, ...]


def usable_templates(catalog: Catalog, timeframe: str) -> tuple[CatalogEntry, ...]:
    """Return the catalog entries meant for a timeframe, in name order."""
    return tuple(entry for entry in catalog.entries if timeframe in entry.timeframes)


def tool_definition(catalog: Catalog, timeframe: str, n: int) -> dict[str, Any]:
    """Return the `propose_strategy_specs` tool (name, description, input schema).

    Args:
        catalog: The template catalog.
        timeframe: The goal's bar timeframe; only templates meant for it are offered.
        n: Most proposals one call may return.
    """
    return {
        "name": TOOL_NAME,
        "description": (
            "Propose strategy specs as data for the research loop to backtest walk-forward. Each "
            "proposal instantiates one catalog template (see the catalog in the system prompt) "
            "with modules the template allows, parameter values and search ranges inside the "
            "template's bounds, a falsifiable hypothesis and a short rationale."
        ),
        "input_schema": input_schema(catalog, timeframe, n),
    }


def input_schema(catalog: Catalog, timeframe: str, n: int) -> dict[str, Any]:
    """Return the JSON schema of the tool's input (mirrors `ProposedBatch`).

    Raises:
        SpecValidationError: if no catalog template is meant for the timeframe, or n < 1.
    """
    entries = usable_templates(catalog, timeframe)
    if not entries or n < 1:
        raise SpecValidationError(
            f"tool schema for timeframe '{timeframe}' and n={n}: it needs n >= 1 and at least one "
            "catalog template meant for the timeframe; ask for one or more proposals on a "
            "timeframe the catalog covers"
        )
    proposal = {
        "type": "object",
        "additionalProperties": False,
        "required": ["template", "dimension", "hypothesis"],
        "properties": {
            "template": {"type": "string", "enum": [entry.name for entry in entries]},
            "dimension": {"type": "string", "enum": [d.value for d in Dimension]},
            "filters": {
                "type": "array",
                "description": "Filter modules; omit to use the template's required filters.",
                "items": _module_schema(_allowed_modules(entries, ModuleRole.FILTER)),
            },
            "execution": _module_schema(_allowed_modules(entries, ModuleRole.EXECUTION)),
            "risk": _module_schema(_allowed_modules(entries, ModuleRole.RISK)),
            "baseline_params": {
                "type": "object",
                "description": "Fixed baseline parameter values by parameter name.",
                "additionalProperties": _PARAM_VALUE_SCHEMA,
            },
            "search_space": {
                "type": "object",
                "description": (
                    f"Ranges to search by parameter path ({SEARCH_PATH_FORMS}); omit or leave "
                    "empty to search the template's full bounds."
                ),
                "additionalProperties": ParamRange.model_json_schema(),
            },
            "hypothesis": {"type": "string", "minLength": 1, "maxLength": HYPOTHESIS_CHARS},
            "rationale": {"type": "string", "maxLength": RATIONALE_CHARS},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["proposals"],
        "properties": {
            "proposals": {"type": "array", "minItems": 1, "maxItems": n, "items": proposal}
        },
    }


def proposals_from_tool_input(
    tool_input: object, state: ResearchState, catalog: Catalog, n: int, proposer: str
) -> list[Proposal]:
    """Return the proposals a tool input describes, each a validated spec not tried before.

    The batch is valid only if every proposal is; proposals beyond the first n are ignored.

    Args:
        tool_input: The `input` of the model's tool call (parsed JSON).
        state: The research state (goal, best spec, specs tried or in flight).
        catalog: The template catalog.
        n: Most proposals kept.
        proposer: The proposer's name (`anthropic:<model>`), stamped on proposals and lineage.

    Raises:
        SpecValidationError: listing every problem by field path (`proposals[1].template ...`),
            its value, the rule and the fix; a spec already tried or proposed twice is one.
    """
    try:
        batch = ProposedBatch.model_validate(tool_input)
    except ValidationError as e:
        problems = describe_validation_error(e)
        raise SpecValidationError(_problem_text(problems)) from e
    if not batch.proposals:
        raise SpecValidationError(_problem_text(["proposals was empty: propose at least one spec"]))
    usable = [entry.name for entry in usable_templates(catalog, state.goal.data.timeframe)]
    seen: dict[str, str] = dict.fromkeys(state.tried_spec_ids(), "an earlier iteration")
    problems, proposals = [], []
    for position, proposed in enumerate(batch.proposals[:n]):
        where = f"proposals[{position}]"
        if proposed.template not in usable:
            problems.append(
                f"{where}.template was '{proposed.template}', not a template meant for "
                f"{state.goal.data.timeframe} bars; use one of {usable}"
            )
            continue
        try:
            spec = build_spec(proposed, state, catalog, proposer)
        except SpecValidationError as e:
            problems.append(f"{where}: {_indented(str(e))}")
            continue
        if spec.spec_id in seen:
            problems.append(
                f"{where}: spec {spec.spec_id} was already tried ({seen[spec.spec_id]}); "
                "propose something else"
            )
            continue
        seen[spec.spec_id] = f"as {where}"
        proposals.append(_proposal(proposed, spec, proposer))
    if problems:
        raise SpecValidationError(_problem_text(problems))
    return proposals


def build_spec(
    proposed: ProposedSpec, state: ResearchState, catalog: Catalog, proposer: str
) -> StrategySpec:
    """Return the validated spec of one proposal on the goal's data, costs and windows.

    A proposal on the best spec's template derives from it (lineage parent).

    Raises:
        SpecValidationError: naming each field path outside the catalog, and the fix.
    """
    best = state.best_spec
    parent = best if best is not None and best.template == proposed.template else None
    try:
        return goal_spec(
            state.goal,
            catalog,
            proposed.template,
            filters=_module_names(proposed.filters),
            execution=proposed.execution.module if proposed.execution is not None else None,
            risk=proposed.risk.module if proposed.risk is not None else None,
            params=proposed.params(),
            search_space=proposed.search_space or None,
            hypothesis=proposed.hypothesis,
            parent=parent,
            created_by=proposer[:PROPOSER_CHARS],
        )
    except ValidationError as e:
        raise SpecValidationError("; ".join(describe_validation_error(e))) from e


def _proposal(proposed: ProposedSpec, spec: StrategySpec, proposer: str) -> Proposal:
    return Proposal(
        spec=spec,
        dimension=proposed.dimension,
        hypothesis=proposed.hypothesis[:HYPOTHESIS_CHARS],
        rationale=proposed.rationale[:RATIONALE_CHARS],
        proposer=proposer[:PROPOSER_CHARS],
    )


def _module_names(refs: Sequence[ModuleChoice] | None) -> list[str] | None:
    return None if refs is None else [ref.module for ref in refs]


def _allowed_modules(entries: Sequence[CatalogEntry], role: ModuleRole) -> list[str]:
    return sorted({allowance.module for entry in entries for allowance in entry.allowed(role)})


def _module_schema(modules: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["module"],
        "properties": {
            "module": {"type": "string", "enum": list(modules)},
            "params": {
                "type": "object",
                "description": "Fixed parameter values by parameter name.",
                "additionalProperties": _PARAM_VALUE_SCHEMA,
            },
        },
    }


def _indented(text: str) -> str:
    # A nested problem list goes under the proposal it belongs to.
    return text.replace("\n- ", "\n  - ")


def _problem_text(problems: Sequence[str]) -> str:
    return (
        f"the {TOOL_NAME} input failed validation with {len(problems)} problem(s):\n- "
        + "\n- ".join(problems)
    )
