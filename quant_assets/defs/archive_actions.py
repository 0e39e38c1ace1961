"""The archive's actions shared by the CLI and the Dagster layer (no asset definitions here).

A person's decision reaches `governance.approval.decide` through two doors that share
`apply_decision`: `quant-assets approve|reject|deprecate` and `approval_job` (defs/governance.py,
launchable from the UI's launchpad). Every change of a record's state is reported as a
materialization of its `archive_records` partition (`record_event`): `approval_job` logs it in
its run, the CLI reports it to the instance as a runless event, so the asset's history shows
the decisions from both doors next to the archiving runs. This module defines no assets, so
the CLI imports it without loading the code location.

Until research goals arrive, the goal, its thresholds and its holdout policy come from
`WarehouseResource` (see its docstring).
"""

from collections.abc import Callable
from typing import Any, Final

import dagster as dg

from quant_assets.defs.resources import DEFAULT_GOAL, WarehouseResource
from quant_assets.domain.errors import ArchiveError
from quant_assets.domain.governance import ArchiveRecord, RecordState
from quant_assets.governance.approval import decide
from quant_assets.governance.holdout import evaluate_holdout_once, freeze_record
from quant_assets.governance.report_text import (
    SEALED,
    audits_markdown,
    candidates_markdown,
    state_counts,
)
from quant_assets.market.manifest import manifest_digest
from quant_assets.storage.archive import ArchiveStore
from quant_assets.storage.research import list_specs, load_spec
from quant_assets.storage.research_loop import goal_spec_ids
from quant_assets.storage.walkforward import latest_run
from quant_assets.storage.warehouse import Warehouse

DATA_VERSION_TAG: Final = "dagster/data_version"
ARCHIVE_RECORDS_KEY: Final = dg.AssetKey("archive_records")


def record_data_version(record: ArchiveRecord) -> str:
    """Return the data version of a record's partition: its id and state."""
    return f"{record.record_id}:{record.state}"


def resolve_record(archive: ArchiveStore, target: str) -> ArchiveRecord:
    """Return the record `target` names: a record id, or a spec id (its latest record).

    Raises:
        ArchiveError: if no record has that id and no record was archived for such a spec.
    """
    records = archive.list()
    for record in records:
        if record.record_id == target:
            return record
    of_spec = [record for record in records if record.spec_id == target]
    if of_spec:
        return of_spec[-1]  # list() is oldest first
    raise ArchiveError(
        f"'{target}' is neither an archived record id nor a spec id with an archived record "
        f"({len(records)} record(s) archived); list them with `quant-assets archive list`, or "
        "materialize archive_records for the spec first"
    )


def data_present_in(warehouse: Warehouse) -> Callable[[dict[str, str]], bool]:
    """Return a check that pinned data versions equal the current manifest digests.

    A walk-forward run pins, per instrument, the digest of that instrument's manifest rows
    (`market.manifest.manifest_digest`); the pinned data is still present when the digest
    over the warehouse's current rows is the same.
    """

    def present(versions: dict[str, str]) -> bool:
        return all(
            manifest_digest(warehouse.partition_versions(instrument)) == version
            for instrument, version in versions.items()
        )

    return present


def apply_decision(
    warehouse: WarehouseResource, target: str, decision: str, approver: str, reason: str
) -> ArchiveRecord:
    """Apply a person's decision (approve, reject, deprecate) to a record; return it.

    The one function behind both doors (CLI and `approval_job`); it calls
    `governance.approval.decide` with the current manifest as the data-presence check.

    Args:
        warehouse: The resource.
        target: A record id, or a spec id (its latest record).
        decision: approve, reject or deprecate.
        approver: The deciding person's name.
        reason: Why.

    Raises:
        ApprovalError: if the decision is refused (nothing is written then).
        ArchiveError: if `target` names no record.
    """
    archive = warehouse.archive()
    record = resolve_record(archive, target)
    return decide(
        archive,
        record.record_id,
        decision,
        approver,
        reason,
        data_present=data_present_in(warehouse.warehouse()),
    )


