"""The research loop's asset: `research_state`, one partition per research goal.

Each materialization applies one action to a goal's state and persists the new version in the
warehouse and in its materialization metadata (where `research_sensor` reads it, never from
DuckDB):

- `start`: register the goal file (immutable once registered) and open its state;
- `fold`: fold the results of one iteration's specs (walk-forward runs, archive records,
  audits) into the state with the exploration policy, which also decides termination and the
  next dimension; when the loop ends with a candidate, the best one is frozen and its holdout
  evaluated once (status AWAITING_APPROVAL);
- `stop`: a person stops the loop (the best candidate, if any, is frozen too).
"""

from datetime import UTC, datetime
from typing import Literal

import dagster as dg
from dagster import DagsterLogManager
from pydantic import Field

from quant_assets.defs.archive_actions import freeze
from quant_assets.defs.governance import archive_latest_run, archive_records
from quant_assets.defs.partitions import goal_partitions
from quant_assets.defs.research_tags import SPEC_TAG
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.spec_preflight import preflight_spec
from quant_assets.domain.errors import ConfigurationError, QuantAssetsError, SpecValidationError
from quant_assets.domain.ids import content_id
from quant_assets.domain.research import (
    Attempt,
    Proposal,
    ResearchGoal,
    ResearchState,
    ResearchStatus,
    Usage,
)
from quant_assets.domain.strategy import StrategySpec
from quant_assets.research.attempts import best_candidate, ran_attempt, rejected_attempt
from quant_assets.research.goals import goal_path, load_goal
from quant_assets.research.policy import fold_iteration, start_state, stop
from quant_assets.research.space import goal_templates
from quant_assets.research.spec_builder import goal_spec
from quant_assets.research.state_text import attempts_markdown, render_state
from quant_assets.storage.research import load_spec
from quant_assets.storage.research_loop import (
    iteration_proposals,
    latest_state,
    register_goal,
    save_state,
)
from quant_assets.storage.walkforward import latest_run
from quant_assets.strategy.catalog.loader import Catalog, load_catalog


class ResearchStateConfig(dg.Config):
    """What to do to the goal's state (the partition names the goal)."""

    action: Literal["start", "fold", "stop"] = Field(
        default="fold", description="start the goal, fold an iteration's results, or stop it."
    )
    iteration: int = Field(default=0, ge=0, description="fold: the iteration whose specs ran.")
    reason: str = Field(default="", description="stop: why (for the state and the trail).")
    actor: str = Field(default="", description="stop: who stopped it.")


