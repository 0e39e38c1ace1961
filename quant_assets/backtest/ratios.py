"""JSON-safe ratio arithmetic shared by the report and the search objective."""

import math

from quant_assets.domain.report import RATIO_CAP


def compound_annual_growth(total_return: float, years: float) -> float:
    """Return CAGR from a total return over `years`; -1 when wiped out, capped at RATIO_CAP."""
    growth = 1.0 + total_return
    if growth <= 0.0:
        return -1.0
    exponent = math.log(growth) / years
    # Compounding a short, lucky span overflows floats; clip to the JSON-safe cap instead.
    if exponent > math.log1p(RATIO_CAP):
        return RATIO_CAP
    return math.expm1(exponent)


def capped_ratio(numerator: float, denominator: float) -> float:
    """Return numerator / denominator clipped to +-RATIO_CAP (0/0 is 0, x/0 is +-RATIO_CAP)."""
    if denominator == 0.0:
        return 0.0 if numerator == 0.0 else math.copysign(RATIO_CAP, numerator)
    return clip_ratio(numerator / denominator)


def clip_ratio(value: float) -> float:
    """Return `value` clipped to [-RATIO_CAP, RATIO_CAP]."""
    return max(-RATIO_CAP, min(RATIO_CAP, value))
