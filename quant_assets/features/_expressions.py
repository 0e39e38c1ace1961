"""Shared causal building blocks for the feature modules (private).

Every helper reads only the current and earlier rows. Inputs are assumed to have nulls only as a
leading warm-up block (canonical bars carry no nulls; derived series such as a MACD line start
with nulls and are contiguous afterwards).
"""

import math
from collections.abc import Callable

import numpy as np
import polars as pl

from quant_assets.domain.arrays import FloatArray
from quant_assets.domain.errors import SpecValidationError
from quant_assets.features._numba_helpers import seeded_ema_nb


def output_name(prefix: str, column: str, *params: float) -> str:
    """Return an output name like `ema_20`, or `ema_volume_20` when the column is not close."""
    stem = prefix if column == "close" else f"{prefix}_{column}"
    return stem + param_suffix(*params)


def param_suffix(*params: float) -> str:
    """Return the name suffix for parameter values, e.g. `_20_2p5` for (20, 2.5)."""
    return "".join(f"_{_format_param(value)}" for value in params)


def _format_param(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    # 2.5 -> "2p5": names stay valid identifiers.
    return repr(float(value)).replace(".", "p").replace("-", "m")


def require_at_least(feature: str, parameter: str, value: float, minimum: float) -> None:
    """Raise when a feature parameter is below its smallest meaningful value.

    Raises:
        SpecValidationError: if `value` < `minimum`.
    """
    if value < minimum:
        raise SpecValidationError(
            f"feature '{feature}': parameter '{parameter}' was {value}, below the minimum "
            f"{minimum}; pass {parameter}>={minimum}"
        )


def valid_count(values: pl.Expr) -> pl.Expr:
    """Return the running count of non-null values up to and including each row."""
    return values.is_not_null().cast(pl.Int64).cum_sum()


def seeded_ema(
    values: pl.Expr,
    *,
    alpha: float,
    seed_count: int,
    seed_window: int | None = None,
    seed_scale: float | None = None,
) -> pl.Expr:
    """Return y_t = (1 - alpha) * y_{t-1} + alpha * values_t, started from an explicit seed.

    The seed row is where the running count of non-null `values` reaches `seed_count`; the seed
    is `seed_scale` (default 1 / seed_window) times the sum of the `seed_window` (default
    seed_count) values ending there. Earlier rows are null.

    polars' `ewm_mean` starts from its first input, so an explicit seed would need the input
    several times in one expression, and polars does not share such repeats (ADX took 15 s on
    1M rows that way); the Numba recursion reads the input once.
    """
    window = seed_count if seed_window is None else seed_window
    scale = 1.0 / window if seed_scale is None else seed_scale
    return apply_float_kernel(
        [values], lambda arrays: seeded_ema_nb(arrays[0], alpha, seed_count, window, scale)
    )


def sma_seeded_ema(values: pl.Expr, *, span_bars: int, alpha: float | None = None) -> pl.Expr:
    """Return an EMA seeded with the simple mean of its first `span_bars` values (TA-Lib's rule).

    `alpha` defaults to 2 / (span_bars + 1); Wilder smoothing passes 1 / span_bars.
    """
    smoothing = 2.0 / (span_bars + 1.0) if alpha is None else alpha
    return seeded_ema(values, alpha=smoothing, seed_count=span_bars)


def wilder_mean(values: pl.Expr, *, lookback_bars: int) -> pl.Expr:
    """Return Wilder's smoothed mean: alpha = 1 / lookback_bars, seeded with the first SMA."""
    return sma_seeded_ema(values, span_bars=lookback_bars, alpha=1.0 / lookback_bars)


def weighted_moving_average(values: pl.Expr, *, span_bars: int) -> pl.Expr:
    """Return the linearly weighted mean over `span_bars` rows, newest weight `span_bars`.

    polars' weighted rolling kernels reject nulls, so nulls are filled with zero first and every
    window that touched one is masked back to null.
    """
    weights = [float(weight) for weight in range(1, span_bars + 1)]
    complete = values.is_not_null().cast(pl.Int64).rolling_sum(span_bars) == span_bars
    weighted = values.fill_null(0.0).rolling_mean(span_bars, weights=weights)
    return pl.when(complete).then(weighted).otherwise(None)


def safe_divide(numerator: pl.Expr, denominator: pl.Expr, *, fallback: pl.Expr | float) -> pl.Expr:
    """Return numerator / denominator, or `fallback` where the quotient is not finite.

    A zero denominator gives inf or NaN, which become the fallback; nulls stay null, so a warm-up
    row is not mistaken for a flat one. Each input is referenced once (see `seeded_ema`).
    """
    ratio = numerator / denominator
    return ratio.replace([math.inf, -math.inf], math.nan).fill_nan(fallback)


def log_returns(column: str = "close") -> pl.Expr:
    """Return log(x_t / x_{t-1}); null on the first row."""
    values = pl.col(column)
    return (values / values.shift(1)).log()


def apply_float_kernel(
    inputs: list[pl.Expr], kernel: Callable[[list[FloatArray]], FloatArray]
) -> pl.Expr:
    """Return an expression that runs a NumPy kernel over whole float columns.

    Nulls enter the kernel as NaN and NaN leaves it as null. The kernel must be causal (output
    row t reads input rows <= t); the truncation contract test checks that.
    """

    def run(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        arrays = [
            np.ascontiguousarray(frame.to_series(index).cast(pl.Float64).to_numpy())
            for index in range(frame.width)
        ]
        # NaN becomes null while the Series is built: one pass instead of a fill_nan copy.
        return pl.Series(batch.name, kernel(arrays), dtype=pl.Float64, nan_to_null=True)

    fields = [expression.alias(f"input_{index}") for index, expression in enumerate(inputs)]
    return pl.struct(fields).map_batches(run, return_dtype=pl.Float64)
