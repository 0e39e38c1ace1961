"""The registry and module parameters: the fixed module list, bounds, errors and warm-ups."""

from typing import Any

import pytest

from quant_assets.backtest.metrics import annualization_factor
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.market import AssetClass, Timeframe
from quant_assets.domain.strategy import ModuleRef, ModuleRole
from quant_assets.features.registry import feature_by_name
from quant_assets.strategy.registry import (
    build_baseline,
    build_execution,
    build_filter,
    build_module,
    build_risk,
    check_registry,
    module_class,
    registered_modules,
)
from quant_assets.strategy.risks.annualization import asset_class_of, bars_per_year

STOPS_FROM = ("choice", ("entry_bar", "next_bar"), "entry_bar")
# Transcribed from the shared module list (/tmp/prompts/module_list.md): name -> param ->
# (kind, low, high, default) for numbers, (kind, choices, default) for choices.
MODULE_LIST: dict[ModuleRole, dict[str, dict[str, tuple[Any, ...]]]] = {
    ModuleRole.BASELINE: {
        "ema_cross": {"fast_span_bars": ("int", 2, 200, 10), "slow_span_bars": ("int", 5, 500, 50)},
        "sma_cross": {
            "fast_window_bars": ("int", 2, 200, 20),
            "slow_window_bars": ("int", 5, 500, 100),
        },
        "donchian_breakout": {
            "entry_lookback_bars": ("int", 5, 300, 55),
            "exit_lookback_bars": ("int", 2, 200, 20),
        },
        "bollinger_reversion": {
            "lookback_bars": ("int", 5, 300, 20),
            "width_stdevs": ("float", 0.5, 4.0, 2.0),
        },
        "rsi_reversion": {
            "lookback_bars": ("int", 2, 50, 2),
            "oversold": ("float", 1, 50, 10),
            "overbought": ("float", 50, 99, 90),
            "trend_window_bars": ("int", 20, 500, 200),
        },
        "macd_trend": {
            "fast_span_bars": ("int", 2, 50, 12),
            "slow_span_bars": ("int", 5, 200, 26),
            "signal_span_bars": ("int", 2, 50, 9),
        },
        "tsmom": {"lookback_bars": ("int", 10, 5000, 168), "threshold": ("float", 0, 3, 0.0)},
        "supertrend": {"atr_bars": ("int", 3, 100, 10), "multiplier": ("float", 0.5, 8, 3.0)},
        "keltner_breakout": {
            "span_bars": ("int", 5, 300, 20),
            "atr_bars": ("int", 3, 100, 10),
            "width_atr": ("float", 0.5, 6, 2.0),
        },
        "trendflex": {"lookback_bars": ("int", 5, 200, 20), "threshold": ("float", 0, 3, 0.5)},
        "zscore_reversion": {
            "lookback_bars": ("int", 5, 500, 48),
            "entry_z": ("float", 0.5, 4, 2.0),
            "exit_z": ("float", 0, 2, 0.0),
        },
        "aroon_trend": {
            "lookback_bars": ("int", 5, 200, 25),
            "threshold": ("float", 0, 100, 50.0),
        },
    },
    ModuleRole.FILTER: {
        "adx_strength": {"lookback_bars": ("int", 5, 100, 14), "min_adx": ("float", 5, 60, 20.0)},
        "volatility_regime": {
            "lookback_bars": ("int", 5, 500, 24),
            "history_bars": ("int", 50, 5000, 720),
            "allow": ("choice", ("low", "high", "any"), "low"),
        },
        "higher_timeframe_trend": {
            "timeframe": ("choice", ("4h", "1d", "1w"), "1d"),
            "span_bars": ("int", 2, 200, 20),
        },
        "volume_activity": {
            "lookback_bars": ("int", 5, 500, 24),
            "min_zscore": ("float", -3, 5, 0.0),
        },
        "time_of_day": {"start_hour": ("int", 0, 23, 0), "end_hour": ("int", 1, 24, 24)},
        "direction": {"allow": ("choice", ("long", "short", "both"), "both")},
    },
    ModuleRole.EXECUTION: {
        "signal_exit_only": {},
        "fixed_stop_target": {
            "stop_loss_rate": ("float", 0.002, 0.5, 0.02),
            "take_profit_rate": ("float", 0.002, 2.0, 0.04),
            "stops_from": STOPS_FROM,
        },
        "atr_stops": {
            "atr_bars": ("int", 3, 100, 14),
            "stop_atr": ("float", 0.25, 10, 2.0),
            "target_atr": ("float", 0.25, 20, 4.0),
            "stops_from": STOPS_FROM,
        },
        "trailing_pct": {
            "trailing_stop_rate": ("float", 0.002, 0.5, 0.03),
            "stops_from": STOPS_FROM,
        },
        "chandelier": {
            "atr_bars": ("int", 3, 100, 22),
            "multiplier": ("float", 0.5, 10, 3.0),
            "stops_from": STOPS_FROM,
        },
        "time_exit": {"max_bars_in_trade": ("int", 1, 5000, 48), "stops_from": STOPS_FROM},
    },
    ModuleRole.RISK: {
        "fixed_fraction": {"equity_fraction": ("float", 0.01, 1.0, 1.0)},
        "volatility_target": {
            "target_annual_volatility": ("float", 0.02, 2.0, 0.4),
            "lookback_bars": ("int", 10, 5000, 168),
            "max_fraction": ("float", 0.05, 1.0, 1.0),
        },
        "capped_kelly": {
            "lookback_bars": ("int", 50, 10000, 720),
            "kelly_fraction": ("float", 0.05, 1.0, 0.5),
            "max_fraction": ("float", 0.05, 1.0, 1.0),
        },
    },
}


