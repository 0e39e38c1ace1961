"""Governance in Dagster: the `archive_records` asset and the human gate, `approval_job`.

`archive_records` opens the archive record of each spec's latest walk-forward run (candidate or
discarded, by the system), carrying the verdicts of the six audits recomputed on the stored run
by the functions its asset checks call. `approval_job` (launchable from the UI's launchpad)
applies a person's decision through `defs.archive_actions.apply_decision`, the function
`quant-assets approve|reject|deprecate` calls, and reports the record's new state as a
materialization of its `archive_records` partition, so the decision shows in the asset's
history. A refused decision fails the run with the refusal and changes nothing.

A run works for the research goal its `GOAL_TAG` names (`DEFAULT_GOAL` without one); the
goal's archive bar and holdout apply (`WarehouseResource`).
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from quant_assets.defs.archive_actions import (
    apply_decision,
    record_actor,
    record_data_version,
    record_event,
    record_metadata,
)
from quant_assets.defs.audit_runs import run_audits, spec_and_run
from quant_assets.defs.partitions import spec_partitions
from quant_assets.defs.resources import DEFAULT_GOAL, WarehouseResource, run_goal
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.domain.errors import QuantAssetsError, SpecValidationError
from quant_assets.domain.governance import ArchiveRecord
from quant_assets.domain.strategy import StrategySpec
from quant_assets.governance.lifecycle import open_record, spec_ancestry
from quant_assets.governance.preferences import preferences_hash
from quant_assets.storage.research import load_spec
from quant_assets.storage.warehouse import Warehouse


def spec_lineage(warehouse: Warehouse, spec: StrategySpec) -> tuple[str, ...]:
    """Return a spec's ancestors, nearest first; an ancestor not stored ends the chain."""

    def parent_of(spec_id: str) -> str | None:
        try:
            return load_spec(warehouse, spec_id).lineage.parent_id
        except SpecValidationError:
            return None

    return spec_ancestry(spec.lineage.parent_id, parent_of)


def archive_latest_run(
    warehouse: WarehouseResource, spec_id: str, goal: str = DEFAULT_GOAL
) -> tuple[ArchiveRecord, bool]:
    """Open the record of a spec's latest walk-forward run under a goal; return it and if new.

    Idempotent: a run already archived under the goal is not archived again; its record (at
    its current state) is returned. The audits are recomputed on the stored run by the
    functions the asset checks call (`defs.audit_runs.run_audits`).

    Raises:
        dagster.Failure: if the spec has no stored walk-forward run.
        ConfigurationError: if the run was computed under other preferences than today's.
    """
    spec, run = spec_and_run(warehouse, spec_id)
    archive = warehouse.archive()
    for existing in archive.list():
        if existing.run_id == run.run_id and existing.goal == goal:
            return existing, False
    record, creation = open_record(
        run,
        goal=goal,
        parent_spec_ids=spec_lineage(warehouse.warehouse(), spec),
        audits=run_audits(warehouse, spec, run, goal),
        thresholds=warehouse.archive_thresholds(goal),
        preferences_hash=preferences_hash(warehouse.preferences()),
    )
    archive.create(record, creation)
    return record, True


@dg.asset(
    partitions_def=spec_partitions,
    deps=[walkforward_results],
    group_name="governance",
    owners=["team:governance"],
    pool="warehouse",
    code_version="1",
    kinds={"duckdb"},
)
def archive_records(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """The archive record of a spec's latest walk-forward run: candidate or discarded."""
    goal = run_goal(context.run.tags)
    record, opened = archive_latest_run(warehouse, context.partition_key, goal)
    verb = "archived" if opened else "was already archived as"
    context.log.info(
        f"spec {record.spec_id}: run {record.run_id} {verb} record {record.record_id} "
        f"({record.state}, OOS Sharpe {record.metrics.oos.sharpe:.2f})"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(record_data_version(record)),
        metadata={
            **record_metadata(record, warehouse.archive()),
            "newly_archived": dg.MetadataValue.bool(opened),
        },
    )


class ApprovalConfig(dg.Config):
    """A person's decision on an archive record, as the launchpad asks for it."""

    record_id: str = Field(description="The archive record id, or a spec id (its latest record).")
    decision: Literal["approve", "reject", "deprecate"] = Field(
        description="approve (frozen -> production), reject (frozen -> deprecated) or "
        "deprecate (production -> deprecated)."
    )
    approver: str = Field(description="The deciding person's name (not blank, not 'system').")
    reason: str = Field(description="Why, for the record's trail.")


@dg.op(pool="warehouse")
def record_decision(
    context: dg.OpExecutionContext, config: ApprovalConfig, warehouse: WarehouseResource
) -> None:
    """Apply the decision and report the record's new state on its archive_records partition."""
    try:
        record = apply_decision(
            warehouse, config.record_id, config.decision, config.approver, config.reason
        )
    except QuantAssetsError as e:
        raise dg.Failure(description=str(e)) from e
    context.log.info(f"record {record.record_id} is now {record.state} ({config.approver})")
    why = f"{config.decision} by {record_actor(warehouse.archive(), record)}"
    context.log_event(record_event(record, warehouse.archive(), why))


@dg.job(
    description="A person's decision on an archive record: approve, reject or deprecate "
    "(config: record_id or spec id, decision, approver, reason).",
    tags={"quant_assets/gate": "human"},
)
def approval_job() -> None:
    """Record one person's decision on one archive record."""
    record_decision()


@dg.definitions
def governance() -> dg.Definitions:
    """Return the governance asset and the approval job."""
    return dg.Definitions(assets=[archive_records], jobs=[approval_job])
