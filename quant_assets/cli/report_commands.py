"""`quant-assets report SPEC` (the tear sheet) and `quant-assets backtest SPEC` (one run)."""

import argparse
import json
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final

import polars as pl
from tqdm import tqdm

from quant_assets.backtest.run_spec import SpecRunResult, run_spec
from quant_assets.cli.tables import print_table, print_wrapped
from quant_assets.defs.audit_runs import run_audits
from quant_assets.defs.resources import DEFAULT_GOAL, WarehouseResource
from quant_assets.domain.errors import BacktestInputError, SpecValidationError
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ParamValue, StrategySpec
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.governance.lifecycle import to_record_audits
from quant_assets.reports.metric_rows import METRIC_ROWS
from quant_assets.reports.paths import TearSheetPaths, tear_sheet_paths
from quant_assets.storage.research import list_specs, load_spec
from quant_assets.storage.research_loop import goal_spec_ids, research_goal_names
from quant_assets.storage.walkforward import latest_run
from quant_assets.storage.warehouse import Warehouse

ResourceOf = Callable[[argparse.Namespace], WarehouseResource]
MIN_PREFIX: Final = 4
"""A spec id may be abbreviated to a unique prefix of at least this many characters."""


def add_report_commands(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]", resource_of: ResourceOf
) -> None:
    """Add `report SPEC` and `backtest SPEC` to the parser."""
    report = commands.add_parser(
        "report", help="write (if missing) the tear sheet of a spec's latest walk-forward run"
    )
    report.add_argument("spec", metavar="SPEC", help="spec id, or a unique prefix of one")
    report.add_argument("--force", action="store_true", help="rewrite it even if it exists")
    report.add_argument("--open", action="store_true", help="open it in the web browser")
    _add_goal_option(report)
    report.add_argument("--json", action="store_true", help="print JSON")
    report.set_defaults(handler=lambda args: _report(args, resource_of))

    backtest = commands.add_parser(
        "backtest", help="backtest a spec once with fixed params on its research bars"
    )
    backtest.add_argument("spec", metavar="SPEC", help="spec id, or a unique prefix of one")
    backtest.add_argument(
        "--params",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH=VALUE",
        help="set parameters, e.g. baseline.fast_span_bars=12 execution.stop_atr=2.5 "
        "(default: the spec's own values)",
    )
    _add_goal_option(backtest)
    backtest.add_argument("--json", action="store_true", help="print the EvalReport as JSON")
    backtest.set_defaults(handler=lambda args: _backtest(args, resource_of))


def _add_goal_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--goal",
        help="the research goal whose sealed holdout applies (default: the goal the spec was "
        f"archived or proposed under, else '{DEFAULT_GOAL}')",
    )


def resolve_spec_id(warehouse: Warehouse, target: str) -> str:
    """Return the registered spec id `target` names: the id itself or a unique prefix of it.

    Raises:
        SpecValidationError: if no registered spec has that id (or prefix), or the prefix is
            shared by several specs.
    """
    ids = [spec_id for spec_id, _, _, _ in list_specs(warehouse)]
    if target in ids:
        return target
    matches = [i for i in ids if i.startswith(target)] if len(target) >= MIN_PREFIX else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SpecValidationError(
            f"spec id prefix '{target}' matches {len(matches)} specs ({', '.join(matches[:4])}"
            f"{', ...' if len(matches) > 4 else ''}); give more of the id (`quant-assets specs "
            "list` shows them)"
        )
    raise SpecValidationError(
        f"spec '{target}' is not registered ({len(ids)} spec(s) are); `quant-assets specs "
        "list` shows their ids, `quant-assets specs add FILE.yaml` registers one"
    )


def spec_goal(resource: WarehouseResource, spec_id: str, goal: str | None = None) -> str:
    """Return the research goal a spec works for: `goal` if given, else where it was researched.

    That is the goal of the spec's latest archive record, else the first goal that proposed
    it, else `DEFAULT_GOAL` (a spec a person added).

    Raises:
        ConfigurationError: if `goal` names a goal that was never started.
    """
    if goal is not None:
        resource.research_goal(goal)
        return goal
    archived = [record.goal for record in resource.archive().list() if record.spec_id == spec_id]
    if archived:
        return archived[-1]
    store = resource.warehouse()
    proposed = (
        name for name in research_goal_names(store) if spec_id in goal_spec_ids(store, name)
    )
    return next(proposed, DEFAULT_GOAL)


