"""Plain-text and markdown views of archive records for the CLI and the Dagster UI.

`record_text` is what `quant-assets archive show` prints: the lineage tree (goal -> root spec
-> ... -> spec -> run -> record), provenance (data versions, engine version, preferences hash,
flagged when the preferences changed since the record), OOS and IS metrics with the holdout
result beside them, the audits and the transitions. Percent is a formatting concern here only;
the records hold fractions.
"""

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from quant_assets.domain.governance import ArchiveRecord, RecordState, Transition
from quant_assets.domain.report import EvalReport
from quant_assets.governance.lifecycle import preferences_changed

SEALED: Final = "sealed, not evaluated"
"""What the holdout shows until the record is frozen (the holdout is read once, then)."""
NOT_STORED: Final = "(spec not stored)"
_METRIC_ROWS: Final = (
    ("Sharpe", "sharpe", "{:.2f}"),
    ("Sortino", "sortino", "{:.2f}"),
    ("max drawdown", "max_drawdown", "{:.2%}"),
    ("total return", "total_return", "{:.2%}"),
    ("CAGR", "cagr", "{:.2%}"),
    ("trades", "trades", "{:d}"),
    ("win rate", "win_rate", "{:.1%}"),
    ("exposure", "exposure", "{:.1%}"),
    ("deflated Sharpe", "deflated_sharpe", "{:.3f}"),
)


def state_counts(records: Sequence[ArchiveRecord]) -> dict[RecordState, int]:
    """Return how many records are in each state (every state listed, zeros included)."""
    counted = Counter(record.state for record in records)
    return {state: counted.get(state, 0) for state in RecordState}


def candidates_markdown(records: Sequence[ArchiveRecord]) -> str:
    """Return a markdown table of the candidate records with their OOS Sharpe and drawdown."""
    candidates = [record for record in records if record.state is RecordState.CANDIDATE]
    if not candidates:
        return "no candidates"
    lines = [
        "| record | spec | OOS Sharpe | OOS max drawdown | OOS trades | created |",
        "|---|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.record_id} | {r.spec_id} | {r.metrics.oos.sharpe:.2f} | "
        f"{r.metrics.oos.max_drawdown:.2%} | {r.metrics.oos.trades} | {_when(r.created_at)} |"
        for r in candidates
    ]
    return "\n".join(lines)


def audits_markdown(record: ArchiveRecord) -> str:
    """Return a markdown table of the record's audit verdicts."""
    lines = ["| audit | verdict | blocking | message |", "|---|---|---|---|"]
    lines += [
        f"| {a.name} | {_verdict(a.passed, a.blocking)} | {'yes' if a.blocking else 'no'} | "
        f"{a.message} |"
        for a in record.audits
    ]
    return "\n".join(lines)


def record_row(record: ArchiveRecord) -> dict[str, Any]:
    """Return the summary of a record that `archive list` shows (JSON-ready values)."""
    holdout = record.holdout
    return {
        "record_id": record.record_id,
        "state": record.state.value,
        "goal": record.goal,
        "spec_id": record.spec_id,
        "oos_sharpe": round(record.metrics.oos.sharpe, 4),
        "oos_max_drawdown": round(record.metrics.oos.max_drawdown, 4),
        "holdout_sharpe": None if holdout is None else round(holdout.report.sharpe, 4),
        "created_at": record.created_at.isoformat(),
    }


def lineage_lines(record: ArchiveRecord, spec_names: Mapping[str, str]) -> list[str]:
    """Return the lineage tree: goal -> root spec -> ... -> spec -> run -> record.

    Args:
        record: The record.
        spec_names: Name per stored spec id (ids it lacks are shown as not stored).
    """
    specs = [*reversed(record.parent_spec_ids), record.spec_id]
    nodes = [f"goal {record.goal}"]
    for depth, spec_id in enumerate(specs):
        role = " [root]" if depth == 0 and len(specs) > 1 else ""
        nodes.append(f"spec {spec_id}  {spec_names.get(spec_id, NOT_STORED)}{role}")
    nodes += [f"run {record.run_id}", f"record {record.record_id}  {record.state}"]
    lines = [nodes[0]]
    lines += [f"{'    ' * depth}└── {node}" for depth, node in enumerate(nodes[1:])]
    return lines


