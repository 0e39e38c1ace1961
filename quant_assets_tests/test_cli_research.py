"""`quant-assets research start|status|stop` as a user runs them, on a temp project and instance."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.scheduler.instigation import InstigatorType

from quant_assets_tests.defs.test_research_loop import GOAL, small_goal_project

PROJECT_DIR = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Return a temp project with 2021 BTC/ETH stored, a small goal and its own DAGSTER_HOME."""
    preferences = yaml.safe_load((PROJECT_DIR / "preferences.yaml").read_text())
    small_goal_project(tmp_path, preferences)
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", tmp_path / "dagster_home")
    return tmp_path


def _run(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DAGSTER_HOME": str(project / "dagster_home")}
    env.pop("ANTHROPIC_API_KEY", None)
    return subprocess.run(
        [str(BIN_DIR / "quant-assets"), *arguments],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_research_start_turns_the_sensor_on_and_status_and_stop_follow(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Act
    started = _run(project, "research", "start", GOAL)
    status = _run(project, "research", "status", GOAL, "--json")
    stopped = _run(project, "research", "stop", GOAL, "--by", "Ana", "--reason", "enough")
    after = _run(project, "research", "status", "--json")

    # Assert
    assert started.returncode == 0, started.stderr
    assert "research_sensor is on" in started.stdout
    monkeypatch.setenv("DAGSTER_HOME", str(project / "dagster_home"))
    with dg.DagsterInstance.get() as instance:
        sensors = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        running = {s.instigator_name for s in sensors if s.status.value == "RUNNING"}
    assert running == {"research_sensor"}
    (state,) = json.loads(status.stdout)
    assert state["goal"]["name"] == GOAL
    assert (state["status"], state["iteration"], state["dimension"]) == (
        "CONTINUING",
        0,
        "hypothesis",
    )
    assert stopped.returncode == 0, stopped.stderr
    assert "STOPPED" in stopped.stdout
    (final,) = json.loads(after.stdout)
    assert final["status"] == "STOPPED"
    assert "Ana" in final["reason"]


def test_research_start_of_an_unknown_goal_is_one_clear_error(project: Path) -> None:
    # Act
    result = _run(project, "research", "start", "no_such_goal", "--no-sensor")

    # Assert
    assert result.returncode == 2
    first, hint = result.stderr.strip().splitlines()[-2:]
    assert first.startswith("error: ")
    assert "no_such_goal" in first
    assert GOAL in first  # the goals that exist are named
    assert hint.startswith("hint: ")
