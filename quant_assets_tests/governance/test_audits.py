"""Audits over reports and numbers: each passes on a good case and fails on a bad one."""

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from quant_assets.backtest.run_spec import DEFAULT_INITIAL_CASH, run_spec
from quant_assets.domain.errors import ConfigurationError, UnknownInstrumentError
from quant_assets.domain.strategy import ModuleRef, StrategySpec
from quant_assets.governance.audits import (
    AuditName,
    AuditOutcome,
    audit_concentration,
    audit_drawdown_limit,
    audit_min_trades,
    audit_overfitting_gap,
    audit_survivorship,
    largest_entry_fraction,
)
from quant_assets.governance.preferences import Preferences
from quant_assets.market.instruments import load_instrument_file
from quant_assets.strategy.spec_io import load_spec_yaml
from quant_assets_tests.governance.conftest import PROJECT_DIR, SPECS_DIR, ReportBuilder
from quant_assets_tests.strategy.conftest import BTC_KEY, SPY_KEY


def shipped_spec(stem: str) -> StrategySpec:
    return load_spec_yaml(SPECS_DIR / f"{stem}.yaml")


def with_risk(spec: StrategySpec, risk: ModuleRef) -> StrategySpec:
    return StrategySpec.model_validate({**spec.model_dump(), "risk": risk.model_dump()})


def with_instruments(spec: StrategySpec, instruments: tuple[str, ...]) -> StrategySpec:
    data = {**spec.data.model_dump(), "instruments": instruments}
    return StrategySpec.model_validate({**spec.model_dump(), "data": data})


def shipped_asset_classes() -> dict[str, str]:
    configs = load_instrument_file(PROJECT_DIR / "instruments.yaml")
    return {config.key: config.asset_class.value for config in configs}


def limits(strict: Preferences, **changes: float) -> Preferences:
    return Preferences.model_validate({**strict.model_dump(), **changes})


# --- AuditOutcome ---------------------------------------------------------------------------


def test_audit_outcome_blocking_with_warn_severity_raises() -> None:
    # Act / Assert
    with pytest.raises(ValidationError, match="blocking but its severity was 'warn'"):
        AuditOutcome(
            name=AuditName.MIN_TRADES, passed=False, blocking=True, severity="warn", message="x"
        )


def test_audit_outcome_assignment_raises(
    make_report: ReportBuilder, strict_preferences: Preferences
) -> None:
    # Arrange
    outcome = audit_min_trades(make_report(trades=3), strict_preferences)

    # Act / Assert
    with pytest.raises(ValidationError, match="frozen"):
        outcome.passed = True  # type: ignore[misc]
    assert outcome.blocks


# --- overfitting_gap --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("is_sharpe", "oos_sharpe", "deflated", "passed", "expected"),
    [
        (1.5, 1.0, 0.8, True, r"Sharpe gap 0\.500 is within 1\.000 and deflated Sharpe 0\.800"),
        # IS - OOS exactly at the limit (1.5 - 0.5 = 1.0 in binary floating point): passes.
        (1.5, 0.5, 0.5, True, r"Sharpe gap 1\.000 is within 1\.000"),
        (0.2, 1.4, 0.9, True, r"Sharpe gap -1\.200 is within"),
        (
            2.0,
            0.4,
            0.8,
            False,
            r"in-sample Sharpe 2\.000 minus out-of-sample Sharpe 0\.400 is 1\.600, above the "
            r"limit 1\.000 \(preferences max_sharpe_gap\); the fit looks overfitted: narrow",
        ),
        (
            1.2,
            1.0,
            0.3,
            False,
            r"deflated Sharpe probability 0\.300 is below the floor 0\.500 \(preferences "
            r"min_deflated_sharpe\); the fit looks overfitted",
        ),
        (3.0, 0.5, 0.1, False, r"is 2\.500, above the limit 1\.000.*; deflated Sharpe .* 0\.100"),
    ],
    ids=["small-gap", "gap-at-limit", "oos-better", "gap-too-big", "dsr-too-low", "both"],
)
def test_audit_overfitting_gap_compares_gap_and_deflated_sharpe_with_limits(
    is_sharpe: float,
    oos_sharpe: float,
    deflated: float,
    passed: bool,
    expected: str,
    make_report: ReportBuilder,
    strict_preferences: Preferences,
) -> None:
    # Arrange
    is_report, oos_report = make_report(sharpe=is_sharpe), make_report(sharpe=oos_sharpe)

    # Act
    outcome = audit_overfitting_gap(is_report, oos_report, deflated, strict_preferences)

    # Assert
    assert outcome.passed is passed
    assert outcome.blocking
    assert outcome.severity == "error"
    assert outcome.name is AuditName.OVERFITTING_GAP
    assert outcome.message.startswith("overfitting_gap: ")
    assert re.search(expected, outcome.message), outcome.message
    assert outcome.metrics["sharpe_gap"] == pytest.approx(is_sharpe - oos_sharpe, abs=1e-12)
    assert outcome.metrics["deflated_sharpe"] == deflated


