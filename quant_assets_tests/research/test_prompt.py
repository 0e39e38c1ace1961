import pytest

from quant_assets.domain.research import (
    Attempt,
    AttemptMetrics,
    Dimension,
    ResearchGoal,
    ResearchState,
    Verdict,
)
from quant_assets.research.prompt import RECENT_ATTEMPTS, catalog_prompt, state_prompt
from quant_assets.research.spec_builder import goal_spec
from quant_assets.strategy.catalog.loader import Catalog


def attempt(iteration: int) -> Attempt:
    return Attempt(
        iteration=iteration,
        spec_id=f"spec{iteration:012d}",
        template="ema_crossover",
        family="trend",
        dimension=Dimension.PARAMETER,
        proposer="policy",
        modules="ema_cross + [adx_strength] / atr_stops / fixed_fraction",
        hypothesis=f"Hypothesis number {iteration}: hourly trends persist after an EMA cross.",
        metrics=AttemptMetrics(
            oos_sharpe=0.5 + iteration / 1000,
            oos_max_drawdown=-0.2,
            oos_total_return=0.4,
            oos_trades=120,
            is_sharpe=1.1,
            deflated_sharpe=0.3,
        ),
        best_params={"baseline.fast_span_bars": 12, "baseline.slow_span_bars": 200},
        verdict=Verdict.NO_GAIN,
        note=f"note of attempt {iteration}",
    )


def long_state(goal: ResearchGoal, catalog: Catalog, attempts: int) -> ResearchState:
    history = tuple(attempt(i) for i in range(1, attempts + 1))
    return ResearchState(
        goal=goal,
        iteration=attempts,
        dimension=Dimension.STRUCTURE,
        attempts=history,
        best=history[len(history) // 2],
        best_spec=goal_spec(goal, catalog, "ema_crossover"),
        falsified=tuple(f"falsified hypothesis {i}: fast EMAs beat slow ones" for i in range(40)),
        inductions=tuple(f"induction {i}: trend filters reduce whipsaw" for i in range(6)),
        dead_ends=2,
    )


def test_catalog_prompt_lists_every_template_meant_for_the_timeframe_only(
    catalog: Catalog,
) -> None:
    # Arrange
    usable = {entry.name for entry in catalog.entries if "1h" in entry.timeframes}
    others = {entry.name for entry in catalog.entries} - usable

    # Act
    prompt = catalog_prompt(catalog, "1h")

    # Assert
    assert {name for name in usable if f"### {name} (" in prompt} == usable
    assert not {name for name in others if f"### {name} (" in prompt}


def test_catalog_prompt_is_deterministic_and_carries_bounds(catalog: Catalog) -> None:
    # Act
    first, second = catalog_prompt(catalog, "1h"), catalog_prompt(catalog, "1h")

    # Assert
    assert first == second
    section = first[first.index("### ema_crossover (") :]
    assert "Baseline: ema_cross {fast_span_bars [5, 50], slow_span_bars [60, 400]}" in section
    assert "atr_stops {atr_bars [7, 50], stop_atr [1, 6], target_atr [2, 12]}" in section
    assert "propose_strategy_specs" in first


def test_state_prompt_of_a_fresh_state_names_goal_targets_budget_and_dimension(
    goal: ResearchGoal,
) -> None:
    # Arrange
    state = ResearchState(goal=goal, dimension=Dimension.HYPOTHESIS)

    # Act
    prompt = state_prompt(state)

    # Assert
    assert "btc_eth_trend_1h" in prompt
    assert "Sharpe >= 1.2" in prompt
    assert "-0.15" in prompt
    assert "0 of 40 iterations" in prompt
    assert "$0.0000 of $2.00" in prompt
    assert "Requested dimension: hypothesis" in prompt
    assert "none yet" in prompt


def test_state_prompt_of_a_short_history_keeps_every_detail(
    goal: ResearchGoal, catalog: Catalog
) -> None:
    # Arrange
    state = long_state(goal, catalog, attempts=4)

    # Act
    prompt = state_prompt(state, max_chars=100_000)

    # Assert
    assert all(f"spec {a.spec_id}:" in prompt for a in state.attempts)
    assert all(text in prompt for text in state.falsified)
    assert all(text in prompt for text in state.inductions)


def test_state_prompt_of_300_attempts_fits_and_keeps_what_matters(
    goal: ResearchGoal, catalog: Catalog
) -> None:
    # Arrange
    state = long_state(goal, catalog, attempts=300)
    assert state.best is not None

    # Act
    prompt = state_prompt(state, max_chars=12_000)

    # Assert
    assert len(prompt) <= 12_000
    assert "# Research goal: btc_eth_trend_1h" in prompt
    assert f"spec {state.best.spec_id}:" in prompt
    assert "best spec: template ema_crossover" in prompt
    recent = state.attempts[-RECENT_ATTEMPTS:]
    assert all(f"spec {a.spec_id}:" in prompt and a.note in prompt for a in recent)
    assert f"spec {state.attempts[0].spec_id}:" not in prompt
    assert state.falsified[-1] in prompt
    assert state.inductions[-1] in prompt
    assert "older omitted" in prompt


def test_state_prompt_drops_the_oldest_attempt_detail_before_any_induction(
    goal: ResearchGoal, catalog: Catalog
) -> None:
    # Arrange
    state = long_state(goal, catalog, attempts=10)
    full = state_prompt(state, max_chars=1_000_000)

    # Act
    prompt = state_prompt(state, max_chars=len(full) - 1)

    # Assert
    assert f"spec {state.attempts[0].spec_id}:" not in prompt
    assert "- iteration 1: ema_crossover" in prompt
    assert f"spec {state.attempts[1].spec_id}:" in prompt
    assert all(text in prompt for text in state.inductions)
    assert all(text in prompt for text in state.falsified)


@pytest.mark.parametrize("max_chars", [50, 500, 2_000, 4_000, 8_000, 12_000, 30_000])
def test_state_prompt_never_exceeds_its_bound(
    goal: ResearchGoal, catalog: Catalog, max_chars: int
) -> None:
    # Arrange
    state = long_state(goal, catalog, attempts=300)

    # Act
    prompt = state_prompt(state, max_chars=max_chars)

    # Assert
    assert 0 < len(prompt) <= max_chars
