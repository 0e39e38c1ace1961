"""The `quant-assets` command: instruments, data, the demo, the archive and the human gate."""

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import dagster as dg
import polars as pl
from tqdm import tqdm

from quant_assets.cli.code_location import load_definitions, quiet_dagster_maturity_warnings
from quant_assets.cli.report_commands import add_report_commands
from quant_assets.cli.research_commands import add_research_commands, print_outcome, run_goal
from quant_assets.cli.status_commands import add_status_command, data_inventory, print_inventory
from quant_assets.cli.tables import print_table
from quant_assets.defs.archive_actions import (
    apply_decision,
    freeze,
    record_actor,
    record_event,
    resolve_record,
)
from quant_assets.defs.launch import (
    materialize_bars_range,
    materialize_data_versions,
    materialize_partition,
    register_instruments,
)
from quant_assets.defs.partitions import SPEC_PARTITIONS_NAME
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.spec_preflight import preflight_spec
from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.governance import RecordState
from quant_assets.domain.market import AssetClass, InstrumentConfig, InstrumentKey, SourceKind
from quant_assets.governance.approval import Decision
from quant_assets.governance.preferences import preferences_hash
from quant_assets.governance.report_text import record_document, record_row, record_text
from quant_assets.market.manifest import manifest_digest, manifest_summary
from quant_assets.market.months import month_key_of
from quant_assets.market.sources.sample import SampleSource
from quant_assets.storage.research import list_specs, save_spec
from quant_assets.strategy.spec_io import load_spec_yaml

Handler = Callable[[argparse.Namespace], int]
DEMO_FEATURE_INSTRUMENTS = ("binance.BTC-USDT.1h", "binance.ETH-USDT.1h")
DEMO_GOAL = "btc_eth_trend_1h"
DEMO_MAX_ITERATIONS = 12


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    quiet_dagster_maturity_warnings()
    try:
        return handler(args)
    except QuantAssetsError as e:
        # One line: a multi-line message (a pydantic error, say) is joined.
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        print(
            f"hint: `quant-assets {args.command} --help` shows its options; "
            "`quant-assets --help` lists the commands",
            file=sys.stderr,
        )
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quant-assets", description=__doc__)
    parser.add_argument("--project-dir", default=".", help="project root (default: .)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")

    demo = commands.add_parser(
        "demo", help="load the shipped history, then research the shipped goal offline"
    )
    demo.add_argument(
        "--max-iterations",
        type=int,
        default=DEMO_MAX_ITERATIONS,
        metavar="N",
        help=f"stop the goal after N iterations if no rule ends it (default {DEMO_MAX_ITERATIONS})",
    )
    demo.set_defaults(handler=_demo)

    instruments = commands.add_parser("instruments", help="register and list instruments")
    verbs = instruments.add_subparsers(required=True, metavar="VERB")
    add = verbs.add_parser("add", help="register an instrument (a new dynamic partition)")
    add.add_argument("key", help="venue.SYMBOL.timeframe, e.g. binance.SOL-USDT.1h")
    add.add_argument("--source", choices=[k.value for k in SourceKind], default="sample")
    add.add_argument("--asset-class", choices=[a.value for a in AssetClass], default="crypto")
    add.add_argument("--whole-units", action="store_true", help="trade whole units (equities)")
    add.add_argument("--path", help="csv: the file to read")
    add.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="CANONICAL=FILE_COLUMN",
        help="csv: map a canonical column (ts, open, ...) to the file's column",
    )
    add.add_argument("--timezone", help="csv: IANA zone of naive timestamps (default UTC)")
    add.add_argument("--ts-format", help="csv: strftime format of the ts column")
    add.add_argument("--exchange", help="ccxt: exchange id when it differs from the venue")
    add.set_defaults(handler=_instruments_add)
    listing = verbs.add_parser("list", help="list registered instruments")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_instruments_list)
    sync = verbs.add_parser("sync", help="register every instrument in instruments.yaml")
    sync.set_defaults(handler=_instruments_sync)

    specs = commands.add_parser("specs", help="register and list strategy specs")
    spec_verbs = specs.add_subparsers(required=True, metavar="VERB")
    spec_add = spec_verbs.add_parser("add", help="validate a spec YAML and register its partition")
    spec_add.add_argument("file", type=Path, help="a spec YAML (see specs/)")
    spec_add.set_defaults(handler=_specs_add)
    spec_list = spec_verbs.add_parser("list", help="list registered specs")
    spec_list.add_argument("--json", action="store_true", help="print JSON")
    spec_list.set_defaults(handler=_specs_list)

    data = commands.add_parser("data", help="what the warehouse holds")
    data_verbs = data.add_subparsers(required=True, metavar="VERB")
    data_list = data_verbs.add_parser(
        "list", help="instruments, months, rows, first/last ts, missing months and bar gaps"
    )
    data_list.add_argument("--json", action="store_true", help="print JSON")
    data_list.set_defaults(handler=_data_list)
    _add_governance_commands(commands)
    add_research_commands(commands, _context)
    add_status_command(commands, _context)
    add_report_commands(commands, _resource)
    return parser


