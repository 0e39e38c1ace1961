"""Vectorised signal helpers shared by the baselines: crossings, state changes, sides.

Inputs are float arrays with NaN during warm-up. Every comparison with NaN is False, so a bar
whose inputs (or whose previous bar's inputs) are not yet defined never gives a signal.
"""

import numpy as np

from quant_assets.domain.arrays import BoolArray, FloatArray, Int8Array


def previous(values: FloatArray) -> FloatArray:
    """Return `values` shifted one bar later (NaN on the first bar): the value at t - 1."""
    shifted = np.empty_like(values)
    shifted[:1] = np.nan
    shifted[1:] = values[:-1]
    return shifted


def crossed_above(values: FloatArray, level: FloatArray | float) -> BoolArray:
    """Return where `values` closes above `level` after being at or below it on the bar before."""
    level_now = np.broadcast_to(np.asarray(level, dtype=np.float64), values.shape)
    level_before = previous(np.array(level_now, dtype=np.float64))
    return (values > level_now) & (previous(values) <= level_before)


def crossed_below(values: FloatArray, level: FloatArray | float) -> BoolArray:
    """Return where `values` closes below `level` after being at or above it on the bar before."""
    level_now = np.broadcast_to(np.asarray(level, dtype=np.float64), values.shape)
    level_before = previous(np.array(level_now, dtype=np.float64))
    return (values < level_now) & (previous(values) >= level_before)


def sides(long: BoolArray, short: BoolArray) -> Int8Array:
    """Return +1 where only `long` holds, -1 where only `short` holds, else 0."""
    return long.astype(np.int8) - short.astype(np.int8)


def state_changes(state: FloatArray) -> Int8Array:
    """Return the new state (+1 or -1) on each bar where a defined state changes to it.

    `state` holds +1, -1, 0 or NaN (warm-up); the first defined bar is not a change, because the
    state before it is unknown.
    """
    before = previous(state)
    changed = (state != before) & ~np.isnan(before) & (state != 0.0)
    return sides(changed & (state > 0.0), changed & (state < 0.0))


def left_state(state: FloatArray, side: float) -> BoolArray:
    """Return where a defined `state` is no longer `side` after being `side` on the bar before."""
    return (previous(state) == side) & ~np.isnan(state) & (state != side)
