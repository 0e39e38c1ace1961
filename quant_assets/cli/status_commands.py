"""`quant-assets status` and the data inventory behind `data list`: what the project holds now."""

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import dagster as dg
import polars as pl
from tqdm import tqdm

from quant_assets.cli.tables import print_table, print_wrapped
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.market import AssetClass, InstrumentKey
from quant_assets.domain.research import ResearchState
from quant_assets.governance.report_text import state_counts
from quant_assets.market.continuity import continuity_report
from quant_assets.market.manifest import manifest_summary
from quant_assets.market.months import month_keys_between
from quant_assets.storage.lake import Lake
from quant_assets.storage.research import list_specs
from quant_assets.storage.research_loop import latest_state, research_goal_names
from quant_assets.strategy.risks.annualization import asset_class_of

Context = Callable[[argparse.Namespace], tuple[WarehouseResource, dg.DagsterInstance]]
DEFAULT_RUNS: Final = 10
WALKFORWARD_KEY: Final = dg.AssetKey("walkforward_results")
_RUN_METRICS: Final = (
    "oos_sharpe",
    "oos_max_drawdown",
    "oos_total_return",
    "oos_trades",
    "is_sharpe",
    "deflated_sharpe",
    "trials_total",
)


def add_status_command(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]", context: Context
) -> None:
    """Add `status` to the parser."""
    status = commands.add_parser(
        "status", help="research goals, archive counts, latest walk-forward runs, data held"
    )
    status.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        metavar="N",
        help=f"show the latest run of the N most recently run specs (default {DEFAULT_RUNS})",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=lambda args: _status(args, context))


