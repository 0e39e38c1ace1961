"""How domain settings cross into the kernel: enum codes, "not given" arrays, NaN rates.

One place for the engine, the grid and the walk-forward span runner, which all call
`kernel.simulate_nb` with the same argument conventions.
"""

import math
from collections.abc import Callable
from typing import Final

import numpy as np

from quant_assets.backtest import kernel
from quant_assets.domain.backtest import FillMode, StopsFrom

# An empty array tells the kernel that an optional per-bar input was not given.
NO_FLOATS: Final = np.empty(0, dtype=np.float64)
NO_FLAGS: Final = np.empty(0, dtype=np.int8)
FILL_MODE_CODES: Final = {
    FillMode.NEXT_OPEN: kernel.FILL_NEXT_OPEN,
    FillMode.CLOSE: kernel.FILL_CLOSE,
}
STOPS_FROM_CODES: Final = {
    StopsFrom.ENTRY_BAR: kernel.STOPS_FROM_ENTRY_BAR,
    StopsFrom.NEXT_BAR: kernel.STOPS_FROM_NEXT_BAR,
}
# Typed loosely: mypy cannot match a star-unpacked tuple against the dispatcher's signature.
SIMULATE: Final[Callable[..., int]] = kernel.simulate_nb


def rate_or_nan(value: float | None) -> float:
    """Return a rate for the kernel, where NaN means "no such rule"."""
    return math.nan if value is None else value
