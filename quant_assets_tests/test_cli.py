"""The real command lines (quant-assets and dagster) on a temp project with a temp instance."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Return a temp project dir: instruments.yaml, the shipped sample, its own DAGSTER_HOME."""
    shutil.copy(PROJECT_DIR / "instruments.yaml", tmp_path / "instruments.yaml")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sample").symlink_to(PROJECT_DIR / "data" / "sample")
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", tmp_path / "dagster_home")
    return tmp_path


def _run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DAGSTER_HOME": str(project / "dagster_home")}
    return subprocess.run(
        [str(BIN_DIR / command[0]), *command[1:]],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dagster_cli_materializes_partition_and_range(project: Path) -> None:
    # Arrange
    sync = _run(project, "quant-assets", "instruments", "sync")

    # Act
    single = _run(
        project,
        "dagster",
        "asset",
        "materialize",
        "-m",
        "quant_assets.definitions",
        "--select",
        "bars",
        "--partition",
        "binance.BTC-USDT.1h|2024-01-01",
    )
    ranged = _run(
        project,
        "dagster",
        "asset",
        "materialize",
        "-m",
        "quant_assets.definitions",
        "--select",
        "bars",
        "--partition-range",
        "yahoo.SPY.1d|2020-01-01...yahoo.SPY.1d|2020-06-01",
    )
    listing = _run(project, "quant-assets", "data", "list", "--json")

    # Assert: January 2024 has 744 hours; SPY had 21+19+22+21+20+22 = 125 sessions in H1 2020.
    assert sync.returncode == 0, sync.stderr
    assert single.returncode == 0, single.stderr[-2000:]
    assert ranged.returncode == 0, ranged.stderr[-2000:]
    summary = {row["instrument"]: row for row in json.loads(listing.stdout)}
    assert summary["binance.BTC-USDT.1h"]["rows"] == 744
    assert summary["yahoo.SPY.1d"]["months"] == 6
    assert summary["yahoo.SPY.1d"]["rows"] == 125
    assert (project / "data" / "lake" / "bars" / "yahoo.SPY.1d" / "2020-03.parquet").exists()


def test_dagster_definitions_validate_passes(project: Path) -> None:
    # Act
    result = _run(project, "dagster", "definitions", "validate", "-m", "quant_assets.definitions")

    # Assert
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful" in result.stdout + result.stderr


def test_instruments_add_malformed_key_fails_with_one_clear_line(project: Path) -> None:
    # Act
    result = _run(project, "quant-assets", "instruments", "add", "BTCUSDT")

    # Assert
    assert result.returncode == 2
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("error: instrument key 'BTCUSDT' is not of the form")
    assert "venue.SYMBOL.timeframe" in first_line


def test_demo_twice_changes_no_data_version_and_adds_no_rows(project: Path) -> None:
    # Arrange: the demo on two of the default instruments.
    (project / "instruments.yaml").write_text(
        "instruments:\n"
        "  - {key: binance.ETH-USDT.1h, source: sample, asset_class: crypto}\n"
        "  - {key: yahoo.QQQ.1d, source: sample, asset_class: equity, whole_units: true}\n"
    )

    # Act
    first = _run(project, "quant-assets", "demo")
    rows_first = json.loads(_run(project, "quant-assets", "data", "list", "--json").stdout)
    second = _run(project, "quant-assets", "demo")
    rows_second = json.loads(_run(project, "quant-assets", "data", "list", "--json").stdout)

    # Assert: the shared README lists 67,078 ETH hours (92 months) and 6,805 QQQ sessions.
    assert first.returncode == 0, first.stderr[-2000:]
    assert second.returncode == 0, second.stderr[-2000:]
    assert rows_first == rows_second
    assert [(r["instrument"], r["months"], r["rows"]) for r in rows_first] == [
        ("binance.ETH-USDT.1h", 92, 67_078),
        ("yahoo.QQQ.1d", 325, 6_805),
    ]
    version_line = next(line for line in second.stdout.splitlines() if "data_versions:" in line)
    assert "(unchanged)" in version_line
    assert version_line.split()[1] in first.stdout


def test_dagster_cli_materializes_walkforward_results_for_example_spec(project: Path) -> None:
    # Arrange: BTC 1h loaded, the shipped time-series-momentum example spec registered.
    (project / "instruments.yaml").write_text(
        "instruments:\n  - {key: binance.BTC-USDT.1h, source: sample, asset_class: crypto}\n"
    )
    shutil.copy(PROJECT_DIR / "preferences.yaml", project / "preferences.yaml")
    spec_file = PROJECT_DIR / "specs" / "time_series_momentum_btc_1h.yaml"
    assert _run(project, "quant-assets", "demo").returncode == 0
    added = _run(project, "quant-assets", "specs", "add", str(spec_file))
    spec_id = added.stdout.split()[2]
    materialize = ("dagster", "asset", "materialize", "-m", "quant_assets.definitions")
    validated = _run(project, *materialize, "--select", "strategy_specs", "--partition", spec_id)

    # Act
    _run(project, *materialize, "--select", "walkforward_results", "--partition", spec_id)

    # Assert: the run and its six audits are on the instance (a blocking audit may fail).
    assert validated.returncode == 0, validated.stderr[-2000:]
    env_home = str(project / "dagster_home")
    script = (
        "import dagster as dg, json;"
        "i = dg.DagsterInstance.get();"
        "m = i.get_latest_materialization_event(dg.AssetKey('walkforward_results'));"
        "md = m.asset_materialization.metadata;"
        "print(json.dumps({'partition': m.asset_materialization.partition,"
        " 'sharpe': md['oos_sharpe'].value, 'windows': md['windows_recomputed'].value}))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", script],
        env=os.environ | {"DAGSTER_HOME": env_home},
        capture_output=True,
        text=True,
        check=True,
    )
    facts = json.loads(probe.stdout)
    assert facts["partition"] == spec_id
    assert facts["windows"] > 0
    assert isinstance(facts["sharpe"], float)
