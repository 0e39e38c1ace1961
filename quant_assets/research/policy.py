"""The exploration policy: judge attempts, fold an iteration into the state, choose what comes next.

Both proposers share it, and `fold_iteration` is the one way a `ResearchState` advances.

Verdicts (`judge`, in order): no metrics -> rejected; the goal's targets met with no failed
blocking audit -> goal_met; OOS Sharpe >= best so far + `min_sharpe_gain` -> improved (the first
result always improves); else no_gain. The attempts of one iteration are judged in order, each
against a best that includes the ones before it. The best is the attempt with the highest finite
OOS Sharpe, except that one meeting the goal outranks any that does not.

An iteration improved when it raised the best OOS Sharpe by at least `min_sharpe_gain`; every other
iteration is a dead end (`dead_ends` counts them in a row).

Termination (`termination`, in order): GOAL_MET (an attempt met the goal); BUDGET_EXHAUSTED
(`max_iterations` done, or LLM spend reached `max_llm_usd` when that cap is above zero; a zero cap
leaves spend unlimited); STAGNATED (over the last `stagnation_rounds` iterations the best OOS
Sharpe rose less than `min_sharpe_gain`; no result at all counts as minus infinity). A person
ends the loop with `stop`.

Next dimension (`next_dimension`, for iteration k + 1 after k completed, first rule that fires):
1. INDUCTION when k + 1 is a multiple of `induction_every` (forced);
2. RESEARCH when `dead_ends` is a positive multiple of `dead_ends_for_research`;
3. HYPOTHESIS when no attempt has produced a result yet;
4. PARAMETER when the last iteration improved the best (whatever dimension found it);
5. STRUCTURE when the trailing dead ends hold `parameter_rounds` parameter rounds in a row;
6. HYPOTHESIS when they hold `structure_rounds` structure rounds in a row;
7. else the last of PARAMETER / STRUCTURE / HYPOTHESIS explored (HYPOTHESIS if none).
Induction and research rounds are interludes: they neither count toward a run nor break one.
Whenever the rules pick STRUCTURE but every filter / execution / risk combination the best
template allows has been tried, HYPOTHESIS is taken instead.
"""

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.governance import ArchiveThresholds
from quant_assets.domain.research import (
    NOTE_CHARS,
    RATIONALE_CHARS,
    Attempt,
    AttemptMetrics,
    Dimension,
    ResearchGoal,
    ResearchState,
    ResearchStatus,
    ResearchTargets,
    Usage,
    Verdict,
)
from quant_assets.domain.strategy import StrategySpec
from quant_assets.research.space import (
    goal_families,
    untried_families,
    untried_structures,
    untried_templates,
)
from quant_assets.strategy.catalog.loader import Catalog, StrategyFamily

"""A template's module choice: (filters, execution, risk)."""

EXPLORATIVE: Final = (Dimension.PARAMETER, Dimension.STRUCTURE, Dimension.HYPOTHESIS)
_LISTED: Final = 5
_SENTENCE_CHARS: Final = 200
_GAIN_TOLERANCE: Final = 1e-9
_SENTENCE: Final = re.compile(r"^(.+?[.!?])(?:\s|$)")


def start_state(goal: ResearchGoal, now: datetime) -> ResearchState:
    """Return the state of a goal before its first iteration."""
    return ResearchState(
        goal=goal,
        dimension=Dimension.HYPOTHESIS,
        next_action=_next_action(goal, Dimension.HYPOTHESIS),
        updated_at=now,
    )


def judge(attempt: Attempt, state: ResearchState) -> Verdict:
    """Return the verdict of an attempt against the state's goal and best so far."""
    if attempt.metrics is None:
        return Verdict.REJECTED
    if meets(attempt.metrics, state.goal.targets) and not attempt.failed_audits:
        return Verdict.GOAL_MET
    if _reaches_gain(_sharpe(state.best), attempt.metrics.oos_sharpe, state.goal):
        return Verdict.IMPROVED
    return Verdict.NO_GAIN


def meets(metrics: AttemptMetrics, bar: ResearchTargets | ArchiveThresholds) -> bool:
    """Return whether OOS Sharpe and drawdown reach a bar (targets or archive thresholds)."""
    return metrics.oos_sharpe >= bar.min_oos_sharpe and metrics.oos_max_drawdown >= bar.max_drawdown


