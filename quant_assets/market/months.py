"""Month partitions: keys, bounds and coverage of a time range."""

from datetime import UTC, datetime

from quant_assets.domain.errors import UnknownInstrumentError

MONTH_KEY_FORMAT = "%Y-%m-%d"


def month_start(month_key: str) -> datetime:
    """Return the UTC start of a month partition key such as '2024-03-01'.

    Raises:
        UnknownInstrumentError: if the key is not the first day of a month.
    """
    try:
        start = datetime.strptime(month_key, MONTH_KEY_FORMAT).replace(tzinfo=UTC)
    except ValueError as e:
        raise UnknownInstrumentError(
            f"month partition '{month_key}' is not a date like 2024-03-01; "
            "use the month's first day"
        ) from e
    if start.day != 1:
        raise UnknownInstrumentError(
            f"month partition '{month_key}' is not the first day of a month; use {month_key[:8]}01"
        )
    return start


def next_month(start: datetime) -> datetime:
    """Return the start of the month after `start`."""
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def month_bounds(month_key: str) -> tuple[datetime, datetime]:
    """Return the half-open UTC range [start, end) of a month partition."""
    start = month_start(month_key)
    return start, next_month(start)


def month_key_of(ts: datetime) -> str:
    """Return the month partition key containing `ts`."""
    return ts.strftime("%Y-%m-01")


def month_keys_between(first: datetime, last: datetime) -> list[str]:
    """Return every month key from the month of `first` to the month of `last`, inclusive."""
    keys: list[str] = []
    cursor = month_start(month_key_of(first))
    while cursor <= last:
        keys.append(month_key_of(cursor))
        cursor = next_month(cursor)
    return keys
