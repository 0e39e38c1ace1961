"""The market refresh schedule: hourly for intraday instruments, daily for daily ones."""

from datetime import UTC, datetime

import dagster as dg

from quant_assets.defs.schedules import market_refresh_schedule, refresh_requests


def test_refresh_requests_at_daily_hour_includes_daily_instruments() -> None:
    # Arrange
    instruments = ["binance.BTC-USDT.1h", "yahoo.SPY.1d"]

    # Act
    requests = refresh_requests(instruments, datetime(2026, 11, 21, 1, 5, tzinfo=UTC))

    # Assert
    assert [r.partition_key for r in requests] == [
        "binance.BTC-USDT.1h|2026-11-01",
        "yahoo.SPY.1d|2026-11-01",
    ]


def test_refresh_requests_other_hours_refresh_only_intraday() -> None:
    # Act
    requests = refresh_requests(
        ["binance.BTC-USDT.1h", "yahoo.SPY.1d"], datetime(2026, 11, 21, 14, 5, tzinfo=UTC)
    )

    # Assert
    assert [r.partition_key for r in requests] == ["binance.BTC-USDT.1h|2026-11-01"]
    assert requests[0].run_key == "binance.BTC-USDT.1h|2026-11-01|2026-11-21T14"


def test_market_refresh_schedule_reads_registered_instruments(
    dagster_instance: dg.DagsterInstance,
) -> None:
    # Arrange
    dagster_instance.add_dynamic_partitions("instrument", ["binance.ETH-USDT.1h"])
    context = dg.build_schedule_context(
        instance=dagster_instance, scheduled_execution_time=datetime(2026, 12, 1, 1, 5, tzinfo=UTC)
    )

    # Act
    requests = market_refresh_schedule(context)

    # Assert
    assert isinstance(requests, list)
    assert [r.partition_key for r in requests] == ["binance.ETH-USDT.1h|2026-12-01"]
