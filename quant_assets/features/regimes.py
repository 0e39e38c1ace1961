"""Market regime labels (trend x volatility) from trailing data only."""

from typing import Final

import polars as pl

from quant_assets.features._expressions import param_suffix, require_at_least
from quant_assets.features.oscillators import time_series_momentum
from quant_assets.features.volatility import realized_volatility

TREND_STATES: Final = ("up", "sideways", "down")
VOLATILITY_STATES: Final = ("low_vol", "high_vol")
REGIME_LABELS: Final = tuple(
    f"{trend}_{vol}" for trend in TREND_STATES for vol in VOLATILITY_STATES
)
REGIME_DTYPE: Final = pl.Enum(list(REGIME_LABELS))


def _trend_state(lookback_bars: int, volatility_lookback_bars: int, threshold: float) -> pl.Expr:
    momentum = time_series_momentum(
        lookback_bars=lookback_bars, volatility_lookback_bars=volatility_lookback_bars
    )
    # +1 above the threshold, -1 below its negative, else 0; nulls stay null.
    return (momentum > threshold).cast(pl.Int8) - (momentum < -threshold).cast(pl.Int8)


def _volatility_state(lookback_bars: int, history_bars: int) -> pl.Expr:
    volatility = realized_volatility(lookback_bars=lookback_bars)
    # The median over the trailing history (current bar included) is the high/low split.
    typical = volatility.rolling_median(history_bars)
    return (volatility > typical).cast(pl.Int8)


def trend_regime(
    *, lookback_bars: int = 168, volatility_lookback_bars: int = 168, threshold: float = 1.0
) -> pl.Expr:
    """Return the trend state: +1 up, -1 down, 0 sideways (Int8), from trailing bars only.

    Up when `time_series_momentum` (the trailing log move over `lookback_bars` divided by
    sigma * sqrt(lookback_bars)) exceeds `threshold`, down below -threshold, sideways otherwise.
    The first value is on row max(lookback_bars, volatility_lookback_bars).

    Args:
        lookback_bars: Momentum horizon.
        volatility_lookback_bars: Window of the per-bar volatility that scales the move.
        threshold: Move, in standard deviations of the horizon, that counts as a trend.

    Returns:
        The expression named `trend_regime_<n>_<v>_<threshold>`.
    """
    require_at_least("trend_regime", "threshold", threshold, 0.0)
    return _trend_state(lookback_bars, volatility_lookback_bars, threshold).alias(
        "trend_regime" + param_suffix(lookback_bars, volatility_lookback_bars, threshold)
    )


def volatility_regime(*, lookback_bars: int = 24, history_bars: int = 720) -> pl.Expr:
    """Return the volatility state: 1 high, 0 low (Int8), from trailing bars only.

    High when `realized_volatility(lookback_bars)` is above its own median over the last
    `history_bars` bars (current bar included). The first value is on row
    lookback_bars + history_bars - 1.

    Args:
        lookback_bars: Realized-volatility window in one-bar returns.
        history_bars: Trailing window of the median that splits high from low.

    Returns:
        The expression named `volatility_regime_<n>_<h>`.
    """
    require_at_least("volatility_regime", "history_bars", history_bars, 1)
    return _volatility_state(lookback_bars, history_bars).alias(
        "volatility_regime" + param_suffix(lookback_bars, history_bars)
    )


def regime_label(
    *,
    trend_lookback_bars: int = 168,
    volatility_lookback_bars: int = 24,
    volatility_history_bars: int = 720,
    trend_threshold: float = 1.0,
) -> pl.Expr:
    """Return the regime label `<up|sideways|down>_<low_vol|high_vol>` as a `REGIME_DTYPE` Enum.

    The trend part is `trend_regime(trend_lookback_bars, volatility_lookback_bars,
    trend_threshold)`; the volatility part is `volatility_regime(volatility_lookback_bars,
    volatility_history_bars)`. Both read trailing bars only; null until both are defined.

    Args:
        trend_lookback_bars: Momentum horizon of the trend part.
        volatility_lookback_bars: Realized-volatility window (both parts).
        volatility_history_bars: Trailing window of the volatility median.
        trend_threshold: Trend threshold in standard deviations of the horizon.

    Returns:
        The expression named `regime_label_<t>_<v>_<h>_<threshold>`.
    """
    require_at_least("regime_label", "trend_threshold", trend_threshold, 0.0)
    require_at_least("regime_label", "volatility_history_bars", volatility_history_bars, 1)
    trend = _trend_state(trend_lookback_bars, volatility_lookback_bars, trend_threshold)
    volatility = _volatility_state(volatility_lookback_bars, volatility_history_bars)
    # Position in REGIME_LABELS: trend +1/0/-1 -> 0/2/4, plus 1 for high volatility.
    position = (1 - trend.cast(pl.Int16)) * 2 + volatility.cast(pl.Int16)
    label = position.replace_strict(dict(enumerate(REGIME_LABELS)), return_dtype=REGIME_DTYPE)
    suffix = param_suffix(
        trend_lookback_bars, volatility_lookback_bars, volatility_history_bars, trend_threshold
    )
    return label.alias("regime_label" + suffix)
