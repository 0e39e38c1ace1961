"""The research state as text: the ITER_STATE block people and prompts read, attempts as a table."""

from typing import Final

from quant_assets.domain.research import Attempt, ResearchState

_FALSIFIED_SHOWN: Final = 5
_TABLE_ROWS: Final = 10
_SHARPES_SHOWN: Final = 10
_CELL_CHARS: Final = 80


def render_state(state: ResearchState) -> str:
    """Return the ITER_STATE block: goal, progress, best, spend, lessons, next action, attempts.

    About 30 lines plus a table of the last 10 attempts; plain text that reads as markdown.
    """
    goal, rules = state.goal, state.goal.rules
    archive = goal.archive_thresholds()
    lines = [
        f"ITER_STATE goal {goal.name} ({goal.goal_id})",
        f"status: {state.status.value} | iteration {state.iteration} of "
        f"{goal.budget.max_iterations} | next dimension: {state.dimension.value}",
        f"data: {', '.join(goal.data.instruments)} {goal.data.timeframe}, "
        f"{goal.data.start:%Y-%m-%d} to {goal.data.end:%Y-%m-%d}",
        f"targets: OOS Sharpe >= {goal.targets.min_oos_sharpe:.2f}, max drawdown >= "
        f"{goal.targets.max_drawdown:.1%}; archive bar: OOS Sharpe >= "
        f"{archive.min_oos_sharpe:.2f}, max drawdown >= {archive.max_drawdown:.1%}",
        *_best_lines(state),
        f"best OOS Sharpe by iteration: {_sharpes(state)}",
        f"spend: {state.spend.calls} LLM calls, {state.spend.input_tokens} input + "
        f"{state.spend.output_tokens} output tokens, ${state.spend.cost_usd:.2f} of "
        f"${goal.budget.max_llm_usd:.2f}",
        f"dead ends: {state.dead_ends} in a row (research after {rules.dead_ends_for_research},"
        f" stagnation after {rules.stagnation_rounds} rounds under +{rules.min_sharpe_gain})",
        *_falsified_lines(state),
        *_induction_lines(state),
        f"next action: {state.next_action}",
    ]
    if state.pending:
        lines.append(f"in flight: {', '.join(state.pending)}")
    if state.reason is not None:
        lines.append(f"reason: {state.reason}")
    lines.append(f"updated: {state.updated_at.isoformat()}")
    shown = min(_TABLE_ROWS, len(state.attempts))
    lines += ["", f"last {shown} of {len(state.attempts)} attempts:"]
    lines.append(attempts_markdown(state, last=_TABLE_ROWS))
    return "\n".join(lines)


def attempts_markdown(state: ResearchState, last: int = 20) -> str:
    """Return the last `last` attempts as a markdown table (oldest first)."""
    if not state.attempts:
        return "(no attempts yet)"
    rows = [
        "| iter | spec | template | dimension | modules | OOS Sharpe | max DD | trades | verdict |",
        "|---:|---|---|---|---|---:|---:|---:|---|",
    ]
    rows += [_row(attempt) for attempt in state.attempts[-last:]] if last > 0 else []
    return "\n".join(rows)


def _best_lines(state: ResearchState) -> list[str]:
    best = state.best
    if best is None or best.metrics is None:
        return ["best: none yet"]
    metrics = best.metrics
    return [
        f"best: spec {best.spec_id} ({best.template}, {best.family}, iteration "
        f"{best.iteration}): {best.modules}",
        f"      OOS Sharpe {metrics.oos_sharpe:.2f}, max drawdown {metrics.oos_max_drawdown:.1%}, "
        f"{metrics.oos_trades} trades, verdict {best.verdict.value}"
        + (f", failed audits {list(best.failed_audits)}" if best.failed_audits else ""),
    ]


def _sharpes(state: ResearchState) -> str:
    history = state.best_by_iteration[-_SHARPES_SHOWN:]
    if not history:
        return "none yet"
    earlier = "... " if len(state.best_by_iteration) > _SHARPES_SHOWN else ""
    return earlier + ", ".join("n/a" if value is None else f"{value:.2f}" for value in history)


def _falsified_lines(state: ResearchState) -> list[str]:
    if not state.falsified:
        return ["falsified: none yet"]
    shown = state.falsified[-_FALSIFIED_SHOWN:]
    return [
        f"falsified (last {len(shown)} of {len(state.falsified)}):",
        *(f"- {line}" for line in shown),
    ]


def _induction_lines(state: ResearchState) -> list[str]:
    if not state.inductions:
        return ["latest induction: none yet"]
    return ["latest induction:", *(f"  {line}" for line in state.inductions[-1].splitlines())]


def _row(attempt: Attempt) -> str:
    metrics = attempt.metrics
    figures = (
        ("-", "-", "-")
        if metrics is None
        else (
            f"{metrics.oos_sharpe:.2f}",
            f"{metrics.oos_max_drawdown:.1%}",
            str(metrics.oos_trades),
        )
    )
    verdict = attempt.verdict.value + (" (audits failed)" if attempt.failed_audits else "")
    cells = (
        str(attempt.iteration),
        attempt.spec_id,
        attempt.template,
        attempt.dimension.value,
        attempt.modules,
        *figures,
        verdict,
    )
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _cell(text: str) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= _CELL_CHARS else flat[: _CELL_CHARS - 3] + "..."