def fold_iteration(
    state: ResearchState,
    attempts: Sequence[Attempt],
    *,
    specs: Mapping[str, StrategySpec],
    usage: Usage,
    now: datetime,
    catalog: Catalog,
) -> ResearchState:
    """Return the state after one iteration's results: judged, counted, terminated or steered.

    Args:
        state: The state the iteration was proposed from (CONTINUING).
        attempts: The iteration's attempts with metrics, audits and record filled in; their
            `modules` must be `describe_modules(spec)`; verdicts are set here.
        specs: Specs by spec id; must hold the spec of any attempt that becomes the best.
        usage: LLM usage of the iteration (zero for the policy proposer).
        now: The time of the fold (timezone-aware).
        catalog: The template catalog (structures, falsified lines, induction summaries).

    Raises:
        QuantAssetsError: if the loop has ended, an attempt names another iteration, or the new
            best's spec is missing from `specs`.
    """
    _check_foldable(state, attempts)
    folded = state
    for attempt in attempts:
        judged = attempt.model_copy(update={"verdict": judge(attempt, folded)})
        best = judged if _outranks(judged, folded.best) else folded.best
        folded = folded.model_copy(update={"attempts": (*folded.attempts, judged), "best": best})
    improved = not _same(folded.best, state.best) and _reaches_gain(
        _sharpe(state.best), _sharpe(folded.best), state.goal
    )
    folded = folded.model_copy(
        update={
            "iteration": state.iteration + 1,
            "best_spec": _best_spec(state, folded.best, specs),
            "best_by_iteration": (*state.best_by_iteration, _sharpe_or_none(folded.best)),
            "dimension_log": (*state.dimension_log, state.dimension),
            "falsified": falsified_lines(folded.attempts, state.falsified, state.goal, catalog),
            "dead_ends": 0 if improved else state.dead_ends + 1,
            "spend": state.spend + usage,
            "pending": (),
        }
    )
    if state.dimension is Dimension.INDUCTION:
        summary = induction_summary(folded, catalog)
        folded = folded.model_copy(update={"inductions": (*folded.inductions, summary)})
    return _updated(_steer(folded, catalog), updated_at=now)


def termination(state: ResearchState) -> tuple[ResearchStatus, str] | None:
    """Return the status that ends the loop and why, or None while it should go on."""
    goal, best = state.goal, state.best
    met = next((a for a in state.attempts if a.verdict is Verdict.GOAL_MET), None)
    if met is not None and met.metrics is not None:
        return ResearchStatus.GOAL_MET, (
            f"goal met by spec {met.spec_id} ({met.template}): OOS Sharpe "
            f"{met.metrics.oos_sharpe:.2f} >= {goal.targets.min_oos_sharpe:.2f} and max drawdown "
            f"{met.metrics.oos_max_drawdown:.1%} >= {goal.targets.max_drawdown:.1%}, no failed "
            "blocking audit"
        )
    if state.iteration >= goal.budget.max_iterations:
        return ResearchStatus.BUDGET_EXHAUSTED, (
            f"budget exhausted: {state.iteration} of {goal.budget.max_iterations} iterations done"
            f"; best OOS Sharpe {_text(_sharpe_or_none(best))}"
        )
    cap = goal.budget.max_llm_usd
    if cap > 0 and state.spend.cost_usd >= cap:
        return ResearchStatus.BUDGET_EXHAUSTED, (
            f"budget exhausted: LLM spend ${state.spend.cost_usd:.2f} reached the cap ${cap:.2f} "
            f"after {state.iteration} iterations"
        )
    rounds = goal.rules.stagnation_rounds
    history = state.best_by_iteration
    if len(history) > rounds:
        before, now = history[-1 - rounds], history[-1]
        if not _reaches_gain(_number(before), _number(now), goal):
            return ResearchStatus.STAGNATED, (
                f"stagnated: best OOS Sharpe went from {_text(before)} to {_text(now)} over the "
                f"last {rounds} iterations, a gain below the minimum {goal.rules.min_sharpe_gain}"
            )
    return None


def next_dimension(state: ResearchState, catalog: Catalog) -> Dimension:
    """Return the dimension iteration `state.iteration + 1` explores (rules: module docstring)."""
    rules = state.goal.rules
    if (state.iteration + 1) % rules.induction_every == 0:
        return Dimension.INDUCTION
    if state.dead_ends and state.dead_ends % rules.dead_ends_for_research == 0:
        return Dimension.RESEARCH
    if state.best is None:
        return Dimension.HYPOTHESIS
    if state.dead_ends == 0:
        return Dimension.PARAMETER
    flat = [d for d in state.dimension_log[-state.dead_ends :] if d in EXPLORATIVE]
    run = _trailing(flat)
    if flat and flat[-1] is Dimension.PARAMETER and run >= rules.parameter_rounds:
        chosen = Dimension.STRUCTURE
    elif flat and flat[-1] is Dimension.STRUCTURE and run >= rules.structure_rounds:
        chosen = Dimension.HYPOTHESIS
    else:
        explored = [d for d in state.dimension_log if d in EXPLORATIVE]
        chosen = explored[-1] if explored else Dimension.HYPOTHESIS
    if chosen is Dimension.STRUCTURE and not untried_structures(state, catalog):
        return Dimension.HYPOTHESIS
    return chosen


