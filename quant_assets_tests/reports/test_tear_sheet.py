"""Tear sheets of real walk-forward runs on the shipped BTC/ETH 1h bars, parsed back from HTML."""

import base64
import json
import struct
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest

from quant_assets.backtest.run_spec import DEFAULT_INITIAL_CASH
from quant_assets.backtest.walkforward import WalkForwardOutcome, run_walkforward
from quant_assets.defs.partitions import SPEC_PARTITIONS_NAME
from quant_assets.defs.resources import WarehouseResource
from quant_assets.defs.walkforward import walkforward_results
from quant_assets.governance.audits import audit_drawdown_limit, audit_min_trades
from quant_assets.governance.lifecycle import to_record_audits
from quant_assets.governance.preferences import load_preferences
from quant_assets.reports.collect import buy_and_hold_curve
from quant_assets.reports.figures import MONTH_NAMES
from quant_assets.reports.paths import tear_sheet_paths
from quant_assets.reports.tear_sheet import SECTION_IDS, TearSheetInputs, write_tear_sheet
from quant_assets.storage.research import mark_spec_validated, save_spec
from quant_assets_tests.backtest.walkforward_fixtures import (
    BTC,
    ETH,
    bars_until,
    sample_bars,
    small_spec,
)
from quant_assets_tests.defs.project_fixtures import stored_btc_eth_project

PROJECT_DIR = Path(__file__).resolve().parents[2]
# 168 warm-up + 1,500 train + 24 embargo bars, then six 400-bar test windows: March to June 2021.
N_BARS = 4_200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES_BY_SECTION = {
    "equity": ["equity_figure"],
    "drawdown": ["drawdown_figure"],
    "monthly_returns": ["monthly_returns_figure"],
    "rolling_sharpe": ["rolling_sharpe_figure"],
    "trades": ["trade_pnl_figure", "exit_reasons_figure"],
}


@dataclass
class Section:
    heading: str = ""
    text: str = ""
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)


class SheetParser(HTMLParser):
    """Collects sections, table body rows, external references and inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: dict[str, Section] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.external: list[str] = []
        self.scripts: list[str] = []
        self._section: Section | None = None
        self._in_h2 = False
        self._script: list[str] | None = None
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if found.get("src") or (tag == "link" and found.get("href")):
            self.external.append(found.get("src") or found["href"])
        if tag == "section":
            self._section = self.sections.setdefault(found["id"], Section())
        elif tag == "h2":
            self._in_h2 = True
        elif tag == "script":
            self._script = []
        elif tag == "div" and "plotly-graph-div" in found.get("class", "") and self._section:
            self._section.figures.append(found["id"])
        elif tag == "table":
            self._rows = self.tables.setdefault(found["id"], [])
            if self._section:
                self._section.tables.append(found["id"])
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        elif tag == "h2":
            self._in_h2 = False
        elif tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None
        elif tag == "td" and self._cell is not None and self._rows is not None:
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table" and self._rows is not None:
            self._rows[:] = [row for row in self._rows if row]  # header rows hold no td
            self._rows = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script.append(data)
            return
        if self._cell is not None:
            self._cell.append(data)
        if self._section is not None:
            if self._in_h2:
                self._section.heading += data
            else:
                self._section.text += data


def plotly_figures(scripts: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Return the traces of every `Plotly.newPlot(div_id, data, layout, config)` call."""
    decoder, figures = json.JSONDecoder(), {}
    for script in scripts:
        start = script.find("Plotly.newPlot(")
        while start != -1:
            position = start + len("Plotly.newPlot(")
            values = []
            for _ in range(2):
                while script[position] in " \n\r\t,":
                    position += 1
                value, position = decoder.raw_decode(script, position)
                values.append(value)
            figures[values[0]] = values[1]
            start = script.find("Plotly.newPlot(", position)
    return figures


def array_of(value: Any) -> np.ndarray:
    """Return a trace's data array, decoding plotly's base64 typed arrays (None: NaN)."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    if value and isinstance(value[0], list):
        return np.array([[np.nan if v is None else v for v in row] for row in value], dtype=float)
    return np.asarray(value)


@dataclass(frozen=True)
class Sheet:
    inputs: TearSheetInputs
    html_path: Path
    png_path: Path
    parser: SheetParser
    figures: dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def outcome() -> WalkForwardOutcome:
    """Return a real walk-forward run of the small spec on BTC and ETH, January to June 2021."""
    return run_walkforward(small_spec(), bars_until(sample_bars(), N_BARS), workers=2)


@pytest.fixture(scope="module")
def sheet(outcome: WalkForwardOutcome, tmp_path_factory: pytest.TempPathFactory) -> Sheet:
    """Write the run's tear sheet with two real audit verdicts and parse it back."""
    preferences = load_preferences(PROJECT_DIR / "preferences.yaml")
    audits = to_record_audits(
        [
            audit_min_trades(outcome.run.oos_report, preferences),
            audit_drawdown_limit(outcome.run.oos_report, preferences),
        ]
    )
    bars = bars_until(sample_bars(), N_BARS)
    inputs = TearSheetInputs(
        run=outcome.run,
        spec=small_spec(),
        oos_curve=outcome.oos_equity,
        trades=outcome.oos_trades,
        buy_and_hold=buy_and_hold_curve(bars, outcome.oos_equity["ts"], DEFAULT_INITIAL_CASH),
        initial_cash=DEFAULT_INITIAL_CASH,
        audits=audits,
        goal="default",
    )
    paths = write_tear_sheet(inputs, tmp_path_factory.mktemp("reports"))
    parser = SheetParser()
    parser.feed(paths.html.read_text(encoding="utf-8"))
    return Sheet(inputs, paths.html, paths.png, parser, plotly_figures(parser.scripts))


