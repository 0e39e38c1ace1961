"""The policy proposer: what each dimension proposes, dedup, catalog validity, determinism."""

import pytest

from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.research import Dimension, Proposal, ResearchState, Verdict
from quant_assets.domain.strategy import ParamRange
from quant_assets.research.policy import (
    start_state,
    stop,
)
from quant_assets.research.proposer import PolicyProposer, Proposer, narrowed
from quant_assets.research.space import (
    goal_templates,
    structure_of,
    structures,
    untried_families,
)
from quant_assets.research.spec_builder import describe_modules, goal_spec
from quant_assets.strategy.validation import validate_spec
from quant_assets_tests.research.test_policy import (
    NOW,
    Outcome,
    fold_proposals,
    goal_with,
    play,
    shipped_catalog,
    shipped_goal,
)

# Research and stagnation pushed back, so that parameter and structure rounds run their course.
PATIENT_RULES: dict[str, object] = {"dead_ends_for_research": 10, "stagnation_rounds": 20}


def patient_start() -> ResearchState:
    return start_state(goal_with(rules=PATIENT_RULES), NOW)


def test_policy_proposer_satisfies_proposer_protocol() -> None:
    # Arrange
    proposer: Proposer = PolicyProposer()

    # Act
    proposals = proposer.propose(start_state(shipped_goal(), NOW), shipped_catalog(), 1)

    # Assert
    assert proposer.name == "policy"
    assert [p.proposer for p in proposals] == ["policy"]


def test_propose_first_iteration_seeds_then_goal_families_in_catalog_order() -> None:
    # Arrange
    state = start_state(shipped_goal(), NOW)

    # Act
    proposals = PolicyProposer().propose(state, shipped_catalog(), 4)

    # Assert
    assert [p.spec.template for p in proposals] == [
        "ema_crossover",
        "crypto_time_series_momentum",
        "aroon_trend",
        "chandelier_trend",
    ]
    assert {p.dimension for p in proposals} == {Dimension.HYPOTHESIS}
    for proposal in proposals:
        assert proposal.spec.lineage.parent_id is None
        assert proposal.spec == goal_spec(shipped_goal(), shipped_catalog(), proposal.spec.template)
        assert proposal.hypothesis == proposal.spec.hypothesis[:500]


def test_propose_same_state_identical_proposals() -> None:
    # Arrange
    state = play([(0.5, 0.3), 0.5, 0.45, 0.5])

    # Act
    first = PolicyProposer().propose(state, shipped_catalog(), 2)
    second = PolicyProposer().propose(state, shipped_catalog(), 2)

    # Assert
    assert first == second
    assert [p.spec.spec_id for p in first] == [p.spec.spec_id for p in second]


def test_propose_parameter_narrows_inside_best_ranges_around_best_values() -> None:
    # Arrange
    state = play([(0.5, 0.3)])
    assert state.dimension is Dimension.PARAMETER
    assert state.best is not None
    assert state.best_spec is not None
    best, parent = state.best, state.best_spec

    # Act
    proposals = PolicyProposer().propose(state, shipped_catalog(), 2)

    # Assert
    widths: list[dict[str, float]] = []
    for proposal in proposals:
        spec = proposal.spec
        assert proposal.dimension is Dimension.PARAMETER
        assert spec.lineage.parent_id == parent.spec_id
        assert spec.lineage.generation == parent.lineage.generation + 1
        assert describe_modules(spec) == describe_modules(parent)
        width: dict[str, float] = {}
        for path, old in parent.search_space.items():
            new = spec.search_space[path]
            assert old.low <= new.low <= new.high <= old.high
            assert new.high - new.low < old.high - old.low
            assert new.low <= float(best.best_params[path]) <= new.high
            width[path] = new.high - new.low
        widths.append(width)
        assert spec.baseline.params["fast_span_bars"] == best.best_params["baseline.fast_span_bars"]
        assert spec.baseline.params["slow_span_bars"] == best.best_params["baseline.slow_span_bars"]
    assert all(widths[1][path] < widths[0][path] for path in widths[0])


