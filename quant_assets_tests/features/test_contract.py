"""Contract suite run over every registered feature (STYLE.md section 7, Optuna's idea).

Each feature must read only current and earlier rows (truncation), stay inside its declared
output bounds, evaluate deterministically, and be null exactly during its declared warm-up and
finite afterwards. A planted look-ahead feature proves the truncation check bites.
"""

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant_assets.features.lookahead import LookAheadViolation, find_expression_look_ahead
from quant_assets.features.registry import (
    FeatureDef,
    OutputSpec,
    ParamKind,
    registered_features,
)

FEATURES = registered_features()


def feature_id(feature: FeatureDef) -> str:
    return feature.name


def cut_indices(warmup_bars: int, rows: int) -> list[int]:
    # Before, at and just after the warm-up boundary, then well inside and at the end.
    candidates = {0, 3, warmup_bars - 1, warmup_bars, warmup_bars + 1, warmup_bars + 17}
    candidates |= {rows // 2, rows - 2}
    return sorted(cut for cut in candidates if 0 <= cut < rows)


def truncation_violations(
    feature: FeatureDef, bars: pl.DataFrame, **params: float
) -> list[LookAheadViolation]:
    cuts = cut_indices(feature.warmup_bars(**params), bars.height)
    return find_expression_look_ahead(feature.exprs(**params), bars, cut_indices=cuts)


def first_valid_index(series: pl.Series) -> int:
    valid = series.is_not_null()
    return int(valid.arg_true()[0]) if valid.any() else series.len()


def assert_null_then_finite(frame: pl.DataFrame, warmup_bars: int) -> None:
    first_valid = []
    for column in frame.columns:
        series = frame[column]
        start = first_valid_index(series)
        after = series.slice(start)
        assert after.null_count() == 0, f"{column}: a null after its first value (row {start})"
        if series.dtype.is_float():
            assert after.is_finite().all(), f"{column}: NaN or inf after row {start}"
        first_valid.append(start)
    assert max(first_valid) == warmup_bars, (
        f"declared warm-up {warmup_bars} but first full row is {max(first_valid)}"
    )


def assert_inside_bounds(frame: pl.DataFrame, outputs: tuple[OutputSpec, ...]) -> None:
    for spec, column in zip(outputs, frame.columns, strict=True):
        values = frame[column].drop_nulls()
        assert values.len() > 0, f"{column}: no values to check"
        if spec.categories is not None:
            unexpected = set(values.unique().to_list()) - set(spec.categories)
            assert not unexpected, f"{column}: values {unexpected} outside {spec.categories}"
        if spec.low is None and spec.high is None:
            continue
        numbers = values.cast(pl.Float64).to_numpy()
        if spec.low is not None:
            assert numbers.min() >= spec.low, f"{column}: minimum {numbers.min()} < {spec.low}"
        if spec.high is not None:
            assert numbers.max() <= spec.high, f"{column}: maximum {numbers.max()} > {spec.high}"


def corner_params(feature: FeatureDef, corner: str) -> dict[str, float]:
    return {
        key: bound.low if corner == "low" else bound.high for key, bound in feature.bounds.items()
    }


def with_flat_dead_stretch(bars: pl.DataFrame, rows: int) -> pl.DataFrame:
    # A halted market: constant price, zero volume, hourly bars continuing after the real ones.
    last = bars.row(-1, named=True)
    flat = pl.DataFrame(
        {
            "ts": [last["ts"] + timedelta(hours=step) for step in range(1, rows + 1)],
            "open": [last["close"]] * rows,
            "high": [last["close"]] * rows,
            "low": [last["close"]] * rows,
            "close": [last["close"]] * rows,
            "volume": [0.0] * rows,
            "instrument": [last["instrument"]] * rows,
        },
        schema=bars.schema,
    )
    return pl.concat([bars, flat])


def planted_next_close() -> pl.Expr:
    return pl.col("close").shift(-1).alias("planted_next_close")


def planted_centred_mean() -> pl.Expr:
    return pl.col("close").rolling_mean(5, center=True).alias("planted_centred_mean")


def planted_full_sample_zscore() -> pl.Expr:
    close = pl.col("close")
    return ((close - close.mean()) / close.std()).alias("planted_full_sample_zscore")


def planted_feature(builder: object, name: str) -> FeatureDef:
    return FeatureDef(
        name=name,
        family="planted",
        builder=builder,  # type: ignore[arg-type]
        defaults={},
        bounds={},
        outputs=(OutputSpec(role="value"),),
        warmup=lambda params: 0,
    )


@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_values_at_t_ignore_bars_after_t(
    feature: FeatureDef, feature_bars: pl.DataFrame
) -> None:
    # Act
    violations = truncation_violations(feature, feature_bars)

    # Assert
    assert violations == [], "\n".join(violation.describe() for violation in violations)


def test_truncation_check_planted_shift_minus_one_is_caught(feature_bars: pl.DataFrame) -> None:
    # Arrange
    feature = planted_feature(planted_next_close, "planted_next_close")
    cuts = cut_indices(feature.warmup_bars(), feature_bars.height)

    # Act
    violations = truncation_violations(feature, feature_bars)

    # Assert
    # On every cut c the full data shows close[c + 1] on row c, the cut data has no next bar.
    assert [(violation.cut_index, violation.row_index) for violation in violations] == [
        (cut, cut) for cut in cuts
    ]
    first = violations[0]
    assert first.full_value == feature_bars["close"][cuts[0] + 1]
    assert first.truncated_value is None
    assert "planted_next_close" in first.describe()


@pytest.mark.parametrize(
    ("builder", "name", "first_bad_row_offset"),
    [
        # A centred 5-bar mean on row r reads r + 2, so rows c - 1 and c change at cut c.
        (planted_centred_mean, "planted_centred_mean", -1),
        # A full-sample mean changes every row as soon as any later bar is removed.
        (planted_full_sample_zscore, "planted_full_sample_zscore", None),
    ],
)
def test_truncation_check_other_planted_look_ahead_is_caught(
    feature_bars: pl.DataFrame, builder: object, name: str, first_bad_row_offset: int | None
) -> None:
    # Arrange
    feature = planted_feature(builder, name)

    # Act
    violations = truncation_violations(feature, feature_bars)

    # Assert
    cuts = cut_indices(0, feature_bars.height)
    late_cuts = [cut for cut in cuts if cut >= 4]
    flagged = {violation.cut_index: violation.row_index for violation in violations}
    for cut in late_cuts:
        expected_row = 0 if first_bad_row_offset is None else cut + first_bad_row_offset
        assert flagged[cut] == expected_row


@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_outputs_stay_inside_declared_bounds(
    feature: FeatureDef, feature_bars: pl.DataFrame
) -> None:
    # Act
    frame = feature_bars.select(feature.exprs())

    # Assert
    assert len(frame.columns) == len(feature.outputs)
    assert_inside_bounds(frame, feature.outputs)


@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_repeated_evaluation_is_identical(
    feature: FeatureDef, feature_bars: pl.DataFrame
) -> None:
    # Act
    first = feature_bars.select(feature.exprs())
    second = feature_bars.select(feature.exprs())
    lazy = feature_bars.lazy().select(feature.exprs()).collect(engine="in-memory")

    # Assert
    assert_frame_equal(first, second, check_exact=True)
    assert_frame_equal(first, lazy, check_exact=True)


@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_streaming_engine_agrees_to_rounding(
    feature: FeatureDef, feature_bars: pl.DataFrame
) -> None:
    # Arrange
    in_memory = feature_bars.select(feature.exprs())

    # Act
    streaming = feature_bars.lazy().select(feature.exprs()).collect(engine="streaming")

    # Assert
    # polars 2.1's streaming kernels (also what LazyFrame.collect() picks by default) sum
    # rolling windows in another order: measured <= 3e-11 relative, on CCI and z-score values
    # near zero. Agreement is to rounding, not bit for bit; compare like with like.
    assert_frame_equal(in_memory, streaming, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_warm_up_is_null_then_finite(
    feature: FeatureDef, feature_bars: pl.DataFrame
) -> None:
    # Act
    frame = feature_bars.select(feature.exprs())

    # Assert
    assert_null_then_finite(frame, feature.warmup_bars())


@pytest.mark.parametrize("corner", ["low", "high"])
@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_declared_warm_up_holds_at_parameter_corners(
    feature: FeatureDef, corner: str, btc_hourly: pl.DataFrame
) -> None:
    # Arrange
    bars = btc_hourly.slice(20_000, 8_000)
    params = corner_params(feature, corner)

    # Act
    frame = bars.select(feature.exprs(**params))

    # Assert
    assert_null_then_finite(frame, feature.warmup_bars(**params))


@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_flat_zero_volume_stretch_stays_finite_and_bounded(
    feature: FeatureDef, feature_bars: pl.DataFrame
) -> None:
    # Arrange
    bars = with_flat_dead_stretch(feature_bars.head(1_200), rows=400)

    # Act
    frame = bars.select(feature.exprs())

    # Assert
    assert_null_then_finite(frame, feature.warmup_bars())
    assert_inside_bounds(frame, feature.outputs)


@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_over_instrument_equals_separate_evaluation(
    feature: FeatureDef, feature_bars: pl.DataFrame, eth_hourly: pl.DataFrame
) -> None:
    # Arrange
    btc = feature_bars.head(1_500)
    eth = eth_hourly.slice(30_000, 1_200)
    exprs = feature.exprs()

    # Act
    stacked = pl.concat([btc, eth]).select([expr.over("instrument") for expr in exprs])
    separate = pl.concat([btc.select(exprs), eth.select(exprs)])

    # Assert
    assert_frame_equal(stacked, separate, check_exact=True)


def test_registry_parameter_kinds_match_their_names() -> None:
    # Arrange
    bar_suffixes = ("_bars",)

    # Act
    mismatched = [
        (feature.name, key)
        for feature in FEATURES
        for key, bound in feature.bounds.items()
        if key.endswith(bar_suffixes) != (bound.kind is ParamKind.INTEGER)
    ]

    # Assert
    assert mismatched == []


@pytest.mark.parametrize("rows", [0, 1, 2])
@pytest.mark.parametrize("feature", FEATURES, ids=feature_id)
def test_feature_input_shorter_than_warm_up_gives_all_null_rows(
    feature: FeatureDef, rows: int, feature_bars: pl.DataFrame
) -> None:
    # Arrange
    bars = feature_bars.head(rows)

    # Act
    frame = bars.select(feature.exprs())

    # Assert
    assert frame.height == rows
    expected_nulls = min(rows, feature.warmup_bars())
    assert all(frame[column].null_count() == expected_nulls for column in frame.columns)