@pytest.mark.parametrize("deflated", [-0.1, 1.2, float("nan")])
def test_audit_overfitting_gap_deflated_sharpe_outside_0_1_raises(
    deflated: float, make_report: ReportBuilder, strict_preferences: Preferences
) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="not a probability in"):
        audit_overfitting_gap(make_report(), make_report(), deflated, strict_preferences)


# --- min_trades -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trades", "passed", "expected"),
    [
        (20, True, "20 out-of-sample trades, at least the minimum 20"),
        (57, True, "57 out-of-sample trades, at least the minimum 20"),
        (19, False, "19 out-of-sample trades is below the minimum 20 (preferences min_trades)"),
        (0, False, "0 out-of-sample trades is below the minimum 20"),
    ],
)
def test_audit_min_trades_compares_trades_with_the_minimum(
    trades: int,
    passed: bool,
    expected: str,
    make_report: ReportBuilder,
    strict_preferences: Preferences,
) -> None:
    # Act
    outcome = audit_min_trades(make_report(trades=trades), strict_preferences)

    # Assert
    assert outcome.passed is passed
    assert outcome.blocks is not passed
    assert expected in outcome.message
    assert outcome.metrics == {"trades": trades, "limit": 20}


# --- drawdown_limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drawdown", "passed"), [(-0.10, True), (-0.25, True), (-0.2500001, False), (-0.6, False)]
)
def test_audit_drawdown_limit_compares_drawdown_with_the_limit(
    drawdown: float, passed: bool, make_report: ReportBuilder, strict_preferences: Preferences
) -> None:
    # Act
    outcome = audit_drawdown_limit(make_report(max_drawdown=drawdown), strict_preferences)

    # Assert
    assert outcome.passed is passed
    assert outcome.metrics == {"max_drawdown": drawdown, "limit": -0.25}
    if not passed:
        assert "is deeper than the limit -25.00% (preferences max_drawdown); reduce" in (
            outcome.message
        )


def test_audit_drawdown_limit_real_run_is_judged_on_its_equity_curve_drawdown(
    audit_bars: dict[str, pl.DataFrame], strict_preferences: Preferences
) -> None:
    # Arrange: the drawdown recomputed from the equity curve (the peak starts at the cash).
    spec = shipped_spec("time_series_momentum_btc_1h")
    run = run_spec(spec, audit_bars)
    equity = run.equity["equity"].to_numpy()
    peaks = np.maximum.accumulate(np.concatenate(([DEFAULT_INITIAL_CASH], equity)))[1:]
    drawdown = float((equity / peaks - 1.0).min())
    loose = limits(strict_preferences, max_drawdown=max(drawdown - 0.01, -1.0))
    tight = limits(strict_preferences, max_drawdown=drawdown + 0.01)

    # Act
    within = audit_drawdown_limit(run.report, loose)
    beyond = audit_drawdown_limit(run.report, tight)

    # Assert
    assert within.metrics["max_drawdown"] == pytest.approx(drawdown, abs=1e-12)
    assert within.passed
    assert not beyond.passed
    assert f"max drawdown {drawdown:.2%} is deeper than" in beyond.message