def goal_trials_of(warehouse: WarehouseResource, goal: str) -> int:
    """Return the trials run under a goal: every spec's latest run and every archived run.

    Under `DEFAULT_GOAL` every stored spec's latest run counts; under a research goal, the
    latest runs of the specs proposed for it. The runs the goal's archived records pin count
    too (each run once).
    """
    store = warehouse.warehouse()
    trials = {
        record.run_id: record.metrics.oos.n_trials
        for record in warehouse.archive().list()
        if record.goal == goal
    }
    if goal == DEFAULT_GOAL:
        spec_ids = [row[0] for row in list_specs(store)]
    else:
        spec_ids = goal_spec_ids(store, goal)
    for spec_id in spec_ids:
        run = latest_run(store, spec_id)
        if run is not None:
            trials[run.run_id] = run.trials_total
    return sum(trials.values())


def freeze(warehouse: WarehouseResource, target: str, reason: str) -> ArchiveRecord:
    """Freeze a candidate (system actor) and evaluate its holdout once; return the record.

    A record frozen earlier whose holdout evaluation failed (and whose goal's holdout is still
    unread) gets the evaluation only.

    Raises:
        LifecycleError: if the record is not a candidate.
        HoldoutSealedError: if the goal's holdout was already evaluated.
        ConfigurationError: if the holdout holds too few bars.
    """
    archive = warehouse.archive()
    record = resolve_record(archive, target)
    spec = load_spec(warehouse.warehouse(), record.spec_id)
    reader = warehouse.bars_reader(spec, record.goal)
    if record.state is RecordState.FROZEN and record.holdout is None:
        # Frozen, but its evaluation failed (holdout bars missing, say): evaluate it now.
        return evaluate_holdout_once(archive, record, spec, reader)
    return freeze_record(
        archive,
        record.record_id,
        spec,
        reader,
        goal_trials=goal_trials_of(warehouse, record.goal),
        reason=reason,
    )


def record_metadata(record: ArchiveRecord, archive: ArchiveStore) -> dict[str, Any]:
    """Return what the UI shows for a record: state, OOS and holdout figures, archive counts."""
    oos, in_sample = record.metrics.oos, record.metrics.in_sample
    metadata: dict[str, Any] = {
        "record_id": dg.MetadataValue.text(record.record_id),
        "state": dg.MetadataValue.text(record.state.value),
        "goal": dg.MetadataValue.text(record.goal),
        "run_id": dg.MetadataValue.text(record.run_id),
        "oos_sharpe": dg.MetadataValue.float(oos.sharpe),
        "oos_max_drawdown": dg.MetadataValue.float(oos.max_drawdown),
        "oos_trades": dg.MetadataValue.int(oos.trades),
        "is_sharpe": dg.MetadataValue.float(in_sample.sharpe),
        "deflated_sharpe": dg.MetadataValue.float(record.metrics.deflated_sharpe),
    }
    if record.holdout is None:
        metadata["holdout"] = dg.MetadataValue.text(SEALED)
    else:
        report = record.holdout.report
        metadata["holdout_sharpe"] = dg.MetadataValue.float(report.sharpe)
        metadata["holdout_max_drawdown"] = dg.MetadataValue.float(report.max_drawdown)
        metadata["holdout_total_return"] = dg.MetadataValue.float(report.total_return)
        metadata["holdout_trades"] = dg.MetadataValue.int(report.trades)
    metadata["audits"] = dg.MetadataValue.md(audits_markdown(record))
    metadata["preferences_hash"] = dg.MetadataValue.text(record.preferences_hash)
    records = archive.list()
    for state, count in state_counts(records).items():
        metadata[f"records_{state.value}"] = dg.MetadataValue.int(count)
    metadata["candidates"] = dg.MetadataValue.md(candidates_markdown(records))
    # Anchor the hash chains outside the warehouse (storage/archive.py): a removal of the
    # newest rows shows as a head that no longer matches this event's.
    records_head, transitions_head = archive.trail_head()
    metadata["trail_head_records"] = dg.MetadataValue.text(records_head)
    metadata["trail_head_transitions"] = dg.MetadataValue.text(transitions_head)
    return metadata


def record_event(record: ArchiveRecord, archive: ArchiveStore, why: str) -> dg.AssetMaterialization:
    """Return the materialization of a record's `archive_records` partition after a change."""
    return dg.AssetMaterialization(
        asset_key=ARCHIVE_RECORDS_KEY,
        partition=record.spec_id,
        description=f"record {record.record_id} is {record.state}: {why}",
        metadata=record_metadata(record, archive),
        tags={DATA_VERSION_TAG: record_data_version(record)},
    )


def record_actor(archive: ArchiveStore, record: ArchiveRecord) -> str:
    """Return who made the record's latest move (from its trail)."""
    return archive.transitions(record.record_id)[-1].actor
