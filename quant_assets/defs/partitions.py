"""Partitions: instrument (dynamic) x month for bars; specs and research goals (dynamic)."""

from typing import Final

import dagster as dg

INSTRUMENT_PARTITIONS_NAME: Final = "instrument"
# The oldest shipped history (SPY) starts in 1993; end_offset=1 includes the current month.
FIRST_MONTH: Final = "1993-01-01"

instrument_partitions = dg.DynamicPartitionsDefinition(name=INSTRUMENT_PARTITIONS_NAME)
month_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH, end_offset=1)
bars_partitions = dg.MultiPartitionsDefinition(
    {"instrument": instrument_partitions, "month": month_partitions}
)


def bars_partition_key(instrument: str, month_key: str) -> dg.MultiPartitionKey:
    """Return the multi-partition key of one instrument-month."""
    return dg.MultiPartitionKey({"instrument": instrument, "month": month_key})


def instrument_months(partition_keys: list[str]) -> dict[str, list[str]]:
    """Group a run's multi-partition keys into months per instrument."""
    grouped: dict[str, list[str]] = {}
    for key in partition_keys:
        dims = bars_partitions.get_partition_key_from_str(key).keys_by_dimension
        grouped.setdefault(dims["instrument"], []).append(dims["month"])
    return {instrument: sorted(months) for instrument, months in grouped.items()}


SPEC_PARTITIONS_NAME: Final = "spec"
spec_partitions = dg.DynamicPartitionsDefinition(name=SPEC_PARTITIONS_NAME)

GOAL_PARTITIONS_NAME: Final = "goal"
goal_partitions = dg.DynamicPartitionsDefinition(name=GOAL_PARTITIONS_NAME)
