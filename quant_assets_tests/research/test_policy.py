"""The exploration policy on scripted result sequences: verdicts, dimensions, termination.

Each scripted run asks the real PolicyProposer for specs on the shipped goal and catalog, gives
every proposal a scripted OOS Sharpe (and drawdown, audits), and folds the results.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest

from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.research import (
    Attempt,
    AttemptMetrics,
    Dimension,
    Proposal,
    ResearchGoal,
    ResearchState,
    ResearchStatus,
    Usage,
    Verdict,
)
from quant_assets.domain.strategy import ParamValue, StrategySpec
from quant_assets.research.goals import load_goal
from quant_assets.research.policy import (
    fold_iteration,
    induction_summary,
    judge,
    next_dimension,
    start_state,
    stop,
)
from quant_assets.research.proposer import PolicyProposer
from quant_assets.research.space import (
    structure_of,
    structures,
)
from quant_assets.research.spec_builder import describe_modules, goal_spec
from quant_assets.strategy.catalog.loader import Catalog, load_catalog

NOW = datetime(2025, 3, 1, tzinfo=UTC)
GOAL_FILE = Path(__file__).resolve().parents[2] / "goals" / "btc_eth_trend_1h.yaml"
EMA_HYPOTHESIS = (
    "Prices trend: once a fast exponential moving average crosses a slow one, the move tends to "
    "continue long enough to pay for the whipsaws."
)


@dataclass(frozen=True)
class Outcome:
    """The scripted result of one proposal (Sharpe None: rejected, no metrics)."""

    sharpe: float | None
    drawdown: float = -0.20
    audits: tuple[str, ...] = ()


Round = float | None | Outcome | Sequence[float | Outcome | None]


@cache
def shipped_catalog() -> Catalog:
    return load_catalog()


@cache
def shipped_goal() -> ResearchGoal:
    return load_goal(GOAL_FILE, shipped_catalog())


def goal_with(
    rules: dict[str, object] | None = None, budget: dict[str, object] | None = None
) -> ResearchGoal:
    goal = shipped_goal()
    return ResearchGoal.model_validate(
        {
            **goal.model_dump(),
            "rules": {**goal.rules.model_dump(), **(rules or {})},
            "budget": {**goal.budget.model_dump(), **(budget or {})},
        }
    )


def best_region(spec: StrategySpec) -> dict[str, ParamValue]:
    # 40% into each range, so a centre is never the range's middle by accident.
    centres: dict[str, ParamValue] = {}
    for path, space in spec.search_space.items():
        value = space.low + 0.4 * (space.high - space.low)
        centres[path] = round(value) if space.kind == "int" else value
    return centres


def attempt_for(proposal: Proposal, iteration: int, outcome: Outcome) -> Attempt:
    spec = proposal.spec
    metrics = (
        None
        if outcome.sharpe is None
        else AttemptMetrics(
            oos_sharpe=outcome.sharpe,
            oos_max_drawdown=outcome.drawdown,
            oos_total_return=0.1,
            oos_trades=40,
            is_sharpe=outcome.sharpe + 0.3,
            deflated_sharpe=0.5,
        )
    )
    return Attempt(
        iteration=iteration,
        spec_id=spec.spec_id,
        template=spec.template,
        family=shipped_catalog().entry(spec.template).family.value,
        dimension=proposal.dimension,
        proposer=proposal.proposer,
        modules=describe_modules(spec),
        hypothesis=proposal.hypothesis,
        metrics=metrics,
        best_params=best_region(spec) if metrics is not None else {},
        failed_audits=outcome.audits,
        verdict=Verdict.NO_GAIN if metrics is not None else Verdict.REJECTED,
    )


def outcomes_of(round_: Round) -> list[Outcome]:
    items = list(round_) if isinstance(round_, Sequence) else [round_]
    return [item if isinstance(item, Outcome) else Outcome(item) for item in items]


def fold_proposals(
    state: ResearchState,
    proposals: Sequence[Proposal],
    outcomes: Sequence[Outcome],
    usage: Usage | None = None,
) -> ResearchState:
    attempts = [
        attempt_for(p, state.iteration + 1, o) for p, o in zip(proposals, outcomes, strict=True)
    ]
    return fold_iteration(
        state,
        attempts,
        specs={p.spec.spec_id: p.spec for p in proposals},
        usage=usage or Usage(),
        now=NOW,
        catalog=shipped_catalog(),
    )


def play(
    rounds: Sequence[Round], state: ResearchState | None = None, usage: Usage | None = None
) -> ResearchState:
    """Return the state after proposing and folding each scripted round in turn."""
    state = state or start_state(shipped_goal(), NOW)
    for round_ in rounds:
        outcomes = outcomes_of(round_)
        proposals = PolicyProposer().propose(state, shipped_catalog(), len(outcomes))
        assert len(proposals) == len(outcomes), "the catalog ran out of specs"
        state = fold_proposals(state, proposals, outcomes, usage)
    return state


def lone_best(sharpe: float, goal: ResearchGoal | None = None) -> ResearchState:
    """Return a state whose best is one ema_crossover attempt with the given OOS Sharpe."""
    spec = goal_spec(shipped_goal(), shipped_catalog(), "ema_crossover")
    proposal = Proposal(
        spec=spec, dimension=Dimension.HYPOTHESIS, hypothesis="ema", proposer="policy"
    )
    best = attempt_for(proposal, 1, Outcome(sharpe))
    return ResearchState(
        goal=goal or shipped_goal(), iteration=1, best=best, best_spec=spec, attempts=(best,)
    )


# --- judge ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("best", "outcome", "expected"),
    [
        (None, Outcome(None), Verdict.REJECTED),
        (None, Outcome(1.3, drawdown=-0.10), Verdict.GOAL_MET),
        (None, Outcome(1.3, drawdown=-0.10, audits=("look_ahead",)), Verdict.IMPROVED),
        (None, Outcome(1.3, drawdown=-0.16), Verdict.IMPROVED),
        (None, Outcome(-2.0), Verdict.IMPROVED),
        (0.5, Outcome(0.56), Verdict.IMPROVED),
        (0.55, Outcome(0.6), Verdict.IMPROVED),
        (0.5, Outcome(0.54), Verdict.NO_GAIN),
        (0.5, Outcome(0.3), Verdict.NO_GAIN),
    ],
    ids=[
        "no-metrics",
        "targets-met",
        "failed-audit",
        "drawdown-too-deep",
        "first-result",
        "gain-above-minimum",
        "gain-exactly-minimum",
        "gain-below-minimum",
        "worse",
    ],
)
def test_judge_outcome_verdict(best: float | None, outcome: Outcome, expected: Verdict) -> None:
    # Arrange
    state = lone_best(best) if best is not None else start_state(shipped_goal(), NOW)
    proposal = PolicyProposer().propose(start_state(shipped_goal(), NOW), shipped_catalog(), 2)[1]
    attempt = attempt_for(proposal, state.iteration + 1, outcome)

    # Act
    verdict = judge(attempt, state)

    # Assert
    assert verdict is expected


# --- fold_iteration ------------------------------------------------------------------------


def test_fold_iteration_batch_judged_against_best_including_earlier_attempts() -> None:
    # Arrange
    state = play([0.5])
    proposals = PolicyProposer().propose(state, shipped_catalog(), 2)

    # Act
    folded = fold_proposals(state, proposals, [Outcome(0.6), Outcome(0.62)])

    # Assert
    assert [a.verdict for a in folded.attempts[-2:]] == [Verdict.IMPROVED, Verdict.NO_GAIN]
    assert folded.best == folded.attempts[-1]
    assert folded.best_spec == proposals[1].spec
    assert folded.dead_ends == 0
    assert folded.best_by_iteration == (0.5, 0.62)
    assert folded.dimension_log == (Dimension.HYPOTHESIS, Dimension.PARAMETER)


def test_fold_iteration_counts_spend_and_clears_pending() -> None:
    # Arrange
    usage = Usage(calls=1, input_tokens=1000, output_tokens=200, cost_usd=0.25)

    # Act
    state = play([0.5, 0.4], usage=usage)

    # Assert
    assert state.spend == Usage(calls=2, input_tokens=2000, output_tokens=400, cost_usd=0.5)
    assert state.pending == ()
    assert state.updated_at == NOW


def test_fold_iteration_on_ended_state_raises_naming_status() -> None:
    # Arrange
    state = stop(play([0.5]), "enough", NOW)
    proposal = PolicyProposer().propose(play([0.5]), shipped_catalog(), 1)[0]

    # Act / Assert
    with pytest.raises(QuantAssetsError, match=r"ended \(STOPPED"):
        fold_proposals(state, [proposal], [Outcome(0.6)])


def test_fold_iteration_attempt_of_other_iteration_raises() -> None:
    # Arrange
    state = play([0.5])
    proposal = PolicyProposer().propose(state, shipped_catalog(), 1)[0]
    stale = attempt_for(proposal, 1, Outcome(0.6))

    # Act / Assert
    with pytest.raises(QuantAssetsError, match=r"names iteration 1.*expects iteration 2"):
        fold_iteration(state, [stale], specs={}, usage=Usage(), now=NOW, catalog=shipped_catalog())


def test_fold_iteration_new_best_without_its_spec_raises() -> None:
    # Arrange
    state = start_state(shipped_goal(), NOW)
    proposal = PolicyProposer().propose(state, shipped_catalog(), 1)[0]
    attempt = attempt_for(proposal, 1, Outcome(0.6))

    # Act / Assert
    with pytest.raises(QuantAssetsError, match="pass every attempt's spec"):
        fold_iteration(
            state, [attempt], specs={}, usage=Usage(), now=NOW, catalog=shipped_catalog()
        )


def test_fold_iteration_state_round_trips_through_json() -> None:
    # Arrange
    state = play([(0.3, 0.2), 0.5, None, 0.52, 0.6, 0.6, 0.61, 0.7, 0.7, 0.7, 0.8])

    # Act
    restored = ResearchState.model_validate_json(state.model_dump_json())

    # Assert
    assert restored == state
    assert state.inductions, "the run passed a forced induction round"


# --- next dimension ------------------------------------------------------------------------


def test_next_dimension_forced_induction_at_10_and_20() -> None:
    # Arrange
    rising = [0.1 * k for k in range(1, 20)]

    # Act
    at_8 = play(rising[:8])
    at_9 = play(rising[8:9], at_8)
    at_10 = play(rising[9:10], at_9)
    at_19 = play(rising[10:19], at_10)

    # Assert
    assert at_8.dimension is Dimension.PARAMETER
    assert at_9.dimension is Dimension.INDUCTION
    assert at_10.dimension_log[-1] is Dimension.INDUCTION
    assert {a.dimension for a in at_10.attempts if a.iteration == 10} == {Dimension.INDUCTION}
    assert len(at_10.inductions) == 1
    assert at_10.inductions[0].startswith("Induction after iteration 10:")
    assert at_10.dimension is Dimension.PARAMETER
    assert at_19.dimension is Dimension.INDUCTION


def test_next_dimension_research_after_three_dead_ends_draws_untried_family() -> None:
    # Arrange
    two_dead_ends = play([0.5, 0.5, 0.5])

    # Act
    three_dead_ends = play([0.5], two_dead_ends)
    proposals = PolicyProposer().propose(three_dead_ends, shipped_catalog(), 2)

    # Assert
    assert two_dead_ends.dead_ends == 2
    assert two_dead_ends.dimension is not Dimension.RESEARCH
    assert three_dead_ends.dead_ends == 3
    assert three_dead_ends.dimension is Dimension.RESEARCH
    tried_families = {a.family for a in three_dead_ends.attempts}
    for proposal in proposals:
        assert proposal.dimension is Dimension.RESEARCH
        family = shipped_catalog().entry(proposal.spec.template).family.value
        assert family not in tried_families


def test_next_dimension_parameter_after_an_improving_round() -> None:
    # Act
    state = play([(0.5, 0.3)])

    # Assert
    assert state.dead_ends == 0
    assert state.dimension is Dimension.PARAMETER


def test_next_dimension_structure_after_flat_parameter_rounds() -> None:
    # Arrange: research and stagnation out of the way.
    goal = goal_with(rules={"dead_ends_for_research": 10, "stagnation_rounds": 20})
    start = start_state(goal, NOW)

    # Act
    one_flat = play([0.5, 0.5], start)
    two_flat = play([0.5], one_flat)

    # Assert
    assert one_flat.dimension is Dimension.PARAMETER
    assert two_flat.dimension_log == (
        Dimension.HYPOTHESIS,
        Dimension.PARAMETER,
        Dimension.PARAMETER,
    )
    assert two_flat.dimension is Dimension.STRUCTURE


def test_next_dimension_hypothesis_after_flat_structure_rounds() -> None:
    # Arrange
    goal = goal_with(rules={"dead_ends_for_research": 10, "stagnation_rounds": 20})
    one_structure = play([0.5, 0.5, 0.5, 0.5], start_state(goal, NOW))

    # Act
    two_structures = play([0.5], one_structure)

    # Assert
    assert one_structure.dimension is Dimension.STRUCTURE
    assert two_structures.dimension_log[-2:] == (Dimension.STRUCTURE, Dimension.STRUCTURE)
    assert two_structures.dimension is Dimension.HYPOTHESIS


def test_next_dimension_structures_exhausted_goes_to_hypothesis() -> None:
    # Arrange: every structure of chandelier_trend tried in iteration 1, the first one best.
    goal = goal_with(rules={"dead_ends_for_research": 10, "stagnation_rounds": 20})
    entry = shipped_catalog().entry("chandelier_trend")
    proposals = [
        Proposal(
            spec=goal_spec(
                goal, shipped_catalog(), entry.name, filters=sorted(f), execution=e, risk=r
            ),
            dimension=Dimension.HYPOTHESIS,
            hypothesis="chandelier",
            proposer="policy",
        )
        for f, e, r in structures(entry)
    ]
    outcomes = [Outcome(0.5)] + [Outcome(0.4)] * (len(proposals) - 1)
    state = fold_proposals(start_state(goal, NOW), proposals, outcomes)

    # Act
    state = play([0.5, 0.5], state)

    # Assert
    assert state.best is not None
    assert state.best.template == "chandelier_trend"
    assert state.dimension_log[-2:] == (Dimension.PARAMETER, Dimension.PARAMETER)
    assert next_dimension(state, shipped_catalog()) is Dimension.HYPOTHESIS
    assert state.dimension is Dimension.HYPOTHESIS


# --- termination ---------------------------------------------------------------------------


def test_termination_stagnated_after_five_flat_rounds_not_four() -> None:
    # Arrange
    four_flat = play([0.5, 0.5, 0.5, 0.5, 0.5])

    # Act
    five_flat = play([0.5], four_flat)

    # Assert
    assert four_flat.status is ResearchStatus.CONTINUING
    assert five_flat.status is ResearchStatus.STAGNATED
    assert five_flat.reason is not None
    assert "from 0.50 to 0.50 over the last 5 iterations" in five_flat.reason


def test_termination_gain_of_minimum_in_window_continues() -> None:
    # Act: +0.012 a round: each round a dead end, but +0.06 over five rounds.
    state = play([1.0, 1.012, 1.024, 1.036, 1.048, 1.06])

    # Assert
    assert state.dead_ends == 5
    assert state.status is ResearchStatus.CONTINUING


def test_termination_no_result_at_all_stagnates() -> None:
    # Act
    state = play([None] * 6)

    # Assert
    assert state.best is None
    assert state.status is ResearchStatus.STAGNATED
    assert state.reason is not None
    assert "from n/a to n/a" in state.reason


def test_termination_goal_met_without_failed_audits() -> None:
    # Act
    state = play([0.5, Outcome(1.3, drawdown=-0.10)])

    # Assert
    assert state.status is ResearchStatus.GOAL_MET
    assert state.best is not None
    assert state.best.verdict is Verdict.GOAL_MET
    assert state.reason is not None
    assert f"goal met by spec {state.best.spec_id}" in state.reason
    assert "OOS Sharpe 1.30 >= 1.20" in state.reason


def test_termination_goal_not_met_with_failed_audit() -> None:
    # Act
    state = play([0.5, Outcome(1.3, drawdown=-0.10, audits=("overfitting_gap",))])

    # Assert
    assert state.status is ResearchStatus.CONTINUING
    assert state.attempts[-1].verdict is Verdict.IMPROVED


def test_termination_goal_met_attempt_outranks_higher_sharpe() -> None:
    # Act: 1.6 with a -30% drawdown first, then 1.3 within the targets in the same round.
    state = play([(Outcome(1.6, drawdown=-0.30), Outcome(1.3, drawdown=-0.10))])

    # Assert
    assert state.status is ResearchStatus.GOAL_MET
    assert state.best == state.attempts[1]


def test_termination_budget_exhausted_at_max_iterations() -> None:
    # Arrange
    goal = goal_with(budget={"max_iterations": 3})

    # Act
    two = play([0.1, 0.2], start_state(goal, NOW))
    three = play([0.3], two)

    # Assert
    assert two.status is ResearchStatus.CONTINUING
    assert three.status is ResearchStatus.BUDGET_EXHAUSTED
    assert three.reason is not None
    assert "3 of 3 iterations" in three.reason


@pytest.mark.parametrize(
    ("cap", "cost", "expected"),
    [
        (2.0, 2.5, ResearchStatus.BUDGET_EXHAUSTED),
        (2.0, 2.0, ResearchStatus.BUDGET_EXHAUSTED),
        (2.0, 1.99, ResearchStatus.CONTINUING),
        (0.0, 5.0, ResearchStatus.CONTINUING),
    ],
    ids=["above-cap", "at-cap", "below-cap", "zero-cap-unlimited"],
)
def test_termination_llm_spend(cap: float, cost: float, expected: ResearchStatus) -> None:
    # Arrange
    goal = goal_with(budget={"max_llm_usd": cap})

    # Act
    state = play([0.5], start_state(goal, NOW), usage=Usage(calls=1, cost_usd=cost))

    # Assert
    assert state.status is expected


# --- falsified hypotheses ------------------------------------------------------------------


def test_falsified_line_added_once_per_template() -> None:
    # Arrange: the seeds, then parameter rounds on ema_crossover (best), all below the bar 0.8.
    after_seeds = play([(0.5, 0.3)])

    # Act
    after_two = play([0.5], after_seeds)
    after_four = play([0.55, 0.6], after_two)

    # Assert
    assert after_seeds.falsified == ()
    assert after_two.falsified == (
        f"ema_crossover (trend): {EMA_HYPOTHESIS} — best OOS Sharpe 0.50 over 2 specs",
    )
    assert after_four.falsified == after_two.falsified


def test_falsified_template_reaching_archive_bar_is_not_falsified() -> None:
    # Act: 0.9 and -20% clear the archive bar (0.8, -25%) but not the targets.
    state = play([(0.9, 0.3), 0.85])

    # Assert
    assert not any(line.startswith("ema_crossover") for line in state.falsified)


def test_falsified_template_with_only_rejected_attempts() -> None:
    # Act
    state = play([None])

    # Assert
    assert state.falsified == (
        f"ema_crossover (trend): {EMA_HYPOTHESIS} — best OOS Sharpe n/a over 1 spec",
    )


# --- induction, stop, structures -----------------------------------------------------------


def test_induction_summary_names_families_falsified_and_direction() -> None:
    # Arrange
    state = play([(0.5, 0.3), 0.5, 0.45])

    # Act
    summary = induction_summary(state, shipped_catalog())

    # Assert
    assert summary.splitlines() == [
        "Induction after iteration 3:",
        "- trend: 3 specs, best OOS Sharpe 0.50; falsified: [ema_crossover]",
        "- momentum: 1 spec, best OOS Sharpe 0.30; falsified: none",
        "Untried families: [breakout, mean_reversion, volatility, carry_seasonality]",
        "Direction: continue with family trend: untried templates [aroon_trend, "
        "chandelier_trend, clenow_trend_following, ema_trend_adx, macd_crossover, ... "
        "(5 more)]",
    ]


def test_stop_running_state_is_stopped_with_reason() -> None:
    # Act
    state = stop(play([0.5]), "enough for today (alice)", NOW)

    # Assert
    assert state.status is ResearchStatus.STOPPED
    assert state.reason == "stopped by a person: enough for today (alice)"
    assert not state.is_running


def test_stop_ended_state_unchanged() -> None:
    # Arrange
    met = play([Outcome(1.3, drawdown=-0.10)])

    # Act
    stopped = stop(met, "too late", NOW)

    # Assert
    assert stopped == met
    assert stopped.status is ResearchStatus.GOAL_MET


@pytest.mark.parametrize(
    ("filters", "execution", "risk"),
    [
        ([], "signal_exit_only", "fixed_fraction"),
        (["adx_strength", "direction"], "atr_stops", "volatility_target"),
    ],
)
def test_structure_of_reads_describe_modules(filters: list[str], execution: str, risk: str) -> None:
    # Arrange
    spec = goal_spec(
        shipped_goal(),
        shipped_catalog(),
        "ema_crossover",
        filters=filters,
        execution=execution,
        risk=risk,
    )

    # Act
    structure = structure_of(describe_modules(spec))

    # Assert
    assert structure == (frozenset(filters), execution, risk)