def write_report(
    resource: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> TearSheetPaths:
    """Write the tear sheet of the spec's latest run, as walkforward_results does.

    An archived run shows its record's audit verdicts; a run not archived yet shows the audits
    recomputed by the functions its asset checks call.
    """
    # plotly and matplotlib load only when a tear sheet is written (the CLI import stays light).
    from quant_assets.reports.collect import collect_tear_sheet_inputs
    from quant_assets.reports.tear_sheet import write_tear_sheet

    archive = resource.archive()
    archived = any(r.run_id == run.run_id and r.goal == goal for r in archive.list())
    with tqdm(total=3, desc="report", unit="step", leave=False, disable=None) as bar:
        bar.set_postfix_str("audits")
        audits = None if archived else to_record_audits(run_audits(resource, spec, run, goal))
        bar.update()
        bar.set_postfix_str("reading run and bars")
        inputs = collect_tear_sheet_inputs(
            resource.warehouse(),
            archive,
            resource.bars_reader(spec, goal),
            spec.spec_id,
            audits=audits,
        )
        bar.update()
        bar.set_postfix_str("writing")
        paths = write_tear_sheet(inputs, resource.reports_path())
        bar.update()
    return paths


def _report(args: argparse.Namespace, resource_of: ResourceOf) -> int:
    resource = resource_of(args)
    store = resource.warehouse()
    spec_id = resolve_spec_id(store, args.spec)
    run = latest_run(store, spec_id)
    if run is None:
        raise SpecValidationError(
            f"spec {spec_id} has no walk-forward run, so it has no tear sheet; materialize "
            "walkforward_results for it (`dagster asset materialize -m quant_assets.definitions "
            f"--select walkforward_results --partition {spec_id}`), or try `quant-assets "
            f"backtest {spec_id}` for one run"
        )
    paths = tear_sheet_paths(resource.reports_path(), spec_id, run.run_id)
    written = args.force or not paths.html.exists()
    if written:
        goal = spec_goal(resource, spec_id, args.goal)
        paths = write_report(resource, load_spec(store, spec_id), run, goal)
    if args.json:
        document = {
            "spec_id": spec_id,
            "run_id": paths.html.stem,
            "path": str(paths.html),
            "written": written,
        }
        print(json.dumps(document, indent=2))
    else:
        print(f"{'wrote' if written else 'exists'}: {paths.html}")
        if not args.open:
            print("open it in a browser, or pass --open; --force rewrites it")
    if args.open:
        webbrowser.open(paths.html.as_uri())
    return 0


def parse_params(items: Sequence[str]) -> dict[str, ParamValue]:
    """Return `PATH=VALUE` items as parameter values: true/false, integers, floats, else text.

    Raises:
        SpecValidationError: if an item is not `PATH=VALUE`.
    """
    params: dict[str, ParamValue] = {}
    for item in items:
        path, separator, text = (part.strip() for part in item.partition("="))
        if not separator or not path or not text:
            raise SpecValidationError(
                f"--params item '{item}' is not PATH=VALUE; write e.g. --params "
                "baseline.fast_span_bars=12 execution.stop_atr=2.5"
            )
        params[path] = _param_value(text)
    return params


def _param_value(text: str) -> ParamValue:
    if text.lower() in {"true", "false"}:
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text  # a choice parameter's value


def backtest_spec(
    resource: WarehouseResource, spec: StrategySpec, params: Mapping[str, ParamValue], goal: str
) -> tuple[SpecRunResult, dict[str, pl.DataFrame]]:
    """Run the spec once on its research bars (from its data start to the goal's holdout).

    Returns:
        The run's result and the bars it read, by instrument.

    Raises:
        BacktestInputError: if an instrument has no stored bars before the holdout.
        SpecValidationError: if a parameter path or value is invalid.
    """
    reader = resource.bars_reader(spec, goal)
    bars: dict[str, pl.DataFrame] = {}
    instruments = spec.data.instruments
    with tqdm(
        total=len(instruments) + 1, desc="backtest", unit="step", leave=False, disable=None
    ) as bar:
        for key in instruments:
            bar.set_postfix_str(f"reading {key}")
            bars[key] = reader.read_research_bars(key, spec.data.start)
            if bars[key].is_empty():
                raise BacktestInputError(
                    f"instrument {key} has no stored bars from {spec.data.start:%Y-%m-%d} to the "
                    f"holdout start {reader.guard.start:%Y-%m-%d %H:%M} (goal '{goal}'); load "
                    "them (`quant-assets demo`, or materialize bars for its months)"
                )
            bar.update()
        bar.set_postfix_str("running")
        result = run_spec(spec, bars, params)
        bar.update()
    return result, bars


def _backtest(args: argparse.Namespace, resource_of: ResourceOf) -> int:
    resource = resource_of(args)
    store = resource.warehouse()
    spec = load_spec(store, resolve_spec_id(store, args.spec))
    params = parse_params(args.params)
    goal = spec_goal(resource, spec.spec_id, args.goal)
    result, bars = backtest_spec(resource, spec, params, goal)
    if args.json:
        print(json.dumps(result.report.model_dump(mode="json"), indent=2))
        return 0
    given = ", ".join(f"{path}={value}" for path, value in params.items())
    print_wrapped(f"backtest of spec {spec.spec_id} ({spec.name}), goal '{goal}'")
    shown = given or "the spec's own values"
    print_wrapped(f"params: {shown}; one run, no search, holdout sealed")
    print(f"period: {_when(result.report.start)} to {_when(result.report.end)} UTC\n")
    metrics = _metric_rows(result.report, result.sleeves)
    print_table(metrics, right_aligned=metrics.columns[1:])
    print()
    sleeves = _sleeve_rows(result, bars)
    print_table(sleeves, right_aligned=sleeves.columns[1:])
    return 0


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M}"


def _metric_rows(report: EvalReport, sleeves: Mapping[str, object]) -> pl.DataFrame:
    label = "portfolio" if len(sleeves) > 1 else "value"
    return pl.DataFrame(
        {
            "metric": [name for name, _, _ in METRIC_ROWS],
            label: [template.format(getattr(report, field)) for _, field, template in METRIC_ROWS],
        }
    )


def _sleeve_rows(result: SpecRunResult, bars: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    rows = []
    for key, sleeve in result.sleeves.items():
        report = sleeve.report
        rows.append(
            {
                "instrument": key,
                "bars": f"{bars[key].height:,}",
                "return": f"{report.total_return:.2%}",
                "Sharpe": f"{report.sharpe:.2f}",
                "max DD": f"{report.max_drawdown:.2%}",
                "trades": f"{report.trades:,}",
                "rejected": f"{sum(sleeve.steps.rejections.values()):,}",
            }
        )
    return pl.DataFrame(rows)