def test_propose_second_flat_parameter_round_narrows_further() -> None:
    # Arrange
    first_round = play([(0.5, 0.3)])
    first = PolicyProposer().propose(first_round, shipped_catalog(), 2)
    flat = fold_proposals(first_round, first, [Outcome(0.45), Outcome(0.4)])

    # Act
    second = PolicyProposer().propose(flat, shipped_catalog(), 2)

    # Assert
    assert flat.dimension is Dimension.PARAMETER
    assert {p.spec.spec_id for p in second}.isdisjoint({p.spec.spec_id for p in first})
    path = "baseline.slow_span_bars"
    narrowest_before = min(
        p.spec.search_space[path].high - p.spec.search_space[path].low for p in first
    )
    assert all(
        p.spec.search_space[path].high - p.spec.search_space[path].low < narrowest_before
        for p in second
    )


@pytest.mark.parametrize(
    ("space", "centre", "fraction", "expected_range", "expected_fixed"),
    [
        (ParamRange(low=60, high=400, kind="int"), 200, 0.5, (115.0, 285.0), 200),
        (ParamRange(low=5, high=50, kind="int"), 48, 0.5, (28.0, 50.0), 48),
        (ParamRange(low=0.0, high=1.0, kind="float"), 0.1, 0.5, (0.0, 0.5), 0.1),
        (ParamRange(low=5, high=7, kind="int"), 6, 0.25, None, 6),
        (ParamRange(low=10, high=20, kind="int"), "fast", 0.5, (13.0, 18.0), 15),
    ],
    ids=["middle", "shifted-from-high-edge", "shifted-from-low-edge", "int-collapses", "no-centre"],
)
def test_narrowed_range_and_fixed_value(
    space: ParamRange,
    centre: float | str,
    fraction: float,
    expected_range: tuple[float, float] | None,
    expected_fixed: float,
) -> None:
    # Act
    ranges, fixed = narrowed({"baseline.x": space}, {"baseline.x": centre}, fraction)

    # Assert
    got = ranges.get("baseline.x")
    assert (None if got is None else (got.low, got.high)) == expected_range
    assert fixed == {"baseline.x": expected_fixed}


def test_propose_structure_swaps_execution_first_keeping_template() -> None:
    # Arrange: the best fails nothing but the Sharpe target (drawdown within the goal).
    state = play([Outcome(0.5, drawdown=-0.10)] * 3, patient_start())
    assert state.dimension is Dimension.STRUCTURE
    assert state.best_spec is not None
    parent = state.best_spec

    # Act
    proposals = PolicyProposer().propose(state, shipped_catalog(), 2)

    # Assert
    tried = {structure_of(a.modules) for a in state.attempts if a.template == parent.template}
    best_filters, best_execution, best_risk = structure_of(describe_modules(parent)) or ((), "", "")
    for proposal in proposals:
        assert proposal.dimension is Dimension.STRUCTURE
        assert proposal.spec.template == parent.template
        assert proposal.spec.lineage.parent_id == parent.spec_id
        assert structure_of(describe_modules(proposal.spec)) not in tried
    filters, execution, risk = structure_of(describe_modules(proposals[0].spec)) or ((), "", "")
    assert (filters, risk) == (best_filters, best_risk)
    assert execution != best_execution


def test_propose_structure_exhausted_falls_back_to_parameter() -> None:
    # Arrange: every structure of chandelier_trend tried, then a structure round is forced.
    goal = goal_with(rules=PATIENT_RULES)
    entry = shipped_catalog().entry("chandelier_trend")
    tried = [
        (
            f,
            e,
            r,
            goal_spec(goal, shipped_catalog(), entry.name, filters=sorted(f), execution=e, risk=r),
        )
        for f, e, r in structures(entry)
    ]
    proposals = [
        Proposal(spec=spec, dimension=Dimension.HYPOTHESIS, hypothesis="c", proposer="policy")
        for *_, spec in tried
    ]
    outcomes = [Outcome(0.5)] + [Outcome(0.4)] * (len(proposals) - 1)
    state = fold_proposals(start_state(goal, NOW), proposals, outcomes)
    forced = state.model_copy(update={"dimension": Dimension.STRUCTURE})

    # Act
    filled = PolicyProposer().propose(forced, shipped_catalog(), 2)

    # Assert
    assert [p.dimension for p in filled] == [Dimension.PARAMETER, Dimension.PARAMETER]
    assert all(p.rationale.startswith("structure had no untried spec left") for p in filled)