# --- concentration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "passed"),
    [
        (0.5, True),
        (1.0, True),
        (1.0000000000000009, True),  # the engine's rounding of a full-size entry
        (1.01, False),
        (float("inf"), False),
    ],
)
def test_audit_concentration_compares_the_largest_position_with_the_cap(
    used: float, passed: bool, strict_preferences: Preferences
) -> None:
    # Act
    outcome = audit_concentration(used, strict_preferences)

    # Assert
    assert outcome.passed is passed
    assert outcome.blocking
    if not passed:
        assert "of equity is above the cap 1.0000 (preferences max_position_fraction)" in (
            outcome.message
        )


def test_audit_concentration_infinite_fraction_is_reported_unbounded(
    strict_preferences: Preferences,
) -> None:
    # Act
    outcome = audit_concentration(float("inf"), strict_preferences)

    # Assert
    assert outcome.metrics["max_position_fraction_used"] == "unbounded"


@pytest.mark.parametrize("used", [-0.1, float("nan")])
def test_audit_concentration_negative_or_nan_fraction_raises(
    used: float, strict_preferences: Preferences
) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="not a fraction >= 0"):
        audit_concentration(used, strict_preferences)


def test_audit_concentration_half_size_cap_fails_a_full_size_run(
    audit_bars: dict[str, pl.DataFrame], strict_preferences: Preferences
) -> None:
    # Arrange: a full-size spec audited against a person's cap of half the equity.
    spec = shipped_spec("bollinger_squeeze_breakout_btc_1h")
    run = run_spec(spec, audit_bars)
    used = largest_entry_fraction(
        run.trades, sleeve_cash=DEFAULT_INITIAL_CASH, commission_rate=spec.cost.commission_rate
    )

    # Act
    full_cap = audit_concentration(used, strict_preferences)
    half_cap = audit_concentration(used, limits(strict_preferences, max_position_fraction=0.5))

    # Assert: equity_fraction 1.0 commits all of the equity at each entry.
    assert used == pytest.approx(1.0, abs=1e-12)
    assert full_cap.passed
    assert not half_cap.passed


def trades_frame(rows: list[tuple[str, int, float, float, float]]) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "instrument": [row[0] for row in rows],
            "entry_ts": [start + timedelta(hours=row[1]) for row in rows],
            "qty": [row[2] for row in rows],
            "entry_price": [row[3] for row in rows],
            "pnl": [row[4] for row in rows],
        },
        schema_overrides={"entry_ts": pl.Datetime("us", "UTC")},
    )


def test_largest_entry_fraction_hand_built_trades_use_each_sleeves_equity() -> None:
    # Arrange: two sleeves of 1,000 cash, commission 0.1%, trades interleaved in time.
    # a@0: 1 x 500 on 1,000 -> 0.5005; b@1: 1 x 900 on 1,000 -> 0.9009;
    # a@2: 2 x 500 on 1,000 + 100 (a's first pnl; b's loss is not a's) -> 1,001 / 1,100 = 0.91.
    trades = trades_frame(
        [("a", 0, 1.0, 500.0, 100.0), ("b", 1, 1.0, 900.0, -300.0), ("a", 2, 2.0, 500.0, 0.0)]
    )

    # Act
    largest = largest_entry_fraction(trades, sleeve_cash=1_000.0, commission_rate=0.001)

    # Assert
    assert largest == pytest.approx(0.91, abs=1e-12)


def test_largest_entry_fraction_entry_after_ruin_is_infinite() -> None:
    # Arrange: the first trade loses 150 of 100 cash; the second enters on -50 of equity.
    trades = trades_frame([("a", 0, 1.0, 90.0, -150.0), ("a", 5, 1.0, 10.0, 0.0)])

    # Act
    largest = largest_entry_fraction(trades, sleeve_cash=100.0, commission_rate=0.0)

    # Assert
    assert largest == float("inf")