def goal_row(state: ResearchState, record_states: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the one-line summary of a research goal's current state (JSON-ready values).

    Args:
        state: The goal's current research state.
        record_states: Each archive record's current state by id; the frozen record's state
            today (a person may have approved it since the loop ended).
    """
    best = state.best
    frozen = state.frozen_record_id
    return {
        "goal": state.goal.name,
        "status": state.status.value,
        "iteration": state.iteration,
        "max_iterations": state.goal.budget.max_iterations,
        "attempts": len(state.attempts),
        "next_dimension": state.dimension.value,
        "best_spec_id": None if best is None else best.spec_id,
        "best_oos_sharpe": None
        if best is None or best.metrics is None
        else best.metrics.oos_sharpe,
        "frozen_record_id": frozen,
        "frozen_record_state": None if frozen is None else (record_states or {}).get(frozen),
        "llm_cost_usd": state.spend.cost_usd,
        "reason": state.reason,
        "updated_at": state.updated_at.isoformat(),
    }


def latest_runs(
    instance: dg.DagsterInstance, names: dict[str, str], limit: int
) -> list[dict[str, Any]]:
    """Return the latest walk-forward run of the `limit` most recently run specs, newest first.

    Read from walkforward_results' materializations on the Dagster instance (never the DuckDB
    file, which a running step may hold): each names its spec (the partition), the run id and
    the run's headline metrics.

    Args:
        instance: The Dagster instance the runs were launched on.
        names: Spec name by spec id (ids it lacks show as None).
        limit: How many specs to show.
    """
    if limit <= 0:
        return []
    # A re-run of an unchanged spec is another event for the same spec: read extra, keep the
    # newest event per spec.
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=WALKFORWARD_KEY), limit=limit * 4
    ).records
    rows: dict[str, dict[str, Any]] = {}
    for record in records:
        event = record.asset_materialization
        if event is None or event.partition is None or event.partition in rows:
            continue
        metadata = {key: value.value for key, value in event.metadata.items()}
        rows[event.partition] = {
            "spec_id": event.partition,
            "name": names.get(event.partition),
            "run_id": metadata.get("run_id"),
            "materialized_at": datetime.fromtimestamp(record.timestamp, UTC).isoformat(),
            **{metric: metadata.get(metric) for metric in _RUN_METRICS},
            "tear_sheet": metadata.get("tear_sheet"),
            "dagster_run_id": record.run_id,
        }
        if len(rows) == limit:
            break
    return list(rows.values())


def status_document(
    resource: WarehouseResource, instance: dg.DagsterInstance, runs: int
) -> dict[str, Any]:
    """Return what `status --json` prints: goals, archive counts, latest runs and data held."""
    store = resource.warehouse()
    states = [state for name in research_goal_names(store) if (state := latest_state(store, name))]
    records = resource.archive().list() if store.path.exists() else []
    manifest = store.partition_versions()
    names = {spec_id: name for spec_id, name, _, _ in list_specs(store)}
    return {
        "goals": [
            goal_row(state, {r.record_id: r.state.value for r in records}) for state in states
        ],
        "archive": {
            "records": len(records),
            "by_state": {state.value: n for state, n in state_counts(records).items()},
        },
        "latest_runs": latest_runs(instance, names, runs),
        "specs": len(names),
        "data": {
            "instruments": 0 if manifest.is_empty() else manifest["instrument"].n_unique(),
            "partitions": manifest.height,
            "rows": 0 if manifest.is_empty() else int(manifest["rows"].sum()),
        },
    }


def _status(args: argparse.Namespace, context: Context) -> int:
    resource, instance = context(args)
    document = status_document(resource, instance, args.runs)
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    _print_goals(document["goals"])
    archive = document["archive"]
    counts = ", ".join(f"{n} {state}" for state, n in archive["by_state"].items())
    print()
    print_wrapped(f"archive: {archive['records']} record(s): {counts}")
    _print_runs(document["latest_runs"], document["specs"])
    data = document["data"]
    print()
    print_wrapped(
        f"data: {data['instruments']} instrument(s), {data['partitions']:,} monthly "
        f"partition(s), {data['rows']:,} bars (`quant-assets data list`)"
    )
    return 0


def _print_goals(goals: list[dict[str, Any]]) -> None:
    print("research goals")
    if not goals:
        print("(no research goal started; `quant-assets research start btc_eth_trend_1h`)")
        return
    print_table(
        pl.DataFrame([_goal_cells(row) for row in goals]),
        right_aligned=("iteration", "best Sharpe"),
    )
    for row in goals:
        ended = " ".join(part for part in (row["reason"], _frozen(row)) if part)
        if ended:
            print_wrapped(f"{row['goal']}: {ended}")


def _print_runs(runs: list[dict[str, Any]], specs: int) -> None:
    print(f"\nlatest walk-forward runs ({len(runs)} of {specs} specs)")
    if not runs:
        print("(no walk-forward run yet; `make demo` or materialize walkforward_results)")
        return
    print_table(
        pl.DataFrame([_run_cells(row) for row in runs]),
        right_aligned=("Sharpe", "max DD", "return", "trades", "DSR"),
    )
    print_wrapped(
        "(out-of-sample; DSR: deflated Sharpe; `quant-assets report SPEC` for the tear sheet)"
    )


def _frozen(row: dict[str, Any]) -> str:
    record = row["frozen_record_id"]
    if not record:
        return ""
    now = row.get("frozen_record_state") or "frozen"
    return f"(record {record} is {now}; `quant-assets archive show {record}`)"


def _number(value: object, template: str) -> str:
    return "-" if value is None else template.format(value)


def _goal_cells(row: dict[str, Any]) -> dict[str, str]:
    return {
        "goal": row["goal"],
        "status": row["status"],
        "iteration": f"{row['iteration']}/{row['max_iterations']}",
        "best Sharpe": _number(row["best_oos_sharpe"], "{:.2f}"),
        "best spec": row["best_spec_id"] or "-",
        "next": row["next_dimension"],
    }


def _run_cells(row: dict[str, Any]) -> dict[str, str]:
    return {
        "spec": row["spec_id"],
        "Sharpe": _number(row["oos_sharpe"], "{:.2f}"),
        "max DD": _number(row["oos_max_drawdown"], "{:.1%}"),
        "return": _number(row["oos_total_return"], "{:.1%}"),
        "trades": _number(row["oos_trades"], "{}"),
        "DSR": _number(row["deflated_sharpe"], "{:.2f}"),
        "name": row["name"] or "-",
    }


def data_inventory(resource: WarehouseResource) -> pl.DataFrame:
    """Return one row per stored instrument: months, rows, first/last ts, missing months and gaps.

    Months come from the data_versions manifest; gaps from the stored bars (each instrument's
    bars are read once, with a progress bar): `missing_bars` in `gaps` holes between the first
    and last bar, the longest of them and the bar it follows (`market.continuity`; daily equity
    bars count weekdays only). `missing_months` are months between the first and last stored
    one that hold no partition.
    """
    store, lake = resource.warehouse(), resource.lake()
    manifest = store.partition_versions()
    summary = manifest_summary(manifest)
    if summary.is_empty():
        return summary
    classes = {config.key: config.asset_class for config in store.instruments()}
    keys = summary["instrument"].to_list()
    rows = [
        _gap_row(
            lake,
            key,
            [
                f"{month:%Y-%m-%d}"
                for month in manifest.filter(pl.col("instrument") == key)["month"]
            ],
            # An instrument stored but no longer registered: its venue decides its calendar.
            classes.get(key) or asset_class_of(key),
        )
        for key in tqdm(keys, desc="gaps", unit="instrument", leave=False, disable=None)
    ]
    gaps = pl.DataFrame(rows, schema_overrides={"longest_gap_after": pl.Datetime("us", "UTC")})
    return summary.join(gaps, on="instrument", how="left", maintain_order="left")


def _gap_row(
    lake: Lake, key: str, month_keys: list[str], asset_class: AssetClass
) -> dict[str, Any]:
    bars = lake.read_bars(key, month_keys)
    report = continuity_report(bars, InstrumentKey.parse(key), asset_class)
    expected = month_keys_between(bars["ts"][0], bars["ts"][-1]) if bars.height else month_keys
    return {
        "instrument": key,
        "missing_months": len(set(expected) - set(month_keys)),
        "missing_bars": report.missing_bars,
        "gaps": report.gaps,
        "suspicious_gaps": report.suspicious_gaps,
        "longest_gap_bars": report.longest_gap_bars,
        "longest_gap_after": report.longest_gap_after,
    }


def print_inventory(inventory: pl.DataFrame) -> None:
    """Print the data inventory as a table that fits the terminal, then any missing months."""
    if inventory.is_empty():
        print_table(inventory)
        return
    cells = inventory.select(
        "instrument",
        "months",
        pl.col("rows").alias("bars"),
        pl.col("first_ts").dt.strftime("%Y-%m").alias("first"),
        pl.col("last_ts").dt.strftime("%Y-%m").alias("last"),
        pl.col("missing_bars").alias("missing"),
        pl.col("suspicious_gaps").alias("suspect"),
        pl.col("longest_gap_bars").alias("longest"),
    )
    print_table(cells, right_aligned=("first", "last"))
    print_wrapped(
        "(missing: bars absent between the first and last; suspect: holes other than one-weekday"
        " equity holidays; longest: the longest hole, in bars; --json has more)"
    )
    for row in inventory.filter(pl.col("missing_months") > 0).iter_rows(named=True):
        print(f"{row['instrument']}: {row['missing_months']} month(s) without a partition")
