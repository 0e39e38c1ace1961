"""Audits of walk-forward results as asset checks (blocking unless a warning by nature)."""

import dagster as dg
import polars as pl

from quant_assets.backtest.run_spec import DEFAULT_INITIAL_CASH
from quant_assets.defs.partitions import spec_partitions
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.domain.strategy import StrategySpec
from quant_assets.domain.walkforward import WalkForwardRun
from quant_assets.governance.audits import (
    AuditOutcome,
    audit_concentration,
    audit_drawdown_limit,
    audit_look_ahead,
    audit_min_trades,
    audit_overfitting_gap,
    audit_survivorship,
    largest_entry_fraction,
)
from quant_assets.storage.research import load_spec
from quant_assets.storage.walkforward import latest_run


def _spec_and_run(
    warehouse: WarehouseResource, spec_id: str
) -> tuple[StrategySpec, WalkForwardRun]:
    store = warehouse.warehouse()
    run = latest_run(store, spec_id)
    if run is None:
        raise dg.Failure(f"no walk-forward run stored for spec {spec_id}; materialize it first")
    return load_spec(store, spec_id), run


def _result(outcome: AuditOutcome) -> dg.AssetCheckResult:
    severity = (
        dg.AssetCheckSeverity.ERROR if outcome.severity == "error" else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=severity,
        description=outcome.message,
        metadata={"message": dg.MetadataValue.text(outcome.message), **outcome.metrics},
    )


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def look_ahead(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Signals recomputed on bars truncated at sampled points equal those on the full bars."""
    spec, run = _spec_and_run(warehouse, context.partition_key)
    lake = warehouse.lake()
    start, end = spec.data.start, spec.data.end
    bars = {
        key: lake.read_bars(key).filter(pl.col("ts").is_between(start, end, closed="left"))
        for key in spec.data.instruments
    }
    # The last window's parameters are the ones a frozen strategy would trade.
    return _result(audit_look_ahead(spec, bars, run.windows[-1].best_params))


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def overfitting_gap(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """The in-sample to out-of-sample Sharpe gap and the deflated Sharpe are within limits."""
    _, run = _spec_and_run(warehouse, context.partition_key)
    return _result(
        audit_overfitting_gap(
            run.is_report, run.oos_report, run.deflated_sharpe, warehouse.preferences()
        )
    )


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def min_trades(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Enough out-of-sample trades for the statistics to mean something."""
    _, run = _spec_and_run(warehouse, context.partition_key)
    return _result(audit_min_trades(run.oos_report, warehouse.preferences()))


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def drawdown_limit(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """The out-of-sample max drawdown is no worse than the preferences allow."""
    _, run = _spec_and_run(warehouse, context.partition_key)
    return _result(audit_drawdown_limit(run.oos_report, warehouse.preferences()))


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def concentration(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """No entry commits more of a sleeve's equity than the position cap."""
    spec, run = _spec_and_run(warehouse, context.partition_key)
    sleeve_cash = DEFAULT_INITIAL_CASH / len(spec.data.instruments)
    # Each window trades from flat with fresh cash, so the fraction is measured per window.
    largest = max(
        largest_entry_fraction(
            pl.DataFrame([t.model_dump() for t in window.oos_trades]),
            sleeve_cash=sleeve_cash,
            commission_rate=spec.cost.commission_rate,
        )
        if window.oos_trades
        else 0.0
        for window in run.windows
    )
    return _result(audit_concentration(largest, warehouse.preferences()))


@dg.asset_check(asset=walkforward_results, partitions_def=spec_partitions)
def survivorship(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """A warning when the spec trades equities picked from today's index members."""
    spec, _ = _spec_and_run(warehouse, context.partition_key)
    classes = {c.key: c.asset_class.value for c in warehouse.warehouse().instruments()}
    return _result(audit_survivorship(spec, classes))
