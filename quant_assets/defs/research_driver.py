"""Drive the research loop in-process: the sensor's own ticks, its runs executed at once.

`make demo` and `quant-assets research run` need no daemon: each tick is the real
`research_sensor` evaluated on the real instance (`build_sensor_context`), and each run it
requests is executed in this process with the request's partition, config and tags, as the
daemon would launch it. The cursor is kept between ticks like the daemon keeps it.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from quant_assets.defs.launch import QUIET_CONSOLE, user_error_message
from quant_assets.defs.partitions import GOAL_PARTITIONS_NAME
from quant_assets.defs.research_tags import ACTION_TAG
from quant_assets.defs.resources import GOAL_TAG, WarehouseResource
from quant_assets.defs.sensors import research_sensor
from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.research import ResearchState
from quant_assets.storage.research_loop import latest_state

TickListener = Callable[[ResearchState], None]
"""Called with the goal's state after every folded iteration (for progress output)."""
RunListener = Callable[[dg.RunRequest], None]
"""Called with each run request just before it executes (for progress output)."""


@dataclass(frozen=True)
class DriveOutcome:
    """How an in-process drive ended: the final state, ticks and runs executed."""

    state: ResearchState
    ticks: int
    runs: int
    failed_runs: int


def change_research_state(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    goal: str,
    action: str,
    *,
    reason: str = "",
    actor: str = "",
) -> dg.ExecuteInProcessResult:
    """Run `research_state_job` for a goal with `start` or `stop` (adds the goal partition).

    Raises:
        QuantAssetsError: with the run's error if it fails (a bad goal file, say).
    """
    if not instance.has_dynamic_partition(GOAL_PARTITIONS_NAME, goal):
        instance.add_dynamic_partitions(GOAL_PARTITIONS_NAME, [goal])
    config = {"action": action, "reason": reason, "actor": actor}
    result = defs.resolve_job_def("research_state_job").execute_in_process(
        run_config={**QUIET_CONSOLE, "ops": {"research_state": {"config": config}}},
        instance=instance,
        partition_key=goal,
        tags={GOAL_TAG: goal, ACTION_TAG: action},
        raise_on_error=False,
    )
    if not result.success:
        errors = [
            user_error_message(e.step_failure_data.error)
            for e in result.all_events
            if e.is_step_failure
        ]
        raise QuantAssetsError(f"research {action} of goal '{goal}' failed: {'; '.join(errors)}")
    return result


def drive_research(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    warehouse: WarehouseResource,
    goal: str,
    *,
    max_iterations: int | None = None,
    on_fold: TickListener | None = None,
    on_run: RunListener | None = None,
) -> DriveOutcome:
    """Tick the research sensor and execute its runs until the goal's loop ends.

    Args:
        instance: The Dagster instance (runs and materializations land there).
        defs: The code location's definitions (jobs, resources).
        warehouse: The resource the runs use (to read the state after each fold).
        goal: The started goal to drive.
        max_iterations: Stop the goal (as a person would) once this many iterations are
            folded, if it is still running; None: run until a termination rule fires.
        on_fold: Called with the state after each folded iteration.
        on_run: Called with each run request before it executes.

    Raises:
        QuantAssetsError: if the goal was never started, or the sensor stops making progress.
    """
    state = latest_state(warehouse.warehouse(), goal)
    if state is None:
        raise QuantAssetsError(f"research goal '{goal}' was never started; start it first")
    cursor: str | None = None
    ticks = runs = failed = 0
    folded = state.iteration
    while state.is_running:
        if max_iterations is not None and state.iteration >= max_iterations:
            reason = f"{max_iterations} iterations reached"
            change_research_state(
                instance, defs, goal, "stop", reason=reason, actor="the iteration cap"
            )
            break
        tick, cursor, requests = tick_once(instance, defs, cursor)
        ticks += 1
        for request in requests:
            if on_run is not None:
                on_run(request)
            runs += 1
            failed += 0 if execute_request(instance, defs, request) else 1
        state = latest_state(warehouse.warehouse(), goal) or state
        if state.iteration > folded:
            folded = state.iteration
            if on_fold is not None:
                on_fold(state)
        elif not requests and ticks > 4 * (state.iteration + 2):
            why = tick.skip_message if isinstance(tick, dg.SkipReason) else "no runs requested"
            raise QuantAssetsError(
                f"research goal '{goal}' made no progress in {ticks} ticks ({why}); inspect "
                "the runs with `dagster run list`"
            )
    final = latest_state(warehouse.warehouse(), goal) or state
    return DriveOutcome(final, ticks, runs, failed)


def tick_once(
    instance: dg.DagsterInstance, defs: dg.Definitions, cursor: str | None
) -> tuple[dg.SensorResult | dg.SkipReason, str | None, list[dg.RunRequest]]:
    """Evaluate one sensor tick; add its partitions; return it, its cursor and its requests."""
    context = sensor_context(instance, defs, cursor)
    tick = research_sensor(context)
    if isinstance(tick, dg.SkipReason):
        return tick, context.cursor, []
    if not isinstance(tick, dg.SensorResult):
        raise QuantAssetsError(f"research_sensor returned {type(tick).__name__}; a sensor bug")
    for partitions in tick.dynamic_partitions_requests or []:
        if isinstance(partitions, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(
                partitions.partitions_def_name, list(partitions.partition_keys)
            )
    return tick, tick.cursor, list(tick.run_requests or [])


def sensor_context(
    instance: dg.DagsterInstance, defs: dg.Definitions, cursor: str | None
) -> dg.SensorEvaluationContext:
    """Return a tick's context as the daemon builds it: the instance, cursor and resources."""
    return dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=defs,
        sensor_name=research_sensor.name,
        resources=dict(defs.resources or {}),
    )


def execute_request(
    instance: dg.DagsterInstance, defs: dg.Definitions, request: dg.RunRequest
) -> bool:
    """Execute one sensor run request in this process; return whether the run succeeded.

    A failed run (a spec that fails pre-flight or a blocking audit) is a research result,
    not an error: the fold records it.
    """
    if request.job_name is None:
        raise QuantAssetsError("a research run request names no job; this is a sensor bug")
    tags = {
        **request.tags,
        "dagster/run_key": request.run_key or "",
        "dagster/sensor_name": (research_sensor.name),
    }
    # A failed audit is an expected result here: keep the console to fatal errors (the
    # instance and the UI keep every event).
    run_config = {
        **request.run_config,
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    result = defs.resolve_job_def(request.job_name).execute_in_process(
        run_config=run_config,
        instance=instance,
        partition_key=request.partition_key,
        tags=tags,
        raise_on_error=False,
    )
    return result.success
