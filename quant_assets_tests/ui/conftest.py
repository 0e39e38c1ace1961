"""A sample project served by `dagster dev` on 127.0.0.1, and headless Chromium to look at it.

The project lives in a temp dir: BTC and ETH 1h bars for January to May 2021 from the shipped
sample, the data_versions manifest, the small walk-forward spec validated, evaluated (with its
audits) and archived, all materialized through the project's own jobs on a temp instance whose
dagster.yaml is the shipped one. `dagster dev` then serves that instance with the working
directory set to the temp project, where `WarehouseResource`'s relative paths resolve.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import dagster as dg
import pytest
import yaml
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, expect, sync_playwright

from quant_assets.definitions import defs as project_definitions
from quant_assets.defs.governance import archive_records
from quant_assets.defs.launch import (
    QUIET_CONSOLE,
    materialize_bars_range,
    materialize_data_versions,
    materialize_partition,
    register_instruments,
)
from quant_assets.defs.partitions import SPEC_PARTITIONS_NAME
from quant_assets.defs.research_driver import change_research_state
from quant_assets.defs.resources import WarehouseResource
from quant_assets.domain.errors import QuantAssetsError
from quant_assets.storage.research import save_spec
from quant_assets_tests.backtest.walkforward_fixtures import BTC, ETH, small_spec

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHROMIUM: Final = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections fail on this network and
# page loads stall (NOTES-stack.md section 8).
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIRST_MONTH, LAST_MONTH = "2021-01-01", "2021-05-01"
UI_GOAL: Final = "ui_trend_goal"
# The spec's period must lie inside the stored bars (pre-flight): January to May 2021.
SPEC_START, SPEC_END = "2021-01-01T00:00:00Z", "2021-06-01T00:00:00Z"
SERVER_START_SECONDS = 90.0
SERVER_STOP_SECONDS = 20.0
UI_TIMEOUT_MS = 30_000
# The global asset graph zooms to fit; below a scale of 0.6 dagster-webserver draws minimal
# nodes whose names are cut to 18 characters ("walkforwa…_results"). At 2560x1440 today's
# graph fits at 0.78; a graph that outgrows it fails the graph test with a message.
# The expected audit failure stays in the instance (and the UI), not on the test's console.
SILENT_CONSOLE: Final = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
VIEWPORT: Final[ViewportSize] = {"width": 2560, "height": 1440}


@dataclass(frozen=True)
class SampleProject:
    """A temp project with materialized sample assets, and what a test may look for in it."""

    project_dir: Path
    dagster_home: Path
    spec_id: str
    record_id: str
    record_state: str
    oos_sharpe: float


@dataclass(frozen=True)
class DagsterUi:
    """A running `dagster dev` serving the sample project."""

    base_url: str
    project: SampleProject
    log_path: Path


def _make_project(root: Path) -> tuple[Path, Path]:
    project, home = root / "project", root / "dagster_home"
    project.mkdir()
    home.mkdir()
    for name in ("instruments.yaml", "preferences.yaml", "workspace.yaml"):
        shutil.copy(PROJECT_DIR / name, project / name)
    (project / "data").mkdir()
    (project / "data" / "sample").symlink_to(PROJECT_DIR / "data" / "sample")
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    # dagster-webserver shows a "Join the Dagster community" modal over the first page unless
    # this file exists (dagster/_core/nux.py); it would hide the graph from the screenshots.
    (home / ".nux").mkdir()
    (home / ".nux" / "nux.yaml").write_text("seen: 1\n", encoding="utf-8")
    return project, home


def _materialize_samples(project: Path, home: Path) -> SampleProject:
    # The project's own Definitions, whose WarehouseResource resolves "." at run time: the
    # caller has made `project` the working directory, as it is for the served UI.
    resource, defs = WarehouseResource(), project_definitions()
    period = {"instruments": [BTC, ETH], "timeframe": "1h", "start": SPEC_START, "end": SPEC_END}
    spec = small_spec(name="ui_sample", data=period)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        configs = [c for c in resource.default_instruments() if c.key in (BTC, ETH)]
        register_instruments(instance, resource, configs)
        for config in configs:
            materialize_bars_range(instance, defs, config.key, FIRST_MONTH, LAST_MONTH)
        materialize_data_versions(instance, defs)
        save_spec(resource.warehouse(), spec)
        instance.add_dynamic_partitions(SPEC_PARTITIONS_NAME, [spec.spec_id])
        materialize_partition(instance, defs, "strategy_specs_job", spec.spec_id)
        _evaluate_and_archive(instance, defs, resource, spec.spec_id)
        _start_goal(project, instance, defs)
    (record,) = resource.archive().list()
    return SampleProject(
        project_dir=project,
        dagster_home=home,
        spec_id=spec.spec_id,
        record_id=record.record_id,
        record_state=str(record.state),
        oos_sharpe=record.metrics.oos.sharpe,
    )


def _start_goal(project: Path, instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
    # A research goal over the stored months, started: research_state[UI_GOAL] materialized.
    goal = yaml.safe_load((PROJECT_DIR / "goals" / "btc_eth_trend_1h.yaml").read_text())
    goal["name"] = UI_GOAL
    goal["data"] = {"instruments": [BTC, ETH], "timeframe": "1h", "start": SPEC_START}
    goal["data"]["end"] = SPEC_END
    (project / "goals").mkdir()
    (project / "goals" / f"{UI_GOAL}.yaml").write_text(yaml.safe_dump(goal), encoding="utf-8")
    change_research_state(instance, defs, UI_GOAL, "start")


def _evaluate_and_archive(
    instance: dg.DagsterInstance, defs: dg.Definitions, resource: WarehouseResource, spec_id: str
) -> None:
    # On five months the small spec's deflated Sharpe is low, so the blocking overfitting_gap
    # audit fails the walk-forward run after the asset materialized: the UI shows a failed
    # check and archive_records a discarded record, which approval_job must refuse.
    evaluated = defs.resolve_job_def("walkforward_job").execute_in_process(
        run_config=SILENT_CONSOLE, instance=instance, partition_key=spec_id, raise_on_error=False
    )
    if not evaluated.asset_materializations_for_node("walkforward_results"):
        raise QuantAssetsError(f"walkforward_results[{spec_id}] did not materialize")
    archived = dg.materialize(
        [archive_records],
        partition_key=spec_id,
        instance=instance,
        resources={"warehouse": resource},
        run_config=QUIET_CONSOLE,
        raise_on_error=False,
    )
    if not archived.success:
        raise QuantAssetsError(f"archive_records[{spec_id}] did not materialize")


@pytest.fixture(scope="session")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> SampleProject:
    """Return a temp project whose sample assets are materialized on its own temp instance."""
    project, home = _make_project(tmp_path_factory.mktemp("ui"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        patch.chdir(project)
        return _materialize_samples(project, home)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_serving(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log = log_path.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(
                f"dagster dev exited with {server.returncode} before serving:\n{log}"
            )
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise TimeoutError(f"dagster dev did not answer {url}/server_info in {SERVER_START_SECONDS} s")


@contextmanager
def _children_stop_on_sigint() -> Iterator[None]:
    # dagster dev stops cleanly only on SIGINT (NOTES-stack.md B13). A process started in the
    # background (`cmd &`) ignores SIGINT and its children inherit that; a caught SIGINT is
    # reset to the default in a child, so catch it here while the child starts.
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(server: subprocess.Popen[bytes]) -> None:
    # SIGINT to the whole session stops dagster dev and its webserver and daemon (NOTES-stack.md
    # B13: it ignores SIGTERM when started without a terminal).
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=SERVER_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture(scope="session")
def dagster_ui(
    sample_project: SampleProject, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DagsterUi]:
    """Yield `dagster dev` serving the sample project on a free port of 127.0.0.1."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("dagster_dev") / "dagster_dev.log"
    env = {**os.environ, "DAGSTER_HOME": str(sample_project.dagster_home)}
    command = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml"]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log, _children_stop_on_sigint():
        server = subprocess.Popen(
            command,
            cwd=sample_project.project_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_serving(base_url, server, log_path)
        yield DagsterUi(base_url=base_url, project=sample_project, log_path=log_path)
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Yield Playwright's sync API."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Yield Debian's headless Chromium (`sudo apt-get install -y chromium`, README)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} was not found; install it with `sudo apt-get install -y chromium`")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Yield a fresh page (its own cookies and local storage) in a `VIEWPORT` window."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()
