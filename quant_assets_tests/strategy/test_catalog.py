"""The template catalog: every entry loads, stays inside the module bounds, is documented, and
instantiates into a spec that validates and backtests on the shipped data."""

import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from quant_assets.backtest.run_spec import run_spec
from quant_assets.domain.errors import ConfigurationError, SpecValidationError
from quant_assets.domain.strategy import DataSlice, ModuleRole
from quant_assets.market.canonical import to_canonical
from quant_assets.strategy.catalog.loader import (
    Catalog,
    CatalogEntry,
    ModuleBounds,
    StrategyFamily,
    load_catalog,
)
from quant_assets.strategy.registry import module_class
from quant_assets.strategy.validation import spec_from_entry, validate_spec

PROJECT_DIR = Path(__file__).resolve().parents[2]
CATALOG_DIR = PROJECT_DIR / "quant_assets" / "strategy" / "catalog"
SAMPLE_DIR = PROJECT_DIR / "data" / "sample"
NAMES = load_catalog().names()
# Backtest windows: the last six months of BTC hourly bars, the last three years of SPY daily.
BTC_KEY = "binance.BTC-USDT.1h"
BTC_START, BTC_END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 9, 1, tzinfo=UTC)
SPY_KEY = "yahoo.SPY.1d"
SPY_START, SPY_END = datetime(2023, 3, 1, tzinfo=UTC), datetime(2026, 3, 28, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def shipped_bars() -> dict[str, pl.DataFrame]:
    """Return the backtest windows of BTC 1h and SPY 1d in the canonical schema."""
    frames: dict[str, pl.DataFrame] = {}
    for key, file, start, end in [
        (BTC_KEY, "binance_BTC-USDT_1h.parquet", BTC_START, BTC_END),
        (SPY_KEY, "yahoo_SPY_1d.parquet", SPY_START, SPY_END),
    ]:
        bars = to_canonical(pl.read_parquet(SAMPLE_DIR / file), key)
        frames[key] = bars.filter(pl.col("ts").is_between(start, end, closed="left"))
    return frames


def test_load_catalog_shipped_catalog_has_thirty_documented_families(catalog: Catalog) -> None:
    # Arrange
    files = sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))

    # Act
    names = catalog.names()

    # Assert
    assert len(names) >= 30
    assert list(names) == files
    assert {entry.family for entry in catalog.entries} == set(StrategyFamily)
    assert len({entry.baseline.module for entry in catalog.entries}) == 12  # every baseline


@pytest.mark.parametrize("name", NAMES)
def test_catalog_entry_bounds_lie_inside_module_bounds(name: str, catalog: Catalog) -> None:
    # Arrange
    entry = catalog.entry(name)
    checked = 0

    # Act / Assert: recheck every bound against the registered ParamDef, independently of the
    # loader's own check.
    for role in ModuleRole:
        for allowance in entry.allowed(role):
            params = module_class(role, allowance.module).params
            for param, (low, high) in allowance.bounds.items():
                definition = params[param]
                assert definition.kind in ("int", "float"), (name, param)
                assert definition.low is not None
                assert definition.high is not None
                assert definition.low <= low <= high <= definition.high, (name, param)
                if definition.kind == "int":
                    assert low == int(low), (name, param)
                    assert high == int(high), (name, param)
                checked += 1
            for param, choices in allowance.choices.items():
                assert set(choices) <= set(params[param].choices), (name, param)
    baseline_params = module_class(ModuleRole.BASELINE, entry.baseline.module).params
    assert set(entry.baseline.bounds) == {
        p for p, d in baseline_params.items() if d.kind in ("int", "float")
    }
    assert checked >= len(entry.baseline.bounds)


@pytest.mark.parametrize("name", NAMES)
def test_catalog_entry_is_documented(name: str, catalog: Catalog) -> None:
    # Arrange
    entry = catalog.entry(name)

    # Act
    reference = entry.reference

    # Assert
    assert len(entry.hypothesis) >= 150
    assert len(entry.failure_modes) >= 3
    assert all(mode.endswith(".") and len(mode) >= 40 for mode in entry.failure_modes)
    assert 1940 <= reference.year <= 2025
    assert reference.author
    assert reference.title
    assert reference.venue
    assert "crypto" in entry.asset_classes or "equity" in entry.asset_classes


