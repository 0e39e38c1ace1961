"""`research_sensor`: one research iteration per landed result, read from the instance only.

For each goal partition of `research_state`, the sensor reads the goal's latest state from the
materialization metadata (never from DuckDB, which runs may be writing) and moves the goal one
step along a small cycle kept in its JSON cursor:

1. the last proposed iteration is folded (or none was proposed): apply termination, ask the
   proposer for the goal's batch, add the specs as `spec` partitions and request one
   `research_spec_job` run per spec (strategy_specs -> walkforward_results (+ audits) ->
   archive_records), with run_key = spec id, so a repeated tick launches nothing twice;
2. every run of the iteration has finished (success or failure: a failed audit or pre-flight
   is a result too): request the `research_state_job` fold run of the goal's partition;
3. the fold has landed: back to 1, until the state's status is no longer CONTINUING.

It is off by default; `quant-assets research start GOAL` or the UI's toggle starts it.
"""

from typing import Final

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

from quant_assets.defs.jobs import research_spec_job, research_state_job
from quant_assets.defs.partitions import GOAL_PARTITIONS_NAME, spec_partitions
from quant_assets.defs.proposer_resource import ResearchProposerResource
from quant_assets.defs.research_loop import research_state
from quant_assets.defs.research_tags import ACTION_TAG, ITERATION_TAG, SPEC_TAG
from quant_assets.defs.resources import GOAL_TAG
from quant_assets.domain.research import Proposal, ResearchState, Usage
from quant_assets.research.policy import termination
from quant_assets.strategy.catalog.loader import load_catalog

_FINISHED: Final = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)
_QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class GoalCursor(BaseModel):
    """Where one goal is in the cycle: the iteration proposed, its specs, whether folding."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    iteration: int = Field(ge=0)
    specs: tuple[str, ...] = ()
    folding: bool = False


class ResearchCursor(BaseModel):
    """The sensor's cursor: per goal, a few ids and numbers (small JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    goals: dict[str, GoalCursor] = Field(default_factory=dict)


def latest_states(instance: dg.DagsterInstance) -> dict[str, ResearchState]:
    """Return each goal's latest state from `research_state` materialization metadata."""
    states: dict[str, ResearchState] = {}
    for goal in instance.get_dynamic_partitions(GOAL_PARTITIONS_NAME):
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=research_state.key, asset_partitions=[goal]), limit=1
        )
        if not result.records:
            continue
        materialization = result.records[0].asset_materialization
        entry = materialization.metadata.get("state") if materialization else None
        if isinstance(entry, dg.JsonMetadataValue) and isinstance(entry.data, dict):
            states[goal] = ResearchState.model_validate(entry.data)
    return states


