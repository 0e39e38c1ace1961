"""`quant-assets approve|reject|deprecate|archive` in-process, on shipped bars and real stores."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quant_assets.backtest.run_spec import run_spec
from quant_assets.cli.main import main
from quant_assets.defs.archive_actions import freeze
from quant_assets.defs.governance import (
    ApprovalConfig,
    approval_job,
    archive_latest_run,
    archive_records,
)
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.governance import ArchiveRecord, RecordState, Transition
from quant_assets.governance.preferences import preferences_hash
from quant_assets.storage.walkforward import latest_run
from quant_assets_tests.backtest.walkforward_fixtures import BTC, sample_bars
from quant_assets_tests.defs.governance_fixtures import (
    SEAL,
    SLICE_END,
    copy_project,
    register,
    researched,
    specs,
)
from quant_assets_tests.governance.archive_builders import archive_in, failed_blocking_audits

PERSON = "Ada Lovelace"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> WarehouseResource:
    """Return a lenient project whose child spec's run is archived as a candidate."""
    resource = researched(tmp_path_factory.mktemp("cli_governance") / "template")
    with dg.instance_for_test() as instance:
        archive_latest_run(resource, register(instance, resource).spec_id)
    return resource


def _copy(template: WarehouseResource, root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    project = copy_project(template, root)
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    return project.project_dir


@pytest.fixture
def project(
    template: WarehouseResource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WarehouseResource:
    """Return a copy of the template (its candidate not yet frozen), DAGSTER_HOME set to it."""
    return WarehouseResource(project_dir=_copy(template, tmp_path / "cli", monkeypatch))


@pytest.fixture
def frozen(project: WarehouseResource) -> ArchiveRecord:
    """Return the project's candidate after freezing it (holdout evaluated)."""
    with dg.DagsterInstance.get() as instance:
        register(instance, project)
    return freeze(project, specs()[1].spec_id, "research converged")


def _cli(project: WarehouseResource, *argv: str) -> int:
    return main(["--project-dir", project.project_dir, *argv])


def _record_of_run(project: WarehouseResource, run_id: str) -> ArchiveRecord:
    (record,) = [r for r in project.archive().list() if r.run_id == run_id]
    return record


def _trail_rows(trail: list[Transition]) -> list[tuple[object, ...]]:
    # Every field of each row but its timestamp.
    return [(t.record_id, t.sequence, t.from_state, t.to_state, t.actor, t.reason) for t in trail]


def _events(spec_id: str, instance: dg.DagsterInstance | None = None) -> list[dg.EventLogRecord]:
    # The archive_records events of a spec's partition (on the CLI's instance by default).
    records_filter = dg.AssetRecordsFilter(
        asset_key=archive_records.key, asset_partitions=[spec_id]
    )
    if instance is not None:
        return list(instance.fetch_materializations(records_filter, limit=100).records)
    with dg.DagsterInstance.get() as cli_instance:
        return _events(spec_id, cli_instance)


def test_approve_by_cli_and_by_approval_job_produce_the_same_record(
    project: WarehouseResource,
    frozen: ArchiveRecord,
    tmp_path: Path,
) -> None:
    # Arrange: a second copy of the same frozen project for the job's door, with an instance
    # of its own (DAGSTER_HOME stays the CLI's).
    job_project = copy_project(project, tmp_path / "job")
    config = ApprovalConfig(
        record_id=frozen.spec_id, decision="approve", approver=PERSON, reason="holdout held up"
    )

    # Act
    code = _cli(project, "approve", frozen.spec_id, "--by", PERSON, "--reason", "holdout held up")
    with dg.instance_for_test(set_dagster_home=False) as job_instance:
        register(job_instance, job_project)
        result = approval_job.execute_in_process(
            run_config=dg.RunConfig(ops={"record_decision": config}),
            instance=job_instance,
            resources={"warehouse": job_project},
        )
        job_events = _events(frozen.spec_id, job_instance)

    # Assert
    assert code == 0
    assert result.success
    by_cli = project.archive().get(frozen.record_id)
    by_job = job_project.archive().get(frozen.record_id)
    assert by_cli == by_job
    assert by_cli.state is RecordState.PRODUCTION
    cli_trail = project.archive().transitions(frozen.record_id)
    job_trail = job_project.archive().transitions(frozen.record_id)
    assert _trail_rows(cli_trail) == _trail_rows(job_trail)
    assert _trail_rows(cli_trail)[-1][2:] == (
        RecordState.FROZEN,
        RecordState.PRODUCTION,
        PERSON,
        "holdout held up",
    )
    (cli_event,) = _events(frozen.spec_id)
    (job_event,) = job_events
    assert job_event.run_id == result.run_id
    for event in (cli_event, job_event):
        assert event.asset_materialization is not None
        assert event.asset_materialization.metadata["state"].value == "production"


@pytest.mark.parametrize(
    ("case", "name", "message"),
    [
        ("frozen", " ", "needs the deciding person's name"),
        ("frozen", "system", "needs the deciding person's name"),
        ("candidate", PERSON, "the record is 'candidate'"),
        ("failed_audits", PERSON, "blocking audit(s) ['min_trades'] failed"),
    ],
)
def test_approve_refusal_exits_2_and_changes_nothing(
    project: WarehouseResource,
    capsys: pytest.CaptureFixture[str],
    case: str,
    name: str,
    message: str,
) -> None:
    # Arrange
    if case == "frozen":
        with dg.DagsterInstance.get() as instance:
            register(instance, project)
        record = freeze(project, specs()[1].spec_id, "research converged")
    elif case == "candidate":
        (record,) = project.archive().list(RecordState.CANDIDATE)
    else:
        record = archive_in(project.archive(), RecordState.FROZEN, audits=failed_blocking_audits())
    archive = project.archive()
    before = (archive.list(), archive.transitions(record.record_id), archive.trail_head())

    # Act
    code = _cli(project, "approve", record.record_id, "--by", name, "--reason", "ship it")

    # Assert
    assert code == 2
    error = capsys.readouterr().err
    assert message in error
    assert error.startswith("error: ")
    assert (archive.list(), archive.transitions(record.record_id), archive.trail_head()) == before
    assert _events(record.spec_id) == []


def test_approve_without_by_is_refused_by_the_parser(
    project: WarehouseResource, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange
    before = project.archive().trail_head()

    # Act
    with pytest.raises(SystemExit) as exited:
        _cli(project, "approve", specs()[1].spec_id, "--reason", "ship it")

    # Assert
    assert exited.value.code == 2
    assert "--by" in capsys.readouterr().err
    assert project.archive().trail_head() == before


def test_reject_then_deprecate_follow_the_lifecycle(
    project: WarehouseResource, frozen: ArchiveRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    # Act
    rejected = _cli(project, "reject", frozen.record_id, "--by", PERSON, "--reason", "too few")
    again = _cli(project, "deprecate", frozen.record_id, "--by", PERSON, "--reason", "twice")

    # Assert: deprecated is final, so the second decision is refused.
    assert rejected == 0
    assert again == 2
    assert "only a 'production' record can be deprecated" in capsys.readouterr().err
    trail = project.archive().transitions(frozen.record_id)
    assert [(t.to_state, t.actor) for t in trail] == [
        (RecordState.CANDIDATE, "system"),
        (RecordState.FROZEN, "system"),
        (RecordState.DEPRECATED, PERSON),
    ]


def test_archive_freeze_evaluates_holdout_once_and_refuses_a_second_freeze_of_the_goal(
    project: WarehouseResource, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: the holdout bars cut straight from the shipped files, the last window's params.
    parent, child = specs()
    run = latest_run(project.warehouse(), child.spec_id)
    assert run is not None
    holdout_bars = {
        key: frame.filter((pl.col("ts") >= SEAL) & (pl.col("ts") < SLICE_END))
        for key, frame in sample_bars().items()
    }
    expected = run_spec(child, holdout_bars, run.windows[-1].best_params, n_trials=1).report
    other = archive_in(
        project.archive(), RecordState.CANDIDATE, goal="default", spec_id=parent.spec_id
    )

    # Act
    first = _cli(project, "archive", "freeze", child.spec_id, "--reason", "converged")
    second = _cli(project, "archive", "freeze", other.record_id, "--reason", "converged too")

    # Assert
    assert first == 0
    assert second == 2
    record = _record_of_run(project, run.run_id)
    assert record.state is RecordState.FROZEN
    assert record.holdout is not None
    assert record.holdout.start == SEAL
    assert record.holdout.report == expected
    # May 9th 08:00 is the last research bar: the holdout has May 9 09:00-23:00 (15) and
    # May 10-31 (22 x 24 = 528) = 543 bars (by hand).
    assert record.holdout.report.bars == 543
    spent = project.archive().holdout_evaluation("default")
    assert spent is not None
    assert spent[0] == record.record_id
    assert project.archive().get(other.record_id).state is RecordState.CANDIDATE
    assert "was already evaluated" in capsys.readouterr().err


def test_archive_freeze_retries_only_the_evaluation_when_holdout_bars_were_missing(
    project: WarehouseResource, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange: BTC's May file (which holds the whole holdout) is moved away, then restored.
    child = specs()[1]
    may = project.lake().partition_path(BTC, "2021-05-01")
    aside = may.with_suffix(".aside")
    may.rename(aside)
    refused = _cli(project, "archive", "freeze", child.spec_id, "--reason", "converged")
    error = capsys.readouterr().err
    aside.rename(may)

    # Act
    retried = _cli(project, "archive", "freeze", child.spec_id, "--reason", "converged")

    # Assert
    assert (refused, retried) == (2, 0)
    assert "holds too few bars" in error
    (record,) = project.archive().list(RecordState.FROZEN)
    assert record.holdout is not None
    assert record.holdout.report.bars == 543
    trail = project.archive().transitions(record.record_id)
    assert [t.to_state for t in trail] == [RecordState.CANDIDATE, RecordState.FROZEN]


def test_archive_show_prints_lineage_tree_and_flags_changed_preferences(
    project: WarehouseResource, frozen: ArchiveRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange
    parent, child = specs()
    assert frozen.holdout is not None
    shown_before = _cli(project, "archive", "show", frozen.record_id)
    before = capsys.readouterr().out.splitlines()
    preferences = Path(project.project_dir) / "preferences.yaml"
    preferences.write_text(preferences.read_text().replace("min_trades: 5", "min_trades: 6"))

    # Act
    shown_after = _cli(project, "archive", "show", child.spec_id)
    after = capsys.readouterr().out.splitlines()

    # Assert
    assert (shown_before, shown_after) == (0, 0)
    tree = [
        "Lineage",
        "  goal default",
        f"  └── spec {parent.spec_id}  ema trend root [root]",
        f"      └── spec {child.spec_id}  ema trend child",
        f"          └── run {frozen.run_id}",
        f"              └── record {frozen.record_id}  frozen",
    ]
    start = before.index("Lineage")
    assert before[start : start + len(tree)] == tree
    assert f"Preferences     {frozen.preferences_hash}  unchanged" in before
    current = preferences_hash(project.preferences())
    assert (
        f"Preferences     {frozen.preferences_hash}  CHANGED since this record (current "
        f"{current})" in after
    )
    sharpe_row = next(line for line in before if line.strip().startswith("Sharpe"))
    assert sharpe_row.split()[1:] == [
        f"{frozen.metrics.oos.sharpe:.2f}",
        f"{frozen.metrics.in_sample.sharpe:.2f}",
        f"{frozen.holdout.report.sharpe:.2f}",
    ]
    audits = before[before.index("Audits") + 1 : before.index("Audits") + 7]
    assert [line.split()[:2] for line in audits] == [
        ["PASS", audit.name] for audit in frozen.audits
    ]
    assert before[-2].split()[4:7] == ["-", "candidate", "system"]
    assert before[-1].split()[4:7] == ["candidate", "frozen", "system"]


def test_archive_list_filters_by_state_and_prints_json(
    project: WarehouseResource, frozen: ArchiveRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    # Arrange
    assert frozen.holdout is not None

    # Act
    frozen_code = _cli(project, "archive", "list", "--state", "frozen", "--json")
    frozen_rows = json.loads(capsys.readouterr().out)
    candidate_code = _cli(project, "archive", "list", "--state", "candidate", "--json")
    candidate_rows = json.loads(capsys.readouterr().out)
    table_code = _cli(project, "archive", "list")
    table = capsys.readouterr().out.splitlines()

    # Assert
    assert (frozen_code, candidate_code, table_code) == (0, 0, 0)
    assert [row["record_id"] for row in frozen_rows] == [frozen.record_id]
    assert frozen_rows[0]["holdout_sharpe"] == pytest.approx(frozen.holdout.report.sharpe, abs=1e-4)
    assert candidate_rows == []
    assert table[0].split() == [
        "record_id",
        "state",
        "goal",
        "spec_id",
        "oos_sharpe",
        "oos_max_drawdown",
        "holdout_sharpe",
        "created_at",
    ]
    assert table[2].split()[:4] == [frozen.record_id, "frozen", "default", frozen.spec_id]
