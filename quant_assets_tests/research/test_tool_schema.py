from typing import Any

import pytest

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.research import (
    HYPOTHESIS_CHARS,
    RATIONALE_CHARS,
    Dimension,
    ResearchGoal,
    ResearchState,
)
from quant_assets.domain.strategy import ModuleRole, ParamRange
from quant_assets.research.spec_builder import goal_spec
from quant_assets.research.tool_schema import (
    TOOL_NAME,
    ProposedSpec,
    build_spec,
    input_schema,
    proposals_from_tool_input,
    tool_definition,
)
from quant_assets.strategy.catalog.loader import Catalog
from quant_assets.strategy.validation import validate_spec

PROPOSER = "anthropic:claude-sonnet-4-6"


@pytest.fixture
def state(goal: ResearchGoal) -> ResearchState:
    return ResearchState(goal=goal)


def ema_proposal(**overrides: Any) -> dict[str, Any]:
    proposal: dict[str, Any] = {
        "template": "ema_crossover",
        "dimension": "hypothesis",
        "filters": [{"module": "adx_strength", "params": {"min_adx": 25}}],
        "execution": {"module": "atr_stops", "params": {"stop_atr": 3.0}},
        "risk": {"module": "fixed_fraction"},
        "baseline_params": {"fast_span_bars": 12},
        "search_space": {"baseline.slow_span_bars": {"low": 100, "high": 300, "kind": "int"}},
        "hypothesis": "Hourly crypto trends persist after an EMA cross confirmed by ADX.",
        "rationale": "ADX removes the range-bound whipsaws the catalog names as the failure.",
    }
    proposal.update(overrides)
    return proposal


def test_input_schema_offers_exactly_the_templates_meant_for_the_timeframe(
    catalog: Catalog,
) -> None:
    # Arrange
    expected = sorted(entry.name for entry in catalog.entries if "1h" in entry.timeframes)

    # Act
    schema = input_schema(catalog, "1h", 2)

    # Assert
    offered = schema["properties"]["proposals"]["items"]["properties"]["template"]["enum"]
    assert offered == expected
    assert "faber_trend_timing" not in offered  # a daily-only template


def test_input_schema_mirrors_the_proposed_spec_model_and_bounds(catalog: Catalog) -> None:
    # Act
    schema = input_schema(catalog, "1h", 3)

    # Assert
    proposals = schema["properties"]["proposals"]
    item = proposals["items"]
    assert (proposals["minItems"], proposals["maxItems"]) == (1, 3)
    assert set(item["properties"]) == set(ProposedSpec.model_fields)
    assert item["additionalProperties"] is False
    assert item["properties"]["dimension"]["enum"] == [d.value for d in Dimension]
    assert item["properties"]["hypothesis"]["maxLength"] == HYPOTHESIS_CHARS
    assert item["properties"]["rationale"]["maxLength"] == RATIONALE_CHARS
    ranges = item["properties"]["search_space"]["additionalProperties"]
    assert ranges == ParamRange.model_json_schema()


@pytest.mark.parametrize(
    ("field", "role"),
    [("execution", ModuleRole.EXECUTION), ("risk", ModuleRole.RISK)],
)
def test_input_schema_module_enums_are_the_modules_usable_templates_allow(
    catalog: Catalog, field: str, role: ModuleRole
) -> None:
    # Arrange
    usable = [entry for entry in catalog.entries if "1h" in entry.timeframes]
    expected = sorted({a.module for entry in usable for a in entry.allowed(role)})

    # Act
    item = input_schema(catalog, "1h", 2)["properties"]["proposals"]["items"]

    # Assert
    assert item["properties"][field]["properties"]["module"]["enum"] == expected


def test_tool_definition_names_the_tool_and_carries_the_schema(catalog: Catalog) -> None:
    # Act
    tool = tool_definition(catalog, "1h", 2)

    # Assert
    assert tool["name"] == TOOL_NAME
    assert tool["input_schema"] == input_schema(catalog, "1h", 2)


def test_input_schema_without_usable_templates_raises(catalog: Catalog) -> None:
    # Act / Assert
    with pytest.raises(SpecValidationError, match="timeframe '1m'"):
        input_schema(catalog, "1m", 2)


def test_proposed_spec_params_maps_each_role_to_its_parameter_path() -> None:
    # Arrange
    proposed = ProposedSpec.model_validate(ema_proposal())

    # Act
    params = proposed.params()

    # Assert
    assert params == {
        "baseline.fast_span_bars": 12,
        "execution.stop_atr": 3.0,
        "filters.adx_strength.min_adx": 25,
    }


