"""Indicator arrays computed straight from bar columns, for the features a search asks most.

A parameter search asks for a new EMA span on most trials. Through polars each costs a
`select`, a few hundred microseconds of overhead around tens of microseconds of work on a
year of hourly bars. These functions run the feature library's own Numba kernel on the
column's array and cache the result per frame (`computed_array`), so their values are the
polars expressions' values to the last bit (the tests compare them).
"""

import numpy as np
import polars as pl

from quant_assets.domain.arrays import FloatArray
from quant_assets.domain.errors import SpecValidationError

# The kernel behind `features.moving_averages.ema` (through `sma_seeded_ema`): reusing it keeps
# both paths identical by construction.
from quant_assets.features._numba_helpers import seeded_ema_nb
from quant_assets.strategy.modules import computed_array


def ema_array(bars: pl.DataFrame, *, span_bars: int, column: str = "close") -> FloatArray:
    """Return `moving_averages.ema(span_bars=..., column=...)` of `bars` as an array.

    The EMA is seeded with the simple mean of its first `span_bars` values (TA-Lib's rule) and
    is NaN before that row, as the expression's nulls become NaN in `feature_arrays`.

    Args:
        bars: Bars holding `column`.
        span_bars: EMA span in bars (alpha = 2 / (span_bars + 1)).
        column: Input column.

    Returns:
        A writable float64 array, one value per bar.

    Raises:
        SpecValidationError: if span_bars is below 1.
    """
    if span_bars < 1:
        raise SpecValidationError(
            f"feature 'ema': parameter 'span_bars' was {span_bars}, below the minimum 1; "
            "pass span_bars>=1"
        )
    return computed_array(
        bars, f"ema_{column}_{span_bars}", lambda frame: _ema(frame, span_bars, column)
    )


def _ema(bars: pl.DataFrame, span_bars: int, column: str) -> FloatArray:
    # As `sma_seeded_ema`: alpha 2 / (span + 1), seeded on the span-th valid value with the
    # mean of the span values ending there; nulls enter as NaN, as in `apply_float_kernel`.
    values = np.ascontiguousarray(bars[column].cast(pl.Float64).to_numpy(), dtype=np.float64)
    alpha = 2.0 / (span_bars + 1.0)
    return seeded_ema_nb(values, alpha, span_bars, span_bars, 1.0 / span_bars)