def feature_warmup(name: str, **params: float) -> int:
    return feature_by_name(name).warmup_bars(**params)


# Warm-up of each module at its defaults, derived from the feature registry's own declared
# warm-ups (the first non-null row): +1 where the rule reads the previous bar (a cross, a state
# change, a channel of the bars before), the later of two inputs where it needs both.
EXPECTED_WARMUP = {
    "ema_cross": feature_warmup("ema", span_bars=50) + 1,
    "sma_cross": feature_warmup("sma", span_bars=100) + 1,
    "donchian_breakout": feature_warmup("donchian_channels", lookback_bars=55) + 1,
    "bollinger_reversion": feature_warmup("bollinger_bands", lookback_bars=20) + 1,
    "rsi_reversion": max(
        feature_warmup("rsi", lookback_bars=2), feature_warmup("sma", span_bars=200)
    ),
    "macd_trend": feature_warmup("macd") + 1,
    "tsmom": feature_warmup("time_series_momentum", lookback_bars=168) + 1,
    "supertrend": feature_warmup("supertrend", atr_bars=10, multiplier=3.0) + 1,
    "keltner_breakout": feature_warmup("keltner_channels"),
    "trendflex": feature_warmup("trendflex", lookback_bars=20) + 1,
    "zscore_reversion": feature_warmup("zscore", lookback_bars=48),
    "aroon_trend": feature_warmup("aroon", lookback_bars=25) + 1,
    "adx_strength": feature_warmup("directional_movement", lookback_bars=14),
    "volatility_regime": feature_warmup("volatility_regime", lookback_bars=24, history_bars=720),
    "higher_timeframe_trend": 20,  # 20 daily EMA bars: exact on daily bars (see the module)
    "volume_activity": feature_warmup("volume_zscore", lookback_bars=24),
    "time_of_day": 0,
    "direction": 0,
    "signal_exit_only": 0,
    "fixed_stop_target": 0,
    "atr_stops": feature_warmup("average_true_range", lookback_bars=14),
    "trailing_pct": 0,
    "chandelier": feature_warmup("average_true_range", lookback_bars=22),
    "time_exit": 0,
    "fixed_fraction": 0,
    "volatility_target": feature_warmup("realized_volatility", lookback_bars=168),
    "capped_kelly": 720,  # 720 one-bar returns; the first return is on bar 1
}


