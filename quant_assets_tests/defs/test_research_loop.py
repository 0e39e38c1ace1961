"""The research loop on a real instance: research_state, research_sensor, in-process iterations.

A temp project holds BTC and ETH 1h bars for 2021 (shipped sample) and a small goal over them
(short windows, few trials); the real definitions run against it (the working directory is
the project), with the policy proposer.
"""

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from quant_assets.defs.partitions import GOAL_PARTITIONS_NAME, SPEC_PARTITIONS_NAME
from quant_assets.defs.research_driver import (
    change_research_state,
    drive_research,
    execute_request,
    sensor_context,
)
from quant_assets.defs.research_tags import ACTION_TAG, ITERATION_TAG, SPEC_TAG
from quant_assets.defs.resources import GOAL_TAG, WarehouseResource
from quant_assets.defs.sensors import (
    ResearchCursor,
    fold_request,
    latest_states,
    research_sensor,
)
from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.governance import RecordState
from quant_assets.domain.research import ResearchStatus, Verdict
from quant_assets.storage.research_loop import goal_spec_ids, latest_state, state_versions
from quant_assets_tests.defs.project_fixtures import stored_btc_eth_project
from quant_assets_tests.stubs.anthropic_stub import AnthropicStub, tool_use_reply

PROJECT_DIR = Path(__file__).resolve().parents[2]
MONTHS = [f"2021-{m:02d}-01" for m in range(1, 13)]
GOAL = "btc_eth_small"


def small_goal(max_iterations: int) -> dict[str, object]:
    """Return a goal document over 2021 BTC/ETH with short windows and few trials."""
    return {
        "name": GOAL,
        "description": "A small trend goal for tests: 2021 BTC and ETH hourly bars.",
        "data": {
            "instruments": ["binance.BTC-USDT.1h", "binance.ETH-USDT.1h"],
            "timeframe": "1h",
            "start": "2021-01-01T00:00:00Z",
            "end": "2022-01-01T00:00:00Z",
        },
        "families": ["trend"],
        "seed_templates": ["ema_crossover", "sma_crossover"],
        "targets": {"min_oos_sharpe": 9.0, "max_drawdown": -0.01},
        "archive": {"min_oos_sharpe": -5.0, "max_drawdown": -0.95},
        "budget": {"max_iterations": max_iterations, "proposals_per_iteration": 2},
        "walk_forward": {
            "train_bars": 1500,
            "test_bars": 1000,
            "embargo_bars": 24,
            "trials_per_window": 4,
            "min_trades": 1,
        },
    }


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WarehouseResource:
    """Yield a resource on a temp project (the working directory) with 2021 BTC/ETH stored.

    Its preferences are a person's lenient limits, so that some results become candidates.
    """
    preferences = yaml.safe_load((PROJECT_DIR / "preferences.yaml").read_text())
    preferences.update(max_drawdown=-0.95, min_trades=1, max_sharpe_gap=10.0)
    preferences.update(min_deflated_sharpe=0.0)
    monkeypatch.chdir(tmp_path)
    return small_goal_project(tmp_path, preferences)


def small_goal_project(project_dir: Path, preferences: dict[str, object]) -> WarehouseResource:
    """Return a resource on a project dir holding the small goal and 2021 BTC/ETH bars."""
    resource = stored_btc_eth_project(project_dir, MONTHS, preferences=preferences)
    (project_dir / "goals").mkdir()
    (project_dir / "goals" / f"{GOAL}.yaml").write_text(yaml.safe_dump(small_goal(3)))
    return resource


@pytest.fixture
def defs() -> dg.Definitions:
    """Return the project's real definitions (resources resolve against the working dir)."""
    from quant_assets.definitions import defs as load

    return load()