def test_propose_research_draws_untried_family_rotated_by_iteration() -> None:
    # Arrange
    state = play([0.5, 0.5, 0.5, 0.5])
    assert state.dimension is Dimension.RESEARCH
    families = untried_families(state, shipped_catalog())
    shift = state.iteration % len(families)

    # Act
    proposals = PolicyProposer().propose(state, shipped_catalog(), 2)

    # Assert
    drawn = shipped_catalog().entry(proposals[0].spec.template)
    assert drawn.family.value == families[shift]
    first_of_family = [
        e.name
        for e in goal_templates(shipped_goal(), shipped_catalog())
        if e.family == drawn.family
    ]
    assert proposals[0].spec.template == first_of_family[0]


def test_propose_induction_carries_summary_and_best_family() -> None:
    # Arrange
    state = play([0.1 * k for k in range(1, 10)])
    assert state.dimension is Dimension.INDUCTION
    assert state.best is not None

    # Act
    proposals = PolicyProposer().propose(state, shipped_catalog(), 2)

    # Assert
    for proposal in proposals:
        assert proposal.dimension is Dimension.INDUCTION
        assert proposal.rationale.startswith("Induction after iteration 9:")
        assert "Direction: continue with family trend" in proposal.rationale
        assert len(proposal.rationale) <= 1000
        assert shipped_catalog().entry(proposal.spec.template).family.value == state.best.family


def test_propose_fifteen_scripted_iterations_never_repeat_and_validate() -> None:
    # Arrange
    script = [0.3, 0.5, 0.5, 0.52, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.75, 0.76, 0.9, 0.9, 0.9]
    state = patient_start()
    proposed: list[str] = []

    # Act
    for sharpe in script:
        proposals = PolicyProposer().propose(state, shipped_catalog(), 2)
        for proposal in proposals:
            validate_spec(proposal.spec, shipped_catalog())
        proposed += [p.spec.spec_id for p in proposals]
        state = fold_proposals(state, proposals, [Outcome(sharpe), Outcome(sharpe - 0.01)])

    # Assert
    assert state.iteration == 15
    assert state.is_running
    assert len(proposed) == 30
    assert len(set(proposed)) == 30
    assert [a.spec_id for a in state.attempts] == proposed
    assert len(set(state.dimension_log)) >= 4
    assert Verdict.IMPROVED in {a.verdict for a in state.attempts}


def test_propose_ended_state_raises() -> None:
    # Arrange
    state = stop(play([0.5]), "done", NOW)

    # Act / Assert
    with pytest.raises(QuantAssetsError, match="nothing is proposed"):
        PolicyProposer().propose(state, shipped_catalog(), 2)


def test_propose_zero_count_raises() -> None:
    # Act / Assert
    with pytest.raises(QuantAssetsError, match="n was 0"):
        PolicyProposer().propose(start_state(shipped_goal(), NOW), shipped_catalog(), 0)


def test_propose_structure_swaps_risk_first_when_the_best_draws_down_too_deep() -> None:
    # Arrange: the best's drawdown (-30%) is deeper than the goal's -15% and archive's -25%.
    state = play([Outcome(0.5, drawdown=-0.30, audits=("drawdown_limit",))] * 3, patient_start())
    assert state.dimension is Dimension.STRUCTURE
    assert state.best_spec is not None
    best = structure_of(describe_modules(state.best_spec)) or ((), "", "")

    # Act
    proposals = PolicyProposer().propose(state, shipped_catalog(), 1)

    # Assert
    filters, execution, risk = structure_of(describe_modules(proposals[0].spec)) or ((), "", "")
    assert (filters, execution) == (best[0], best[1])
    assert risk != best[2]
