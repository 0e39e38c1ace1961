"""Tests of the backtest vocabulary: enum mirrors and the frozen configuration models."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from quant_assets.domain.backtest import (
    BacktestConfig,
    CostModel,
    EntryCode,
    EntryOutcome,
    ExitCode,
    ExitReason,
    ExitRules,
    FillMode,
    SizingConfig,
    StopsFrom,
    Trade,
)
from quant_assets.domain.ids import content_id


@pytest.mark.parametrize(
    ("int_enum", "str_enum"), [(ExitCode, ExitReason), (EntryCode, EntryOutcome)]
)
def test_int_mirror_has_the_same_members_numbered_from_one(int_enum: Any, str_enum: Any) -> None:
    # Assert: the kernel uses 0 for "none", so the mirrors start at 1 and skip nothing.
    assert [member.name for member in int_enum] == [member.name for member in str_enum]
    assert [int(member) for member in int_enum] == list(range(1, len(str_enum) + 1))


def test_exit_code_reason_maps_to_persisted_value() -> None:
    # Assert
    assert ExitCode.TRAILING_STOP.reason is ExitReason.TRAILING_STOP
    assert ExitCode(7).reason.value == "end_of_data"
    assert EntryCode(3).outcome.value == "reversal_not_allowed"


def test_backtest_config_round_trips_through_json_with_a_stable_id() -> None:
    # Arrange
    config = BacktestConfig(
        cost=CostModel(commission_rate=0.001, slippage_bps=2.0, fill=FillMode.CLOSE),
        exits=ExitRules(stop_loss_rate=0.02, trailing_stop_rate=0.03, stops_from="next_bar"),
        sizing=SizingConfig(equity_fraction=0.5, whole_units=True),
        periods_per_year=252.0,
    )

    # Act
    restored = BacktestConfig.model_validate_json(config.model_dump_json())

    # Assert
    assert restored == config
    assert restored.exits.stops_from is StopsFrom.NEXT_BAR
    assert content_id(restored) == content_id(config)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (CostModel, {"commission_rate": 0.01, "slippage_bps": 0.0}),  # 1% is a typo for 0.1%
        (CostModel, {"commission_rate": -0.001, "slippage_bps": 0.0}),
        (CostModel, {"commission_rate": 0.001, "slippage_bps": 150.0}),
        (CostModel, {"commission_rate": 0.001}),  # costs are never implied
        (SizingConfig, {"equity_fraction": 0.0}),
        (SizingConfig, {"equity_fraction": 1.5}),
        (ExitRules, {"stop_loss_rate": 2.0}),  # a percent, not a fraction
        (ExitRules, {"max_bars_in_trade": 0}),
        (ExitRules, {"stop_loss": 0.02}),  # extra fields are forbidden
    ],
)
def test_backtest_models_reject_out_of_range_fields(model: Any, fields: dict[str, Any]) -> None:
    # Act / Assert
    with pytest.raises(ValidationError):
        model(**fields)


def test_backtest_config_is_frozen() -> None:
    # Arrange
    config = BacktestConfig(cost=CostModel(commission_rate=0.0, slippage_bps=0.0))

    # Act / Assert
    with pytest.raises(ValidationError, match="frozen"):
        config.initial_cash = 1.0  # type: ignore[misc]


def test_trade_exiting_before_entry_is_rejected() -> None:
    # Arrange
    entry = datetime(2024, 1, 2, tzinfo=UTC)

    # Act / Assert
    with pytest.raises(ValidationError, match="was before its entry"):
        Trade(
            entry_ts=entry,
            exit_ts=datetime(2024, 1, 1, tzinfo=UTC),
            entry_bar=5,
            exit_bar=4,
            bars_held=0,
            side="long",
            qty=1.0,
            entry_price=100.0,
            exit_price=101.0,
            pnl=1.0,
            fees=0.0,
            return_rate=0.01,
            exit_reason="signal",
        )