def test_largest_entry_fraction_no_trades_is_zero() -> None:
    # Act
    largest = largest_entry_fraction(trades_frame([]), sleeve_cash=100.0, commission_rate=0.0)

    # Assert
    assert largest == 0.0


def test_largest_entry_fraction_two_sleeves_at_half_size_is_one_half(
    audit_bars: dict[str, pl.DataFrame],
) -> None:
    # Arrange: every entry commits equity_fraction of its sleeve (backtest/kernel.py sizing).
    spec = with_risk(
        shipped_spec("ema_trend_adx_btc_eth_1h"),
        ModuleRef(module="fixed_fraction", params={"equity_fraction": 0.5}),
    )
    run = run_spec(spec, audit_bars)

    # Act
    largest = largest_entry_fraction(
        run.trades,
        sleeve_cash=DEFAULT_INITIAL_CASH / 2,
        commission_rate=spec.cost.commission_rate,
    )

    # Assert
    assert run.trades["instrument"].n_unique() == 2
    assert largest == pytest.approx(0.5, abs=1e-12)


def test_largest_entry_fraction_ignores_the_drift_that_lifts_exposure_above_one(
    audit_bars: dict[str, pl.DataFrame], strict_preferences: Preferences
) -> None:
    # Arrange: a full-size long/short strategy; a losing short's value outgrows its equity.
    spec = shipped_spec("time_series_momentum_btc_1h")
    spec = with_risk(spec, ModuleRef(module="fixed_fraction", params={"equity_fraction": 1.0}))
    run = run_spec(spec, audit_bars)
    drifted = float(run.equity["exposure"].abs().max())  # type: ignore[arg-type]

    # Act
    at_entry = largest_entry_fraction(
        run.trades, sleeve_cash=DEFAULT_INITIAL_CASH, commission_rate=spec.cost.commission_rate
    )

    # Assert
    assert drifted > 1.01
    assert at_entry == pytest.approx(1.0, abs=1e-12)
    assert audit_concentration(at_entry, strict_preferences).passed


# --- survivorship -----------------------------------------------------------------------------


def test_audit_survivorship_crypto_spec_passes() -> None:
    # Arrange
    spec = shipped_spec("ema_trend_adx_btc_eth_1h")

    # Act
    outcome = audit_survivorship(spec, shipped_asset_classes())

    # Assert
    assert outcome.passed
    assert not outcome.blocks
    assert outcome.metrics == {"equity_instruments": 0}


def test_audit_survivorship_equity_spec_warns_without_blocking() -> None:
    # Arrange: a spec over BTC and SPY; only SPY is an equity (instruments.yaml).
    spec = with_instruments(shipped_spec("connors_rsi2_spy_1d"), (BTC_KEY, SPY_KEY))

    # Act
    outcome = audit_survivorship(spec, shipped_asset_classes())

    # Assert
    assert not outcome.passed
    assert not outcome.blocking
    assert not outcome.blocks
    assert outcome.severity == "warn"
    assert f"trades equities ['{SPY_KEY}'] from a universe of today's constituents" in (
        outcome.message
    )
    assert outcome.metrics == {"equity_instruments": 1}


def test_audit_survivorship_instrument_without_asset_class_raises() -> None:
    # Arrange
    spec = shipped_spec("connors_rsi2_spy_1d")

    # Act / Assert
    with pytest.raises(UnknownInstrumentError, match=r"'yahoo\.SPY\.1d' has no asset class"):
        audit_survivorship(spec, {BTC_KEY: "crypto"})


def test_audit_survivorship_unknown_asset_class_raises() -> None:
    # Arrange
    spec = shipped_spec("connors_rsi2_spy_1d")

    # Act / Assert
    with pytest.raises(ConfigurationError, match=r"was 'stock', not one of \['crypto', 'equity'\]"):
        audit_survivorship(spec, {SPY_KEY: "stock"})
