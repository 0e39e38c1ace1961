"""Specs as YAML: exact round trips, and malformed documents named by field path and fix."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import DataSlice, ModuleRef, ParamRange, StrategySpec
from quant_assets.strategy.catalog.loader import Catalog, load_catalog
from quant_assets.strategy.spec_io import dump_spec_yaml, field_path, load_spec_yaml
from quant_assets.strategy.validation import spec_from_entry

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"
EXAMPLE_SPECS = sorted(SPECS_DIR.glob("*.yaml"))

VALID_TEXT = """
name: tiny
hypothesis: EMA crosses on BTC trend.
template: ema_crossover
data:
  instruments: [binance.BTC-USDT.1h]
  timeframe: 1h
  start: 2024-01-01T00:00:00Z
  end: 2024-07-01T00:00:00Z
baseline:
  module: ema_cross
  params: {fast_span_bars: 12, slow_span_bars: 90}
search_space:
  baseline.fast_span_bars: {low: 5, high: 50, kind: int}
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _spec(**changes: object) -> StrategySpec:
    base = StrategySpec(
        name="round trip",
        hypothesis="A hypothesis: with a colon, 'quotes' and unicode - e.g. \u00e9t\u00e9.",
        template="ema_crossover",
        data=DataSlice(
            instruments=("binance.BTC-USDT.1h", "binance.ETH-USDT.1h"),
            timeframe="1h",
            start=datetime(2018, 1, 1, tzinfo=UTC),
            end=datetime(2025, 9, 1, tzinfo=UTC),
        ),
        baseline=ModuleRef(module="ema_cross", params={"fast_span_bars": 7, "slow_span_bars": 99}),
        filters=(ModuleRef(module="direction", params={"allow": "long"}),),
        execution=ModuleRef(module="trailing_pct", params={"trailing_stop_rate": 0.1 + 0.2}),
        search_space={
            "baseline.slow_span_bars": ParamRange(low=60, high=400, kind="int", log=True),
            "execution.trailing_stop_rate": ParamRange(low=1e-2, high=0.2, kind="float"),
        },
    )
    return base.model_copy(update=changes)


@pytest.mark.parametrize("path", EXAMPLE_SPECS, ids=lambda p: p.stem)
def test_dump_spec_yaml_example_spec_round_trips_with_same_id(path: Path) -> None:
    # Arrange
    spec = load_spec_yaml(path)

    # Act
    text = dump_spec_yaml(spec)
    reloaded = load_spec_yaml(text)

    # Assert
    assert reloaded == spec
    assert reloaded.spec_id == spec.spec_id
    assert dump_spec_yaml(reloaded) == text


def test_dump_spec_yaml_awkward_values_round_trip_exactly() -> None:
    # Arrange: 0.1 + 0.2 = 0.30000000000000004 must survive as that exact float, an int stays an
    # int, a string that looks like YAML syntax stays a string.
    spec = _spec()

    # Act
    reloaded = load_spec_yaml(dump_spec_yaml(spec))

    # Assert
    assert reloaded == spec
    assert reloaded.spec_id == spec.spec_id
    assert reloaded.execution.params["trailing_stop_rate"] == 0.30000000000000004
    assert type(reloaded.baseline.params["fast_span_bars"]) is int
    assert reloaded.hypothesis == spec.hypothesis


def test_dump_spec_yaml_every_catalog_instantiation_round_trips(catalog: Catalog) -> None:
    # Arrange
    data = DataSlice(
        instruments=("binance.BTC-USDT.1h",),
        timeframe="1h",
        start=datetime(2025, 3, 1, tzinfo=UTC),
        end=datetime(2025, 9, 1, tzinfo=UTC),
    )
    specs = [spec_from_entry(e, data) for e in catalog.entries if "1h" in e.timeframes]

    # Act
    reloaded = [load_spec_yaml(dump_spec_yaml(spec)) for spec in specs]

    # Assert
    assert len(specs) >= 25
    assert [s.spec_id for s in reloaded] == [s.spec_id for s in specs]


def test_dump_spec_yaml_first_line_names_the_spec_id() -> None:
    # Arrange
    spec = _spec()

    # Act
    first_line = dump_spec_yaml(spec).splitlines()[0]

    # Assert
    assert first_line == f"# spec_id: {spec.spec_id}"


