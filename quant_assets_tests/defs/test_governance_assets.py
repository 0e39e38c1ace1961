"""archive_records and approval_job on a real instance, shipped bars and a real warehouse."""

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quant_assets.defs.archive_actions import freeze
from quant_assets.defs.governance import (
    ApprovalConfig,
    approval_job,
    archive_latest_run,
    archive_records,
)
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.domain.governance import ArchiveRecord, RecordState
from quant_assets.governance.preferences import preferences_hash
from quant_assets.storage.walkforward import latest_run, run_curve
from quant_assets_tests.defs.governance_fixtures import (
    ALL_RESEARCH,
    PROJECT_DIR,
    SEAL,
    copy_project,
    materialize,
    register,
    researched,
    specs,
)
from quant_assets_tests.governance.archive_builders import archive_in, failed_blocking_audits

PERSON = "Grace Hopper"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> WarehouseResource:
    """Return a lenient project whose child spec has a walk-forward run (built once)."""
    return researched(tmp_path_factory.mktemp("governance") / "template")


@pytest.fixture
def project(template: WarehouseResource, tmp_path: Path) -> WarehouseResource:
    """Return a fresh copy of the template project."""
    return copy_project(template, tmp_path / "project")


def _frozen(project: WarehouseResource, instance: dg.DagsterInstance) -> ArchiveRecord:
    spec = register(instance, project)
    archive_latest_run(project, spec.spec_id)
    return freeze(project, spec.spec_id, "research converged")


def _approve(
    instance: dg.DagsterInstance, project: WarehouseResource, config: ApprovalConfig
) -> dg.ExecuteInProcessResult:
    return approval_job.execute_in_process(
        run_config=dg.RunConfig(ops={"record_decision": config}),
        instance=instance,
        resources={"warehouse": project},
        raise_on_error=False,
    )


def _partition_events(instance: dg.DagsterInstance, spec_id: str) -> list[dg.EventLogRecord]:
    records_filter = dg.AssetRecordsFilter(
        asset_key=archive_records.key, asset_partitions=[spec_id]
    )
    return list(instance.fetch_materializations(records_filter, limit=100).records)


def test_archive_records_opens_candidate_carrying_the_check_verdicts(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource
) -> None:
    # Arrange: lenient limits, so every blocking audit passes; the run was stored by the
    # template (the windows are reused, no backtest runs again).
    spec = register(dagster_instance, project)

    # Act
    result = materialize(dagster_instance, project, spec, ALL_RESEARCH)

    # Assert
    assert result.success
    (record,) = project.archive().list()
    run = latest_run(project.warehouse(), spec.spec_id)
    assert run is not None
    assert record.run_id == run.run_id
    # Candidate by hand: OOS Sharpe >= 1.2, max drawdown within -15%, no failed blocking audit.
    assert run.oos_report.sharpe >= 1.2
    assert run.oos_report.max_drawdown >= -0.15
    assert record.state is RecordState.CANDIDATE
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert {audit.name: audit.passed for audit in record.audits} == checks
    assert all(checks.values())
    assert len(checks) == 6
    (event,) = result.asset_materializations_for_node("archive_records")
    assert event.tags is not None
    assert event.tags["dagster/data_version"] == f"{record.record_id}:candidate"
    assert event.metadata["record_id"].value == record.record_id
    assert event.metadata["oos_sharpe"].value == pytest.approx(run.oos_report.sharpe)
    assert event.metadata["oos_max_drawdown"].value == pytest.approx(run.oos_report.max_drawdown)
    counts = {state: event.metadata[f"records_{state}"].value for state in RecordState}
    assert counts == {state: int(state is RecordState.CANDIDATE) for state in RecordState}
    assert record.record_id in str(event.metadata["candidates"].value)
    assert event.metadata["holdout"].value == "sealed, not evaluated"
    assert event.metadata["newly_archived"].value is True


