"""Fixtures for the governance tests: shipped bars by instrument, preferences, report builders."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from quant_assets.domain.report import EvalReport
from quant_assets.governance.preferences import Preferences, load_preferences
from quant_assets_tests.strategy.conftest import (
    BTC_KEY,
    ETH_KEY,
    SPY_BARS,
    SPY_KEY,
    crypto_slice,
    load_bars,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
SPECS_DIR = PROJECT_DIR / "specs"
# A plausible report; tests override the fields an audit reads.
_REPORT_FIELDS: dict[str, object] = {
    "start": datetime(2021, 6, 1, tzinfo=UTC),
    "end": datetime(2021, 10, 4, tzinfo=UTC),
    "bars": 3_000,
    "periods_per_year": 8_760.0,
    "total_return": 0.12,
    "cagr": 0.39,
    "annualized_volatility": 0.35,
    "sharpe": 1.1,
    "sortino": 1.6,
    "calmar": 2.6,
    "max_drawdown": -0.15,
    "max_drawdown_duration_bars": 400,
    "max_drawdown_duration_seconds": 1_440_000.0,
    "win_rate": 0.45,
    "profit_factor": 1.3,
    "trades": 40,
    "average_trade_return": 0.003,
    "exposure": 0.6,
    "turnover": 25.0,
    "fees_paid": 80.0,
    "probabilistic_sharpe": 0.9,
    "deflated_sharpe": 0.7,
    "n_trials": 50,
    "skewness": 0.1,
    "kurtosis": 6.0,
}

ReportBuilder = Callable[..., EvalReport]


def build_report(**fields: object) -> EvalReport:
    """Return a validated EvalReport: the plausible defaults overridden by `fields`."""
    return EvalReport.model_validate({**_REPORT_FIELDS, **fields})


@pytest.fixture
def make_report() -> ReportBuilder:
    return build_report


@pytest.fixture(scope="session")
def audit_bars() -> dict[str, pl.DataFrame]:
    """Return 3,000 hourly BTC and ETH bars (2021-06 on) and 2,500 daily SPY bars."""
    return {
        BTC_KEY: crypto_slice(load_bars("binance_BTC-USDT_1h", BTC_KEY)),
        ETH_KEY: crypto_slice(load_bars("binance_ETH-USDT_1h", ETH_KEY)),
        SPY_KEY: load_bars("yahoo_SPY_1d", SPY_KEY).tail(SPY_BARS),
    }


@pytest.fixture(scope="session")
def shipped_preferences() -> Preferences:
    """Return the limits of the project's preferences.yaml."""
    return load_preferences(PROJECT_DIR / "preferences.yaml")


@pytest.fixture
def strict_preferences() -> Preferences:
    """Return limits written in the test (independent of edits to preferences.yaml)."""
    return Preferences(
        max_drawdown=-0.25,
        min_trades=20,
        max_sharpe_gap=1.0,
        min_deflated_sharpe=0.5,
        max_position_fraction=1.0,
    )
