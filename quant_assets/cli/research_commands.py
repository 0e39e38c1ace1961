"""`quant-assets research start|stop|run|status`: the research loop from the command line."""

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from tqdm import tqdm

from quant_assets.cli.code_location import load_definitions
from quant_assets.defs.research_tags import ACTION_TAG
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.research import ResearchState
from quant_assets.governance.preferences import preferences_hash
from quant_assets.governance.report_text import record_text
from quant_assets.research.state_text import render_state
from quant_assets.storage.research import list_specs
from quant_assets.storage.research_loop import latest_state, research_goal_names

if TYPE_CHECKING:
    from quant_assets.defs.research_driver import DriveOutcome

# The research driver imports the code location's jobs and sensors (and their definitions'
# warnings): the commands import it when they run, so `quant-assets --help` stays quick.
Context = Callable[[argparse.Namespace], tuple[WarehouseResource, dg.DagsterInstance]]
SENSOR_NAME = "research_sensor"


def add_research_commands(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]", context: Context
) -> None:
    """Add `research start|stop|run|status` to the parser."""
    research = commands.add_parser("research", help="the research loop: start, stop, run, status")
    verbs = research.add_subparsers(required=True, metavar="VERB")
    start = verbs.add_parser(
        "start", help="start a goal (goals/GOAL.yaml) and turn research_sensor on for the daemon"
    )
    start.add_argument("goal", metavar="GOAL", help="goal name (a file under goals/)")
    start.add_argument(
        "--no-sensor", action="store_true", help="only start the goal; leave the sensor as it is"
    )
    start.set_defaults(handler=lambda args: _start(args, context))
    run = verbs.add_parser(
        "run", help="start a goal and run its iterations in this process (no daemon needed)"
    )
    run.add_argument("goal", metavar="GOAL")
    run.add_argument("--max-iterations", type=int, metavar="N", help="stop after N iterations")
    run.set_defaults(handler=lambda args: _run(args, context))
    stop = verbs.add_parser("stop", help="stop a goal's loop (its best candidate is frozen)")
    stop.add_argument("goal", metavar="GOAL")
    stop.add_argument("--reason", default="stopped from the command line", metavar="TEXT")
    stop.add_argument("--by", dest="actor", default="", metavar="NAME", help="who stops it")
    stop.set_defaults(handler=lambda args: _stop(args, context))
    status = verbs.add_parser("status", help="the structured state (ITER_STATE) of goals")
    status.add_argument("goal", nargs="?", metavar="GOAL", help="one goal (default: all)")
    status.add_argument("--json", action="store_true", help="print the states as JSON")
    status.set_defaults(handler=lambda args: _status(args, context))


def run_goal(
    resource: WarehouseResource,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    goal: str,
    max_iterations: int | None,
) -> "DriveOutcome":
    """Start a goal and drive it in-process with a progress bar over its iterations."""
    from quant_assets.defs.research_driver import change_research_state, drive_research

    change_research_state(instance, defs, goal, "start")
    started = latest_state(resource.warehouse(), goal)
    if started is None:
        raise QuantAssetsError(f"research goal '{goal}' did not start; see the run's logs")
    cap = started.goal.budget.max_iterations
    total = min(cap, max_iterations) if max_iterations is not None else cap
    with tqdm(total=total, initial=started.iteration, desc=goal, unit="iteration") as bar:

        def show(state: ResearchState) -> None:
            best = state.best.metrics.oos_sharpe if state.best and state.best.metrics else None
            bar.set_postfix_str(
                f"best OOS Sharpe {'-' if best is None else f'{best:.2f}'}, next {state.dimension}"
            )
            bar.update(state.iteration - bar.n)

        return drive_research(
            instance,
            defs,
            resource,
            goal,
            max_iterations=max_iterations,
            on_fold=show,
            on_run=lambda request: bar.set_postfix_str(_running(request)),
        )


def _running(request: dg.RunRequest) -> str:
    # What the bar says while a run of the iteration executes (a walk-forward takes seconds).
    if request.job_name == "research_spec_job":
        return f"walk-forward of spec {request.partition_key}"
    return f"{request.tags.get(ACTION_TAG, 'change')} of the goal's state"


