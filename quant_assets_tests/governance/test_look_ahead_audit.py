"""The look-ahead audit: shipped specs pass on real bars; planted look-ahead modules fail."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.run_spec import SpecModules, build_spec_modules
from quant_assets.domain.arrays import BoolArray, Int8Array
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import ModuleRole, ParamValue, StrategySpec
from quant_assets.governance.audits import AuditName, audit_look_ahead, audit_modules_look_ahead
from quant_assets.strategy.modules import Baseline, BaselineSignals, Filter
from quant_assets.strategy.risks.sizing import FixedFractionRisk
from quant_assets.strategy.spec_io import load_spec_yaml
from quant_assets_tests.governance.conftest import SPECS_DIR
from quant_assets_tests.strategy.conftest import BTC_KEY

SPEC_FILES = sorted(SPECS_DIR.glob("*.yaml"))


class PeekingBaseline(Baseline):
    """A planted look-ahead: long before an up bar, short before a down bar (shift(-1))."""

    name = "peeking"
    role = ModuleRole.BASELINE
    description = "Reads the next close; test-only, never registered."

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return the sign of the next bar's close-to-close move (0 on the last bar)."""
        move = bars.select(pl.col("close").shift(-1) - pl.col("close")).to_series()
        return BaselineSignals(np.sign(move.fill_null(0.0).to_numpy()).astype(np.int8))


class PeekingFilter(Filter):
    """A planted look-ahead: passes only candidates before a higher close (shift(-1))."""

    name = "peeking_filter"
    role = ModuleRole.FILTER
    description = "Reads the next close; test-only, never registered."

    def passes(self, bars: pl.DataFrame, entries: Int8Array) -> BoolArray:
        """Return whether the next close is above this one (False on the last bar)."""
        rises = bars.select(pl.col("close").shift(-1) > pl.col("close")).to_series()
        return np.asarray(rises.fill_null(False).to_numpy(), dtype=np.bool_)


def midpoint_params(spec: StrategySpec) -> dict[str, ParamValue]:
    # The middle of every searched range, as a window's best parameters might be.
    params: dict[str, ParamValue] = {}
    for path, bounds in spec.search_space.items():
        middle = (bounds.low + bounds.high) / 2
        params[path] = round(middle) if bounds.kind == "int" else middle
    return params


