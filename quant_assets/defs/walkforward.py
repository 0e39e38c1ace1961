"""The walk-forward research asset: one out-of-sample evaluation per strategy spec."""

import dagster as dg

from quant_assets.backtest.walkforward import run_walkforward
from quant_assets.defs.audit_runs import run_audits
from quant_assets.defs.market import data_versions
from quant_assets.defs.partitions import spec_partitions
from quant_assets.defs.progress import LogProgress
from quant_assets.defs.research import strategy_specs
from quant_assets.defs.resources import WarehouseResource, run_goal
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import StrategySpec
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.governance.lifecycle import to_record_audits
from quant_assets.governance.preferences import preferences_hash
from quant_assets.market.manifest import manifest_digest
from quant_assets.storage.bars_reader import BarsReader
from quant_assets.storage.research import SPEC_VALIDATED, list_specs, load_spec
from quant_assets.storage.walkforward import WarehouseWindowCache, save_run


@dg.asset(
    partitions_def=spec_partitions,
    deps=[strategy_specs, data_versions],
    group_name="research",
    owners=["team:research"],
    pool="warehouse",
    code_version="1",
    kinds={"optuna", "numba"},
)
def walkforward_results(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Out-of-sample walk-forward evaluation of one strategy spec (Optuna per train window)."""
    store = warehouse.warehouse()
    spec_id = context.partition_key
    status = {row[0]: row[3] for row in list_specs(store)}.get(spec_id)
    if status != SPEC_VALIDATED:
        raise SpecValidationError(
            f"spec {spec_id} has status {status!r}, not validated; materialize "
            f"strategy_specs for partition {spec_id} first"
        )
    spec = load_spec(store, spec_id)
    # Research reads stop at the spec's sealed holdout (DESIGN.md, Governance): the holdout is
    # read once, when a record is frozen, never by the search.
    reader = warehouse.bars_reader(spec, run_goal(context.run.tags))
    bars = {key: reader.read_research_bars(key, spec.data.start) for key in spec.data.instruments}
    versions = {key: manifest_digest(store.partition_versions(key)) for key in bars}
    cache = WarehouseWindowCache(store, spec_id)
    outcome = run_walkforward(
        spec,
        bars,
        cache=cache,
        workers=warehouse.walkforward_workers,
        data_versions=versions,
        preferences_hash=preferences_hash(warehouse.preferences()),
        progress=LogProgress(context.log),
    )
    save_run(store, outcome.run, outcome.oos_equity, outcome.oos_trades, cache)
    run = outcome.run
    context.log.info(
        f"spec {spec_id}: {run.windows_recomputed} window(s) recomputed, {run.windows_reused} "
        f"reused, {outcome.backtests_executed} backtests, OOS Sharpe {run.oos_report.sharpe:.2f}"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(run.run_id),
        metadata={
            **walkforward_metadata(run, outcome.backtests_executed),
            "holdout_sealed_from": dg.MetadataValue.text(reader.guard.start.isoformat()),
            **tear_sheet_metadata(warehouse, spec, run, reader),
        },
    )


def walkforward_metadata(run: WalkForwardRun, backtests: int) -> dict[str, dg.MetadataValue]:
    """Return the numbers and tables a researcher reads on the asset page."""
    oos, ins = run.oos_report, run.is_report
    return {
        "run_id": dg.MetadataValue.text(run.run_id),
        "oos_sharpe": dg.MetadataValue.float(oos.sharpe),
        "oos_max_drawdown": dg.MetadataValue.float(oos.max_drawdown),
        "oos_total_return": dg.MetadataValue.float(oos.total_return),
        "oos_trades": dg.MetadataValue.int(oos.trades),
        "is_sharpe": dg.MetadataValue.float(ins.sharpe),
        "is_oos_sharpe_gap": dg.MetadataValue.float(ins.sharpe - oos.sharpe),
        "deflated_sharpe": dg.MetadataValue.float(run.deflated_sharpe),
        "trials_total": dg.MetadataValue.int(run.trials_total),
        "windows_recomputed": dg.MetadataValue.int(run.windows_recomputed),
        "windows_reused": dg.MetadataValue.int(run.windows_reused),
        "backtests_executed": dg.MetadataValue.int(backtests),
        "seconds": dg.MetadataValue.float(run.seconds),
        "windows": dg.MetadataValue.md(_windows_markdown(run)),
        "regimes": dg.MetadataValue.md(_regimes_markdown(run)),
    }


def _windows_markdown(run: WalkForwardRun) -> str:
    lines = [
        "| window | test from | test to | best params | IS Sharpe | OOS Sharpe | OOS return "
        "| trades |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for window in run.windows:
        bounds, ins, oos = window.bounds, window.is_report, window.oos_report
        params = ", ".join(f"{k}={v}" for k, v in sorted(window.best_params.items()))
        first = f"{bounds.test_first_at:%Y-%m-%d}" if bounds.test_first_at else ""
        last = f"{bounds.test_last_at:%Y-%m-%d}" if bounds.test_last_at else ""
        lines.append(
            f"| {bounds.index} | {first} | {last} | {params} | {ins.sharpe:.2f} | "
            f"{oos.sharpe:.2f} | {oos.total_return:.2%} | {oos.trades} |"
        )
    return "\n".join(lines)


def _regimes_markdown(run: WalkForwardRun) -> str:
    lines = ["| regime | bars | return | Sharpe |", "|---|---:|---:|---:|"]
    lines += [
        f"| {r.regime} | {r.bars} | {r.total_return:.2%} | {r.sharpe:.2f} |" for r in run.regimes
    ]
    return "\n".join(lines)


def tear_sheet_metadata(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, reader: BarsReader
) -> dict[str, dg.MetadataValue]:
    """Write the run's tear sheet (HTML) and equity chart (PNG); return their metadata.

    The audits shown are recomputed by the functions the asset checks call, so the page shows
    the verdicts the checks will report on this run.
    """
    # plotly and matplotlib load only when a tear sheet is written (the defs import stays light).
    from quant_assets.reports.collect import collect_tear_sheet_inputs
    from quant_assets.reports.equity_png import png_markdown
    from quant_assets.reports.tear_sheet import write_tear_sheet

    audits = to_record_audits(run_audits(warehouse, spec, run, reader.guard.goal))
    inputs = collect_tear_sheet_inputs(
        warehouse.warehouse(), warehouse.archive(), reader, spec.spec_id, audits=audits
    )
    paths = write_tear_sheet(inputs, warehouse.reports_path())
    return {
        "tear_sheet": dg.MetadataValue.path(str(paths.html)),
        "equity_chart": dg.MetadataValue.md(png_markdown(paths.png.read_bytes())),
    }
