"""Pre-flight spec validation: specs inside the catalog and the data pass, everything else fails
with the field path, the value, the rule and the fix."""

import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.market import InstrumentKey
from quant_assets.domain.strategy import DataSlice, ModuleRef, ParamRange, StrategySpec
from quant_assets.market.instruments import load_instrument_file
from quant_assets.strategy.catalog.loader import Catalog, load_catalog
from quant_assets.strategy.spec_io import load_spec_yaml
from quant_assets.strategy.validation import default_walk_forward, spec_from_entry, validate_spec

PROJECT_DIR = Path(__file__).resolve().parents[2]
EXAMPLE_SPECS = sorted((PROJECT_DIR / "specs").glob("*.yaml"))
DataRanges = dict[str, tuple[datetime, datetime]]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def registered() -> set[str]:
    return {config.key for config in load_instrument_file(PROJECT_DIR / "instruments.yaml")}


@pytest.fixture(scope="module")
def data_ranges(registered: set[str]) -> DataRanges:
    """Return first and last bar open times of every shipped sample file."""
    ranges: DataRanges = {}
    for key in registered:
        instrument = InstrumentKey.parse(key)
        path = (
            PROJECT_DIR
            / "data"
            / "sample"
            / (f"{instrument.venue}_{instrument.symbol}_{instrument.timeframe}.parquet")
        )
        bounds = pl.scan_parquet(path).select(
            pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last")
        )
        row = bounds.collect().row(0)
        ranges[key] = (row[0], row[1])
    return ranges


@pytest.fixture(scope="module")
def valid_spec() -> StrategySpec:
    return load_spec_yaml(PROJECT_DIR / "specs" / "ema_trend_adx_btc_eth_1h.yaml")


def _with(spec: StrategySpec, **changes: object) -> StrategySpec:
    # model_copy skips validation; rebuild so that the changed spec is a real, valid model.
    return StrategySpec.model_validate({**spec.model_dump(), **changes})


def _search(spec: StrategySpec, key: str, space: ParamRange) -> StrategySpec:
    return _with(spec, search_space={**spec.search_space, key: space})


def _data(spec: StrategySpec, **changes: object) -> StrategySpec:
    return _with(spec, data={**spec.data.model_dump(), **changes})


@pytest.mark.parametrize("path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_validate_spec_example_spec_passes(
    path: Path, catalog: Catalog, registered: set[str], data_ranges: DataRanges
) -> None:
    # Arrange
    spec = load_spec_yaml(path)

    # Act
    validated = validate_spec(
        spec,
        catalog,
        registered_instruments=registered,
        data_ranges=data_ranges,
        instrument_asset_classes={"binance.BTC-USDT.1h": "crypto", "yahoo.SPY.1d": "equity"},
    )

    # Assert
    assert validated is spec


def test_example_specs_cover_the_main_families(catalog: Catalog) -> None:
    # Act
    families = {catalog.entry(load_spec_yaml(path).template).family for path in EXAMPLE_SPECS}

    # Assert
    assert {"trend", "breakout", "mean_reversion", "momentum", "volatility"} <= families


