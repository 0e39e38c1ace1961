"""Rule filters that read no indicator: the time of day and the side of the candidate."""

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from quant_assets.domain.arrays import BoolArray, FloatArray, Int8Array
from quant_assets.domain.strategy import ModuleRole, ParamValue
from quant_assets.strategy.modules import (
    Filter,
    ParamDef,
    bar_timeframe,
    choice_def,
    computed_array,
    int_def,
)


class TimeOfDayFilter(Filter):
    """Pass candidates whose signal bar closes in the UTC hours [start_hour, end_hour).

    Hypothesis: intraday edges concentrate in sessions (the US open, Asian hours); see
    Admati and Pfleiderer, "A Theory of Intraday Patterns" (1988). A bar's close is its open
    plus the bar length (from the instrument key, else the smallest bar step), so an hourly bar
    opening at 13:00 closes in hour 14 and a daily bar in hour 0.
    """

    name = "time_of_day"
    role = ModuleRole.FILTER
    description = "Pass when the signal bar's close hour (UTC) is in [start_hour, end_hour)."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "start_hour": int_def(0, 0, 23, "First UTC hour that passes (an hour of the day)."),
        "end_hour": int_def(24, 1, 24, "First UTC hour after the window (an hour of the day)."),
    }

    def __init__(self, **values: ParamValue) -> None:
        super().__init__(**values)
        self.require_below(
            "start_hour", "end_hour", "choose a window that starts before it ends (UTC hours)"
        )

    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return whether each bar's close hour lies in the window."""
        # The hours depend on the bars only: a search computes them once per frame.
        hours = computed_array(bars, "close_hour_utc", _close_hours)
        return np.asarray(
            (hours >= self.int_param("start_hour")) & (hours < self.int_param("end_hour"))
        )


def _close_hours(bars: pl.DataFrame) -> FloatArray:
    bar = bar_timeframe(bars)
    # Without a known bar length (a lone bar of an unknown instrument) its open is used.
    length = bar.duration if bar is not None else None
    close_ts = pl.col("ts") + length if length is not None else pl.col("ts")
    return bars.select(close_ts.dt.hour().cast(pl.Float64)).to_series().to_numpy()


class DirectionFilter(Filter):
    """Pass only long candidates, only short ones, or both.

    Hypothesis: some markets reward one side only (equities drift up; shorting them fights the
    equity premium). A structural switch, not an indicator.
    """

    name = "direction"
    role = ModuleRole.FILTER
    description = "Pass candidates on the allowed side (long, short or both)."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "allow": choice_def("both", ("long", "short", "both"), "Sides that pass."),
    }

    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return whether each bar's candidate side is allowed (no candidate: False)."""
        allow = self.choice_param("allow")
        if allow == "long":
            return np.asarray(entries > 0)
        if allow == "short":
            return np.asarray(entries < 0)
        return np.asarray(entries != 0)
