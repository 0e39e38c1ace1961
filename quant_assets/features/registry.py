"""The feature registry: every feature with its parameter bounds, output bounds and warm-up."""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

from quant_assets.domain.errors import SpecValidationError
from quant_assets.features import moving_averages as ma
from quant_assets.features import oscillators as osc
from quant_assets.features import regimes, trend, volatility, volume

ParamValues = Mapping[str, float]


class ParamKind(StrEnum):
    """Whether a parameter takes whole numbers (bars) or real values (multipliers)."""

    INTEGER = "integer"
    FLOAT = "float"


@dataclass(frozen=True)
class ParamBound:
    """The inclusive range a search may draw a parameter from."""

    low: float
    high: float
    kind: ParamKind = ParamKind.INTEGER


@dataclass(frozen=True)
class OutputSpec:
    """One output of a feature: its role and the values it may take after warm-up.

    `low`/`high` bound numeric outputs (None means unbounded); `categories` lists the only values
    a label output may take.
    """

    role: str
    low: float | None = None
    high: float | None = None
    categories: tuple[str | int, ...] | None = None


@dataclass(frozen=True)
class FeatureDef:
    """A registered feature: how to build it, its parameters, outputs and warm-up."""

    name: str
    family: str
    builder: Callable[..., pl.Expr | list[pl.Expr]]
    defaults: Mapping[str, float]
    bounds: Mapping[str, ParamBound]
    outputs: tuple[OutputSpec, ...]
    warmup: Callable[[ParamValues], int] = field(repr=False)

    def resolve_params(self, **params: float) -> dict[str, float]:
        """Return the defaults overridden by `params`, checked against the bounds.

        Raises:
            SpecValidationError: if a name is unknown, a value is outside its bound, or an
                integer parameter gets a fractional value.
        """
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise SpecValidationError(
                f"feature '{self.name}': unknown parameter(s) {unknown}; "
                f"use only {sorted(self.defaults)}"
            )
        resolved = {**self.defaults, **params}
        for key, value in resolved.items():
            bound = self.bounds[key]
            if not bound.low <= value <= bound.high:
                raise SpecValidationError(
                    f"feature '{self.name}': parameter '{key}' was {value}, outside the bound "
                    f"[{bound.low}, {bound.high}]; choose a value inside it"
                )
            if bound.kind is ParamKind.INTEGER and not float(value).is_integer():
                raise SpecValidationError(
                    f"feature '{self.name}': parameter '{key}' was {value}, not a whole number "
                    "of bars; round it"
                )
        return {
            key: int(value) if self.bounds[key].kind is ParamKind.INTEGER else float(value)
            for key, value in resolved.items()
        }

    def exprs(self, **params: float) -> list[pl.Expr]:
        """Return the feature's named output expressions, in `outputs` order."""
        built = self.builder(**self.resolve_params(**params))
        return built if isinstance(built, list) else [built]

    def warmup_bars(self, **params: float) -> int:
        """Return the number of leading rows that are null: the first full row's index."""
        return self.warmup(self.resolve_params(**params))


def _bars(low: int, high: int) -> ParamBound:
    return ParamBound(low=low, high=high, kind=ParamKind.INTEGER)


def _real(low: float, high: float) -> ParamBound:
    return ParamBound(low=low, high=high, kind=ParamKind.FLOAT)


def _unbounded(*roles: str) -> tuple[OutputSpec, ...]:
    return tuple(OutputSpec(role=role) for role in roles)


def _percent(*roles: str) -> tuple[OutputSpec, ...]:
    return tuple(OutputSpec(role=role, low=0.0, high=100.0) for role in roles)


def _non_negative(role: str) -> OutputSpec:
    return OutputSpec(role=role, low=0.0)


def _int(params: ParamValues, key: str) -> int:
    return int(params[key])


def _moving_averages() -> list[FeatureDef]:
    spans = {"span_bars": _bars(2, 500)}

    def window(params: ParamValues) -> int:
        return _int(params, "span_bars") - 1

    def hull(params: ParamValues) -> int:
        span = _int(params, "span_bars")
        return span - 1 + math.isqrt(span) - 1

    value = _unbounded("value")
    return [
        FeatureDef("sma", "moving_average", ma.sma, {"span_bars": 20}, spans, value, window),
        FeatureDef("ema", "moving_average", ma.ema, {"span_bars": 20}, spans, value, window),
        FeatureDef("wma", "moving_average", ma.wma, {"span_bars": 20}, spans, value, window),
        FeatureDef(
            "hma", "moving_average", ma.hma, {"span_bars": 20}, {"span_bars": _bars(4, 500)},
            _unbounded("value"), hull,
        ),
        FeatureDef(
            "kama", "moving_average", ma.kama,
            {"lookback_bars": 10, "fast_span_bars": 2, "slow_span_bars": 30},
            {"lookback_bars": _bars(2, 100), "fast_span_bars": _bars(2, 10),
             "slow_span_bars": _bars(10, 100)},
            _unbounded("value"), lambda p: _int(p, "lookback_bars"),
        ),
    ]  # fmt: skip