def print_outcome(resource: WarehouseResource, state: ResearchState) -> None:
    """Print the final research state, the frozen record, and how to approve it."""
    print(render_state(state))
    if state.frozen_record_id is None:
        bar = state.goal.archive_thresholds()
        print(
            "\nNo record was frozen: no attempt became a candidate (OOS Sharpe >= "
            f"{bar.min_oos_sharpe:.2f}, max drawdown >= {bar.max_drawdown:.0%} and every "
            "blocking audit passed)."
        )
        best = state.best
        if best is not None and best.metrics is not None:
            metrics = best.metrics
            print(
                f"Closest: spec {best.spec_id} ({best.template}), OOS Sharpe "
                f"{metrics.oos_sharpe:.2f}, max drawdown {metrics.oos_max_drawdown:.1%}, "
                f"failed audits {list(best.failed_audits) or 'none'}; "
                f"`quant-assets archive show {best.spec_id}` explains each verdict."
            )
        return
    archive = resource.archive()
    record = archive.get(state.frozen_record_id)
    names = {spec_id: name for spec_id, name, _, _ in list_specs(resource.warehouse())}
    print()
    print(
        record_text(
            record,
            archive.transitions(record.record_id),
            current_preferences_hash=preferences_hash(resource.preferences()),
            spec_names=names,
        )
    )
    print(
        f"\nRecord {record.record_id} is frozen and waits for one person's decision:\n"
        f"  .venv/bin/quant-assets approve {record.record_id} --by YOUR_NAME --reason WHY\n"
        f"  .venv/bin/quant-assets reject {record.record_id} --by YOUR_NAME --reason WHY\n"
        "or launch approval_job from the Dagster UI's launchpad (`make dev`)."
    )


def _start(args: argparse.Namespace, context: Context) -> int:
    resource, instance = context(args)
    defs = load_definitions()  # first: it imports the defs modules without their warnings
    from quant_assets.defs.research_driver import change_research_state

    change_research_state(instance, defs, args.goal, "start")
    state = latest_state(resource.warehouse(), args.goal)
    print(f"research goal {args.goal}: {state.status if state else 'not started'}")
    if not args.no_sensor:
        _start_sensor(Path(args.project_dir).resolve())
        print(
            f"{SENSOR_NAME} is on: with the daemon running (`make dev`) it proposes and runs "
            f"iterations; `quant-assets research stop {args.goal}` stops the goal"
        )
    return 0


def _run(args: argparse.Namespace, context: Context) -> int:
    resource, instance = context(args)
    outcome = run_goal(resource, instance, load_definitions(), args.goal, args.max_iterations)
    print(f"\n{outcome.ticks} sensor ticks, {outcome.runs} runs ({outcome.failed_runs} failed)\n")
    print_outcome(resource, outcome.state)
    return 0


def _stop(args: argparse.Namespace, context: Context) -> int:
    resource, instance = context(args)
    defs = load_definitions()  # first: it imports the defs modules without their warnings
    from quant_assets.defs.research_driver import change_research_state

    change_research_state(instance, defs, args.goal, "stop", reason=args.reason, actor=args.actor)
    state = latest_state(resource.warehouse(), args.goal)
    if state is not None:
        print_outcome(resource, state)
    return 0


def _status(args: argparse.Namespace, context: Context) -> int:
    resource, _ = context(args)
    store = resource.warehouse()
    names = [args.goal] if args.goal else research_goal_names(store)
    states = [state for name in names if (state := latest_state(store, name)) is not None]
    if args.goal and not states:
        raise QuantAssetsError(
            f"research goal '{args.goal}' has no state; start it with "
            f"`quant-assets research start {args.goal}`"
        )
    if args.json:
        print(json.dumps([state.model_dump(mode="json") for state in states], indent=2))
    elif not states:
        print("(no research goal started; `quant-assets research start btc_eth_trend_1h`)")
    else:
        print("\n\n".join(render_state(state) for state in states))
    return 0


def _start_sensor(project_dir: Path) -> None:
    # The daemon reads sensor state from the instance; `dagster sensor start` records it there.
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "sensor",
        "start",
        "-m",
        "quant_assets.definitions",
        SENSOR_NAME,
    ]
    done = subprocess.run(
        command, cwd=project_dir, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise QuantAssetsError(
            f"could not turn {SENSOR_NAME} on ({done.stderr.strip().splitlines()[-1:]}); turn "
            "it on in the UI (Automation page) instead"
        )