Mutation = Callable[[StrategySpec], StrategySpec]
MALFORMED: list[tuple[str, Mutation, list[str]]] = [
    (
        "unknown_module",
        lambda s: _with(s, execution=ModuleRef(module="warp_exit")),
        ["execution.module was 'warp_exit'", "is not registered", "choose one of"],
    ),
    (
        "param_out_of_catalog_bounds",
        lambda s: _with(s, baseline=ModuleRef(module="ema_cross", params={"fast_span_bars": 45})),
        ["baseline.params['fast_span_bars'] was 45", "bounds [5, 40]", "set it inside them"],
    ),
    (
        "param_out_of_module_bounds",
        lambda s: _with(s, baseline=ModuleRef(module="ema_cross", params={"fast_span_bars": 900})),
        ["baseline.params:", "'fast_span_bars' was 900", "choose a value inside them"],
    ),
    (
        "default_param_out_of_catalog_bounds",
        lambda s: _with(
            s,
            template="ema_crossover",
            baseline=ModuleRef(module="ema_cross", params={"fast_span_bars": 20}),
        ),
        [
            "baseline.params['slow_span_bars'] was 50 (the module default), outside the bounds "
            "[60, 400] that template 'ema_crossover' allows for baseline 'ema_cross'"
        ],
    ),
    (
        "unbounded_search_space",
        lambda s: _search(s, "baseline.slow_span_bars", ParamRange(low=50, high=math.inf)),
        ["search_space['baseline.slow_span_bars'].high was inf", "unbounded search space"],
    ),
    (
        "too_wide_search_space",
        lambda s: _search(s, "baseline.slow_span_bars", ParamRange(low=50, high=450)),
        [
            "search_space['baseline.slow_span_bars'].high was 450",
            "outside the catalog bounds [50, 300]",
            "unbounded search space; keep the range inside those bounds",
        ],
    ),
    (
        "bad_search_path",
        lambda s: _search(s, "strategy.fast", ParamRange(low=5, high=10)),
        ["search_space['strategy.fast']", "write baseline.<param>, execution.<param>"],
    ),
    (
        "search_path_filter_not_in_spec",
        lambda s: _search(s, "filters.direction.allow", ParamRange(low=0, high=1)),
        ["search_space['filters.direction.allow']", "no filter 'direction'", "add it to filters"],
    ),
    (
        "search_path_unknown_param",
        lambda s: _search(s, "baseline.slowest_span_bars", ParamRange(low=50, high=60)),
        ["search_space['baseline.slowest_span_bars']", "no parameter 'slowest_span_bars'"],
    ),
    (
        "search_path_choice_param",
        lambda s: _search(s, "execution.stops_from", ParamRange(low=0, high=1)),
        ["search_space['execution.stops_from']", "choice parameter", "set it in params instead"],
    ),
    (
        "search_kind_mismatch",
        lambda s: _search(s, "filters.adx_strength.min_adx", ParamRange(low=15, high=35)),
        ["search_space['filters.adx_strength.min_adx'].kind was 'int'", "write kind: float"],
    ),
    (
        "unregistered_instrument",
        lambda s: _data(s, instruments=("binance.DOGE-USDT.1h",)),
        ["data.instruments[0] was 'binance.DOGE-USDT.1h'", "not a registered instrument"],
    ),
    (
        "period_after_data",
        lambda s: _data(s, end=datetime(2026, 1, 1, tzinfo=UTC)),
        ["data.end was 2026-01-01T00:00:00Z", "end at 2025-09-01T00:00:00Z or earlier"],
    ),
    (
        "period_before_data",
        lambda s: _data(s, start=datetime(2017, 6, 1, tzinfo=UTC)),
        ["data.start was 2017-06-01T00:00:00Z", "start at 2018-01-01T00:00:00Z or later"],
    ),
    (
        "instrument_timeframe_differs",
        lambda s: _data(s, instruments=("yahoo.SPY.1d",)),
        ["data.instruments[0] was 'yahoo.SPY.1d', a 1d instrument", "use the 1h key"],
    ),
    (
        "timeframe_not_in_template",
        lambda s: _with(s, template="faber_trend_timing", filters=()),
        ["data.timeframe was '1h', not one of the timeframes ['1d']"],
    ),
    (
        "module_not_allowed_by_template",
        lambda s: _with(s, execution=ModuleRef(module="time_exit")),
        ["execution.module was 'time_exit'", "does not allow", "use one of"],
    ),
    (
        "baseline_not_the_template_baseline",
        lambda s: _with(s, baseline=ModuleRef(module="sma_cross")),
        ["baseline.module was 'sma_cross'", "baseline 'ema_cross'; use it"],
    ),
    (
        "required_filter_missing",
        lambda s: _with(s, filters=()),
        ["filters lacks 'adx_strength'", "add `- module: adx_strength`"],
    ),
    (
        "duplicate_filter",
        lambda s: _with(s, filters=(*s.filters, s.filters[0])),
        ["filters[1].module was 'adx_strength', already used at filters[0]"],
    ),
    (
        "unknown_template",
        lambda s: _with(s, template="astrology"),
        ["template was 'astrology'", "use one of ['absolute_momentum_long_only'"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [(mutate, expected) for _, mutate, expected in MALFORMED],
    ids=[name for name, _, _ in MALFORMED],
)
def test_validate_spec_malformed_spec_names_path_value_and_fix(
    mutate: Mutation,
    expected: list[str],
    valid_spec: StrategySpec,
    catalog: Catalog,
    registered: set[str],
    data_ranges: DataRanges,
) -> None:
    # Arrange
    spec = mutate(valid_spec)

    # Act
    with pytest.raises(SpecValidationError) as caught:
        validate_spec(spec, catalog, registered_instruments=registered, data_ranges=data_ranges)

    # Assert
    message = str(caught.value)
    assert message.startswith(f"spec '{spec.name}' ({spec.spec_id}) failed validation")
    for fragment in expected:
        assert fragment in message, message


def test_validate_spec_faber_direction_other_than_long_rejected(catalog: Catalog) -> None:
    # Arrange
    data = DataSlice(
        instruments=("yahoo.SPY.1d",),
        timeframe="1d",
        start=datetime(2010, 1, 1, tzinfo=UTC),
        end=datetime(2020, 1, 1, tzinfo=UTC),
    )
    spec = spec_from_entry(catalog.entry("faber_trend_timing"), data)
    both = _with(spec, filters=(ModuleRef(module="direction", params={"allow": "both"}),))

    # Act
    with pytest.raises(SpecValidationError) as caught:
        validate_spec(both, catalog)

    # Assert
    assert "filters[0].params['allow'] was 'both', not one of ['long']" in str(caught.value)


@pytest.mark.parametrize(
    ("timeframe", "valid"), [("4h", False), ("1d", True), ("1w", True)], ids=["4h", "1d", "1w"]
)
def test_validate_spec_higher_timeframe_must_cover_whole_bars(
    timeframe: str, valid: bool, catalog: Catalog
) -> None:
    # Arrange: on daily bars a 4h "higher" timeframe cannot be resampled; 1d and 1w can.
    data = DataSlice(
        instruments=("yahoo.SPY.1d",),
        timeframe="1d",
        start=datetime(2010, 1, 1, tzinfo=UTC),
        end=datetime(2020, 1, 1, tzinfo=UTC),
    )
    spec = spec_from_entry(catalog.entry("ema_crossover"), data)
    higher = ModuleRef(module="higher_timeframe_trend", params={"timeframe": timeframe})
    spec = _with(spec, filters=(higher,))

    # Act
    problems: list[str] = []
    try:
        validate_spec(spec, catalog)
    except SpecValidationError as e:
        problems.append(str(e))

    # Assert
    if valid:
        assert problems == []
    else:
        assert len(problems) == 1
        assert "filters[0].params['timeframe'] was '4h', not a whole multiple of " in problems[0]
        assert "choose a longer timeframe" in problems[0]


def test_validate_spec_asset_class_outside_template_rejected(catalog: Catalog) -> None:
    # Arrange
    data = DataSlice(
        instruments=("binance.BTC-USDT.1h",),
        timeframe="1h",
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2024, 6, 1, tzinfo=UTC),
    )
    spec = spec_from_entry(catalog.entry("intraday_momentum"), data)

    # Act
    with pytest.raises(SpecValidationError) as caught:
        validate_spec(spec, catalog, instrument_asset_classes={"binance.BTC-USDT.1h": "equity"})

    # Assert
    assert (
        "data.instruments[0] was 'binance.BTC-USDT.1h' (asset class equity), but template "
        "'intraday_momentum' is meant for ['crypto']"
    ) in str(caught.value)


def test_validate_spec_several_problems_reported_in_one_message(
    valid_spec: StrategySpec, catalog: Catalog, registered: set[str], data_ranges: DataRanges
) -> None:
    # Arrange: a disallowed execution (which also orphans the search key execution.stop_atr)
    # and an unregistered instrument without stored bars: four problems.
    spec = _data(
        _with(valid_spec, execution=ModuleRef(module="time_exit")),
        instruments=("binance.DOGE-USDT.1h",),
    )

    # Act
    with pytest.raises(SpecValidationError) as caught:
        validate_spec(spec, catalog, registered_instruments=registered, data_ranges=data_ranges)

    # Assert
    message = str(caught.value)
    assert "with 4 problem(s)" in message
    assert message.count("\n- ") == 4
    assert "execution.module was 'time_exit'" in message
    assert "search_space['execution.stop_atr']: execution 'time_exit'" in message
    assert "fix the module first" in message
    assert "data.instruments[0] was 'binance.DOGE-USDT.1h', which is not a registered" in message
    assert "data.instruments[0] was 'binance.DOGE-USDT.1h', which has no stored bars" in message


def test_validate_spec_failure_persists_nothing(
    tmp_path: Path, valid_spec: StrategySpec, catalog: Catalog
) -> None:
    # Arrange
    spec = _with(valid_spec, template="astrology")
    before = sorted(tmp_path.iterdir())

    # Act
    with pytest.raises(SpecValidationError):
        validate_spec(spec, catalog)

    # Assert
    assert sorted(tmp_path.iterdir()) == before
    assert not (PROJECT_DIR / "specs" / f"{spec.spec_id}.yaml").exists()


@pytest.mark.parametrize("name", load_catalog().names())
def test_spec_from_entry_every_entry_validates(name: str, catalog: Catalog) -> None:
    # Arrange
    entry = catalog.entry(name)
    timeframe = entry.timeframes[0]
    instrument = "yahoo.SPY.1d" if timeframe == "1d" else f"binance.BTC-USDT.{timeframe}"
    data = DataSlice(
        instruments=(instrument,),
        timeframe=timeframe,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2025, 1, 1, tzinfo=UTC),
    )

    # Act
    spec = spec_from_entry(entry, data)

    # Assert
    assert validate_spec(spec, catalog) is spec
    assert spec.template == name
    assert spec.lineage.created_by == "catalog"
    assert all(m.required == any(f.module == m.module for f in spec.filters) for m in entry.filters)