def btc_modules(**changes: object) -> SpecModules:
    spec = load_spec_yaml(SPECS_DIR / "time_series_momentum_btc_1h.yaml")
    return replace(build_spec_modules(spec), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("use_midpoints", [False, True], ids=["spec-params", "midpoint-params"])
@pytest.mark.parametrize("spec_file", SPEC_FILES, ids=lambda path: path.stem)
def test_audit_look_ahead_shipped_spec_on_real_bars_passes(
    spec_file: Path, use_midpoints: bool, audit_bars: dict[str, pl.DataFrame]
) -> None:
    # Arrange
    spec = load_spec_yaml(spec_file)
    params = midpoint_params(spec) if use_midpoints else None

    # Act
    outcome = audit_look_ahead(spec, audit_bars, params)

    # Assert: 8 cuts per instrument (every instrument has thousands of bars), no difference.
    assert outcome.passed, outcome.message
    assert outcome.name is AuditName.LOOK_AHEAD
    assert outcome.blocking
    assert outcome.metrics == {"cuts": 8 * len(spec.data.instruments), "differences": 0}
    assert f"baseline '{spec.baseline.module}'" in outcome.message


def test_audit_look_ahead_planted_baseline_fails_naming_module_and_first_bar(
    audit_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange: the planted baseline built directly, the spec's other modules as registered.
    bars = audit_bars[BTC_KEY]
    modules = btc_modules(baseline=PeekingBaseline())

    # Act
    outcome = audit_modules_look_ahead(modules, {BTC_KEY: bars})

    # Assert: cut after bar c, the baseline's last value reads close[c + 1] (0 without it).
    assert not outcome.passed
    assert outcome.blocks
    bar = outcome.metrics["first_bar"]
    assert isinstance(bar, int)
    assert outcome.metrics["cut_bar"] == bar
    closes = bars["close"].to_numpy()
    peeked = int(np.sign(closes[bar + 1] - closes[bar]))
    ts = bars["ts"][bar].isoformat()
    assert outcome.message.startswith(
        f"look_ahead: baseline 'peeking' reads future bars on {BTC_KEY}: its output 'entries' at "
        f"bar {bar} ({ts}) was {peeked} on the full bars but 0 on the bars cut after bar {bar}; "
    )
    assert "in baseline 'peeking', composed pipeline; compute it from the current" in (
        outcome.message
    )
    assert outcome.metrics["module"] == "baseline 'peeking'"


def test_audit_look_ahead_planted_filter_fails_naming_the_filter(
    audit_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange: a clean registered baseline followed by the planted filter.
    modules = btc_modules(filters=(PeekingFilter(),))

    # Act
    outcome = audit_modules_look_ahead(modules, {BTC_KEY: audit_bars[BTC_KEY]}, seed=7)

    # Assert
    assert not outcome.passed
    assert outcome.metrics["module"] == "filter 1 'peeking_filter'"
    assert "its output 'passes_long' at bar" in outcome.message


def test_audit_modules_look_ahead_short_history_checks_every_cut(
    audit_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange: 12 bars, no warm-up (signal exits, fixed size): cuts after bars 0..10 (11 < 50).
    bars = audit_bars[BTC_KEY].head(12)
    modules = btc_modules(baseline=PeekingBaseline(), risk=FixedFractionRisk())
    closes = bars["close"].to_numpy()
    moved = [cut for cut in range(11) if closes[cut + 1] != closes[cut]]

    # Act
    outcome = audit_modules_look_ahead(modules, {BTC_KEY: bars}, cut_points=50)

    # Assert: each moved cut differs in the baseline's and the pipeline's entries.
    assert outcome.metrics["cuts"] == 11
    assert outcome.metrics["differences"] == 2 * len(moved)
    assert outcome.metrics["first_bar"] == moved[0]


def test_audit_look_ahead_same_seed_gives_the_same_outcome(
    audit_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange
    modules = btc_modules(baseline=PeekingBaseline())
    bars = {BTC_KEY: audit_bars[BTC_KEY]}

    # Act
    first = audit_modules_look_ahead(modules, bars, cut_points=3, seed=11)
    second = audit_modules_look_ahead(modules, bars, cut_points=3, seed=11)

    # Assert
    assert first == second
    assert first.metrics["cuts"] == 3


def test_audit_look_ahead_missing_instrument_bars_raise(
    audit_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange
    spec = load_spec_yaml(SPECS_DIR / "ema_trend_adx_btc_eth_1h.yaml")

    # Act / Assert
    with pytest.raises(SpecValidationError, match=r"no bars for \['binance\.ETH-USDT\.1h'\]"):
        audit_look_ahead(spec, {BTC_KEY: audit_bars[BTC_KEY]}, None)


def test_audit_look_ahead_single_bar_raises(audit_bars: dict[str, pl.DataFrame]) -> None:
    # Arrange
    spec = load_spec_yaml(SPECS_DIR / "time_series_momentum_btc_1h.yaml")

    # Act / Assert
    with pytest.raises(SpecValidationError, match="has 1 bar"):
        audit_look_ahead(spec, {BTC_KEY: audit_bars[BTC_KEY].head(1)}, None)


def test_audit_look_ahead_zero_cut_points_raise(audit_bars: dict[str, pl.DataFrame]) -> None:
    # Arrange
    spec = load_spec_yaml(SPECS_DIR / "time_series_momentum_btc_1h.yaml")

    # Act / Assert
    with pytest.raises(ValueError, match="cut_points was 0"):
        audit_look_ahead(spec, audit_bars, None, cut_points=0)