def metrics_lines(record: ArchiveRecord) -> list[str]:
    """Return the OOS, IS and holdout metrics side by side, then the holdout's provenance."""
    holdout = record.holdout
    columns: list[EvalReport | None] = [
        record.metrics.oos,
        record.metrics.in_sample,
        None if holdout is None else holdout.report,
    ]
    lines = [f"  {'':<18}{'OOS':>12}{'IS':>12}{'holdout':>12}"]
    for label, field, template in _METRIC_ROWS:
        cells = [
            "sealed" if report is None else template.format(getattr(report, field))
            for report in columns
        ]
        lines.append(f"  {label:<18}" + "".join(f"{cell:>12}" for cell in cells))
    lines.append(f"  {'run DSR (OOS)':<18}{record.metrics.deflated_sharpe:>12.3f}")
    if record.goal_deflated_sharpe is not None:
        lines.append(
            f"  goal DSR {record.goal_deflated_sharpe:.3f} over {record.goal_trials} trials of "
            f"goal '{record.goal}'"
        )
    if holdout is None:
        lines.append(f"  holdout: {SEALED} (evaluated once, when the record is frozen)")
    else:
        params = ", ".join(f"{k}={v}" for k, v in sorted(holdout.params.items()))
        lines.append(
            f"  holdout: [{_when(holdout.start)}, {_when(holdout.end)}) evaluated "
            f"{_when(holdout.evaluated_at)} with window {holdout.window_index}'s params ({params})"
        )
    return lines


def audit_lines(record: ArchiveRecord) -> list[str]:
    """Return one line per audit: PASS, FAIL or WARN, blocking or not, and the message."""
    if not record.audits:
        return ["  (no audits archived)"]
    width = max(len(audit.name) for audit in record.audits)
    return [
        f"  {_verdict(a.passed, a.blocking):<4}  {a.name:<{width}}  "
        f"{'blocking' if a.blocking else 'warning ':<8}  {a.message}"
        for a in record.audits
    ]


def transition_lines(transitions: Sequence[Transition]) -> list[str]:
    """Return the trail as a table: sequence, when, from, to, who, why."""
    header = ("#", "at", "from", "to", "actor", "reason")
    rows = [
        (
            str(t.sequence),
            _when(t.at),
            "-" if t.from_state is None else t.from_state.value,
            t.to_state.value,
            t.actor,
            t.reason,
        )
        for t in transitions
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  "
        f"{row[-1]}"
        for row in [header, *rows]
    ]


def record_text(
    record: ArchiveRecord,
    transitions: Sequence[Transition],
    *,
    current_preferences_hash: str,
    spec_names: Mapping[str, str],
) -> str:
    """Return the full readable view of a record (`quant-assets archive show`).

    Args:
        record: The record's latest version.
        transitions: Its trail, oldest first.
        current_preferences_hash: Hash of the preferences in force now.
        spec_names: Name per stored spec id, for the lineage tree.
    """
    if preferences_changed(record, current_preferences_hash):
        flag = f"CHANGED since this record (current {current_preferences_hash})"
    else:
        flag = "unchanged"
    width = max((len(key) for key in record.data_versions), default=0)
    lines = [
        f"Archive record {record.record_id}: {record.state} (goal '{record.goal}')",
        "",
        "Lineage",
        *(f"  {line}" for line in lineage_lines(record, spec_names)),
        "",
        "Data versions",
        *(f"  {key:<{width}}  {value}" for key, value in sorted(record.data_versions.items())),
        f"Engine version  {record.engine_version}",
        f"Preferences     {record.preferences_hash}  {flag}",
        f"Created at      {_when(record.created_at)}",
        "",
        "Metrics",
        *metrics_lines(record),
        "",
        "Audits",
        *audit_lines(record),
        "",
        "Transitions",
        *transition_lines(transitions),
    ]
    return "\n".join(lines)


def record_document(
    record: ArchiveRecord,
    transitions: Sequence[Transition],
    *,
    current_preferences_hash: str,
    spec_names: Mapping[str, str],
) -> dict[str, Any]:
    """Return the JSON view of a record (`quant-assets archive show --json`)."""
    lineage = [*reversed(record.parent_spec_ids), record.spec_id]
    return {
        "record": record.model_dump(mode="json"),
        "lineage": {
            "goal": record.goal,
            "specs": [{"spec_id": s, "name": spec_names.get(s)} for s in lineage],
            "run_id": record.run_id,
        },
        "preferences_changed": preferences_changed(record, current_preferences_hash),
        "current_preferences_hash": current_preferences_hash,
        "transitions": [t.model_dump(mode="json") for t in transitions],
    }


def _verdict(passed: bool, blocking: bool) -> str:
    if passed:
        return "PASS"
    return "FAIL" if blocking else "WARN"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")