def _add_governance_commands(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
) -> None:
    decisions = {
        Decision.APPROVE: "approve a frozen record into production",
        Decision.REJECT: "reject a frozen record (it becomes deprecated)",
        Decision.DEPRECATE: "take a production record out of production",
    }
    for decision, summary in decisions.items():
        verb = commands.add_parser(decision.value, help=summary)
        verb.add_argument("target", metavar="SPEC_OR_RECORD", help="record id, or spec id")
        verb.add_argument(
            "--by",
            "--approver",
            dest="approver",
            required=True,
            metavar="NAME",
            help="the deciding person's name (recorded in the trail)",
        )
        verb.add_argument("--reason", required=True, metavar="TEXT", help="why, for the trail")
        verb.set_defaults(handler=_decide, decision=decision.value)

    archive = commands.add_parser("archive", help="archive records: list, show, freeze")
    verbs = archive.add_subparsers(required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="every record's latest state, oldest first")
    listing.add_argument("--state", choices=[s.value for s in RecordState], help="only this state")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_archive_list)
    show = verbs.add_parser("show", help="lineage, metrics, holdout, audits and transitions")
    show.add_argument("target", metavar="ID", help="record id, or spec id (its latest record)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=_archive_show)
    freezing = verbs.add_parser(
        "freeze", help="freeze a candidate and evaluate its goal's sealed holdout, once"
    )
    freezing.add_argument("target", metavar="RECORD", help="record id, or spec id")
    freezing.add_argument("--reason", required=True, metavar="TEXT", help="why research froze it")
    freezing.set_defaults(handler=_archive_freeze)


def _resource(args: argparse.Namespace) -> WarehouseResource:
    return WarehouseResource(project_dir=str(Path(args.project_dir).resolve()))


def _context(args: argparse.Namespace) -> tuple[WarehouseResource, dg.DagsterInstance]:
    return _resource(args), _instance(args)


def _instance(args: argparse.Namespace) -> dg.DagsterInstance:
    if not os.environ.get("DAGSTER_HOME"):
        home = Path(args.project_dir).resolve() / "dagster_home"
        if not (home / "dagster.yaml").exists():
            raise QuantAssetsError(
                "DAGSTER_HOME is not set and ./dagster_home/dagster.yaml does not exist; run from "
                "the project root or export DAGSTER_HOME=$PWD/dagster_home"
            )
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _demo(args: argparse.Namespace) -> int:
    resource = _resource(args)
    instance = _instance(args)
    configs = resource.default_instruments()
    register_instruments(instance, resource, configs)
    before = manifest_digest(resource.warehouse().partition_versions())
    defs = load_definitions()
    sample = SampleSource(resource._path(resource.sample_dir))
    print(f"Loading {len(configs)} instruments from the shipped sample into {resource.lake_dir}")
    for config in tqdm(configs, desc="bars", unit="instrument"):
        instrument = config.instrument
        first, last = sample.first_ts(instrument), sample.last_ts(instrument)
        materialize_bars_range(instance, defs, config.key, month_key_of(first), month_key_of(last))
    outcome = materialize_data_versions(instance, defs)
    manifest = resource.warehouse().partition_versions()
    print_table(manifest_summary(manifest))
    state = "unchanged" if manifest_digest(manifest) == before else "changed"
    print(f"\ndata_versions: {outcome.data_version} ({state}); run {outcome.run_id}")
    loaded = {config.key for config in configs}
    _demo_research(args, instance, defs, resource, loaded)
    if _demo_goal_ready(resource, loaded):
        print(f"\nResearch goal {DEMO_GOAL} (goals/{DEMO_GOAL}.yaml), policy proposer, offline:")
        drive = run_goal(resource, instance, defs, DEMO_GOAL, args.max_iterations)
        print(f"\n{drive.ticks} sensor ticks, {drive.runs} runs ({drive.failed_runs} failed)\n")
        print_outcome(resource, drive.state)
    print("\nNext: `make dev` opens the Dagster UI on http://127.0.0.1:3000")
    return 0


def _demo_goal_ready(resource: WarehouseResource, loaded: set[str]) -> bool:
    # The shipped goal trades BTC and ETH 1h: a project without them (or the goal) skips it.
    goal_file = resource.goals_path() / f"{DEMO_GOAL}.yaml"
    if goal_file.exists() and set(DEMO_FEATURE_INSTRUMENTS) <= loaded:
        return True
    print(f"\n(research goal {DEMO_GOAL} skipped: it needs {goal_file} and BTC/ETH 1h loaded)")
    return False


def _demo_research(
    args: argparse.Namespace,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    resource: WarehouseResource,
    loaded: set[str],
) -> None:
    # The research inputs of the shipped goal: BTC/ETH feature slices and the example specs.
    for instrument in (i for i in DEMO_FEATURE_INSTRUMENTS if i in loaded):
        outcome = materialize_partition(instance, defs, "feature_slices_job", instrument)
        print(f"feature_slices[{instrument}]: {outcome.data_version}")
    store = resource.warehouse()
    examples = sorted((Path(args.project_dir).resolve() / "specs").glob("*.yaml"))
    if not examples:
        return
    for path in tqdm(examples, desc="specs", unit="spec"):
        spec = preflight_spec(load_spec_yaml(path), store)
        save_spec(store, spec)
        if not instance.has_dynamic_partition(SPEC_PARTITIONS_NAME, spec.spec_id):
            instance.add_dynamic_partitions(SPEC_PARTITIONS_NAME, [spec.spec_id])
        materialize_partition(instance, defs, "strategy_specs_job", spec.spec_id)
    print_table(
        pl.DataFrame(
            [
                dict(zip(("spec_id", "name", "template", "status"), row, strict=True))
                for row in list_specs(store)
            ]
        )
    )


def _instruments_add(args: argparse.Namespace) -> int:
    InstrumentKey.parse(args.key)
    options: dict[str, str] = {}
    for mapping in args.column:
        canonical, _, file_column = mapping.partition("=")
        if not file_column:
            raise QuantAssetsError(
                f"--column '{mapping}' is not CANONICAL=FILE_COLUMN; write e.g. --column open=Open"
            )
        options[f"col_{canonical}"] = file_column
    for name in ("path", "timezone", "ts_format", "exchange"):
        if getattr(args, name):
            options[name] = getattr(args, name)
    try:
        config = InstrumentConfig(
            key=args.key,
            source=SourceKind(args.source),
            asset_class=AssetClass(args.asset_class),
            whole_units=args.whole_units,
            options=options,
        )
    except ValueError as e:
        raise QuantAssetsError(f"instrument '{args.key}' is invalid: {e}") from e
    resource = _resource(args)
    register_instruments(_instance(args), resource, [config])
    print(f"registered {config.key} (source {config.source.value}); load it with:")
    print(
        "  dagster asset materialize -m quant_assets.definitions --select bars "
        f"--partition-range '{config.key}|2024-01-01...{config.key}|2024-06-01'"
    )
    return 0


def _instruments_list(args: argparse.Namespace) -> int:
    configs = _resource(args).warehouse().instruments()
    rows = [c.model_dump(mode="json") for c in configs]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(pl.DataFrame(rows).drop("options") if rows else pl.DataFrame())
    return 0


def _instruments_sync(args: argparse.Namespace) -> int:
    resource = _resource(args)
    configs = resource.default_instruments()
    register_instruments(_instance(args), resource, configs)
    print(f"registered {len(configs)} instruments from {resource.instruments_file}")
    return 0


def _specs_add(args: argparse.Namespace) -> int:
    if not args.file.exists():
        raise QuantAssetsError(
            f"spec file {args.file} does not exist; pass a YAML like specs/*.yaml"
        )
    store = _resource(args).warehouse()
    spec = preflight_spec(load_spec_yaml(args.file), store)
    instance = _instance(args)
    save_spec(store, spec)
    if not instance.has_dynamic_partition(SPEC_PARTITIONS_NAME, spec.spec_id):
        instance.add_dynamic_partitions(SPEC_PARTITIONS_NAME, [spec.spec_id])
    print(f"registered spec {spec.spec_id} ({spec.name}); materialize it with:")
    print(
        "  dagster asset materialize -m quant_assets.definitions --select strategy_specs "
        f"--partition {spec.spec_id}"
    )
    return 0


def _specs_list(args: argparse.Namespace) -> int:
    rows = [
        {"spec_id": spec_id, "name": name, "template": template, "status": status}
        for spec_id, name, template, status in list_specs(_resource(args).warehouse())
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_table(pl.DataFrame(rows) if rows else pl.DataFrame())
    return 0


def _data_list(args: argparse.Namespace) -> int:
    inventory = data_inventory(_resource(args))
    if args.json:
        print(json.dumps(inventory.to_dicts(), default=str, indent=2))
    else:
        print_inventory(inventory)
    return 0


def _decide(args: argparse.Namespace) -> int:
    resource = _resource(args)
    instance = _instance(args)
    record = apply_decision(resource, args.target, args.decision, args.approver, args.reason)
    archive = resource.archive()
    actor = record_actor(archive, record)
    # The same event approval_job logs: the asset's history shows decisions from both doors.
    instance.report_runless_asset_event(
        record_event(record, archive, f"{args.decision} by {actor} (quant-assets)")
    )
    print(f"record {record.record_id} (spec {record.spec_id}) is now {record.state}")
    print(f"  {args.decision} by {actor}: {args.reason.strip()}")
    return 0


def _archive_list(args: argparse.Namespace) -> int:
    state = RecordState(args.state) if args.state else None
    rows = [record_row(record) for record in _resource(args).archive().list(state)]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("(no archived records; materialize archive_records for a spec)")
    else:
        cells = [{k: "-" if v is None else v for k, v in row.items()} for row in rows]
        print_table(pl.DataFrame(cells))
    return 0


def _archive_show(args: argparse.Namespace) -> int:
    resource = _resource(args)
    archive = resource.archive()
    record = resolve_record(archive, args.target)
    transitions = archive.transitions(record.record_id)
    names = {spec_id: name for spec_id, name, _, _ in list_specs(resource.warehouse())}
    current = preferences_hash(resource.preferences())
    if args.json:
        document = record_document(
            record, transitions, current_preferences_hash=current, spec_names=names
        )
        print(json.dumps(document, indent=2))
    else:
        print(record_text(record, transitions, current_preferences_hash=current, spec_names=names))
    return 0


def _archive_freeze(args: argparse.Namespace) -> int:
    resource = _resource(args)
    instance = _instance(args)
    record = freeze(resource, args.target, args.reason)
    archive = resource.archive()
    instance.report_runless_asset_event(
        record_event(record, archive, "frozen by system; holdout evaluated once")
    )
    print(f"record {record.record_id} (spec {record.spec_id}) is now {record.state}")
    oos = record.metrics.oos
    if record.holdout is not None:
        held = record.holdout.report
        print(
            f"  holdout from {record.holdout.start.isoformat()}: Sharpe {held.sharpe:.2f}, max "
            f"drawdown {held.max_drawdown:.2%}, {held.trades} trades (OOS Sharpe "
            f"{oos.sharpe:.2f}, max drawdown {oos.max_drawdown:.2%})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