def stop(state: ResearchState, reason: str, now: datetime, by: str = "a person") -> ResearchState:
    """Return the state stopped by someone (an ended state is returned unchanged).

    Args:
        state: The state to stop.
        reason: Why, as the person (or the sensor) said it.
        now: When (timezone-aware).
        by: Who stopped it: a person's name, `a person`, or `research_sensor` when the loop
            cannot go on (no untried spec left inside the catalog).
    """
    if not state.is_running:
        return state
    return _updated(
        state,
        status=ResearchStatus.STOPPED,
        reason=f"stopped by {by}: {reason}"[:NOTE_CHARS],
        next_action=_ended_action(ResearchStatus.STOPPED),
        updated_at=now,
    )


def record_proposals(state: ResearchState, spec_ids: Sequence[str], now: datetime) -> ResearchState:
    """Return the state with an iteration's proposed spec ids in flight (`pending`)."""
    return _updated(state, pending=tuple(spec_ids), updated_at=now)


def falsified_lines(
    attempts: Sequence[Attempt], existing: Sequence[str], goal: ResearchGoal, catalog: Catalog
) -> tuple[str, ...]:
    """Return the falsified hypotheses: `existing` plus one new line per newly refuted template.

    A template is refuted when it has two or more attempts that ran, or only rejected ones, and
    none of them reached the goal's archive bar.
    """
    bar = goal.archive_thresholds()
    done = {line.split(" (", 1)[0] for line in existing}
    lines = list(existing)
    for template in dict.fromkeys(a.template for a in attempts):
        mine = [a for a in attempts if a.template == template]
        ran = [a.metrics for a in mine if a.metrics is not None]
        if template in done or (0 < len(ran) < 2) or any(meets(m, bar) for m in ran):
            continue
        best = _text(max((m.oos_sharpe for m in ran), default=None))
        hypothesis = _hypothesis_of(template, mine[0], catalog)
        lines.append(
            f"{template} ({mine[0].family}): {first_sentence(hypothesis)} — best OOS Sharpe "
            f"{best} over {_specs(len(mine))}"
        )
    return tuple(lines)


def induction_summary(state: ResearchState, catalog: Catalog) -> str:
    """Return what the results so far say per family, and the direction chosen (bounded text)."""
    lines = [f"Induction after iteration {state.iteration}:"]
    for family in StrategyFamily:
        mine = [a for a in state.attempts if a.family == family.value]
        if not mine:
            continue
        falsified = [t for t in dict.fromkeys(a.template for a in mine) if _is_falsified(state, t)]
        best = max((a.metrics.oos_sharpe for a in mine if a.metrics is not None), default=None)
        lines.append(
            f"- {family.value}: {_specs(len(mine))}, best OOS Sharpe {_text(best)}; falsified: "
            f"{_names(falsified) if falsified else 'none'}"
        )
    untried = untried_families(state, catalog)
    lines.append(f"Untried families: {_names(untried) if untried else 'none'}")
    lines.append(f"Direction: {induction_direction(state, catalog)[1]}")
    return "\n".join(lines)[:RATIONALE_CHARS]


def induction_direction(state: ResearchState, catalog: Catalog) -> tuple[Dimension, str]:
    """Return the most promising dimension after an induction, and the direction in words.

    In order: untried templates of the best family (of the goal's families before any result),
    untried structures of the best template, an untried family, parameters of the best spec.
    """
    family = state.best.family if state.best is not None else None
    families = (family,) if family is not None else goal_families(state.goal)
    templates = [e.name for e in untried_templates(state, catalog, families)]
    if templates:
        where = f"family {family}" if family is not None else "the goal's families"
        return Dimension.HYPOTHESIS, f"continue with {where}: untried templates {_names(templates)}"
    if state.best is not None and untried_structures(state, catalog):
        count = len(untried_structures(state, catalog))
        return Dimension.STRUCTURE, (
            f"structure variants of best template {state.best.template} ({count} untried)"
        )
    untried = untried_families(state, catalog)
    if untried:
        return Dimension.RESEARCH, f"draw an untried family: {_names(untried)}"
    return Dimension.PARAMETER, "refine the parameters of the best spec"


def first_sentence(text: str) -> str:
    """Return the first sentence of a text (whitespace collapsed, cut at 200 characters)."""
    flat = " ".join(text.split())
    match = _SENTENCE.match(flat)
    sentence = match.group(1) if match else flat
    return sentence if len(sentence) <= _SENTENCE_CHARS else sentence[: _SENTENCE_CHARS - 3] + "..."


def _updated(state: ResearchState, **update: object) -> ResearchState:
    # Validate the result: model_copy alone would accept a naive time or a malformed field.
    return ResearchState.model_validate({**state.model_dump(), **update})