@pytest.mark.parametrize("role", list(ModuleRole))
def test_registered_modules_match_the_shared_module_list(role: ModuleRole) -> None:
    # Arrange
    expected = MODULE_LIST[role]

    # Act
    registered = {
        module.name: {
            name: (
                (p.kind, p.choices, p.default)
                if p.kind == "choice"
                else (p.kind, p.low, p.high, p.default)
            )
            for name, p in module.params.items()
        }
        for module in registered_modules(role)
    }

    # Assert
    assert registered == expected


def test_registry_names_are_unique_and_roles_match_base_classes() -> None:
    # Act / Assert: raises on a duplicate name or a class of the wrong base.
    check_registry()


@pytest.mark.parametrize("module_type", registered_modules(), ids=lambda module: module.name)
def test_registered_module_documents_itself(module_type: type[Any]) -> None:
    # Act
    docstring = module_type.__doc__ or ""

    # Assert: the docstring carries the hypothesis (or the rule) and every param a description.
    assert module_type.description
    assert len(docstring.split()) >= 10
    assert all(definition.description for definition in module_type.params.values())


@pytest.mark.parametrize("name", sorted(EXPECTED_WARMUP))
def test_module_warmup_at_defaults_matches_its_features(name: str) -> None:
    # Arrange
    role = next(module.role for module in registered_modules() if module.name == name)

    # Act
    warmup = module_class(role, name)().warmup_bars()

    # Assert
    assert warmup == EXPECTED_WARMUP[name]


def test_module_class_unknown_name_names_role_name_and_known_names() -> None:
    # Act
    with pytest.raises(SpecValidationError) as caught:
        module_class(ModuleRole.BASELINE, "ema_crosss")

    # Assert
    message = str(caught.value)
    assert "baseline module 'ema_crosss' is not registered" in message
    assert "ema_cross, sma_cross, donchian_breakout" in message


def test_module_class_name_of_another_role_is_unknown() -> None:
    # Act / Assert: ema_cross is a baseline, not a filter.
    with pytest.raises(SpecValidationError, match="filter module 'ema_cross' is not registered"):
        module_class(ModuleRole.FILTER, "ema_cross")


def test_build_helpers_return_modules_of_their_role() -> None:
    # Act
    baseline = build_baseline(ModuleRef(module="ema_cross", params={"fast_span_bars": 5}))
    modules = [
        build_filter(ModuleRef(module="direction", params={"allow": "long"})),
        build_execution(ModuleRef(module="atr_stops")),
        build_risk(ModuleRef(module="fixed_fraction", params={"equity_fraction": 0.5})),
    ]

    # Assert: given values are used, the others take defaults.
    assert baseline.values == {"fast_span_bars": 5, "slow_span_bars": 50}
    assert [module.role for module in modules] == [
        ModuleRole.FILTER,
        ModuleRole.EXECUTION,
        ModuleRole.RISK,
    ]
    assert modules[2].values == {"equity_fraction": 0.5}


