"""Launch runs in-process on the real instance (used by the CLI and `make demo`)."""

from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster_shared.error import SerializableErrorInfo

from quant_assets.defs.partitions import INSTRUMENT_PARTITIONS_NAME, bars_partition_key
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.market import InstrumentConfig

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# The CLI shows a progress bar; the run's step events stay in the instance and the UI.
QUIET_CONSOLE: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class RunOutcome:
    """The id and data version of one finished run."""

    run_id: str
    data_version: str | None


def register_instruments(
    instance: dg.DagsterInstance, warehouse: WarehouseResource, configs: list[InstrumentConfig]
) -> None:
    """Record instruments in the warehouse and as `instrument` dynamic partitions."""
    store = warehouse.warehouse()
    for config in configs:
        store.register_instrument(config)
    known = set(instance.get_dynamic_partitions(INSTRUMENT_PARTITIONS_NAME))
    new = [config.key for config in configs if config.key not in known]
    if new:
        instance.add_dynamic_partitions(INSTRUMENT_PARTITIONS_NAME, new)


def materialize_bars_range(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    instrument: str,
    first_month: str,
    last_month: str,
) -> RunOutcome:
    """Run `bars_job` once for an instrument's months (a single-run backfill).

    Raises:
        QuantAssetsError: if the run fails; the message carries the failing step's error.
    """
    job = defs.resolve_job_def("bars_job")
    result = job.execute_in_process(
        run_config=QUIET_CONSOLE,
        instance=instance,
        tags={
            RANGE_START_TAG: str(bars_partition_key(instrument, first_month)),
            RANGE_END_TAG: str(bars_partition_key(instrument, last_month)),
        },
        raise_on_error=False,
    )
    return _outcome(result, "bars")


def materialize_data_versions(instance: dg.DagsterInstance, defs: dg.Definitions) -> RunOutcome:
    """Run `data_versions_job` (the manifest) once."""
    job = defs.resolve_job_def("data_versions_job")
    return _outcome(
        job.execute_in_process(run_config=QUIET_CONSOLE, instance=instance, raise_on_error=False),
        "data_versions",
    )


def materialize_partition(
    instance: dg.DagsterInstance, defs: dg.Definitions, job_name: str, partition_key: str
) -> RunOutcome:
    """Run a single-asset job for one partition (feature_slices_job, strategy_specs_job)."""
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        run_config=QUIET_CONSOLE,
        instance=instance,
        partition_key=partition_key,
        raise_on_error=False,
    )
    asset = job_name.removesuffix("_job")
    return _outcome(result, asset)


def _outcome(result: dg.ExecuteInProcessResult, asset: str) -> RunOutcome:
    if not result.success:
        messages = [
            user_error_message(event.step_failure_data.error)
            for event in result.all_events
            if event.is_step_failure
        ]
        failed_checks = [
            f"check {evaluation.check_name} failed: {evaluation.metadata.get('failures')}"
            for evaluation in (
                e.asset_check_evaluation_data
                for e in result.all_events
                if e.event_type_value == "ASSET_CHECK_EVALUATION"
            )
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
        ]
        detail = "; ".join(messages + failed_checks) or "see the run's logs"
        raise QuantAssetsError(f"run {result.run_id} materializing {asset} failed: {detail}")
    versions = [
        m.tags.get("dagster/data_version") if m.tags else None
        for m in result.asset_materializations_for_node(asset)
    ]
    return RunOutcome(result.run_id, versions[0] if versions else None)


def user_error_message(error: SerializableErrorInfo | None) -> str:
    """Return the user's exception message under Dagster's step-failure wrappers."""
    while error is not None and error.cls_name and error.cls_name.startswith("Dagster"):
        if error.cause is None:
            break
        error = error.cause
    if error is None:
        return "unknown error"
    message = error.message.strip()
    prefix = f"{error.cls_name}: "
    return message.split(prefix, 1)[-1] if error.cls_name else message