def _check_foldable(state: ResearchState, attempts: Sequence[Attempt]) -> None:
    if not state.is_running:
        raise QuantAssetsError(
            f"research of goal '{state.goal.name}' ended ({state.status}: {state.reason}); "
            "results cannot be folded into it; start a new state to research again"
        )
    for attempt in attempts:
        if attempt.iteration != state.iteration + 1:
            raise QuantAssetsError(
                f"attempt {attempt.spec_id} names iteration {attempt.iteration}, but the state "
                f"of goal '{state.goal.name}' expects iteration {state.iteration + 1}; fold each "
                "iteration's results once, in order"
            )


def _steer(state: ResearchState, catalog: Catalog) -> ResearchState:
    ended = termination(state)
    if ended is not None:
        status, reason = ended
        return state.model_copy(
            update={"status": status, "reason": reason, "next_action": _ended_action(status)}
        )
    dimension = next_dimension(state, catalog)
    return state.model_copy(
        update={"dimension": dimension, "next_action": _next_action(state.goal, dimension)}
    )


def _next_action(goal: ResearchGoal, dimension: Dimension) -> str:
    count = goal.budget.proposals_per_iteration
    what = {
        Dimension.PARAMETER: "narrow the search ranges around the best spec's best region",
        Dimension.STRUCTURE: "swap the best template's filters, execution or risk modules",
        Dimension.HYPOTHESIS: "instantiate an untried template of the goal's families",
        Dimension.INDUCTION: "summarize what was falsified and continue the best direction",
        Dimension.RESEARCH: "draw a strategy family with no attempts yet from the catalog",
    }[dimension]
    return f"propose {count} specs exploring {dimension.value}: {what}"


def _ended_action(status: ResearchStatus) -> str:
    if status is ResearchStatus.STOPPED:
        return "none: stopped by a person; start the goal again to resume research"
    return "freeze the best candidate record, if any, and wait for a person's approval"


def _best_spec(
    state: ResearchState, best: Attempt | None, specs: Mapping[str, StrategySpec]
) -> StrategySpec | None:
    if best is None or _same(best, state.best):
        return state.best_spec
    if best.spec_id not in specs:
        raise QuantAssetsError(
            f"attempt {best.spec_id} ({best.template}) became the best of goal "
            f"'{state.goal.name}', but its spec was not among the {len(specs)} specs given; "
            "pass every attempt's spec in `specs`"
        )
    return specs[best.spec_id]


def _outranks(attempt: Attempt, best: Attempt | None) -> bool:
    if attempt.metrics is None or not math.isfinite(attempt.metrics.oos_sharpe):
        return False
    if best is None or best.metrics is None:
        return True
    met, best_met = attempt.verdict is Verdict.GOAL_MET, best.verdict is Verdict.GOAL_MET
    if met != best_met:
        return met
    return attempt.metrics.oos_sharpe > best.metrics.oos_sharpe


def _same(one: Attempt | None, other: Attempt | None) -> bool:
    if one is None or other is None:
        return one is other
    return (one.spec_id, one.iteration) == (other.spec_id, other.iteration)


def _reaches_gain(before: float, after: float, goal: ResearchGoal) -> bool:
    # -inf stands for "no result": any result gains on it, and nothing gains on -inf itself.
    if after == -math.inf:
        return False
    # A tolerance keeps 0.55 -> 0.60 a gain of 0.05 despite binary floating point.
    return after - before >= goal.rules.min_sharpe_gain - _GAIN_TOLERANCE


def _sharpe(attempt: Attempt | None) -> float:
    return _number(_sharpe_or_none(attempt))


def _sharpe_or_none(attempt: Attempt | None) -> float | None:
    return None if attempt is None or attempt.metrics is None else attempt.metrics.oos_sharpe


def _number(value: float | None) -> float:
    return -math.inf if value is None else value


def _text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _trailing(dimensions: Sequence[Dimension]) -> int:
    count = 0
    for dimension in reversed(dimensions):
        if dimension is not dimensions[-1]:
            break
        count += 1
    return count


def _is_falsified(state: ResearchState, template: str) -> bool:
    return any(line.split(" (", 1)[0] == template for line in state.falsified)


def _hypothesis_of(template: str, attempt: Attempt, catalog: Catalog) -> str:
    if template in catalog.names():
        return catalog.entry(template).hypothesis
    return attempt.hypothesis


def _specs(count: int) -> str:
    return f"{count} spec" if count == 1 else f"{count} specs"


def _names(names: Sequence[str]) -> str:
    listed = ", ".join(names[:_LISTED])
    more = f", ... ({len(names) - _LISTED} more)" if len(names) > _LISTED else ""
    return f"[{listed}{more}]"