def test_tear_sheet_paths_are_spec_folder_and_run_files(sheet: Sheet) -> None:
    # Arrange
    run = sheet.inputs.run

    # Act
    expected = tear_sheet_paths(sheet.html_path.parents[1], run.spec_id, run.run_id)

    # Assert
    assert sheet.html_path == expected.html
    assert sheet.html_path.parent.name == run.spec_id
    assert sheet.html_path.name == f"{run.run_id}.html"
    assert sheet.png_path.name == f"{run.run_id}.png"
    assert not list(sheet.html_path.parent.glob("*.tmp"))


@pytest.mark.parametrize("bad_id", ["", "..", "a/b", "a\\b"])
def test_tear_sheet_paths_refuse_ids_that_leave_the_folder(bad_id: str, tmp_path: Path) -> None:
    # Act / Assert
    with pytest.raises(ValueError, match="no path separator"):
        tear_sheet_paths(tmp_path, bad_id, "run")


@pytest.mark.parametrize("section_id", SECTION_IDS)
def test_tear_sheet_section_has_heading_and_content(sheet: Sheet, section_id: str) -> None:
    # Act
    section = sheet.parser.sections.get(section_id)

    # Assert
    assert section is not None, f"section {section_id} is missing"
    assert section.heading.strip()
    assert section.figures or section.tables, f"section {section_id} holds no figure or table"
    assert all(sheet.parser.tables[table_id] for table_id in section.tables)
    assert section.text.strip()


@pytest.mark.parametrize("section_id", sorted(FIGURES_BY_SECTION))
def test_tear_sheet_figures_have_non_empty_traces(sheet: Sheet, section_id: str) -> None:
    # Act
    section = sheet.parser.sections[section_id]

    # Assert
    assert section.figures == FIGURES_BY_SECTION[section_id]
    for figure_id in section.figures:
        traces = sheet.figures[figure_id]
        assert traces, f"figure {figure_id} has no trace"
        for trace in traces:
            keys = ("x", "y", "z") if trace["type"] == "heatmap" else ("x", "y")
            for key in keys:
                assert array_of(trace[key]).size > 0, f"{figure_id} trace has an empty {key}"


def test_equity_figure_plots_stored_curve_and_independent_buy_and_hold(sheet: Sheet) -> None:
    # Arrange: buy and hold = half the cash in each coin at the first OOS bar's open.
    curve = sheet.inputs.oos_curve
    bars = bars_until(sample_bars(), N_BARS)
    first, last = curve["ts"][0], curve["ts"][-1]
    growth = [
        bars[key].filter(pl.col("ts") == last)["close"][0]
        / bars[key].filter(pl.col("ts") == first)["open"][0]
        for key in (BTC, ETH)
    ]

    # Act
    strategy, benchmark = sheet.figures["equity_figure"]

    # Assert
    np.testing.assert_array_equal(array_of(strategy["y"]), curve["equity"].to_numpy())
    assert len(array_of(benchmark["x"])) == curve.height
    assert array_of(benchmark["y"])[-1] == pytest.approx(
        DEFAULT_INITIAL_CASH * (growth[0] + growth[1]) / 2, rel=1e-12
    )


def test_monthly_heatmap_equals_compounded_bar_returns(sheet: Sheet) -> None:
    # Arrange: compound each bar's return (the first from the initial cash) per UTC month.
    curve = sheet.inputs.oos_curve
    expected: dict[tuple[str, str], float] = {}
    previous = DEFAULT_INITIAL_CASH
    for ts, equity in curve.select("ts", "equity").iter_rows():
        key = (str(ts.year), MONTH_NAMES[ts.month - 1])
        expected[key] = (1.0 + expected.get(key, 0.0)) * (equity / previous) - 1.0
        previous = equity

    # Act
    (heatmap,) = sheet.figures["monthly_returns_figure"]
    z = array_of(heatmap["z"]).astype(float)
    shown = {
        (year, month): z[row, column]
        for row, year in enumerate(heatmap["y"])
        for column, month in enumerate(heatmap["x"])
        if not np.isnan(z[row, column])
    }

    # Assert
    assert len(expected) >= 4  # March to June 2021
    assert shown.keys() == expected.keys()
    for key, value in expected.items():
        assert shown[key] == pytest.approx(value, abs=1e-9), key


