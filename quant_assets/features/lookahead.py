"""The truncation check: values at bar t must not change when the data is cut at t."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from quant_assets.domain.errors import SpecValidationError

FrameComputation = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class LookAheadViolation:
    """A value that changed when the rows after `cut_index` were removed."""

    column: str
    cut_index: int
    row_index: int
    full_value: object
    truncated_value: object

    def describe(self) -> str:
        """Return a one-line explanation naming the column, the row and both values."""
        return (
            f"column '{self.column}' reads the future: on row {self.row_index} it was "
            f"{self.full_value!r} on the full data but {self.truncated_value!r} on data cut "
            f"after row {self.cut_index}; use only current and earlier rows (no shift(-k), no "
            "centred windows, no full-sample statistics)"
        )


def find_look_ahead(
    compute: FrameComputation, bars: pl.DataFrame, *, cut_indices: Sequence[int]
) -> list[LookAheadViolation]:
    """Return every column whose values up to a cut differ between full and truncated input.

    For each cut index c, `compute` runs on `bars.head(c + 1)` and its rows 0..c must equal
    the first c + 1 rows computed on all of `bars`, exactly (null equals null, NaN equals NaN).
    One violation is reported per column and cut: the first differing row.

    Args:
        compute: Maps bars to a frame with one row per input row, in input order.
        bars: The full input.
        cut_indices: Last row kept in each truncated input.

    Returns:
        The violations; empty when the computation reads no future rows at these cuts.

    Raises:
        SpecValidationError: if a cut is outside the data or `compute` changes the row count.
    """
    full = _checked(compute, bars)
    violations: list[LookAheadViolation] = []
    for cut_index in cut_indices:
        if not 0 <= cut_index < bars.height:
            raise SpecValidationError(
                f"look-ahead check: cut index {cut_index} is outside the {bars.height} rows of "
                "data; choose cuts in [0, rows - 1]"
            )
        truncated = _checked(compute, bars.head(cut_index + 1))
        expected = full.head(cut_index + 1)
        for column in full.columns:
            violation = _first_difference(expected, truncated, column, cut_index)
            if violation is not None:
                violations.append(violation)
    return violations


def find_expression_look_ahead(
    exprs: Sequence[pl.Expr], bars: pl.DataFrame, *, cut_indices: Sequence[int]
) -> list[LookAheadViolation]:
    """Return the look-ahead violations of feature expressions evaluated with `bars.select`."""
    return find_look_ahead(lambda frame: frame.select(exprs), bars, cut_indices=cut_indices)


def _checked(compute: FrameComputation, bars: pl.DataFrame) -> pl.DataFrame:
    result = compute(bars)
    if result.height != bars.height:
        raise SpecValidationError(
            f"look-ahead check: the computation returned {result.height} rows for "
            f"{bars.height} input rows; it must return one row per bar, in bar order"
        )
    return result


def _first_difference(
    expected: pl.DataFrame, truncated: pl.DataFrame, column: str, cut_index: int
) -> LookAheadViolation | None:
    if column not in truncated.columns:
        return LookAheadViolation(column, cut_index, 0, expected[column][0], "<missing column>")
    full_values = expected[column]
    cut_values = truncated[column]
    if full_values.dtype != cut_values.dtype:
        cut_values = cut_values.cast(full_values.dtype)
    # eq_missing treats null == null and NaN == NaN as equal.
    differs = ~full_values.eq_missing(cut_values)
    if not differs.any():
        return None
    row_index = int(differs.arg_true()[0])
    return LookAheadViolation(
        column, cut_index, row_index, full_values[row_index], cut_values[row_index]
    )
