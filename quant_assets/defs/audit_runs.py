"""The six audits of a stored walk-forward run, as the checks and the archive call them.

The asset checks (`defs/audit_checks.py`), the archive (`defs/governance.py`, which stamps the
verdicts on the record) and the tear sheet (`defs/walkforward.py`) call these same functions on
the stored run, so a record and its page carry exactly the verdicts its checks showed.
"""

from collections.abc import Callable
from typing import Final

import dagster as dg
import polars as pl

from quant_assets.backtest.run_spec import DEFAULT_INITIAL_CASH
from quant_assets.defs.resources import WarehouseResource
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

Audit = Callable[[WarehouseResource, StrategySpec, WalkForwardRun, str], AuditOutcome]
"""An audit of a stored run: (resource, spec, run, goal name) -> verdict."""


def spec_and_run(warehouse: WarehouseResource, spec_id: str) -> tuple[StrategySpec, WalkForwardRun]:
    """Return a spec and its latest stored walk-forward run.

    Raises:
        dagster.Failure: if the spec has no stored run yet.
    """
    store = warehouse.warehouse()
    run = latest_run(store, spec_id)
    if run is None:
        raise dg.Failure(f"no walk-forward run stored for spec {spec_id}; materialize it first")
    return load_spec(store, spec_id), run


def audit_look_ahead_of(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> AuditOutcome:
    """Return the look-ahead verdict on the spec's research bars (before its sealed holdout)."""
    reader = warehouse.bars_reader(spec, goal)
    bars = {key: reader.read_research_bars(key, spec.data.start) for key in spec.data.instruments}
    # The last window's parameters are the ones a frozen strategy would trade.
    return audit_look_ahead(spec, bars, run.windows[-1].best_params)


def audit_overfitting_gap_of(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> AuditOutcome:
    """Return the IS/OOS Sharpe gap and deflated Sharpe verdict of the run."""
    return audit_overfitting_gap(
        run.is_report, run.oos_report, run.deflated_sharpe, warehouse.preferences()
    )


def audit_min_trades_of(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> AuditOutcome:
    """Return the minimum OOS trades verdict of the run."""
    return audit_min_trades(run.oos_report, warehouse.preferences())


def audit_drawdown_limit_of(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> AuditOutcome:
    """Return the OOS drawdown verdict of the run against the preferences."""
    return audit_drawdown_limit(run.oos_report, warehouse.preferences())


def audit_concentration_of(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> AuditOutcome:
    """Return the position-size verdict of the run's OOS entries."""
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
    return audit_concentration(largest, warehouse.preferences())


def audit_survivorship_of(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> AuditOutcome:
    """Return the survivorship warning of the spec's instruments."""
    classes = {c.key: c.asset_class.value for c in warehouse.warehouse().instruments()}
    return audit_survivorship(spec, classes)


AUDITS: Final[tuple[Audit, ...]] = (
    audit_look_ahead_of,
    audit_overfitting_gap_of,
    audit_min_trades_of,
    audit_drawdown_limit_of,
    audit_concentration_of,
    audit_survivorship_of,
)
"""The six audits, in the order the archive stamps them."""


def run_audits(
    warehouse: WarehouseResource, spec: StrategySpec, run: WalkForwardRun, goal: str
) -> list[AuditOutcome]:
    """Return the verdicts of all six audits on a stored run (what its asset checks report)."""
    return [audit(warehouse, spec, run, goal) for audit in AUDITS]