def test_trade_figures_count_every_oos_trade(sheet: Sheet) -> None:
    # Arrange
    trades = sheet.inputs.trades
    reasons = dict(trades["exit_reason"].value_counts().iter_rows())

    # Act
    (histogram,) = sheet.figures["trade_pnl_figure"]
    (exits,) = sheet.figures["exit_reasons_figure"]

    # Assert
    assert trades.height > 0
    assert int(array_of(histogram["y"]).sum()) == trades.height
    assert dict(zip(exits["x"], array_of(exits["y"]).tolist(), strict=True)) == reasons


def test_tables_hold_the_runs_windows_metrics_regimes_and_audits(sheet: Sheet) -> None:
    # Arrange
    run, tables = sheet.inputs.run, sheet.parser.tables
    metrics = {row[0]: row[1:] for row in tables["run_metrics"]}

    # Act
    windows = tables["window_results"]

    # Assert
    assert [row[0] for row in windows] == [str(w.bounds.index) for w in run.windows]
    assert [row[6] for row in windows] == [f"{w.oos_report.sharpe:.2f}" for w in run.windows]
    assert metrics["Sharpe"] == [f"{run.is_report.sharpe:.2f}", f"{run.oos_report.sharpe:.2f}"]
    assert metrics["trades"] == [str(run.is_report.trades), str(run.oos_report.trades)]
    assert metrics["max drawdown"][1] == f"{run.oos_report.max_drawdown:.2%}"
    assert [row[:2] for row in tables["regime_stats"]] == [
        [r.regime, str(r.bars)] for r in run.regimes
    ]
    assert [row[0] for row in tables["audit_verdicts"]] == ["min_trades", "drawdown_limit"]
    assert {row[0] for row in tables["spec_modules"]} >= {"baseline", "execution", "risk"}
    assert dict(tables["data_versions"]) == run.data_versions


def test_tear_sheet_is_self_contained(sheet: Sheet) -> None:
    # Act
    remote = [ref for ref in sheet.parser.external if ref.startswith(("http://", "https://"))]
    embedded = [script for script in sheet.parser.scripts if len(script) > 1_000_000]

    # Assert
    assert remote == []
    assert sheet.parser.external == []
    assert len(embedded) == 1
    assert "Plotly" in embedded[0]


def test_equity_png_is_a_900_by_500_png_under_150_kb(sheet: Sheet) -> None:
    # Act
    png = sheet.png_path.read_bytes()
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk follows the signature

    # Assert
    assert png.startswith(PNG_SIGNATURE)
    assert 5_000 < len(png) < 150_000
    assert (width, height) == (900, 500)


@pytest.fixture
def project(tmp_path: Path) -> WarehouseResource:
    """Return a project in tmp_path with BTC and ETH 1h for January to April 2021 stored."""
    return stored_btc_eth_project(
        tmp_path, ["2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01"]
    )


def test_walkforward_results_metadata_links_tear_sheet_and_inlines_png(
    dagster_instance: dg.DagsterInstance, project: WarehouseResource
) -> None:
    # Arrange
    spec = small_spec()
    save_spec(project.warehouse(), spec)
    mark_spec_validated(project.warehouse(), spec.spec_id)
    dagster_instance.add_dynamic_partitions(SPEC_PARTITIONS_NAME, [spec.spec_id])

    # Act
    result = dg.materialize(
        [walkforward_results],
        partition_key=spec.spec_id,
        instance=dagster_instance,
        resources={"warehouse": project},
    )

    # Assert
    (event,) = result.asset_materializations_for_node("walkforward_results")
    html_path = Path(str(event.metadata["tear_sheet"].value))
    run_id = str(event.metadata["run_id"].value)
    assert html_path == project.reports_path() / spec.spec_id / f"{run_id}.html"
    assert html_path.exists()
    prefix = "![equity and drawdown](data:image/png;base64,"
    chart = str(event.metadata["equity_chart"].value)
    assert chart.startswith(prefix)
    assert chart.endswith(")")
    png = base64.b64decode(chart[len(prefix) : -1])
    assert png == html_path.with_suffix(".png").read_bytes()
    parser = SheetParser()
    parser.feed(html_path.read_text(encoding="utf-8"))
    assert len(parser.tables["audit_verdicts"]) == 6
    assert len(parser.tables["bars_partitions"]) == 2 * 4
