"""Market-activity filters: the volatility regime and unusual volume."""

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from quant_assets.domain.arrays import BoolArray, Int8Array
from quant_assets.domain.strategy import ModuleRole
from quant_assets.features import regimes, volume
from quant_assets.strategy.modules import (
    Filter,
    ParamDef,
    choice_def,
    feature_arrays,
    float_def,
    int_def,
)


class VolatilityRegimeFilter(Filter):
    """Pass candidates only in the chosen volatility regime (low, high, or any).

    Hypothesis: many signals work in one volatility regime only (trend following in calm
    markets, mean reversion in turbulent ones). The regime is high when the trailing realized
    volatility is above its own median over `history_bars` (`features.regimes.volatility_regime`,
    first value on bar lookback + history - 1); `any` passes every candidate.
    """

    name = "volatility_regime"
    role = ModuleRole.FILTER
    description = "Pass when the trailing volatility regime (vs its median) matches `allow`."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(24, 5, 500, "Realized-volatility window in one-bar returns."),
        "history_bars": int_def(720, 50, 5000, "Window of the median that splits low / high."),
        "allow": choice_def("low", ("low", "high", "any"), "Regime in which candidates pass."),
    }

    def warmup_bars(self) -> int:
        """Return lookback + history - 1, the first bar with a regime (0 for allow=any)."""
        if self.choice_param("allow") == "any":
            return 0
        return self.int_param("lookback_bars") + self.int_param("history_bars") - 1

    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return whether each bar's regime matches `allow` (False in warm-up)."""
        allow = self.choice_param("allow")
        if allow == "any":
            return np.ones(bars.height, dtype=np.bool_)
        (regime,) = feature_arrays(
            bars,
            [
                regimes.volatility_regime(
                    lookback_bars=self.int_param("lookback_bars"),
                    history_bars=self.int_param("history_bars"),
                )
            ],
        )
        return np.asarray(regime == (1.0 if allow == "high" else 0.0))


class VolumeActivityFilter(Filter):
    """Pass candidates only when volume is at least `min_zscore` stdevs from its rolling mean.

    Hypothesis: breakouts on heavy volume are more likely to follow through (Granville's volume
    principle; Lee and Swaminathan, "Price Momentum and Trading Volume", 2000). Uses
    `features.volume.volume_zscore` (population stdev, 0 in a flat window).
    """

    name = "volume_activity"
    role = ModuleRole.FILTER
    description = "Pass when the volume z-score is at least min_zscore."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(24, 5, 500, "Window of the volume mean and stdev."),
        "min_zscore": float_def(0.0, -3.0, 5.0, "Lowest volume z-score that passes."),
    }

    def warmup_bars(self) -> int:
        """Return lookback - 1, the first bar with a z-score."""
        return self.int_param("lookback_bars") - 1

    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return whether each bar's volume z-score is at least min_zscore."""
        (zscore,) = feature_arrays(
            bars, [volume.volume_zscore(lookback_bars=self.int_param("lookback_bars"))]
        )
        return np.asarray(zscore >= self.float_param("min_zscore"))
