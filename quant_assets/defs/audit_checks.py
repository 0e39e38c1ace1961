"""Audits of walk-forward results as asset checks (blocking unless a warning by nature).

Each check calls an `audit_*_of` function of `defs/audit_runs.py` on the stored run, as the
archive and the tear sheet do, so a record carries exactly the verdicts its checks showed.
"""

import dagster as dg

from quant_assets.defs.audit_runs import (
    Audit,
    audit_concentration_of,
    audit_drawdown_limit_of,
    audit_look_ahead_of,
    audit_min_trades_of,
    audit_overfitting_gap_of,
    audit_survivorship_of,
    spec_and_run,
)
from quant_assets.defs.partitions import spec_partitions
from quant_assets.defs.resources import WarehouseResource, run_goal
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.governance.audits import AuditOutcome


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


def _check(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, audit: Audit
) -> dg.AssetCheckResult:
    spec, run = spec_and_run(warehouse, context.partition_key)
    return _result(audit(warehouse, spec, run, run_goal(context.run.tags)))


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def look_ahead(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Signals recomputed on bars truncated at sampled points equal those on the full bars."""
    return _check(context, warehouse, audit_look_ahead_of)


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def overfitting_gap(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """The in-sample to out-of-sample Sharpe gap and the deflated Sharpe are within limits."""
    return _check(context, warehouse, audit_overfitting_gap_of)


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def min_trades(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Enough out-of-sample trades for the statistics to mean something."""
    return _check(context, warehouse, audit_min_trades_of)


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def drawdown_limit(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """The out-of-sample max drawdown is no worse than the preferences allow."""
    return _check(context, warehouse, audit_drawdown_limit_of)


@dg.asset_check(asset=walkforward_results, blocking=True, partitions_def=spec_partitions)
def concentration(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """No entry commits more of a sleeve's equity than the position cap."""
    return _check(context, warehouse, audit_concentration_of)


@dg.asset_check(asset=walkforward_results, partitions_def=spec_partitions)
def survivorship(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """A warning when the spec trades equities picked from today's index members."""
    return _check(context, warehouse, audit_survivorship_of)
