"""Bars for research under a goal, read from the lake with the goal's holdout sealed.

Research code (proposers, searches, audits) reads bars through a `BarsReader`: any read that
reaches the goal's holdout start raises `HoldoutSealedError`. The holdout itself is returned
only for a frozen record of the goal whose holdout was never evaluated, which the archive
store checks from the warehouse (the freeze-time path, `governance.holdout.freeze_record`).
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import polars as pl

from quant_assets.domain.errors import HoldoutSealedError
from quant_assets.domain.governance import HoldoutGuard, RecordState
from quant_assets.storage.archive import ArchiveStore, holdout_spent_message
from quant_assets.storage.lake import Lake

_ONE_MICROSECOND: Final = timedelta(microseconds=1)


class BarsReader:
    """Bars from the lake for research under a goal, with the goal's holdout sealed.

    Research reads end before the holdout (`read_bars` refuses any read that reaches it);
    `read_holdout` returns the holdout only for a frozen record of the goal whose holdout
    was never evaluated, which is the freeze-time evaluation's path
    (`governance.holdout.evaluate_holdout_once`).
    """

    def __init__(self, lake: Lake, store: ArchiveStore, guard: HoldoutGuard) -> None:
        self.lake = lake
        self.store = store
        self.guard = guard

    def read_bars(self, instrument: str, start: datetime | None, end: datetime) -> pl.DataFrame:
        """Return an instrument's bars with start <= ts < end (None: from the first bar).

        Raises:
            HoldoutSealedError: if `end` is after the goal's holdout start.
        """
        self.guard.check_research_read(instrument, start, end)
        return self._read(instrument, start, end)

    def read_research_bars(self, instrument: str, start: datetime | None = None) -> pl.DataFrame:
        """Return an instrument's bars from `start` up to (not including) the holdout start."""
        return self._read(instrument, start, self.guard.start)

    def read_holdout(self, record_id: str, instruments: Sequence[str]) -> dict[str, pl.DataFrame]:
        """Return the holdout bars [start, end) of each instrument, for the freeze evaluation.

        Raises:
            HoldoutSealedError: if the record is not of this goal, not frozen, or pins no data
                version for an instrument, or if the goal's holdout was already evaluated.
        """
        record = self.store.get(record_id)
        goal = self.guard.goal
        if record.goal != goal or record.state is not RecordState.FROZEN:
            raise HoldoutSealedError(
                f"record {record_id} is '{record.state}' under goal '{record.goal}'; the holdout "
                f"of goal '{goal}' (from {self.guard.start.isoformat()}) is read only to "
                "evaluate a frozen record of that goal, once (governance.holdout.freeze_record)"
            )
        unpinned = sorted(set(instruments) - set(record.data_versions))
        if unpinned:
            raise HoldoutSealedError(
                f"record {record_id} pins no data version for {unpinned} (it pins "
                f"{sorted(record.data_versions)}); the holdout is read only for its instruments"
            )
        spent = self.store.holdout_evaluation(goal)
        if spent is not None:
            raise HoldoutSealedError(holdout_spent_message(goal, spent))
        return {key: self._read(key, self.guard.start, self.guard.end) for key in instruments}

    def _read(self, instrument: str, start: datetime | None, end: datetime) -> pl.DataFrame:
        last_month = (end.astimezone(UTC) - _ONE_MICROSECOND).strftime("%Y-%m-01")
        first_month = None if start is None else start.astimezone(UTC).strftime("%Y-%m-01")
        keys = [
            key
            for key in self.lake.month_keys(instrument)
            if key <= last_month and (first_month is None or key >= first_month)
        ]
        bars = self.lake.read_bars(instrument, keys)
        inside = pl.col("ts") < end
        if start is not None:
            inside = inside & (pl.col("ts") >= start)
        return bars.filter(inside)
