"""Specification of the shared expression helpers: NumPy kernels as polars expressions."""

import math

import numpy as np
import polars as pl

from quant_assets.domain.arrays import FloatArray
from quant_assets.features._expressions import apply_float_kernel


def test_apply_float_kernel_nan_anywhere_becomes_null_and_values_pass_through() -> None:
    # Arrange: a kernel that returns NaN on a leading block, in the middle and at the end.
    frame = pl.DataFrame({"close": [1.0, 2.0, None, 4.0, 5.0, 6.0]})

    def kernel(arrays: list[FloatArray]) -> FloatArray:
        out = arrays[0] * 10.0  # the null input arrives as NaN
        out[[0, 4]] = math.nan
        return out

    # Act
    result = frame.select(apply_float_kernel([pl.col("close")], kernel).alias("x"))["x"]

    # Assert: every NaN is a null, nothing else changed; no NaN is left behind.
    assert result.to_list() == [None, 20.0, None, 40.0, None, 60.0]
    assert result.dtype == pl.Float64
    assert not result.drop_nulls().is_nan().any()
    np.testing.assert_array_equal(result.fill_null(0.0).to_numpy(), [0, 20, 0, 40, 0, 60])
