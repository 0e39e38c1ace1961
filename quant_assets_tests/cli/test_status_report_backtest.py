"""`quant-assets status|report|backtest|data list` in-process on shipped BTC/ETH bars.

The project is the governance fixture's: BTC and ETH 1h for January to May 2021, the small
walk-forward spec's child materialized by walkforward_results on the project's own Dagster
instance (DAGSTER_HOME), its run archived under the default goal, and the shipped goal
registered with a fresh state.
"""

import json
import webbrowser
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quant_assets.backtest.run_spec import run_spec
from quant_assets.cli.main import main
from quant_assets.cli.status_commands import goal_row
from quant_assets.cli.tables import ELLIPSIS, format_table
from quant_assets.defs.governance import archive_latest_run
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.domain.governance import ArchiveRecord
from quant_assets.domain.report import EvalReport
from quant_assets.domain.research import ResearchState, ResearchStatus
from quant_assets.reports.paths import tear_sheet_paths
from quant_assets.research.goals import load_goal
from quant_assets.storage.research_loop import register_goal, save_state
from quant_assets.storage.walkforward import latest_run
from quant_assets.strategy.catalog.loader import load_catalog
from quant_assets_tests.backtest.walkforward_fixtures import BTC, ETH, sample_bars
from quant_assets_tests.defs.governance_fixtures import (
    PROJECT_DIR,
    SEAL,
    SLICE_END,
    SLICE_START,
    make_project,
    materialize,
    register,
    specs,
)