def test_load_spec_yaml_path_str_path_and_text_agree(tmp_path: Path) -> None:
    # Arrange
    file = tmp_path / "tiny.yaml"
    file.write_text(VALID_TEXT, encoding="utf-8")

    # Act
    from_path = load_spec_yaml(file)
    from_str_path = load_spec_yaml(str(file))
    from_text = load_spec_yaml(VALID_TEXT)

    # Assert
    assert from_path == from_str_path == from_text
    assert from_text.data.start == datetime(2024, 1, 1, tzinfo=UTC)
    assert from_text.data.instruments == ("binance.BTC-USDT.1h",)
    assert from_text.search_space["baseline.fast_span_bars"] == ParamRange(low=5, high=50)
    assert from_text.execution == ModuleRef(module="signal_exit_only")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("template: ema_crossover\n", "", ["template is missing", "add it"]),
        ("name: tiny\n", "name: tiny\nbogus: 1\n", ["bogus was 1", "remove it"]),
        (
            "start: 2024-01-01T00:00:00Z",
            "start: '2024-01-01 00:00'",
            ["data.start was '2024-01-01 00:00'", "timezone", "UTC offset"],
        ),
        (
            "fast_span_bars: 12,",
            "fast_span_bars: [12],",
            ["baseline.params['fast_span_bars'] was [12]", "valid number"],
        ),
        (
            "{low: 5, high: 50, kind: int}",
            "{low: 50, high: 5, kind: int}",
            [
                "search_space['baseline.fast_span_bars'] was",
                "low 50.0 is above high 5.0; swap them",
            ],
        ),
        (
            "{low: 5, high: 50, kind: int}",
            "{low: 5, high: 50, kind: integer}",
            ["search_space['baseline.fast_span_bars'].kind was 'integer'", "'int' or 'float'"],
        ),
        ("instruments: [binance.BTC-USDT.1h]", "instruments: []", ["data.instruments was []"]),
    ],
    ids=["missing", "extra", "naive_time", "param_list", "low_above_high", "kind", "no_instrument"],
)
def test_load_spec_yaml_malformed_field_names_path_value_and_fix(
    old: str, new: str, expected: list[str]
) -> None:
    # Arrange
    assert old in VALID_TEXT
    text = VALID_TEXT.replace(old, new)

    # Act
    with pytest.raises(SpecValidationError) as caught:
        load_spec_yaml(text)

    # Assert
    message = str(caught.value)
    assert message.startswith("spec YAML: the spec is malformed (1 problem(s))")
    for fragment in expected:
        assert fragment in message


def test_load_spec_yaml_several_problems_listed_together() -> None:
    # Arrange
    text = VALID_TEXT.replace("template: ema_crossover\n", "").replace("name: tiny", "name: ''")

    # Act
    with pytest.raises(SpecValidationError) as caught:
        load_spec_yaml(text)

    # Assert
    message = str(caught.value)
    assert "(2 problem(s))" in message
    assert "template is missing" in message
    assert "name was ''" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "is not valid YAML"),
        ("- a\n- b\n", "top level was list, not a mapping"),
        ("", "top level was NoneType, not a mapping"),
    ],
    ids=["syntax", "list", "empty"],
)
def test_load_spec_yaml_not_a_mapping_raises(text: str, expected: str) -> None:
    # Act
    with pytest.raises(SpecValidationError) as caught:
        load_spec_yaml(text)

    # Assert
    assert expected in str(caught.value)


def test_load_spec_yaml_missing_file_names_the_path(tmp_path: Path) -> None:
    # Arrange
    missing = tmp_path / "nope.yaml"

    # Act
    with pytest.raises(SpecValidationError) as caught:
        load_spec_yaml(missing)

    # Assert
    assert f"spec file {missing} does not exist" in str(caught.value)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            ("search_space", "baseline.fast_span_bars", "high"),
            "search_space['baseline.fast_span_bars'].high",
        ),
        (("filters", 0, "module"), "filters[0].module"),
        (("baseline", "params", "slow_span_bars", "float"), "baseline.params['slow_span_bars']"),
        (("data", "instruments", 2), "data.instruments[2]"),
        ((), "<document>"),
    ],
)
def test_field_path_location_renders_readable_path(
    location: tuple[int | str, ...], expected: str
) -> None:
    # Act
    path = field_path(location)

    # Assert
    assert path == expected