def _oscillators() -> list[FeatureDef]:
    return [
        FeatureDef(
            "rsi", "oscillator", osc.rsi, {"lookback_bars": 14}, {"lookback_bars": _bars(2, 100)},
            _percent("value"), lambda p: _int(p, "lookback_bars"),
        ),
        FeatureDef(
            "macd", "oscillator", osc.macd,
            {"fast_span_bars": 12, "slow_span_bars": 26, "signal_span_bars": 9},
            # Disjoint fast/slow ranges keep every point of the box valid (fast < slow).
            {"fast_span_bars": _bars(2, 25), "slow_span_bars": _bars(26, 200),
             "signal_span_bars": _bars(2, 50)},
            _unbounded("line", "signal", "histogram"),
            lambda p: _int(p, "slow_span_bars") + _int(p, "signal_span_bars") - 2,
        ),
        FeatureDef(
            "stochastic", "oscillator", osc.stochastic,
            {"lookback_bars": 14, "smooth_k_bars": 3, "smooth_d_bars": 3},
            {"lookback_bars": _bars(2, 100), "smooth_k_bars": _bars(1, 10),
             "smooth_d_bars": _bars(1, 10)},
            _percent("k", "d"),
            lambda p: sum(_int(p, key) - 1 for key in p),
        ),
        FeatureDef(
            "cci", "oscillator", osc.cci, {"lookback_bars": 20}, {"lookback_bars": _bars(5, 100)},
            _unbounded("value"), lambda p: _int(p, "lookback_bars") - 1,
        ),
        FeatureDef(
            "rate_of_change", "oscillator", osc.rate_of_change, {"lookback_bars": 10},
            {"lookback_bars": _bars(1, 500)}, (OutputSpec(role="value", low=-1.0),),
            lambda p: _int(p, "lookback_bars"),
        ),
        FeatureDef(
            "time_series_momentum", "oscillator", osc.time_series_momentum,
            {"lookback_bars": 168, "volatility_lookback_bars": 168},
            {"lookback_bars": _bars(2, 2000), "volatility_lookback_bars": _bars(10, 2000)},
            _unbounded("value"),
            lambda p: max(_int(p, "lookback_bars"), _int(p, "volatility_lookback_bars")),
        ),
        FeatureDef(
            "zscore", "oscillator", osc.zscore, {"lookback_bars": 20},
            {"lookback_bars": _bars(5, 500)}, _unbounded("value"),
            lambda p: _int(p, "lookback_bars") - 1,
        ),
        FeatureDef(
            "aroon", "oscillator", osc.aroon, {"lookback_bars": 25},
            {"lookback_bars": _bars(5, 200)},
            (*_percent("up", "down"), OutputSpec(role="oscillator", low=-100.0, high=100.0)),
            lambda p: _int(p, "lookback_bars"),
        ),
    ]  # fmt: skip


def _volatility() -> list[FeatureDef]:
    return [
        FeatureDef(
            "log_return", "volatility", volatility.log_return, {}, {}, _unbounded("value"),
            lambda p: 1,
        ),
        FeatureDef(
            "true_range", "volatility", volatility.true_range, {}, {},
            (_non_negative("value"),), lambda p: 1,
        ),
        FeatureDef(
            "average_true_range", "volatility", volatility.average_true_range,
            {"lookback_bars": 14}, {"lookback_bars": _bars(2, 200)},
            (_non_negative("value"),), lambda p: _int(p, "lookback_bars"),
        ),
        FeatureDef(
            "bollinger_bands", "volatility", volatility.bollinger_bands,
            {"lookback_bars": 20, "width_stdevs": 2.0},
            {"lookback_bars": _bars(5, 200), "width_stdevs": _real(0.5, 4.0)},
            (*_unbounded("middle", "upper", "lower"), _non_negative("bandwidth")),
            lambda p: _int(p, "lookback_bars") - 1,
        ),
        FeatureDef(
            "keltner_channels", "volatility", volatility.keltner_channels,
            {"span_bars": 20, "atr_bars": 10, "width_atr": 2.0},
            {"span_bars": _bars(5, 200), "atr_bars": _bars(5, 100), "width_atr": _real(0.5, 5.0)},
            _unbounded("middle", "upper", "lower"),
            lambda p: max(_int(p, "span_bars") - 1, _int(p, "atr_bars")),
        ),
        FeatureDef(
            "donchian_channels", "volatility", volatility.donchian_channels,
            {"lookback_bars": 20}, {"lookback_bars": _bars(5, 500)},
            _unbounded("upper", "lower", "middle"), lambda p: _int(p, "lookback_bars") - 1,
        ),
        FeatureDef(
            "realized_volatility", "volatility", volatility.realized_volatility,
            {"lookback_bars": 24}, {"lookback_bars": _bars(5, 2000)},
            (_non_negative("value"),), lambda p: _int(p, "lookback_bars"),
        ),
    ]  # fmt: skip


