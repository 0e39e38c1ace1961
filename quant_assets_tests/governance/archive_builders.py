"""Builders shared by the governance and archive tests: records in any state, runs, stores."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from quant_assets.domain.backtest import StepSummary
from quant_assets.domain.governance import (
    SYSTEM_ACTOR,
    ArchiveRecord,
    MetricsSnapshot,
    RecordAudit,
    RecordState,
    Transition,
)
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ParamValue
from quant_assets.domain.walkforward import (
    WalkForwardRun,
    WindowBounds,
    WindowCurve,
    WindowResult,
)
from quant_assets.governance.lifecycle import transition
from quant_assets.storage.archive import ArchiveStore
from quant_assets.storage.lake import Lake
from quant_assets.storage.warehouse import Warehouse
from quant_assets_tests.governance.conftest import build_report

T0: Final = datetime(2026, 1, 5, 9, 30, 15, 123456, tzinfo=UTC)
GOAL: Final = "btc-trend-2021"
PREFERENCES_HASH: Final = "5f1d2c3b4a596877"
PERSON: Final = "Ada Lovelace"
DATA_VERSIONS: Final = {"binance.BTC-USDT.1h": "d41d8cd98f00b204"}
PINNED: Final[dict[int, dict[str, ParamValue]]] = {
    0: {"baseline.fast_span_bars": 5, "baseline.slow_span_bars": 20},
    1: {"baseline.fast_span_bars": 12, "baseline.slow_span_bars": 40},
}
# From a new result to each state, along the only legal path (the first step is the creation).
PATHS: Final[dict[RecordState, tuple[RecordState, ...]]] = {
    RecordState.CANDIDATE: (RecordState.CANDIDATE,),
    RecordState.DISCARDED: (RecordState.DISCARDED,),
    RecordState.FROZEN: (RecordState.CANDIDATE, RecordState.FROZEN),
    RecordState.PRODUCTION: (RecordState.CANDIDATE, RecordState.FROZEN, RecordState.PRODUCTION),
    RecordState.DEPRECATED: (RecordState.CANDIDATE, RecordState.FROZEN, RecordState.DEPRECATED),
}


def passing_audits() -> tuple[RecordAudit, ...]:
    """Return verdicts of two blocking audits that passed and a warning."""
    return (
        RecordAudit(name="min_trades", passed=True, blocking=True, message="40 trades >= 20"),
        RecordAudit(name="drawdown_limit", passed=True, blocking=True, message="-15% ok"),
        RecordAudit(name="survivorship", passed=False, blocking=False, message="equities"),
    )


def failed_blocking_audits() -> tuple[RecordAudit, ...]:
    """Return verdicts where the blocking min_trades audit failed."""
    return (
        RecordAudit(name="min_trades", passed=False, blocking=True, message="5 trades < 20"),
        RecordAudit(name="drawdown_limit", passed=True, blocking=True, message="-15% ok"),
    )


def new_record(
    state: RecordState = RecordState.CANDIDATE,
    *,
    goal: str = GOAL,
    spec_id: str = "0123456789abcdef",
    audits: Sequence[RecordAudit] | None = None,
    oos: EvalReport | None = None,
    pinned: dict[int, dict[str, ParamValue]] | None = None,
    preferences_hash: str = PREFERENCES_HASH,
    at: datetime = T0,
) -> tuple[ArchiveRecord, Transition]:
    """Return a new record in `state` (candidate or discarded) and its creation row."""
    record = ArchiveRecord.create(
        spec_id=spec_id,
        parent_spec_ids=("fedcba9876543210", "00000000000000aa"),
        run_id="run0000000000001",
        goal=goal,
        data_versions=dict(DATA_VERSIONS),
        engine_version="kernel-1",
        preferences_hash=preferences_hash,
        pinned=PINNED if pinned is None else pinned,
        metrics=MetricsSnapshot(
            oos=oos or build_report(), in_sample=build_report(sharpe=1.6), deflated_sharpe=0.7
        ),
        audits=tuple(passing_audits() if audits is None else audits),
        state=state,
        created_at=at,
    )
    creation = Transition(
        record_id=record.record_id,
        sequence=0,
        from_state=None,
        to_state=state,
        actor=SYSTEM_ACTOR,
        at=at,
        reason="new result",
    )
    return record, creation


def advance(
    record: ArchiveRecord, to_state: RecordState, *, at: datetime
) -> tuple[ArchiveRecord, Transition]:
    """Return the record moved to `to_state` by the right actor (system or PERSON)."""
    if to_state is RecordState.FROZEN:
        return transition(
            record,
            to_state,
            actor=SYSTEM_ACTOR,
            reason="research converged",
            at=at,
            goal_deflated_sharpe=0.6,
            goal_trials=400,
        )
    return transition(record, to_state, actor=PERSON, reason=f"{to_state} by a person", at=at)


def record_in(
    state: RecordState,
    *,
    goal: str = GOAL,
    spec_id: str = "0123456789abcdef",
    audits: Sequence[RecordAudit] | None = None,
    oos: EvalReport | None = None,
    pinned: dict[int, dict[str, ParamValue]] | None = None,
) -> tuple[ArchiveRecord, list[Transition]]:
    """Return a record in `state` (reached along PATHS) and its whole trail."""
    path = PATHS[state]
    record, creation = new_record(
        path[0], goal=goal, spec_id=spec_id, audits=audits, oos=oos, pinned=pinned
    )
    trail = [creation]
    for step, target in enumerate(path[1:], start=1):
        record, move = advance(record, target, at=T0 + timedelta(hours=step))
        trail.append(move)
    return record, trail


def archive_in(
    store: ArchiveStore,
    state: RecordState,
    *,
    goal: str = GOAL,
    spec_id: str = "0123456789abcdef",
    audits: Sequence[RecordAudit] | None = None,
    oos: EvalReport | None = None,
    pinned: dict[int, dict[str, ParamValue]] | None = None,
) -> ArchiveRecord:
    """Store a record and every move that brings it to `state`; return its latest version."""
    path = PATHS[state]
    record, creation = new_record(
        path[0], goal=goal, spec_id=spec_id, audits=audits, oos=oos, pinned=pinned
    )
    store.create(record, creation)
    for step, target in enumerate(path[1:], start=1):
        record, move = advance(record, target, at=T0 + timedelta(hours=step))
        store.append(record, move)
    return record


def make_store(root: Path) -> ArchiveStore:
    """Return an archive store on a fresh DuckDB file under `root`."""
    return ArchiveStore(Warehouse(root / "warehouse.duckdb", Lake(root / "lake")))


def walkforward_run(
    oos: EvalReport,
    *,
    params_per_window: Sequence[dict[str, ParamValue]],
    preferences_hash: str = "",
    trials_total: int = 100,
    run_id: str = "run0000000000001",
) -> WalkForwardRun:
    """Return a small but valid walk-forward run whose windows found `params_per_window`."""
    windows = tuple(_window(index, params, oos) for index, params in enumerate(params_per_window))
    return WalkForwardRun(
        run_id=run_id,
        spec_id="0123456789abcdef",
        data_versions=dict(DATA_VERSIONS),
        engine_version="kernel-1",
        preferences_hash=preferences_hash,
        started_at=T0,
        finished_at=T0 + timedelta(minutes=3),
        seconds=180.0,
        windows=windows,
        windows_recomputed=len(windows),
        windows_reused=0,
        trials_executed=trials_total,
        trials_total=trials_total,
        is_report=build_report(sharpe=1.6),
        oos_report=oos,
        regimes=(),
        deflated_sharpe=0.7,
        step_summary=StepSummary(candidates=10, fills=8),
    )


def _window(index: int, params: dict[str, ParamValue], oos: EvalReport) -> WindowResult:
    curve = WindowCurve(
        base_equity=10_000.0, ts_us=(0, 3_600_000_000), equity=(1.0, 2.0), exposure=(0.0, 1.0)
    )
    start = index * 200
    return WindowResult(
        bounds=WindowBounds(
            index=index,
            warmup_start=start,
            train_start=start,
            train_end=start + 100,
            test_start=start + 110,
            test_end=start + 200,
        ),
        best_params=params,
        best_value=1.0 + index,
        trials=50,
        worst_trials=0,
        backtests=51,
        seed=42 + index,
        is_report=build_report(sharpe=1.6),
        oos_report=oos,
        oos_steps=StepSummary(candidates=5, fills=4),
        oos_curve=curve,
        oos_trades=(),
        is_curve=curve,
        is_trades=(),
        cache_key=f"window-{index}",
        bars_hash=f"bars-{index}",
        oos_regimes=(0, 0),
    )
