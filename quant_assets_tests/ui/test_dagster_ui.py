"""The Dagster UI, served by `dagster dev` and driven in headless Chromium (`make test-ui`).

The sample project (conftest.py) holds materialized bars, data_versions, strategy_specs,
walkforward_results with its audits, and a discarded archive record. Each test saves a
screenshot under its tmp_path and prints the path.
"""

import re
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Locator, Page, expect

from quant_assets.defs.resources import WarehouseResource
from quant_assets_tests.ui.conftest import UI_GOAL, DagsterUi

pytestmark = pytest.mark.ui

PIPELINE_ASSETS = [
    "bars",
    "data_versions",
    "strategy_specs",
    "walkforward_results",
    "archive_records",
    "research_state",
]
# The launched run starts a process that imports the code location (about 5 s here).
RUN_TIMEOUT_MS = 90_000


def _save_screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")  # noqa: T201 - the path is the point of the screenshot


def _metadata_row(page: Page, key: str) -> Locator:
    # A row of the asset page's metadata table: key, timestamp, value.
    return page.get_by_role("row").filter(has=page.get_by_text(key, exact=True))


def test_asset_graph_shows_every_pipeline_asset(
    dagster_ui: DagsterUi, page: Page, tmp_path: Path
) -> None:
    # Arrange
    page.goto(f"{dagster_ui.base_url}/asset-groups")

    # Act: the global lineage opens with its groups collapsed.
    page.get_by_role("button", name="settings", exact=True).click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")

    graph = page.locator("svg foreignObject")
    expect(graph.get_by_text("bars", exact=True)).to_be_visible()
    expect(graph.get_by_text(re.compile(r"^Loading"))).to_have_count(0)  # nodes' live status
    _save_screenshot(page, tmp_path / "asset_graph.png")

    # Assert: asset nodes are drawn inside the graph's SVG, at a zoom that shows full names.
    assert graph.locator('[class*="minimalName"]').count() == 0, (
        "the asset graph zoomed out below 0.6 and cut node names; enlarge VIEWPORT in conftest.py"
    )
    for name in PIPELINE_ASSETS:
        expect(graph.get_by_text(name, exact=True)).to_be_visible()


def test_walkforward_results_page_shows_oos_sharpe_and_equity_chart(
    dagster_ui: DagsterUi, page: Page, tmp_path: Path
) -> None:
    # Arrange
    project = dagster_ui.project
    page.goto(f"{dagster_ui.base_url}/assets/walkforward_results")

    # Act: the overview shows the latest materialization's metadata; the chart opens in a dialog.
    sharpe_cell = _metadata_row(page, "oos_sharpe").locator("td").nth(2)
    expect(sharpe_cell).to_be_visible()
    shown_sharpe = float(sharpe_cell.inner_text())
    _save_screenshot(page, tmp_path / "walkforward_results.png")
    _metadata_row(page, "equity_chart").get_by_text("[Show Markdown]").click()
    chart = page.get_by_role("dialog").locator('img[src^="data:image/png"]')
    expect(chart).to_be_visible()
    chart_width, chart_height = chart.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    _save_screenshot(page, tmp_path / "equity_chart.png")

    # Assert: the page names the spec partition and shows the Sharpe the archive recorded.
    expect(page.get_by_text(project.spec_id, exact=True).first).to_be_visible()
    assert shown_sharpe == pytest.approx(project.oos_sharpe, rel=1e-12)
    assert chart_width > 0
    assert chart_height > 0


def test_approval_job_launched_from_launchpad_shows_refusal_and_changes_nothing(
    dagster_ui: DagsterUi, page: Page, tmp_path: Path
) -> None:
    # Arrange: only a frozen record can be approved; the sample record is discarded.
    project = dagster_ui.project
    assert project.record_state == "discarded"
    archive = WarehouseResource(project_dir=str(project.project_dir)).archive()
    transitions_before = archive.transitions(project.record_id)
    decision = {
        "record_id": project.record_id,
        "decision": "approve",
        "approver": "Ada Lovelace",
        "reason": "browser test",
    }
    run_config = yaml.safe_dump({"ops": {"record_decision": {"config": decision}}})
    page.goto(
        f"{dagster_ui.base_url}/locations/quant_assets.definitions/jobs/approval_job/playground"
    )

    # Act: the launchpad's YAML editor is CodeMirror, which keeps its instance on its node.
    editor = page.locator(".CodeMirror").first
    expect(editor).to_be_visible()
    editor.evaluate("(node, text) => node.CodeMirror.setValue(text)", run_config)
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
    expect(page.get_by_text("STEP_FAILURE", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    _save_screenshot(page, tmp_path / "approval_run.png")

    # Assert
    refusal = re.compile(f"approve of record {project.record_id} .* refused: the record is 'disc")
    expect(page.get_by_text(refusal).first).to_be_visible()
    assert archive.get(project.record_id).state == "discarded"
    assert archive.transitions(project.record_id) == transitions_before


def test_research_state_page_shows_the_goal_status_and_its_iter_state(
    dagster_ui: DagsterUi, page: Page, tmp_path: Path
) -> None:
    # Arrange
    page.goto(f"{dagster_ui.base_url}/assets/research_state")

    # Act: the latest materialization (the started goal) and its ITER_STATE block.
    status_cell = _metadata_row(page, "status").locator("td").nth(2)
    expect(status_cell).to_be_visible()
    status = status_cell.inner_text().strip()
    iter_state = _metadata_row(page, "iter_state")
    expect(iter_state).to_be_visible()
    opener = iter_state.get_by_text("[Show Markdown]")
    if opener.count():
        opener.click()
        block = page.get_by_role("dialog")
    else:
        block = iter_state
    _save_screenshot(page, tmp_path / "research_state.png")

    # Assert
    assert status == "CONTINUING"
    expect(page.get_by_text(UI_GOAL, exact=True).first).to_be_visible()
    expect(block.get_by_text(re.compile(rf"ITER_STATE goal {UI_GOAL}"))).to_be_visible()
    expect(block.get_by_text(re.compile("next dimension: hypothesis"))).to_be_visible()
