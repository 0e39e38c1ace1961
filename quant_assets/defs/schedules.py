"""Schedules: refresh the current month of every registered instrument."""

from datetime import datetime

import dagster as dg

from quant_assets.defs.jobs import bars_job
from quant_assets.defs.partitions import INSTRUMENT_PARTITIONS_NAME, bars_partition_key
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.months import month_key_of

# Daily bars are refreshed once a day, after the US close has settled (01:00 UTC).
DAILY_REFRESH_HOUR_UTC = 1


def refresh_requests(instruments: list[str], scheduled_at: datetime) -> list[dg.RunRequest]:
    """Return one run per instrument due at `scheduled_at` for its current month partition.

    Intraday instruments refresh every hour; daily ones once a day.
    """
    month = month_key_of(scheduled_at)
    requests: list[dg.RunRequest] = []
    for instrument in sorted(instruments):
        intraday = InstrumentKey.parse(instrument).bar.is_intraday
        if not intraday and scheduled_at.hour != DAILY_REFRESH_HOUR_UTC:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{instrument}|{month}|{scheduled_at:%Y-%m-%dT%H}",
                partition_key=bars_partition_key(instrument, month),
                tags={"quant_assets/refresh": "current_month"},
            )
        )
    return requests


@dg.schedule(cron_schedule="5 * * * *", job=bars_job, execution_timezone="UTC")
def market_refresh_schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
    """Refresh the current month: hourly for intraday instruments, daily for daily ones."""
    scheduled_at = context.scheduled_execution_time
    assert scheduled_at is not None  # a cron schedule always has one
    instruments = context.instance.get_dynamic_partitions(INSTRUMENT_PARTITIONS_NAME)
    return refresh_requests(list(instruments), scheduled_at)


@dg.definitions
def schedules() -> dg.Definitions:
    """Return the schedules."""
    return dg.Definitions(schedules=[market_refresh_schedule])
