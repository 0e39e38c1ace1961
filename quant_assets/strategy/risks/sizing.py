"""Risk modules: fixed fraction, volatility targeting and a capped Kelly fraction.

Every size is a fraction of equity in [0, 1] (no leverage until preferences allow it), NaN
while the module warms up; a size of 0 rejects the candidate.
"""

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import polars as pl

from quant_assets.domain.arrays import FloatArray, Int8Array
from quant_assets.domain.strategy import ModuleRole
from quant_assets.features import volatility
from quant_assets.strategy.modules import ParamDef, Risk, feature_arrays, float_def, int_def
from quant_assets.strategy.risks.annualization import bars_per_year_of

MAX_SIZE = 1.0  # the cap that always applies (no leverage) until preferences.yaml arrives


class FixedFractionRisk(Risk):
    """Commit the same fraction of equity to every entry.

    The baseline sizing of every study: it isolates the signal from the sizing.
    """

    name = "fixed_fraction"
    role = ModuleRole.RISK
    description = "A constant fraction of equity per entry."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "equity_fraction": float_def(1.0, 0.01, 1.0, "Fraction of equity per entry."),
    }

    def sizes(self, bars: pl.DataFrame, entries: Int8Array) -> FloatArray:
        """Return equity_fraction on every bar."""
        return np.full(bars.height, self.float_param("equity_fraction"))


class VolatilityTargetRisk(Risk):
    """Size each entry so the position's annualized volatility matches a target.

    Hypothesis: volatility clusters, so scaling by inverse recent volatility steadies risk and
    improves risk-adjusted returns. Source: Moreira and Muir, "Volatility-Managed Portfolios"
    (JF 2017); Harvey et al., "The Impact of Volatility Targeting" (2018). Size = target /
    (realized volatility of the last `lookback_bars` log returns x sqrt(bars per year)), capped
    at max_fraction and 1; bars per year follow the instrument key (365 days for crypto, 252
    sessions for equities).
    """

    name = "volatility_target"
    role = ModuleRole.RISK
    description = "target / trailing annualized volatility, capped at max_fraction."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "target_annual_volatility": float_def(0.4, 0.02, 2.0, "Target annualized volatility."),
        "lookback_bars": int_def(168, 10, 5000, "Realized-volatility window in log returns."),
        "max_fraction": float_def(1.0, 0.05, 1.0, "Largest size."),
    }

    def warmup_bars(self) -> int:
        """Return the lookback, the first bar with a realized volatility."""
        return self.int_param("lookback_bars")

    def sizes(self, bars: pl.DataFrame, entries: Int8Array) -> FloatArray:
        """Return the volatility-targeted size per bar (NaN in warm-up)."""
        periods = bars_per_year_of(bars)
        if periods is None:
            return np.full(bars.height, np.nan)
        (sigma,) = feature_arrays(
            bars, [volatility.realized_volatility(lookback_bars=self.int_param("lookback_bars"))]
        )
        annual = sigma * np.sqrt(periods)
        cap = min(self.float_param("max_fraction"), MAX_SIZE)
        size = np.full(bars.height, cap)
        # No volatility (a flat window) leaves the cap; NaN (warm-up) stays NaN.
        moving = annual > 0.0
        size[moving] = np.minimum(
            self.float_param("target_annual_volatility") / annual[moving], cap
        )
        size[np.isnan(annual)] = np.nan
        return size


class CappedKellyRisk(Risk):
    """Size by a fraction of the trailing Kelly estimate in the candidate's direction.

    Hypothesis: betting in proportion to the recent edge grows capital fastest, and a fraction
    of Kelly (half by default) survives estimation error. Source: Kelly (1956); Thorp, "The
    Kelly Criterion in Blackjack, Sports Betting and the Stock Market" (2006): f* = mu / sigma^2
    of one-bar simple returns over `lookback_bars`, signed by the candidate's side, times
    kelly_fraction, clipped to [0, max_fraction] (and 1). Bars without a candidate get 0.
    """

    name = "capped_kelly"
    role = ModuleRole.RISK
    description = "kelly_fraction x trailing mean/variance of returns in the candidate's direction."
    params: ClassVar[Mapping[str, ParamDef]] = {
        "lookback_bars": int_def(720, 50, 10000, "Window of one-bar returns."),
        "kelly_fraction": float_def(0.5, 0.05, 1.0, "Share of the full Kelly fraction."),
        "max_fraction": float_def(1.0, 0.05, 1.0, "Largest size."),
    }

    def warmup_bars(self) -> int:
        """Return the lookback, the first bar with a full window of returns."""
        return self.int_param("lookback_bars")

    def sizes(self, bars: pl.DataFrame, entries: Int8Array) -> FloatArray:
        """Return the capped Kelly size per bar (NaN in warm-up, 0 where there is no edge)."""
        lookback = self.int_param("lookback_bars")
        returns = pl.col("close") / pl.col("close").shift(1) - 1.0
        mean, variance = feature_arrays(
            bars,
            [
                returns.rolling_mean(lookback).alias("mean"),
                returns.rolling_var(lookback, ddof=1).alias("variance"),
            ],
        )
        edge = np.sign(entries).astype(np.float64) * mean
        cap = min(self.float_param("max_fraction"), MAX_SIZE)
        size = np.zeros(bars.height)
        # A window without variance has a certain edge: the cap if it is positive, else 0.
        certain = ~(variance > 0.0)
        size[certain & (edge > 0.0)] = cap
        risky = ~certain
        full_kelly = edge[risky] / variance[risky]
        size[risky] = np.clip(self.float_param("kelly_fraction") * full_kelly, 0.0, cap)
        size[np.isnan(mean) | np.isnan(variance)] = np.nan
        return size