GOAL = "btc_eth_trend_1h"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> WarehouseResource:
    """Return the project: the child spec run, archived, its tear sheet written; a goal started."""
    root = tmp_path_factory.mktemp("cli_status") / "project"
    resource = make_project(root, lenient=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        with dg.DagsterInstance.get() as instance:
            child = register(instance, resource)
            assert materialize(instance, resource, child, [walkforward_results]).success
    archive_latest_run(resource, child.spec_id)
    goal = load_goal(PROJECT_DIR / "goals" / f"{GOAL}.yaml", load_catalog())
    register_goal(resource.warehouse(), goal)
    save_state(resource.warehouse(), ResearchState(goal=goal))
    return resource


class Cli:
    """Runs the command line in-process and returns its exit code, stdout and stderr."""

    def __init__(self, project: WarehouseResource, capsys: pytest.CaptureFixture[str]) -> None:
        self.project = project
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--project-dir", self.project.project_dir, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(
    project: WarehouseResource, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """Return a runner of `quant-assets` in the project, with its DAGSTER_HOME, 80 columns wide."""
    monkeypatch.setenv("DAGSTER_HOME", str(Path(project.project_dir) / "dagster_home"))
    monkeypatch.setenv("COLUMNS", "80")
    return Cli(project, capsys)


def _child_record(project: WarehouseResource) -> ArchiveRecord:
    (record,) = [r for r in project.archive().list() if r.spec_id == specs()[1].spec_id]
    return record


def test_status_json_reports_goal_archive_counts_latest_run_and_data(
    cli: Cli, project: WarehouseResource
) -> None:
    # Arrange: what storage holds, read directly.
    child = specs()[1]
    run = latest_run(project.warehouse(), child.spec_id)
    assert run is not None
    bars = sample_bars()
    rows = sum(
        frame.filter((pl.col("ts") >= SLICE_START) & (pl.col("ts") < SLICE_END)).height
        for frame in bars.values()
    )

    # Act
    code, out, _ = cli("status", "--json")

    # Assert
    assert code == 0
    document = json.loads(out)
    assert set(document) == {"goals", "archive", "latest_runs", "specs", "data"}
    (goal,) = document["goals"]
    assert (goal["goal"], goal["status"], goal["iteration"]) == (GOAL, "CONTINUING", 0)
    assert goal["max_iterations"] == 40
    assert goal["best_spec_id"] is None
    assert document["archive"]["records"] == 1
    assert document["archive"]["by_state"][str(_child_record(project).state)] == 1
    assert sum(document["archive"]["by_state"].values()) == 1
    (latest,) = document["latest_runs"]
    assert (latest["spec_id"], latest["name"], latest["run_id"]) == (
        child.spec_id,
        child.name,
        run.run_id,
    )
    assert latest["oos_sharpe"] == run.oos_report.sharpe
    assert latest["oos_max_drawdown"] == run.oos_report.max_drawdown
    assert latest["oos_total_return"] == run.oos_report.total_return
    assert latest["oos_trades"] == run.oos_report.trades
    assert latest["deflated_sharpe"] == run.deflated_sharpe
    assert latest["trials_total"] == run.trials_total
    assert document["specs"] == 2
    assert document["data"] == {"instruments": 2, "partitions": 10, "rows": rows}


def test_report_json_names_latest_run_and_its_existing_tear_sheet(
    cli: Cli, project: WarehouseResource
) -> None:
    # Arrange: walkforward_results wrote the run's tear sheet when it materialized.
    child = specs()[1]
    run = latest_run(project.warehouse(), child.spec_id)
    assert run is not None
    expected = tear_sheet_paths(project.reports_path(), child.spec_id, run.run_id).html
    assert expected.exists()

    # Act
    code, out, _ = cli("report", child.spec_id, "--json")

    # Assert
    assert code == 0
    assert json.loads(out) == {
        "spec_id": child.spec_id,
        "run_id": run.run_id,
        "path": str(expected),
        "written": False,
    }


def test_report_writes_missing_tear_sheet_with_the_archived_record(
    cli: Cli, project: WarehouseResource
) -> None:
    # Arrange: the tear sheet is gone; the run has an archive record since it was written.
    child = specs()[1]
    run = latest_run(project.warehouse(), child.spec_id)
    assert run is not None
    path = tear_sheet_paths(project.reports_path(), child.spec_id, run.run_id).html
    path.unlink()

    # Act: a unique prefix of the spec id names it.
    code, out, _ = cli("report", child.spec_id[:8], "--json")

    # Assert
    assert code == 0
    assert json.loads(out)["written"] is True
    html = path.read_text(encoding="utf-8")
    assert child.spec_id in html
    assert run.run_id in html
    assert _child_record(project).record_id in html


def test_report_open_hands_the_file_uri_to_the_browser(
    cli: Cli, project: WarehouseResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: the browser is outside the test; record what it is asked to open.
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    child = specs()[1]
    run = latest_run(project.warehouse(), child.spec_id)
    assert run is not None

    # Act
    code, out, _ = cli("report", child.spec_id, "--open")

    # Assert
    path = tear_sheet_paths(project.reports_path(), child.spec_id, run.run_id).html
    assert code == 0
    assert opened == [path.as_uri()]
    assert str(path) in out


@pytest.mark.parametrize(
    ("params", "values"),
    [
        ([], {}),
        (
            ["baseline.fast_span_bars=12", "execution.stop_atr=2.5"],
            {"baseline.fast_span_bars": 12, "execution.stop_atr": 2.5},
        ),
    ],
    ids=["spec_params", "given_params"],
)
def test_backtest_json_equals_independent_run_spec_on_bars_before_the_seal(
    cli: Cli, params: list[str], values: dict[str, float]
) -> None:
    # Arrange: the shipped files from the slice start to the default goal's seal (by hand in
    # governance_fixtures), read without the lake or the research reader.
    child = specs()[1]
    bars = {
        key: frame.filter((pl.col("ts") >= SLICE_START) & (pl.col("ts") < SEAL))
        for key, frame in sample_bars().items()
    }
    expected = run_spec(child, bars, values).report

    # Act
    argv = ["backtest", child.spec_id, "--json"] + (["--params", *params] if params else [])
    code, out, _ = cli(*argv)

    # Assert
    assert code == 0
    assert EvalReport.model_validate(json.loads(out)) == expected
    assert expected.end < SEAL


@pytest.mark.parametrize("command", ["report", "backtest"])
def test_unknown_spec_exits_2_with_one_line_naming_it_and_specs_list(
    cli: Cli, command: str
) -> None:
    # Act
    code, out, err = cli(command, "deadbeef00")

    # Assert
    assert code == 2
    assert out == ""
    error, hint = err.strip().splitlines()
    assert error.startswith("error: spec 'deadbeef00' is not registered")
    assert "`quant-assets specs list`" in error
    assert hint.startswith(f"hint: `quant-assets {command} --help`")


def test_report_of_spec_without_run_exits_2_naming_walkforward_results(cli: Cli) -> None:
    # Arrange: the root spec is registered but was never run.
    root = specs()[0]

    # Act
    code, _, err = cli("report", root.spec_id)

    # Assert
    assert code == 2
    error, _ = err.strip().splitlines()
    assert error.startswith(f"error: spec {root.spec_id} has no walk-forward run")
    assert f"--select walkforward_results --partition {root.spec_id}" in error


def test_backtest_malformed_params_exits_2(cli: Cli) -> None:
    # Act
    code, _, err = cli("backtest", specs()[1].spec_id, "--params", "baseline.fast_span_bars")

    # Assert
    assert code == 2
    assert err.splitlines()[0].startswith(
        "error: --params item 'baseline.fast_span_bars' is not PATH=VALUE"
    )


def test_data_list_json_keeps_summary_keys_and_adds_months_and_gaps(cli: Cli) -> None:
    # Arrange: holes in the shipped hourly files over the stored months, counted by hand.
    expected = {}
    for key, frame in sample_bars().items():
        held = frame.filter((pl.col("ts") >= SLICE_START) & (pl.col("ts") < SLICE_END))
        hours = held["ts"].dt.epoch("s").diff().drop_nulls() // 3600
        holes = [int(h) - 1 for h in hours if h > 1]
        expected[key] = (held.height, sum(holes), max(holes, default=0))

    # Act
    code, out, _ = cli("data", "list", "--json")

    # Assert
    assert code == 0
    rows = {row["instrument"]: row for row in json.loads(out)}
    assert sorted(rows) == [BTC, ETH]
    for key, (bars, missing, longest) in expected.items():
        row = rows[key]
        assert {"months", "rows", "first_ts", "last_ts"} <= set(row)
        assert (row["months"], row["missing_months"]) == (5, 0)
        assert (row["rows"], row["missing_bars"], row["longest_gap_bars"]) == (
            bars,
            missing,
            longest,
        )


@pytest.mark.parametrize(
    "argv",
    [["status"], ["data", "list"], ["backtest", specs()[1].spec_id]],
    ids=["status", "data_list", "backtest"],
)
def test_text_output_fits_80_columns(cli: Cli, argv: list[str]) -> None:
    # Act
    code, out, _ = cli(*argv)

    # Assert
    assert code == 0
    assert out.strip()
    assert max(len(line) for line in out.splitlines()) <= 80


def test_format_table_cuts_long_text_but_never_a_number() -> None:
    # Arrange
    headers = ["spec", "name", "Sharpe", "trades"]
    rows = [["3f2a9c1e00b14d7e", "x" * 200, "-1.2345", "123456"], ["a", "b", "0.5", "7"]]

    # Act
    lines = format_table(headers, rows, 80, [False, False, True, True])

    # Assert
    assert all(len(line) <= 80 for line in lines)
    assert ELLIPSIS in lines[2]
    assert lines[2].endswith("-1.2345  123456")
    assert lines[2].startswith("3f2a9c1e00b14d7e  xxx")
    assert lines[3].split() == ["a", "b", "0.5", "7"]


def test_goal_row_shows_the_frozen_record_as_it_stands_today() -> None:
    # Arrange: a loop that ended with record r1 frozen, which a person approved since.
    catalog = load_catalog()
    goal = load_goal(PROJECT_DIR / "goals" / "btc_eth_trend_1h.yaml", catalog)
    state = ResearchState(goal=goal, status=ResearchStatus.AWAITING_APPROVAL, frozen_record_id="r1")

    # Act
    row = goal_row(state, {"r1": "production", "r2": "discarded"})
    unknown = goal_row(state)

    # Assert
    assert row["frozen_record_state"] == "production"
    assert row["status"] == "AWAITING_APPROVAL"
    assert unknown["frozen_record_state"] is None