def test_proposals_from_tool_input_builds_specs_that_validate_against_the_catalog(
    state: ResearchState, catalog: Catalog
) -> None:
    # Act
    proposals = proposals_from_tool_input(
        {"proposals": [ema_proposal()]}, state, catalog, 2, PROPOSER
    )

    # Assert
    (proposal,) = proposals
    spec = proposal.spec
    assert validate_spec(spec, catalog) == spec
    assert (proposal.proposer, spec.lineage.created_by) == (PROPOSER, PROPOSER)
    assert proposal.dimension is Dimension.HYPOTHESIS
    assert spec.baseline.params["fast_span_bars"] == 12
    assert spec.execution.module == "atr_stops"
    assert spec.execution.params["stop_atr"] == 3.0
    assert [(f.module, f.params["min_adx"]) for f in spec.filters] == [("adx_strength", 25)]
    assert spec.search_space == {"baseline.slow_span_bars": ParamRange(low=100, high=300)}
    assert spec.data == state.goal.data
    assert spec.cost == state.goal.cost


def test_proposals_from_tool_input_truncates_free_text_to_its_bounds(
    state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    tool_input = {"proposals": [ema_proposal(hypothesis="h" * 5000, rationale="r" * 5000)]}

    # Act
    (proposal,) = proposals_from_tool_input(tool_input, state, catalog, 2, PROPOSER)

    # Assert
    assert len(proposal.hypothesis) == HYPOTHESIS_CHARS
    assert len(proposal.rationale) == RATIONALE_CHARS
    assert len(proposal.spec.hypothesis) == HYPOTHESIS_CHARS


def test_proposals_from_tool_input_reports_every_problem_by_field_path(
    state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    out_of_bounds = ema_proposal(baseline_params={"fast_span_bars": 500})
    daily_only = ema_proposal(template="faber_trend_timing")
    tool_input = {"proposals": [out_of_bounds, daily_only]}

    # Act
    with pytest.raises(SpecValidationError) as raised:
        proposals_from_tool_input(tool_input, state, catalog, 2, PROPOSER)

    # Assert
    message = str(raised.value)
    assert "2 problem(s)" in message
    assert "proposals[0]" in message
    assert "fast_span_bars" in message
    assert "500" in message
    assert "proposals[1].template was 'faber_trend_timing'" in message


def test_proposals_from_tool_input_names_malformed_fields(
    state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    malformed = ema_proposal(code="import os")
    del malformed["hypothesis"]

    # Act
    with pytest.raises(SpecValidationError) as raised:
        proposals_from_tool_input({"proposals": [malformed]}, state, catalog, 2, PROPOSER)

    # Assert
    message = str(raised.value)
    assert "proposals[0].hypothesis is missing" in message
    assert "proposals[0].code" in message


def test_proposals_from_tool_input_rejects_a_spec_already_tried(
    state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    spec = build_spec(ProposedSpec.model_validate(ema_proposal()), state, catalog, PROPOSER)
    in_flight = state.model_copy(update={"pending": (spec.spec_id,)})

    # Act
    with pytest.raises(SpecValidationError) as raised:
        proposals_from_tool_input({"proposals": [ema_proposal()]}, in_flight, catalog, 2, PROPOSER)

    # Assert
    assert f"spec {spec.spec_id} was already tried" in str(raised.value)
    assert "propose something else" in str(raised.value)


def test_proposals_from_tool_input_rejects_a_duplicate_within_the_batch(
    state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    tool_input = {"proposals": [ema_proposal(), ema_proposal(rationale="same spec again")]}

    # Act
    with pytest.raises(SpecValidationError) as raised:
        proposals_from_tool_input(tool_input, state, catalog, 2, PROPOSER)

    # Assert
    assert "proposals[1]: spec" in str(raised.value)
    assert "as proposals[0]" in str(raised.value)


def test_proposals_from_tool_input_keeps_at_most_n(state: ResearchState, catalog: Catalog) -> None:
    # Arrange
    tool_input = {
        "proposals": [ema_proposal(), ema_proposal(baseline_params={"fast_span_bars": 20})]
    }

    # Act
    proposals = proposals_from_tool_input(tool_input, state, catalog, 1, PROPOSER)

    # Assert
    assert [p.spec.baseline.params["fast_span_bars"] for p in proposals] == [12]


def test_build_spec_on_the_best_template_derives_from_the_best_spec(
    state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    best = goal_spec(state.goal, catalog, "ema_crossover")
    with_best = state.model_copy(update={"best_spec": best})
    proposed = ProposedSpec.model_validate(ema_proposal(dimension="parameter"))

    # Act
    spec = build_spec(proposed, with_best, catalog, PROPOSER)

    # Assert
    assert spec.lineage.parent_id == best.spec_id
    assert spec.lineage.generation == best.lineage.generation + 1
