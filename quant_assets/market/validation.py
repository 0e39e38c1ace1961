"""The OHLCV integrity rules (pandera's polars backend) and readable failure reports.

The same rules guard a fetch before anything is written, and the blocking `ohlcv_schema`
asset check on stored partitions.
"""

from dataclasses import dataclass
from typing import Final

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.errors import SchemaError, SchemaErrors

from quant_assets.domain.errors import DataQualityError
from quant_assets.domain.market import InstrumentKey
from quant_assets.market.canonical import BAR_SCHEMA, TS_DTYPE

# Adjusted equity prices carry float noise of ~2e-16 relative (shared/data/market/README.md).
OHLC_RELATIVE_TOLERANCE: Final = 1e-9
_MAX_SHOWN_ROWS: Final = 3


@dataclass(frozen=True)
class Rule:
    """One named integrity rule with the fix a user should apply when it fails."""

    name: str
    description: str
    fix: str


RULES: Final = {
    rule.name: rule
    for rule in (
        Rule(
            "schema",
            "columns and dtypes are the canonical schema",
            "map the columns to "
            "ts, open, high, low, close, volume (float64) with ts as a UTC datetime",
        ),
        Rule("ts_unique", "each ts appears once", "drop duplicate rows before loading"),
        Rule("ts_increasing", "ts strictly increases", "sort the rows by ts"),
        Rule(
            "ts_on_grid",
            "ts is aligned to the timeframe grid",
            "declare the file's timezone "
            "(a shifted timezone moves bars off the grid) or fix the instrument's timeframe",
        ),
        Rule("not_null", "no missing values", "drop or fill rows with empty fields"),
        Rule("finite", "no NaN or inf values", "drop rows with NaN or inf prices or volumes"),
        Rule("positive_prices", "open, high, low, close > 0", "drop rows with non-positive prices"),
        Rule("volume_non_negative", "volume >= 0", "fix or drop rows with negative volume"),
        Rule(
            "high_is_max",
            "high >= max(open, close, low)",
            "check the column mapping (high and low swapped?) or drop the corrupt rows",
        ),
        Rule(
            "low_is_min",
            "low <= min(open, close, high)",
            "check the column mapping (high and low swapped?) or drop the corrupt rows",
        ),
        Rule(
            "instrument",
            "the instrument column names the partition's instrument",
            "load each instrument into its own partition",
        ),
    )
}


def _frame_check(name: str, expression: pl.Expr) -> pa.Check:
    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(expression.fill_null(False).alias(name))

    return pa.Check(check, name=name, error=name)


def bars_schema(instrument: InstrumentKey) -> pa.DataFrameSchema:
    """Return the pandera schema for one instrument's canonical bars."""
    grid_us = instrument.bar.seconds * 1_000_000
    upper = 1 + OHLC_RELATIVE_TOLERANCE
    lower = 1 - OHLC_RELATIVE_TOLERANCE
    prices = ("open", "high", "low", "close")
    floats = (*prices, "volume")
    checks = [
        _frame_check("ts_increasing", pl.col("ts").diff().dt.total_microseconds().fill_null(1) > 0),
        _frame_check("ts_on_grid", pl.col("ts").dt.epoch("us") % grid_us == 0),
        _frame_check("finite", pl.all_horizontal(pl.col(c).is_finite() for c in floats)),
        _frame_check("positive_prices", pl.all_horizontal(pl.col(c) > 0 for c in prices)),
        _frame_check("volume_non_negative", pl.col("volume") >= 0),
        _frame_check(
            "high_is_max", pl.col("high") * upper >= pl.max_horizontal("open", "close", "low")
        ),
        _frame_check(
            "low_is_min", pl.col("low") * lower <= pl.min_horizontal("open", "close", "high")
        ),
        _frame_check("instrument", pl.col("instrument") == instrument.key),
    ]
    columns = {
        "ts": pa.Column(TS_DTYPE, unique=True, nullable=False),
        **{name: pa.Column(pl.Float64, nullable=False) for name in floats},
        "instrument": pa.Column(pl.String, nullable=False),
    }
    return pa.DataFrameSchema(columns, checks=checks, strict=True, ordered=True)


def validate_bars(frame: pl.DataFrame, instrument: InstrumentKey) -> None:
    """Validate canonical bars and raise a readable error on the first broken rules.

    Raises:
        DataQualityError: naming the instrument, the month, each broken rule, how many rows broke
            it, the first offending rows and the fix.
    """
    if dict(frame.schema) != dict(BAR_SCHEMA):
        found = ", ".join(f"{name}: {dtype}" for name, dtype in frame.schema.items())
        raise DataQualityError(
            f"bars for {instrument.key}: rule 'schema' ({RULES['schema'].description}) failed; "
            f"columns were [{found}]; fix: {RULES['schema'].fix}"
        )
    try:
        bars_schema(instrument).validate(frame, lazy=True)
    except SchemaErrors as e:
        raise DataQualityError(describe_failures(frame, instrument, e.failure_cases)) from e
    except SchemaError as e:
        raise DataQualityError(f"bars for {instrument.key}: {e}") from e


def _rule_name(check: str, column: str | None) -> str:
    if check == "field_uniqueness" and column == "ts":
        return "ts_unique"
    if check.startswith("not_nullable"):
        return "not_null"
    return check if check in RULES else "schema"


def describe_failures(
    frame: pl.DataFrame, instrument: InstrumentKey, failure_cases: pl.DataFrame
) -> str:
    """Return one readable message for pandera failure cases on `frame`."""
    cases = failure_cases.with_columns(
        pl.struct("check", "column")
        .map_elements(lambda s: _rule_name(s["check"], s["column"]), return_dtype=pl.String)
        .alias("rule")
    )
    parts: list[str] = []
    first_month = ""
    for rule_name, group in cases.group_by("rule", maintain_order=True):
        rule = RULES[str(rule_name[0])]
        indices = sorted({int(i) for i in group["index"].drop_nulls().to_list()})
        shown = frame[indices[:_MAX_SHOWN_ROWS]] if indices else frame.head(0)
        rows = "; ".join(_format_row(row) for row in shown.iter_rows(named=True))
        if not first_month and shown.height and shown["ts"][0] is not None:
            first_month = shown["ts"][0].strftime("%Y-%m")
        parts.append(
            f"rule '{rule.name}' ({rule.description}) failed on {len(indices) or group.height} "
            f"row(s), first: [{rows}]; fix: {rule.fix}"
        )
    month = f", month {first_month}" if first_month else ""
    return f"bars for {instrument.key}{month}: " + " | ".join(parts)


def _format_row(row: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items() if k != "instrument")
