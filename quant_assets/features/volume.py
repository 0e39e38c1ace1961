"""Volume features: rolling VWAP, on-balance volume and the volume z-score."""

import polars as pl

from quant_assets.features._expressions import require_at_least, safe_divide


def rolling_vwap(*, lookback_bars: int = 24) -> pl.Expr:
    """Return the volume-weighted mean typical price over the last `lookback_bars` bars.

    Typical price = (high + low + close) / 3. A window without any volume falls back to the
    plain mean typical price, so the value stays finite.

    Args:
        lookback_bars: Window length, current bar included.

    Returns:
        The expression named `rolling_vwap_<lookback_bars>`.
    """
    require_at_least("rolling_vwap", "lookback_bars", lookback_bars, 1)
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3.0
    volume = pl.col("volume")
    value = safe_divide(
        (typical * volume).rolling_sum(lookback_bars),
        volume.rolling_sum(lookback_bars),
        fallback=typical.rolling_mean(lookback_bars),
    )
    return value.alias(f"rolling_vwap_{lookback_bars}")


def on_balance_volume() -> pl.Expr:
    """Return on-balance volume: the running sum of volume signed by the close's change.

    Convention (TA-Lib's OBV): the first row is that bar's volume; later bars add their volume on
    an up close, subtract it on a down close and add nothing on an unchanged close. The level
    depends on where the data starts; use its changes, not its level, across instruments.

    Returns:
        The expression named `on_balance_volume`.
    """
    direction = pl.col("close").diff().sign().fill_null(1.0)
    return (direction * pl.col("volume")).cum_sum().alias("on_balance_volume")


def volume_zscore(*, lookback_bars: int = 24) -> pl.Expr:
    """Return (volume - rolling mean) / rolling population std (ddof=0); 0 in a flat window.

    Args:
        lookback_bars: Window length, current bar included.

    Returns:
        The expression named `volume_zscore_<lookback_bars>`.
    """
    require_at_least("volume_zscore", "lookback_bars", lookback_bars, 2)
    volume = pl.col("volume")
    mean = volume.rolling_mean(lookback_bars)
    deviation = volume.rolling_std(lookback_bars, ddof=0)
    return safe_divide(volume - mean, deviation, fallback=0.0).alias(
        f"volume_zscore_{lookback_bars}"
    )