def _trend_and_volume() -> list[FeatureDef]:
    return [
        FeatureDef(
            "directional_movement", "trend", trend.directional_movement, {"lookback_bars": 14},
            {"lookback_bars": _bars(2, 100)}, _percent("adx", "plus_di", "minus_di"),
            lambda p: 2 * _int(p, "lookback_bars") - 1,
        ),
        FeatureDef(
            "supertrend", "trend", trend.supertrend, {"atr_bars": 10, "multiplier": 3.0},
            {"atr_bars": _bars(5, 100), "multiplier": _real(0.5, 6.0)},
            (OutputSpec(role="line"), OutputSpec(role="direction", categories=(-1, 1))),
            lambda p: _int(p, "atr_bars"),
        ),
        FeatureDef(
            "trendflex", "trend", trend.trendflex, {"lookback_bars": 20},
            {"lookback_bars": _bars(5, 200)}, (OutputSpec(role="value", low=-5.0, high=5.0),),
            lambda p: _int(p, "lookback_bars"),
        ),
        FeatureDef(
            "rolling_vwap", "volume", volume.rolling_vwap, {"lookback_bars": 24},
            {"lookback_bars": _bars(5, 1000)}, (_non_negative("value"),),
            lambda p: _int(p, "lookback_bars") - 1,
        ),
        FeatureDef(
            "on_balance_volume", "volume", volume.on_balance_volume, {}, {},
            _unbounded("value"), lambda p: 0,
        ),
        FeatureDef(
            "volume_zscore", "volume", volume.volume_zscore, {"lookback_bars": 24},
            {"lookback_bars": _bars(5, 1000)}, _unbounded("value"),
            lambda p: _int(p, "lookback_bars") - 1,
        ),
    ]  # fmt: skip


def _regimes() -> list[FeatureDef]:
    def trend_warmup(params: ParamValues) -> int:
        return max(_int(params, "lookback_bars"), _int(params, "volatility_lookback_bars"))

    def volatility_warmup(params: ParamValues) -> int:
        return _int(params, "lookback_bars") + _int(params, "history_bars") - 1

    def label_warmup(params: ParamValues) -> int:
        volatility_bars = _int(params, "volatility_lookback_bars")
        return max(
            _int(params, "trend_lookback_bars"),
            volatility_bars + _int(params, "volatility_history_bars") - 1,
        )

    return [
        FeatureDef(
            "trend_regime", "regime", regimes.trend_regime,
            {"lookback_bars": 168, "volatility_lookback_bars": 168, "threshold": 1.0},
            {"lookback_bars": _bars(10, 2000), "volatility_lookback_bars": _bars(10, 2000),
             "threshold": _real(0.0, 3.0)},
            (OutputSpec(role="value", categories=(-1, 0, 1)),), trend_warmup,
        ),
        FeatureDef(
            "volatility_regime", "regime", regimes.volatility_regime,
            {"lookback_bars": 24, "history_bars": 720},
            {"lookback_bars": _bars(5, 500), "history_bars": _bars(24, 5000)},
            (OutputSpec(role="value", categories=(0, 1)),), volatility_warmup,
        ),
        FeatureDef(
            "regime_label", "regime", regimes.regime_label,
            {"trend_lookback_bars": 168, "volatility_lookback_bars": 24,
             "volatility_history_bars": 720, "trend_threshold": 1.0},
            {"trend_lookback_bars": _bars(10, 2000), "volatility_lookback_bars": _bars(10, 500),
             "volatility_history_bars": _bars(24, 5000), "trend_threshold": _real(0.0, 3.0)},
            (OutputSpec(role="value", categories=regimes.REGIME_LABELS),), label_warmup,
        ),
    ]  # fmt: skip


def registered_features() -> list[FeatureDef]:
    """Return every registered feature, grouped by family."""
    return [
        *_moving_averages(),
        *_oscillators(),
        *_volatility(),
        *_trend_and_volume(),
        *_regimes(),
    ]


def feature_by_name(name: str) -> FeatureDef:
    """Return the registered feature called `name`.

    Raises:
        SpecValidationError: if no feature has that name.
    """
    for feature in registered_features():
        if feature.name == name:
            return feature
    known = ", ".join(sorted(feature.name for feature in registered_features()))
    raise SpecValidationError(f"feature '{name}' is not registered; choose one of: {known}")