@dg.asset(
    partitions_def=goal_partitions,
    # A goal's state folds the archive records of many specs (any spec partition).
    deps=[dg.AssetDep(archive_records, partition_mapping=dg.AllPartitionMapping())],
    group_name="research",
    pool="warehouse",
    code_version="1",
    kinds={"duckdb"},
    owners=["team:research"],
)
def research_state(
    context: dg.AssetExecutionContext, config: ResearchStateConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """A research goal's loop state (ITER_STATE): attempts, best, dimension, spend, status."""
    goal_name, now = context.partition_key, datetime.now(UTC)
    catalog = load_catalog()
    current = latest_state(warehouse.warehouse(), goal_name)
    if config.action == "start":
        state = started_state(warehouse, goal_name, catalog, current, now)
    elif current is None:
        raise dg.Failure(
            f"research goal '{goal_name}' was never started; run "
            f"`quant-assets research start {goal_name}`"
        )
    elif config.action == "stop":
        reason, by = config.reason or "no reason given", config.actor or "a person"
        state = stop(current, reason, now, by) if current.is_running else current
        state = freeze_best(warehouse, state, context.log)
    else:
        state = folded_state(warehouse, context, current, config.iteration, catalog, now)
    if state is not current:
        save_state(warehouse.warehouse(), state)
    context.log.info(
        f"goal {goal_name}: iteration {state.iteration}, {state.status}, next {state.dimension}"
        f"{'' if state.reason is None else f' ({state.reason})'}"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(content_id(state)), metadata=state_metadata(state)
    )


def started_state(
    warehouse: WarehouseResource,
    goal_name: str,
    catalog: Catalog,
    current: ResearchState | None,
    now: datetime,
) -> ResearchState:
    """Return the state a start leaves: a new one, the running one, or a stopped one resumed.

    Raises:
        ConfigurationError: if the goal file is bad, its data slice is not stored, it changed
            since it was registered, or the goal already ended (other than by a stop).
    """
    goal = load_goal(goal_path(warehouse.goals_path(), goal_name), catalog)
    check_goal_data(warehouse, goal, catalog)
    register_goal(warehouse.warehouse(), goal)
    if current is None:
        return start_state(goal, now)
    if current.is_running:
        return current
    if current.status is ResearchStatus.STOPPED:
        return current.model_copy(
            update={"status": ResearchStatus.CONTINUING, "reason": None, "updated_at": now}
        )
    raise ConfigurationError(
        f"research goal '{goal_name}' already ended ({current.status}: {current.reason}); "
        "to research further, save the goal under a new name and start that"
    )


def check_goal_data(warehouse: WarehouseResource, goal: ResearchGoal, catalog: Catalog) -> None:
    """Check that the goal's instruments are registered and their bars cover its slice.

    The check is a spec's pre-flight: the goal's first template on the goal's slice.

    Raises:
        ConfigurationError: naming each instrument or period problem and the fix.
    """
    templates = goal_templates(goal, catalog)
    if not templates:
        raise ConfigurationError(
            f"research goal '{goal.name}': no catalog template is meant for timeframe "
            f"{goal.data.timeframe} and its instruments' asset classes; change the data slice"
        )
    store = warehouse.warehouse()
    try:
        preflight_spec(goal_spec(goal, catalog, templates[0].name), store)
    except SpecValidationError as e:
        problems = str(e).split(" problem(s):", 1)[-1]
        raise ConfigurationError(
            f"research goal '{goal.name}' cannot start: its data slice is not what the "
            f"warehouse holds:{problems}"
        ) from e


def folded_state(
    warehouse: WarehouseResource,
    context: dg.AssetExecutionContext,
    current: ResearchState,
    iteration: int,
    catalog: Catalog,
    now: datetime,
) -> ResearchState:
    """Return the state with one iteration's results folded in (unchanged if already folded).

    Raises:
        dagster.Failure: if the iteration is not the next one, or has no proposals.
    """
    if iteration <= current.iteration:
        context.log.info(f"iteration {iteration} is already folded; nothing to do")
        return current
    if iteration != current.iteration + 1 or not current.is_running:
        raise dg.Failure(
            f"cannot fold iteration {iteration} of goal '{current.goal.name}': the state is at "
            f"iteration {current.iteration} ({current.status}); fold iteration "
            f"{current.iteration + 1} of a running goal"
        )
    proposals = iteration_proposals(warehouse.warehouse(), current.goal.name, iteration)
    if not proposals:
        raise dg.Failure(
            f"iteration {iteration} of goal '{current.goal.name}' has no recorded proposals; "
            "their strategy_specs runs did not start"
        )
    attempts: list[Attempt] = []
    specs: dict[str, StrategySpec] = {}
    usage = Usage()
    for proposal, call_usage in proposals:
        usage = usage + call_usage
        specs[proposal.spec.spec_id] = proposal.spec
        attempts.append(attempt_for(warehouse, context, current.goal, proposal, iteration, catalog))
    state = fold_iteration(current, attempts, specs=specs, usage=usage, now=now, catalog=catalog)
    return freeze_best(warehouse, state, context.log)


def attempt_for(
    warehouse: WarehouseResource,
    context: dg.AssetExecutionContext,
    goal: ResearchGoal,
    proposal: Proposal,
    iteration: int,
    catalog: Catalog,
) -> Attempt:
    """Return what one proposed spec produced: its archived run, or why it produced none.

    A run whose blocking audits failed never reached `archive_records`; its record is opened
    here (as discarded), so every run of the goal is archived with its audit verdicts.
    """
    spec_id = proposal.spec.spec_id
    store = warehouse.warehouse()
    run = latest_run(store, spec_id)
    if run is None:
        reason = why_no_run(warehouse, context, spec_id)
        return rejected_attempt(proposal, iteration, reason, catalog)
    record, _ = archive_latest_run(warehouse, spec_id, goal.name)
    return ran_attempt(proposal, iteration, run, record, catalog)


def why_no_run(
    warehouse: WarehouseResource, context: dg.AssetExecutionContext, spec_id: str
) -> str:
    """Return why a spec has no walk-forward run: its pre-flight error, or its run's failure."""
    store = warehouse.warehouse()
    try:
        preflight_spec(load_spec(store, spec_id), store)
    except QuantAssetsError as e:
        return f"pre-flight failed: {e}"
    runs = context.instance.get_runs(dg.RunsFilter(tags={SPEC_TAG: spec_id}), limit=1)
    if runs:
        return f"run {runs[0].run_id} ended {runs[0].status.value} without a walk-forward result"
    return "no run of the spec was found"


def freeze_best(
    warehouse: WarehouseResource, state: ResearchState, log: DagsterLogManager
) -> ResearchState:
    """Freeze the best candidate of a loop that just ended; return the state after it.

    A loop that ends with a candidate freezes it (its holdout is evaluated once) and waits for
    a person's approval (AWAITING_APPROVAL). Without a candidate, or if freezing is refused
    (the holdout holds too few bars, say), the state keeps its status and says why.
    """
    if state.is_running or state.frozen_record_id is not None:
        return state
    best = best_candidate(state.attempts)
    if best is None or best.record_id is None:
        return state.model_copy(
            update={
                "next_action": "nothing to approve: no attempt became a candidate (archive bar "
                "and every blocking audit)"
            }
        )
    try:
        record = freeze(
            warehouse, best.record_id, f"research goal {state.goal.name} ended: {state.status}"
        )
    except QuantAssetsError as e:
        log.warning(f"could not freeze record {best.record_id}: {e}")
        return state.model_copy(update={"next_action": f"freeze failed: {str(e)[:300]}"})
    log.info(f"froze record {record.record_id} (spec {record.spec_id}); it awaits approval")
    return state.model_copy(
        update={
            "status": ResearchStatus.AWAITING_APPROVAL,
            "frozen_record_id": record.record_id,
            "reason": f"{state.status}: {state.reason}",
            "next_action": (
                f"a person approves or rejects record {record.record_id}: "
                f"quant-assets approve {record.record_id} --approver NAME --reason WHY"
            ),
        }
    )


def state_metadata(state: ResearchState) -> dict[str, dg.MetadataValue]:
    """Return what the UI shows and the sensor reads: numbers, the ITER_STATE, the state JSON."""
    best = state.best.metrics if state.best is not None else None
    metadata: dict[str, dg.MetadataValue] = {
        "goal": dg.MetadataValue.text(state.goal.name),
        "status": dg.MetadataValue.text(state.status.value),
        "iteration": dg.MetadataValue.int(state.iteration),
        "attempts": dg.MetadataValue.int(len(state.attempts)),
        "dimension": dg.MetadataValue.text(state.dimension.value),
        "dead_ends": dg.MetadataValue.int(state.dead_ends),
        "llm_spend_usd": dg.MetadataValue.float(state.spend.cost_usd),
        "llm_calls": dg.MetadataValue.int(state.spend.calls),
        "iter_state": dg.MetadataValue.md(f"```\n{render_state(state)}\n```"),
        "attempts_table": dg.MetadataValue.md(attempts_markdown(state)),
        "state": dg.MetadataValue.json(state.model_dump(mode="json")),
    }
    if best is not None:
        metadata["best_oos_sharpe"] = dg.MetadataValue.float(best.oos_sharpe)
        metadata["best_oos_max_drawdown"] = dg.MetadataValue.float(best.oos_max_drawdown)
    if state.frozen_record_id is not None:
        metadata["frozen_record_id"] = dg.MetadataValue.text(state.frozen_record_id)
    return metadata