def _backtest_slice(entry: CatalogEntry) -> DataSlice:
    if "crypto" in entry.asset_classes and "1h" in entry.timeframes:
        return DataSlice(
            instruments=(BTC_KEY,),
            timeframe="1h",
            start=BTC_START,
            end=BTC_END,
        )
    assert "equity" in entry.asset_classes, entry.name
    assert "1d" in entry.timeframes, entry.name
    return DataSlice(
        instruments=(SPY_KEY,),
        timeframe="1d",
        start=SPY_START,
        end=SPY_END,
    )


@pytest.mark.parametrize("name", NAMES)
def test_catalog_entry_instantiated_spec_backtests_on_shipped_data(
    name: str, catalog: Catalog, shipped_bars: dict[str, pl.DataFrame]
) -> None:
    # Arrange
    entry = catalog.entry(name)
    data = _backtest_slice(entry)
    key = data.instruments[0]
    bars = shipped_bars[key]
    first, last = bars["ts"].min(), bars["ts"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    spec = validate_spec(
        spec_from_entry(entry, data),
        catalog,
        registered_instruments={BTC_KEY, SPY_KEY},
        data_ranges={key: (first, last)},
        instrument_asset_classes={BTC_KEY: "crypto", SPY_KEY: "equity"},
    )

    # Act
    result = run_spec(spec, {key: bars})

    # Assert
    report = result.report
    assert result.steps.candidates > 0
    assert report.trades >= 1
    assert report.trades == result.trades.height
    assert result.equity.height == bars.height
    metrics = [report.total_return, report.sharpe, report.max_drawdown, report.win_rate]
    assert all(math.isfinite(value) for value in metrics)
    assert -1.0 <= report.max_drawdown <= 0.0


def test_catalog_entry_unknown_name_lists_the_templates(catalog: Catalog) -> None:
    # Act
    with pytest.raises(SpecValidationError) as caught:
        catalog.entry("astrology")

    # Assert
    message = str(caught.value)
    assert "template 'astrology' is not in the catalog" in message
    assert "'turtle_breakout'" in message


def test_catalog_json_schema_limits_templates_to_catalog_names(catalog: Catalog) -> None:
    # Act
    schema = catalog.json_schema()

    # Assert
    assert schema["templates"] == list(catalog.names())
    assert schema["strategy_spec"]["properties"]["template"]["enum"] == list(catalog.names())
    assert set(schema["catalog_entry"]["properties"]) == set(CatalogEntry.model_fields)


def test_catalog_by_family_partitions_the_entries(catalog: Catalog) -> None:
    # Act
    groups = [catalog.by_family(family) for family in StrategyFamily]

    # Assert
    assert sum(len(group) for group in groups) == len(catalog.entries)
    assert all(entry.family == "breakout" for entry in catalog.by_family(StrategyFamily.BREAKOUT))


def test_module_bounds_unlisted_param_keeps_module_bounds() -> None:
    # Arrange: module_list.md: adx_strength min_adx float 5..60, lookback_bars int 5..100.
    allowance = ModuleBounds(module="adx_strength", bounds={"lookback_bars": (7, 42)})
    params = module_class(ModuleRole.FILTER, "adx_strength").params

    # Act
    listed = allowance.numeric_range("lookback_bars", params["lookback_bars"])
    unlisted = allowance.numeric_range("min_adx", params["min_adx"])

    # Assert
    assert listed == (7, 42)
    assert unlisted == (5, 60)


def _entry_document() -> dict[str, Any]:
    loaded = yaml.safe_load((CATALOG_DIR / "ema_crossover.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _write(directory: Path, document: dict[str, Any], stem: str = "ema_crossover") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return directory


def test_load_catalog_copied_entry_loads_and_id_tracks_content(tmp_path: Path) -> None:
    # Arrange
    same = _write(tmp_path / "same", _entry_document())
    changed_document = _entry_document()
    changed_document["baseline"]["bounds"]["fast_span_bars"] = [5, 40]
    changed = _write(tmp_path / "changed", changed_document)

    # Act
    first, second, third = load_catalog(same), load_catalog(same), load_catalog(changed)

    # Assert
    assert first.names() == ("ema_crossover",)
    assert first.entry("ema_crossover").baseline.bounds["fast_span_bars"] == (5, 50)
    assert first.catalog_id == second.catalog_id
    assert first.catalog_id != third.catalog_id


Edit = Callable[[dict[str, Any]], None]


def _set(path: list[str | int], value: object) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        target: Any = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return edit


def _delete(path: list[str | int]) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        target: Any = document
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return edit


MALFORMED_ENTRIES: list[tuple[str, Edit, list[str]]] = [
    (
        "unknown_module",
        _set(["baseline", "module"], "ema_crossing"),
        ["baseline.module was 'ema_crossing'", "is not registered", "choose one of"],
    ),
    (
        "bounds_outside_module",
        _set(["baseline", "bounds", "slow_span_bars"], [60, 600]),
        ["baseline.bounds['slow_span_bars'] was [60.0, 600.0]", "outside the module bounds"],
    ),
    (
        "low_above_high",
        _set(["baseline", "bounds", "fast_span_bars"], [50, 5]),
        ["baseline.bounds", "were [50.0, 5.0]", "low first"],
    ),
    (
        "fractional_int_bound",
        _set(["baseline", "bounds", "fast_span_bars"], [5.5, 50]),
        ["baseline.bounds['fast_span_bars'] was [5.5, 50.0]", "use whole numbers"],
    ),
    (
        "baseline_param_unbounded",
        _delete(["baseline", "bounds", "fast_span_bars"]),
        ["baseline.bounds has no range for ['fast_span_bars']", "give every numeric"],
    ),
    (
        "overlapping_ranges",
        _set(["baseline", "bounds", "fast_span_bars"], [5, 100]),
        ["admit", "which the module rejects", "separate the ranges"],
    ),
    (
        "unknown_param",
        _set(["filters", 0, "bounds", "period_bars"], [5, 10]),
        ["filters[0].bounds['period_bars']", "has no parameter 'period_bars'"],
    ),
    (
        "bounds_on_choice_param",
        _set(["filters", 2, "bounds", "allow"], [0, 1]),
        ["filters[2].bounds['allow']", "list its allowed values under `choices`"],
    ),
    (
        "choice_not_offered",
        _set(["filters", 3, "choices"], {"allow": ["sideways"]}),
        ["filters[3].choices['allow'] was ['sideways']", "subset of the module's choices"],
    ),
    (
        "required_execution",
        _set(["executions", 0, "required"], True),
        ["executions[0].required was true", "only filters can be required"],
    ),
    (
        "duplicate_module",
        _set(["filters", 1], {"module": "adx_strength"}),
        ["filters lists ['adx_strength'] more than once"],
    ),
    (
        "unknown_family",
        _set(["family"], "astrology"),
        ["family was 'astrology'", "'trend', 'breakout'"],
    ),
    ("missing_reference", _delete(["reference"]), ["reference is missing", "add it"]),
    ("bad_timeframe", _set(["timeframes"], ["1h", "hourly"]), ["timeframes was", "'hourly'"]),
    (
        "name_differs_from_file",
        _set(["name"], "ema_cross_renamed"),
        ["name was 'ema_cross_renamed', not the file stem 'ema_crossover'"],
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [(edit, expected) for _, edit, expected in MALFORMED_ENTRIES],
    ids=[name for name, _, _ in MALFORMED_ENTRIES],
)
def test_load_catalog_malformed_entry_names_file_path_and_fix(
    tmp_path: Path, edit: Edit, expected: list[str]
) -> None:
    # Arrange
    document = _entry_document()
    edit(document)
    directory = _write(tmp_path, document)

    # Act
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(directory)

    # Assert
    message = str(caught.value)
    assert "catalog file ema_crossover.yaml" in message
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda p: p / "absent", "does not exist"),
        (lambda p: p, "has no *.yaml entries"),
    ],
    ids=["missing_directory", "empty_directory"],
)
def test_load_catalog_unusable_directory_raises(
    tmp_path: Path, setup: Callable[[Path], Path], expected: str
) -> None:
    # Act
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(setup(tmp_path))

    # Assert
    assert expected in str(caught.value)


def test_load_catalog_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    # Arrange
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")

    # Act
    with pytest.raises(ConfigurationError) as caught:
        load_catalog(tmp_path)

    # Assert
    assert "catalog file broken.yaml is not valid YAML" in str(caught.value)