def test_spec_from_entry_defaults_and_search_space_follow_the_catalog(catalog: Catalog) -> None:
    # Arrange: ema_trend_adx bounds fast [5, 40], slow [50, 300], ADX lookback [7, 42], min_adx
    # [15, 40]; ema_cross defaults 10/50 and adx_strength 14/20.0 all lie inside, so they stay.
    entry = catalog.entry("ema_trend_adx")
    data = DataSlice(
        instruments=("binance.BTC-USDT.1h",),
        timeframe="1h",
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2025, 1, 1, tzinfo=UTC),
    )

    # Act
    spec = spec_from_entry(entry, data, execution="atr_stops")

    # Assert
    assert spec.baseline == ModuleRef(
        module="ema_cross", params={"fast_span_bars": 10, "slow_span_bars": 50}
    )
    assert spec.filters == (
        ModuleRef(module="adx_strength", params={"lookback_bars": 14, "min_adx": 20.0}),
    )
    # atr_stops defaults 14 / 2.0 / 4.0 lie inside [7, 50] / [1, 6] / [2, 12].
    assert spec.execution.params == {
        "atr_bars": 14,
        "stop_atr": 2.0,
        "target_atr": 4.0,
        "stops_from": "entry_bar",
    }
    assert spec.search_space == {
        "baseline.fast_span_bars": ParamRange(low=5, high=40, kind="int"),
        "baseline.slow_span_bars": ParamRange(low=50, high=300, kind="int"),
        "filters.adx_strength.lookback_bars": ParamRange(low=7, high=42, kind="int"),
        "filters.adx_strength.min_adx": ParamRange(low=15, high=40, kind="float"),
        "execution.atr_bars": ParamRange(low=7, high=50, kind="int"),
        "execution.stop_atr": ParamRange(low=1, high=6, kind="float"),
        "execution.target_atr": ParamRange(low=2, high=12, kind="float"),
        "risk.equity_fraction": ParamRange(low=0.25, high=1.0, kind="float"),
    }