def _tick(
    instance: dg.DagsterInstance, defs: dg.Definitions, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    context = sensor_context(instance, defs, cursor)
    result = research_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    if isinstance(result, dg.SkipReason):
        assert context.cursor is not None
    return result


def test_sensor_proposes_partitions_and_runs_and_is_idempotent_on_a_repeated_tick(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource, defs: dg.Definitions
) -> None:
    # Arrange
    change_research_state(dagster_instance, defs, GOAL, "start")

    # Act
    first = _tick(dagster_instance, defs, None)
    again = _tick(dagster_instance, defs, None)

    # Assert
    assert isinstance(first, dg.SensorResult)
    assert isinstance(again, dg.SensorResult)
    requests = first.run_requests or []
    assert len(requests) == 2
    spec_ids = [r.partition_key for r in requests]
    assert [r.run_key for r in requests] == spec_ids
    assert {r.job_name for r in requests} == {"research_spec_job"}
    assert all(r.tags[GOAL_TAG] == GOAL and r.tags[ITERATION_TAG] == "1" for r in requests)
    assert [r.tags[SPEC_TAG] for r in requests] == spec_ids
    (partitions,) = first.dynamic_partitions_requests or []
    assert isinstance(partitions, dg.AddDynamicPartitionsRequest)
    assert partitions.partitions_def_name == SPEC_PARTITIONS_NAME
    assert list(partitions.partition_keys) == spec_ids
    assert [r.run_key for r in again.run_requests or []] == spec_ids
    assert first.cursor == again.cursor
    assert first.cursor is not None
    assert len(first.cursor) < 300
    cursor = ResearchCursor.model_validate_json(first.cursor)
    assert cursor.goals[GOAL].iteration == 1
    assert list(cursor.goals[GOAL].specs) == spec_ids


def test_sensor_waits_for_runs_in_flight_and_reads_state_from_the_instance_only(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource, defs: dg.Definitions
) -> None:
    # Arrange
    change_research_state(dagster_instance, defs, GOAL, "start")
    first = _tick(dagster_instance, defs, None)
    assert isinstance(first, dg.SensorResult)
    # The warehouse file disappears: the sensor must not need it.
    project.warehouse().path.rename(project.warehouse().path.with_suffix(".moved"))

    # Act
    waiting = _tick(dagster_instance, defs, first.cursor)
    states = latest_states(dagster_instance)

    # Assert
    assert isinstance(waiting, dg.SkipReason)
    assert "in flight" in (waiting.skip_message or "")
    assert states[GOAL].iteration == 0
    assert states[GOAL].status is ResearchStatus.CONTINUING
    assert not project.warehouse().path.exists()


def test_offline_loop_reaches_a_termination_rule_with_consistent_state_archive_and_trail(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource, defs: dg.Definitions
) -> None:
    # Arrange
    change_research_state(dagster_instance, defs, GOAL, "start")
    folded: list[int] = []

    # Act
    outcome = drive_research(
        dagster_instance, defs, project, GOAL, on_fold=lambda s: folded.append(s.iteration)
    )

    # Assert: the budget rule ended it after 3 iterations of 2 specs each.
    state = outcome.state
    assert folded == [1, 2, 3]
    assert state.iteration == 3
    assert len(state.attempts) == 6
    assert state.reason is not None
    assert "BUDGET_EXHAUSTED" in state.reason
    spec_ids = [a.spec_id for a in state.attempts]
    assert len(set(spec_ids)) == 6
    assert spec_ids == goal_spec_ids(project.warehouse(), GOAL)
    assert state.best is not None
    assert state.best.metrics is not None
    ran = [a for a in state.attempts if a.metrics is not None]
    assert state.best.metrics.oos_sharpe == max(a.metrics.oos_sharpe for a in ran if a.metrics)
    assert Verdict.GOAL_MET not in {a.verdict for a in state.attempts}
    # Every run is archived under the goal, with its audits; the best candidate is frozen.
    archive = project.archive()
    records = {r.record_id: r for r in archive.list() if r.goal == GOAL}
    assert {a.record_id for a in ran} <= set(records)
    assert state.status is ResearchStatus.AWAITING_APPROVAL
    frozen = archive.get(state.frozen_record_id or "")
    assert frozen.state is RecordState.FROZEN
    assert frozen.holdout is not None
    assert (
        frozen.record_id
        == max(
            (a for a in ran if a.record_state == "candidate"),
            key=lambda a: a.metrics.oos_sharpe if a.metrics else 0.0,
        ).record_id
    )
    assert archive.verify_trail() > 0
    # The state is versioned in the warehouse and in the instance, and both agree.
    versions = state_versions(project.warehouse(), GOAL)
    assert [iteration for _, iteration, _ in versions] == [0, 1, 2, 3]
    assert latest_states(dagster_instance)[GOAL] == latest_state(project.warehouse(), GOAL)
    assert dagster_instance.get_dynamic_partitions(GOAL_PARTITIONS_NAME) == [GOAL]
    assert outcome.failed_runs == sum(1 for a in state.attempts if a.record_state != "candidate")


def test_stop_ends_a_running_goal_and_a_stopped_goal_can_resume(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource, defs: dg.Definitions
) -> None:
    # Arrange
    change_research_state(dagster_instance, defs, GOAL, "start")

    # Act
    change_research_state(dagster_instance, defs, GOAL, "stop", reason="enough", actor="ana")
    stopped = latest_state(project.warehouse(), GOAL)
    resumed_result = change_research_state(dagster_instance, defs, GOAL, "start")
    resumed = latest_state(project.warehouse(), GOAL)

    # Assert
    assert stopped is not None
    assert stopped.status is ResearchStatus.STOPPED
    assert stopped.reason is not None
    assert "enough" in stopped.reason
    assert "ana" in stopped.reason
    assert resumed is not None
    assert resumed.status is ResearchStatus.CONTINUING
    (event,) = resumed_result.asset_materializations_for_node("research_state")
    assert event.metadata["status"] == dg.TextMetadataValue("CONTINUING")
    assert json.loads(json.dumps(event.metadata["state"].value))["iteration"] == 0


def test_start_rejects_a_goal_file_that_changed_after_registration(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource, defs: dg.Definitions
) -> None:
    # Arrange
    change_research_state(dagster_instance, defs, GOAL, "start")
    goal_file = Path("goals") / f"{GOAL}.yaml"
    goal_file.write_text(yaml.safe_dump(small_goal(9)))

    # Act / Assert
    with pytest.raises(Exception, match="cannot change once research ran"):
        change_research_state(dagster_instance, defs, GOAL, "start")
    state = latest_state(project.warehouse(), GOAL)
    assert state is not None
    assert state.goal.budget.max_iterations == 3


SECRET = "sk-ant-test-SECRET-4f1c2b9a"


def test_claude_proposes_through_the_sensor_and_the_key_never_reaches_any_store(
    dagster_instance: dg.DagsterInstance,
    project: WarehouseResource,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Arrange: the key comes from the environment; Claude is a local stub answering once.
    tool_input = {
        "proposals": [
            {
                "template": "ema_crossover",
                "dimension": "hypothesis",
                "baseline_params": {"fast_span_bars": 12},
                "hypothesis": "Hourly crypto trends persist after an EMA cross.",
                "rationale": "The simplest trend family first.",
            },
            {
                "template": "sma_crossover",
                "dimension": "hypothesis",
                "hypothesis": "Simple averages cross later but whipsaw less.",
                "rationale": "A slower member of the same family.",
            },
        ]
    }
    with AnthropicStub() as stub:
        stub.script(tool_use_reply(tool_input))
        monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
        from quant_assets.definitions import defs as load

        defs = load()
        change_research_state(dagster_instance, defs, GOAL, "start")

        # Act
        outcome = drive_research(dagster_instance, defs, project, GOAL, max_iterations=1)
        requests = stub.requests()

    # Assert: Claude's two specs ran and its usage counts against the budget.
    state = outcome.state
    assert len(requests) == 1
    assert requests[0].api_key == SECRET
    assert [a.proposer for a in state.attempts] == ["anthropic:claude-sonnet-4-6"] * 2
    assert [a.template for a in state.attempts] == ["ema_crossover", "sma_crossover"]
    assert state.spend.calls == 1
    assert state.spend.input_tokens == 1200
    assert state.spend.cost_usd > 0
    # The key is nowhere: not in the warehouse, the lake, the reports, the instance's storage.
    leaks = [
        path
        for root in (tmp_path, Path(dagster_instance.root_directory))
        for path in root.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaks == []
    with project.warehouse().connect(read_only=True) as con:
        tables = [row[0] for row in con.execute("SHOW TABLES").fetchall()]
        rows = [str(row) for table in tables for row in con.execute(f"FROM {table}").fetchall()]
    assert "research_proposals" in tables
    assert any("anthropic:claude-sonnet-4-6" in row for row in rows)
    assert not any(SECRET in row for row in rows)
    logs = [
        str(entry)
        for run in dagster_instance.get_runs()
        for entry in dagster_instance.all_logs(run.run_id)
    ]
    assert logs
    assert not any(SECRET in entry for entry in logs)


def test_sensor_names_a_failed_fold_run_and_how_to_recover(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource, defs: dg.Definitions
) -> None:
    # Arrange: iteration 1 is proposed, but its spec runs never ran, so its fold fails.
    change_research_state(dagster_instance, defs, GOAL, "start")
    proposed = _tick(dagster_instance, defs, None)
    assert isinstance(proposed, dg.SensorResult)
    assert proposed.cursor is not None
    folding = ResearchCursor.model_validate_json(proposed.cursor)
    at = folding.goals[GOAL].model_copy(update={"folding": True})
    cursor = ResearchCursor(goals={GOAL: at}).model_dump_json()
    succeeded = execute_request(dagster_instance, defs, fold_request(GOAL, 1))

    # Act
    result = _tick(dagster_instance, defs, cursor)

    # Assert
    assert not succeeded
    assert isinstance(result, dg.SkipReason)
    (fold_run,) = dagster_instance.get_runs(dg.RunsFilter(tags={ACTION_TAG: "fold"}))
    assert fold_run.run_id in (result.skip_message or "")
    assert f"quant-assets research stop {GOAL}" in (result.skip_message or "")
    state = latest_state(project.warehouse(), GOAL)
    assert state is not None
    assert state.iteration == 0


def test_start_refuses_a_goal_whose_data_slice_is_not_stored(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource, defs: dg.Definitions
) -> None:
    # Arrange: the goal asks for 2021 and 2022; only 2021 is stored.
    document = small_goal(3)
    document["data"] = {**document["data"], "end": "2023-01-01T00:00:00Z"}  # type: ignore[dict-item]
    (Path("goals") / f"{GOAL}.yaml").write_text(yaml.safe_dump(document))

    # Act / Assert
    with pytest.raises(QuantAssetsError) as raised:
        change_research_state(dagster_instance, defs, GOAL, "start")
    message = str(raised.value)
    assert "cannot start" in message
    assert "data.end was 2023-01-01T00:00:00Z" in message
    assert "ingest newer bars" in message
    assert latest_state(project.warehouse(), GOAL) is None
