"""Hand-made bar sequences for tests: canonical bars from (open, high, low, close) rows."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import polars as pl

from quant_assets.market.canonical import to_canonical

HAND_START = datetime(2024, 1, 1, tzinfo=UTC)
HAND_KEY = "test.HAND.1h"

Ohlc = tuple[float, float, float, float]


def hand_bars(
    rows: Sequence[Ohlc], *, key: str = HAND_KEY, spacing: timedelta = timedelta(hours=1)
) -> pl.DataFrame:
    """Return canonical bars of `key`, one row every `spacing` from 2024-01-01 00:00 UTC."""
    frame = pl.DataFrame(
        {
            "ts": [HAND_START + spacing * index for index in range(len(rows))],
            "open": [row[0] for row in rows],
            "high": [row[1] for row in rows],
            "low": [row[2] for row in rows],
            "close": [row[3] for row in rows],
            "volume": [1.0] * len(rows),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    return to_canonical(frame, key)