def test_spec_from_entry_default_outside_bounds_takes_the_middle(catalog: Catalog) -> None:
    # Arrange: ema_crossover slow span bounds [60, 400] exclude the module default 50, so the
    # middle (60 + 400) / 2 = 230 is used; the fast default 10 lies inside [5, 50] and stays.
    entry = catalog.entry("ema_crossover")
    data = DataSlice(
        instruments=("binance.BTC-USDT.1h",),
        timeframe="1h",
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2025, 1, 1, tzinfo=UTC),
    )

    # Act
    spec = spec_from_entry(entry, data)

    # Assert
    assert spec.baseline.params == {"fast_span_bars": 10, "slow_span_bars": 230}


def test_spec_from_entry_module_not_allowed_raises(catalog: Catalog) -> None:
    # Arrange
    data = DataSlice(
        instruments=("binance.BTC-USDT.1h",),
        timeframe="1h",
        start=datetime(2024, 1, 1, tzinfo=UTC),
        end=datetime(2025, 1, 1, tzinfo=UTC),
    )

    # Act
    with pytest.raises(SpecValidationError) as caught:
        spec_from_entry(catalog.entry("chandelier_trend"), data, execution="time_exit")

    # Assert
    assert "execution 'time_exit' is not allowed by template 'chandelier_trend'" in str(
        caught.value
    )
    assert "use one of ['chandelier']" in str(caught.value)


@pytest.mark.parametrize(
    ("timeframe", "expected"),
    [
        ("1h", (8760, 2184, 24)),  # 365 x 24, 91 x 24, 24
        ("4h", (2190, 546, 6)),  # 365 x 6, 91 x 6, 6
        ("1d", (756, 126, 5)),  # three trading years, half a year, a week
    ],
)
def test_default_walk_forward_timeframe_sets_window_lengths(
    timeframe: str, expected: tuple[int, int, int]
) -> None:
    # Act
    config = default_walk_forward(timeframe)

    # Assert
    assert (config.train_bars, config.test_bars, config.embargo_bars) == expected
