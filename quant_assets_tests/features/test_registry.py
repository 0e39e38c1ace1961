"""The registry: coverage of the issue's indicator list, parameter validation, declared bounds."""

import polars as pl
import pytest

from quant_assets.domain.errors import SpecValidationError
from quant_assets.features.oscillators import macd
from quant_assets.features.regimes import REGIME_LABELS
from quant_assets.features.registry import (
    FeatureDef,
    ParamKind,
    feature_by_name,
    registered_features,
)

# The issue's list: SMA, EMA, WMA, HMA, KAMA, RSI, MACD, Bollinger, Keltner, Donchian, ATR,
# ADX/+DI/-DI, Stochastic, CCI, ROC, time-series momentum, realized volatility, z-score, rolling
# VWAP, OBV, Aroon, TrendFlex, SuperTrend, volume z-score, regime labels.
ISSUE_INDICATORS = (
    "sma", "ema", "wma", "hma", "kama", "rsi", "macd", "bollinger_bands", "keltner_channels",
    "donchian_channels", "average_true_range", "directional_movement", "stochastic", "cci",
    "rate_of_change", "time_series_momentum", "realized_volatility", "zscore", "rolling_vwap",
    "on_balance_volume", "aroon", "trendflex", "supertrend", "volume_zscore", "regime_label",
)  # fmt: skip


def test_registered_features_cover_the_issue_list_and_at_least_25() -> None:
    # Act
    names = [feature.name for feature in registered_features()]

    # Assert
    assert len(names) >= 25
    assert len(set(names)) == len(names)
    assert set(ISSUE_INDICATORS) <= set(names)


def test_registered_features_default_outputs_have_unique_names(feature_bars: pl.DataFrame) -> None:
    # Arrange
    exprs = [expr for feature in registered_features() for expr in feature.exprs()]

    # Act
    frame = feature_bars.head(50).select(exprs)

    # Assert
    assert frame.width == len(exprs)
    assert sum(len(feature.outputs) for feature in registered_features()) == frame.width


@pytest.mark.parametrize("feature", registered_features(), ids=lambda feature: feature.name)
def test_feature_defaults_lie_inside_bounds_and_bounds_are_ordered(feature: FeatureDef) -> None:
    # Act
    resolved = feature.resolve_params()

    # Assert
    assert set(feature.defaults) == set(feature.bounds)
    for key, value in resolved.items():
        bound = feature.bounds[key]
        assert bound.low < bound.high
        assert bound.low <= value <= bound.high
        assert isinstance(value, int) == (bound.kind is ParamKind.INTEGER)


@pytest.mark.parametrize(
    ("name", "roles", "low", "high"),
    [
        ("rsi", ("value",), 0.0, 100.0),
        ("stochastic", ("k", "d"), 0.0, 100.0),
        ("directional_movement", ("adx", "plus_di", "minus_di"), 0.0, 100.0),
        ("aroon", ("up", "down"), 0.0, 100.0),
        ("trendflex", ("value",), -5.0, 5.0),
    ],
)
def test_bounded_indicators_declare_their_value_range(
    name: str, roles: tuple[str, ...], low: float, high: float
) -> None:
    # Act
    outputs = {output.role: output for output in feature_by_name(name).outputs}

    # Assert
    for role in roles:
        assert (outputs[role].low, outputs[role].high) == (low, high)


def test_regime_label_declares_the_six_fixed_labels() -> None:
    # Act
    (output,) = feature_by_name("regime_label").outputs

    # Assert
    assert output.categories == REGIME_LABELS
    assert len(set(REGIME_LABELS)) == 6


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"span": 20}, "unknown parameter(s) ['span']"),
        ({"span_bars": 1}, "outside the bound [2, 500]"),
        ({"span_bars": 20.5}, "not a whole number of bars"),
    ],
)
def test_feature_bad_parameters_raise_naming_the_fix(
    params: dict[str, float], fragment: str
) -> None:
    # Arrange
    feature = feature_by_name("ema")

    # Act / Assert
    with pytest.raises(SpecValidationError, match="feature 'ema'") as raised:
        feature.exprs(**params)
    assert fragment in str(raised.value)


def test_feature_by_name_unknown_name_lists_the_known_ones() -> None:
    # Act / Assert
    with pytest.raises(SpecValidationError, match=r"'ichimoku' is not registered.*sma"):
        feature_by_name("ichimoku")


def test_macd_fast_span_not_below_slow_raises() -> None:
    # Act / Assert
    with pytest.raises(SpecValidationError, match="fast_span_bars was 30, not below"):
        macd(fast_span_bars=30, slow_span_bars=26)


def test_feature_float_parameter_appears_in_output_name() -> None:
    # Act
    names = [
        expr.meta.output_name() for expr in feature_by_name("supertrend").exprs(multiplier=2.5)
    ]

    # Assert
    assert names == ["supertrend_10_2p5", "supertrend_direction_10_2p5"]