def test_archive_records_discards_overfitted_run_and_does_not_archive_it_twice(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource
) -> None:
    # Arrange: the shipped preferences (deflated Sharpe floor 0.5); the walk-forward re-runs
    # under them (windows reused) and is archived in a run of its own, as the blocking
    # overfitting check would stop it in the same run.
    (Path(project.project_dir) / "preferences.yaml").write_text(
        (PROJECT_DIR / "preferences.yaml").read_text()
    )
    spec = register(dagster_instance, project)
    assert materialize(dagster_instance, project, spec, [walkforward_results]).success
    run = latest_run(project.warehouse(), spec.spec_id)
    assert run is not None
    assert run.deflated_sharpe < 0.5

    # Act
    first = materialize(dagster_instance, project, spec, [archive_records])
    second = materialize(dagster_instance, project, spec, [archive_records])

    # Assert
    (record,) = project.archive().list()
    assert record.state is RecordState.DISCARDED
    assert record.preferences_hash == preferences_hash(project.preferences())
    trail = project.archive().transitions(record.record_id)
    assert [t.reason for t in trail] == ["blocking audit 'overfitting_gap' failed"]
    (event_1,) = first.asset_materializations_for_node("archive_records")
    (event_2,) = second.asset_materializations_for_node("archive_records")
    assert event_1.metadata["newly_archived"].value is True
    assert event_2.metadata["newly_archived"].value is False
    assert event_2.metadata["record_id"].value == record.record_id
    assert event_2.metadata["records_discarded"].value == 1
    assert event_2.metadata["candidates"].value == "no candidates"


def test_walkforward_results_reads_only_bars_before_the_sealed_holdout(
    template: WarehouseResource,
) -> None:
    # Arrange: 3,081 research bars hold 3 windows (168 + 1,500 + 24 + 3 x 400 = 2,892); a 4th
    # would need 3,292, which the 3,624 bars up to June 1st would have held.
    run = latest_run(template.warehouse(), specs()[1].spec_id)
    assert run is not None

    # Act
    curve = run_curve(template.warehouse(), run.run_id)

    # Assert
    assert len(run.windows) == 3
    last_test = run.windows[-1].bounds.test_last_at
    assert last_test is not None
    assert last_test < SEAL
    assert curve.select(pl.col("ts").max()).item() < SEAL


def test_approval_job_approves_frozen_record_and_reports_it_on_the_asset(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource
) -> None:
    # Arrange
    frozen = _frozen(project, dagster_instance)
    config = ApprovalConfig(
        record_id=frozen.record_id, decision="approve", approver=PERSON, reason="holdout held"
    )

    # Act
    result = _approve(dagster_instance, project, config)

    # Assert
    assert result.success
    record = project.archive().get(frozen.record_id)
    assert record.state is RecordState.PRODUCTION
    last = project.archive().transitions(record.record_id)[-1]
    assert (last.from_state, last.to_state, last.actor, last.reason) == (
        RecordState.FROZEN,
        RecordState.PRODUCTION,
        PERSON,
        "holdout held",
    )
    (event,) = _partition_events(dagster_instance, record.spec_id)
    assert event.run_id == result.run_id
    materialization = event.asset_materialization
    assert materialization is not None
    assert materialization.metadata["state"].value == "production"
    assert materialization.metadata["records_production"].value == 1
    assert frozen.holdout is not None
    assert materialization.metadata["holdout_sharpe"].value == pytest.approx(
        frozen.holdout.report.sharpe
    )


@pytest.mark.parametrize(
    ("case", "approver", "message"),
    [
        ("frozen", "  ", "needs the deciding person's name"),
        ("candidate", PERSON, "the record is 'candidate'"),
        ("failed_audits", PERSON, "blocking audit(s) ['min_trades'] failed"),
    ],
)
def test_approval_job_refusal_fails_run_and_changes_nothing(
    dagster_instance: dg.DagsterInstance,
    project: WarehouseResource,
    case: str,
    approver: str,
    message: str,
) -> None:
    # Arrange
    if case == "frozen":
        record = _frozen(project, dagster_instance)
    elif case == "candidate":
        record, _ = archive_latest_run(project, register(dagster_instance, project).spec_id)
    else:
        record = archive_in(project.archive(), RecordState.FROZEN, audits=failed_blocking_audits())
    archive = project.archive()
    before = (archive.list(), archive.transitions(record.record_id), archive.trail_head())
    config = ApprovalConfig(
        record_id=record.record_id, decision="approve", approver=approver, reason="ship it"
    )

    # Act
    result = _approve(dagster_instance, project, config)

    # Assert
    assert not result.success
    failure = result.failure_data_for_node("record_decision")
    assert failure is not None
    assert failure.error is not None
    assert message in failure.error.message
    after = (archive.list(), archive.transitions(record.record_id), archive.trail_head())
    assert after == before
    assert _partition_events(dagster_instance, record.spec_id) == []