@dg.sensor(
    jobs=[research_spec_job, research_state_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Runs research iterations for every running goal: propose, evaluate, fold.",
)
def research_sensor(
    context: dg.SensorEvaluationContext, research_proposer: ResearchProposerResource
) -> dg.SensorResult | dg.SkipReason:
    """Move every running research goal one step (see the module docstring)."""
    cursor = ResearchCursor.model_validate_json(context.cursor or "{}")
    goals = dict(cursor.goals)
    requests: list[dg.RunRequest] = []
    new_specs: list[str] = []
    waiting: list[str] = []
    for name, state in latest_states(context.instance).items():
        at = goals.get(name)
        if not state.is_running:
            goals.pop(name, None)
        elif at is None or at.iteration <= state.iteration:
            proposed = propose_iteration(context, research_proposer, state)
            requests += proposed
            specs = tuple(
                r.partition_key
                for r in proposed
                if r.job_name == research_spec_job.name and r.partition_key
            )
            new_specs += specs
            # A stop run needs no fold: wait for the state it leaves.
            goals[name] = GoalCursor(iteration=state.iteration + 1, specs=specs, folding=not specs)
        elif not at.folding:
            if iteration_landed(context.instance, at):
                requests.append(fold_request(name, at.iteration))
                goals[name] = at.model_copy(update={"folding": True})
            else:
                waiting.append(f"{name}: iteration {at.iteration} runs in flight")
        else:
            waiting.append(fold_status(context.instance, name, at.iteration))
    new_cursor = ResearchCursor(goals=goals).model_dump_json()
    if not requests:
        context.update_cursor(new_cursor)
        return dg.SkipReason("; ".join(waiting) or "no running research goal")
    partitions = [spec_partitions.build_add_request(new_specs)] if new_specs else []
    return dg.SensorResult(
        run_requests=requests, dynamic_partitions_requests=partitions, cursor=new_cursor
    )


def propose_iteration(
    context: dg.SensorEvaluationContext, resource: ResearchProposerResource, state: ResearchState
) -> list[dg.RunRequest]:
    """Return the runs of a goal's next iteration (a stop run if it must end or cannot go on)."""
    goal, iteration = state.goal.name, state.iteration + 1
    ended = termination(state)
    if ended is not None:
        return [stop_request(goal, iteration, f"{ended[0]}: {ended[1]}")]
    proposer = resource.proposer(context.log)
    proposals = proposer.propose(state, load_catalog(), state.goal.budget.proposals_per_iteration)
    usage = getattr(proposer, "last_usage", Usage())
    if not proposals:
        return [stop_request(goal, iteration, "no untried spec is left inside the catalog")]
    context.log.info(
        f"goal {goal}: iteration {iteration} ({proposals[0].dimension}) proposes "
        f"{[p.spec.spec_id for p in proposals]} via {proposals[0].proposer}; "
        f"LLM usage {usage.input_tokens} in / {usage.output_tokens} out tokens, "
        f"${usage.cost_usd:.4f}"
    )
    # The call's usage rides on the batch's first spec, so the fold counts it once.
    return [
        spec_request(goal, iteration, proposal, usage if position == 0 else Usage())
        for position, proposal in enumerate(proposals)
    ]


def spec_request(goal: str, iteration: int, proposal: Proposal, usage: Usage) -> dg.RunRequest:
    """Return the run that registers, evaluates, audits and archives one proposed spec."""
    spec_id = proposal.spec.spec_id
    config = {
        "proposal_json": proposal.model_dump_json(),
        "iteration": iteration,
        "usage_json": usage.model_dump_json(),
    }
    return dg.RunRequest(
        run_key=spec_id,
        job_name=research_spec_job.name,
        partition_key=spec_id,
        run_config={**_QUIET, "ops": {"strategy_specs": {"config": config}}},
        tags={GOAL_TAG: goal, ITERATION_TAG: str(iteration), SPEC_TAG: spec_id},
    )


def fold_request(goal: str, iteration: int) -> dg.RunRequest:
    """Return the run that folds an iteration's results into the goal's state."""
    return _state_request(goal, iteration, {"action": "fold", "iteration": iteration})


def stop_request(goal: str, iteration: int, reason: str) -> dg.RunRequest:
    """Return the run that ends a goal's loop with a reason."""
    return _state_request(
        goal, iteration, {"action": "stop", "reason": reason, "actor": research_sensor.name}
    )


def _state_request(goal: str, iteration: int, config: dict[str, object]) -> dg.RunRequest:
    action = str(config["action"])
    return dg.RunRequest(
        run_key=f"{goal}:{iteration}:{action}",
        job_name=research_state_job.name,
        partition_key=goal,
        run_config={**_QUIET, "ops": {"research_state": {"config": config}}},
        tags={GOAL_TAG: goal, ITERATION_TAG: str(iteration), ACTION_TAG: action},
    )


def fold_status(instance: dg.DagsterInstance, goal: str, iteration: int) -> str:
    """Return what a goal waits for while its iteration is folded (or its stop applied)."""
    runs = instance.get_runs(
        dg.RunsFilter(tags={GOAL_TAG: goal, ITERATION_TAG: str(iteration), ACTION_TAG: "fold"}),
        limit=1,
    )
    if runs and runs[0].status is dg.DagsterRunStatus.FAILURE:
        return (
            f"{goal}: the fold run {runs[0].run_id} of iteration {iteration} failed; re-execute "
            f"it from the UI once fixed, or `quant-assets research stop {goal}`"
        )
    return f"{goal}: iteration {iteration} is being folded or stopped"


def iteration_landed(instance: dg.DagsterInstance, at: GoalCursor) -> bool:
    """Return whether every spec run of an iteration has finished (in any way)."""
    for spec_id in at.specs:
        runs = instance.get_runs(dg.RunsFilter(tags={SPEC_TAG: spec_id}), limit=1)
        if not runs or runs[0].status not in _FINISHED:
            return False
    return True


@dg.definitions
def sensors() -> dg.Definitions:
    """Return the research sensor."""
    return dg.Definitions(sensors=[research_sensor])