@pytest.mark.parametrize(
    ("role", "ref", "expected"),
    [
        (
            ModuleRole.BASELINE,
            ModuleRef(module="ema_cross", params={"fast_span": 5}),
            "baseline 'ema_cross': unknown parameter(s) ['fast_span']; its parameters are "
            "['fast_span_bars', 'slow_span_bars']",
        ),
        (
            ModuleRole.BASELINE,
            ModuleRef(module="ema_cross", params={"slow_span_bars": 600}),
            "parameter 'slow_span_bars' was 600, outside the module's bounds [5, 500]",
        ),
        (
            ModuleRole.RISK,
            ModuleRef(module="fixed_fraction", params={"equity_fraction": 0.0}),
            "parameter 'equity_fraction' was 0.0, outside the module's bounds [0.01, 1.0]",
        ),
        (
            ModuleRole.BASELINE,
            ModuleRef(module="sma_cross", params={"fast_window_bars": "ten"}),
            "parameter 'fast_window_bars' was 'ten', not a finite number",
        ),
        (
            ModuleRole.BASELINE,
            ModuleRef(module="sma_cross", params={"fast_window_bars": True}),
            "parameter 'fast_window_bars' was True, not a finite number",
        ),
        (
            ModuleRole.EXECUTION,
            ModuleRef(module="time_exit", params={"max_bars_in_trade": 10.5}),
            "parameter 'max_bars_in_trade' was 10.5, not a whole number",
        ),
        (
            ModuleRole.FILTER,
            ModuleRef(module="higher_timeframe_trend", params={"timeframe": "2h"}),
            "parameter 'timeframe' was '2h', not one of ['4h', '1d', '1w']",
        ),
    ],
    ids=["unknown", "above-bound", "below-bound", "string", "bool", "fraction", "choice"],
)
def test_build_module_bad_parameter_names_module_value_and_rule(
    role: ModuleRole, ref: ModuleRef, expected: str
) -> None:
    # Act
    with pytest.raises(SpecValidationError) as caught:
        build_module(role, ref)

    # Assert
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("role", "name", "params", "expected"),
    [
        (
            ModuleRole.BASELINE,
            "ema_cross",
            {"fast_span_bars": 50, "slow_span_bars": 50},
            "baseline 'ema_cross': parameter 'fast_span_bars' was 50, not below "
            "'slow_span_bars' 50; choose a fast span shorter than the slow span",
        ),
        (
            ModuleRole.BASELINE,
            "sma_cross",
            {"fast_window_bars": 120, "slow_window_bars": 100},
            "parameter 'fast_window_bars' was 120, not below 'slow_window_bars' 100",
        ),
        (
            ModuleRole.BASELINE,
            "macd_trend",
            {"fast_span_bars": 30, "slow_span_bars": 20},
            "parameter 'fast_span_bars' was 30, not below 'slow_span_bars' 20",
        ),
        (
            ModuleRole.BASELINE,
            "zscore_reversion",
            {"entry_z": 1.0, "exit_z": 1.5},
            "parameter 'exit_z' was 1.5, not below 'entry_z' 1.0; choose an exit band inside",
        ),
        (
            ModuleRole.FILTER,
            "time_of_day",
            {"start_hour": 10, "end_hour": 8},
            "parameter 'start_hour' was 10, not below 'end_hour' 8",
        ),
    ],
    ids=["ema", "sma", "macd", "zscore", "time_of_day"],
)
def test_module_cross_parameter_rule_violation_raises_with_the_fix(
    role: ModuleRole, name: str, params: dict[str, Any], expected: str
) -> None:
    # Act
    with pytest.raises(SpecValidationError) as caught:
        module_class(role, name)(**params)

    # Assert
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("timeframe", "asset_class"),
    [
        ("1h", AssetClass.CRYPTO),
        ("4h", AssetClass.CRYPTO),
        ("1d", AssetClass.CRYPTO),
        ("1d", AssetClass.EQUITY),
        ("1h", AssetClass.EQUITY),
        ("5m", AssetClass.EQUITY),
    ],
)
def test_bars_per_year_agrees_with_the_metrics_annualization(
    timeframe: str, asset_class: AssetClass
) -> None:
    # Arrange
    bar = Timeframe.parse(timeframe)

    # Act
    strategy_side = bars_per_year(bar, asset_class)

    # Assert
    assert strategy_side == annualization_factor(bar, asset_class)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("yahoo.SPY.1d", AssetClass.EQUITY),
        ("binance.BTC-USDT.1h", AssetClass.CRYPTO),
        ("csv.FOO.1d", AssetClass.CRYPTO),
    ],
)
def test_asset_class_of_infers_equity_only_for_yahoo(key: str, expected: AssetClass) -> None:
    # Act / Assert
    assert asset_class_of(key) is expected
