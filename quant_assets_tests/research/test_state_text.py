"""The ITER_STATE block and the attempts table, on fresh, running and ended states."""

from quant_assets.domain.research import Attempt, Dimension, ResearchState, Verdict
from quant_assets.research.policy import start_state, stop
from quant_assets.research.state_text import attempts_markdown, render_state
from quant_assets_tests.research.test_policy import NOW, play, shipped_goal

TABLE_HEADER = (
    "| iter | spec | template | dimension | modules | OOS Sharpe | max DD | trades | verdict |"
)


def split_block(text: str) -> tuple[list[str], list[str]]:
    """Return the block's lines before the attempts table, and the table's rows."""
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    return [line for line in lines if not line.startswith("|")], table


def test_render_state_fresh_goal() -> None:
    # Arrange
    state = start_state(shipped_goal(), NOW)

    # Act
    text = render_state(state)

    # Assert
    lines, table = split_block(text)
    assert lines[0] == f"ITER_STATE goal btc_eth_trend_1h ({shipped_goal().goal_id})"
    assert lines[1] == "status: CONTINUING | iteration 0 of 40 | next dimension: hypothesis"
    assert (
        "targets: OOS Sharpe >= 1.20, max drawdown >= -15.0%; archive bar: OOS Sharpe >= 0.80, "
        "max drawdown >= -25.0%"
    ) in lines
    assert "best: none yet" in lines
    assert "spend: 0 LLM calls, 0 input + 0 output tokens, $0.00 of $2.00" in lines
    assert lines[-1] == "(no attempts yet)"
    assert table == []


def test_render_state_running_shows_best_lessons_and_last_ten_attempts() -> None:
    # Arrange: twelve iterations, one forced induction, a falsified template.
    state = play([(0.5, 0.3), 0.5, 0.55, 0.6, 0.6, 0.62, 0.7, 0.7, 0.7, 0.8, 0.8, 0.81])
    assert state.best is not None
    assert state.best.metrics is not None

    # Act
    text = render_state(state)

    # Assert
    lines, table = split_block(text)
    assert len(lines) <= 32
    assert table[0] == TABLE_HEADER
    assert [row.split(" | ")[1] for row in table[2:]] == [a.spec_id for a in state.attempts[-10:]]
    best_line = next(line for line in lines if line.startswith("best: "))
    assert state.best.spec_id in best_line
    assert state.best.modules in best_line
    assert f"OOS Sharpe {state.best.metrics.oos_sharpe:.2f}" in text
    assert f"- {state.falsified[-1]}" in lines
    assert "latest induction:" in lines
    assert f"  {state.inductions[-1].splitlines()[0]}" in lines
    assert f"next action: {state.next_action}" in lines
    assert f"last 10 of {len(state.attempts)} attempts:" in lines


def test_render_state_ended_shows_reason() -> None:
    # Arrange
    state = stop(play([0.5]), "enough", NOW)

    # Act
    text = render_state(state)

    # Assert
    assert "status: STOPPED | iteration 1 of 40" in text
    assert "reason: stopped by a person: enough" in text.splitlines()


def test_attempts_markdown_last_rows_in_order() -> None:
    # Arrange
    state = play([(0.5, None), 0.6, 0.55])

    # Act
    table = attempts_markdown(state, last=3).splitlines()

    # Assert
    assert table[0] == TABLE_HEADER
    assert len(table) == 2 + 3
    assert [row.split(" | ")[1] for row in table[2:]] == [a.spec_id for a in state.attempts[-3:]]
    rejected = table[2]
    assert rejected.split(" | ")[5:9] == ["-", "-", "-", "rejected |"]
    assert " | 0.60 | -20.0% | 40 | improved |" in table[3]


def test_attempts_markdown_escapes_pipes_in_cells() -> None:
    # Arrange
    attempt = Attempt(
        iteration=1,
        spec_id="abc",
        template="odd|name",
        family="trend",
        dimension=Dimension.HYPOTHESIS,
        proposer="anthropic:model",
        modules="ema_cross / signal_exit_only / fixed_fraction",
        hypothesis="h",
        verdict=Verdict.REJECTED,
    )
    state = ResearchState(goal=shipped_goal(), iteration=1, attempts=(attempt,))

    # Act
    table = attempts_markdown(state)

    # Assert
    assert "| odd\\|name |" in table
    assert table.splitlines()[2].count(" | ") == 8
