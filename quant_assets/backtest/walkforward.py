"""Walk-forward evaluation of a spec: planned windows, memoized per window, stitched OOS.

Windows are planned on the run's timeline (the bar times of the spec's instruments inside its
data slice), anchored at its first bar: the first train span starts after the warm-up the
spec's modules need, each later window moves by `step_bars` (rolling) or extends its train
span (anchored), an embargo gap separates train from test, and only complete test spans are
planned. Appending bars therefore only adds windows at the end and never moves earlier ones.

Each window is searched and traded by `window_eval.evaluate_window` and cached under a key of
the spec's evaluation content, the window bounds, the hash of exactly the bars it reads
(warm-up included) and the engine version: a re-run with nothing changed runs no backtest,
appended bars recompute only the windows that read them, and a changed module parameter
recomputes that spec's windows only. Windows run on threads or worker processes
(`windows.Parallelism`); each window's trials run in order with a seed of its own, so results
do not depend on how windows are spread over workers.
"""

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import version
from itertools import product
from pathlib import Path
from time import perf_counter
from typing import Final

import polars as pl

from quant_assets.backtest.run_spec import DEFAULT_INITIAL_CASH, SpecModules, build_spec_modules
from quant_assets.backtest.walkforward_report import RunSummary, summarize_windows
from quant_assets.backtest.windows import (
    BarHasher,
    Parallelism,
    evaluate_windows,
    window_tasks,
)
from quant_assets.domain.errors import BacktestInputError, ConfigurationError, SpecValidationError
from quant_assets.domain.ids import digest_of
from quant_assets.domain.progress import Progress
from quant_assets.domain.strategy import ParamRange, ParamValue, StrategySpec, WalkForwardConfig
from quant_assets.domain.walkforward import (
    WalkForwardRun,
    WindowBounds,
    WindowCache,
    WindowResult,
    run_id_of,
)

ENGINE_VERSION: Final = "1"
"""Bump when results change for a reason the hashed sources and library versions miss."""
_PACKAGE_DIR: Final = Path(__file__).resolve().parents[1]
_SOURCE_DIRS: Final = ("backtest", "strategy", "features")
_LIBRARIES: Final = ("numpy", "polars", "numba", "optuna")
_EVALUATION_FIELDS: Final[dict[str, bool | set[str]]] = {
    "baseline": True,
    "filters": True,
    "execution": True,
    "risk": True,
    "search_space": True,
    "walk_forward": True,
    "cost": True,
    "data": {"instruments", "timeframe"},
}


@dataclass(frozen=True)
class WalkForwardOutcome:
    """What `run_walkforward` returns.

    Attributes:
        run: The persisted record: windows, stitched reports, regimes, provenance.
        oos_equity: The stitched out-of-sample curve: ts, equity, exposure.
        oos_trades: Out-of-sample trades: instrument, then TRADES_SCHEMA (qty, pnl and fees
            scaled to the stitched curve; bar indices count the instrument's bars in the
            spec's data slice).
        backtests_executed: Backtests this call ran (trials plus two per computed window).
    """

    run: WalkForwardRun
    oos_equity: pl.DataFrame
    oos_trades: pl.DataFrame
    backtests_executed: int


class InMemoryWindowCache:
    """A WindowCache in a dict (thread-safe): for tests and single-process sessions."""

    def __init__(self) -> None:
        """Create an empty cache."""
        self._results: dict[str, WindowResult] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> WindowResult | None:
        """Return the result stored under `key`, or None."""
        with self._lock:
            return self._results.get(key)

    def put(self, key: str, result: WindowResult) -> None:
        """Store `result` under `key`."""
        with self._lock:
            self._results[key] = result

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)


def plan_windows(
    timeline: pl.Series | int, config: WalkForwardConfig, warmup_bars: int
) -> list[WindowBounds]:
    """Return the windows that fit on a timeline, anchored at its first bar.

    Window i trains on [w + i * step, w + train + i * step) (anchored: from w), with w the
    warm-up bars, tests on the `test_bars` bars after an `embargo_bars` gap, and reads warm-up
    bars only before its spans. A window is planned only when its whole test span fits.

    Args:
        timeline: The bar times (sorted, UTC), or just the number of bars (no times then).
        config: Train, test, step and embargo lengths in bars; rolling or anchored.
        warmup_bars: Bars the indicators read before a span (see `spec_warmup_bars`).

    Returns:
        The windows in order; empty when not even one fits.

    Raises:
        ConfigurationError: if warmup_bars is negative.
    """
    if warmup_bars < 0:
        raise ConfigurationError(
            f"plan_windows warmup_bars was {warmup_bars}; pass 0 or more bars of warm-up"
        )
    n_bars = timeline if isinstance(timeline, int) else timeline.len()
    times = None if isinstance(timeline, int) else timeline
    step = config.step_bars or config.test_bars
    windows: list[WindowBounds] = []
    index = 0
    while True:
        train_end = warmup_bars + config.train_bars + index * step
        train_start = warmup_bars if config.anchored else train_end - config.train_bars
        test_start = train_end + config.embargo_bars
        test_end = test_start + config.test_bars
        if test_end > n_bars:
            return windows
        spans = {
            "index": index,
            "warmup_start": train_start - warmup_bars,
            "train_start": train_start,
            "train_end": train_end,
            "test_start": test_start,
            "test_end": test_end,
        }
        windows.append(WindowBounds(**spans, **_times(spans, times)))
        index += 1


def spec_warmup_bars(spec: StrategySpec) -> int:
    """Return the bars of warm-up the spec's modules need anywhere in its search space.

    Each module's warm-up is taken at its spec values and at every corner of its searched
    ranges (a warm-up grows with lookbacks, so the corners bound it); corners the module
    rejects (e.g. a fast span above the slow one) are skipped.

    Raises:
        SpecValidationError: if the spec's own parameter values do not build.
    """
    warmup = max(_module_warmups(build_spec_modules(spec)))
    for corner in _corners(spec):
        try:
            modules = build_spec_modules(spec, corner)
        except SpecValidationError:
            continue  # a corner the modules reject is never traded either
        warmup = max(warmup, *_module_warmups(modules))
    return warmup


def window_cache_key(spec: StrategySpec, bounds: WindowBounds, bars_hash: str) -> str:
    """Return a window's memo key: spec evaluation content, bounds, bars hash, engine version.

    The spec part covers what decides a window's result (modules, search space, walk-forward
    config, costs, instruments, timeframe), not its name, hypothesis, lineage or period: the
    bounds and the bars hash pin the data.
    """
    evaluation = spec.model_dump(mode="json", include=_EVALUATION_FIELDS)
    return digest_of(
        [
            json.dumps(evaluation, sort_keys=True, separators=(",", ":")),
            bounds.model_dump_json(),
            bars_hash,
            engine_version(),
            f"initial_cash={DEFAULT_INITIAL_CASH!r}",
        ]
    )


@cache
def engine_version() -> str:
    """Return ENGINE_VERSION with a hash of the backtest, strategy and feature sources.

    Library versions (numpy, polars, numba, optuna) are part of the hash: a new TPE or a new
    rolling kernel can change results as surely as an edit of the kernel.
    """
    parts = [f"{name}={version(name)}" for name in _LIBRARIES]
    for folder in _SOURCE_DIRS:
        paths = sorted((_PACKAGE_DIR / folder).rglob("*.py"))
        parts += [
            f"{path.relative_to(_PACKAGE_DIR).as_posix()}:{path.read_text()}" for path in paths
        ]
    return f"{ENGINE_VERSION}-{digest_of(parts)[:12]}"


def run_walkforward(
    spec: StrategySpec,
    bars: Mapping[str, pl.DataFrame],
    *,
    cache: WindowCache | None = None,
    workers: int = 2,
    data_versions: Mapping[str, str] | None = None,
    preferences_hash: str = "",
    progress: Progress | None = None,
    parallelism: Parallelism = "threads",
) -> WalkForwardOutcome:
    """Evaluate `spec` walk-forward on `bars`, reusing cached windows.

    Per window, a seeded TPE study searches the spec's space on the train span for the
    spec's objective (a trial with fewer than `min_trades` trades scores worst); the best
    params trade the test span from flat. The test spans' curves are chained into the OOS
    curve; the run's DSR deflates its Sharpe by every trial behind the windows.

    Args:
        spec: The strategy spec; its walk_forward config sets windows, trials and objective.
        bars: Canonical bars per instrument key; each of spec.data.instruments is required
            and is used inside [data.start, data.end).
        cache: Window results by key; None computes every window.
        workers: Windows evaluated at once (results do not depend on it).
        data_versions: Data version per instrument to record; None hashes the bars used.
        preferences_hash: Hash of the preferences in force, recorded on the run.
        progress: Receives trial counts while windows are computed.
        parallelism: Threads or (kept) worker processes, when workers > 1 (see Parallelism).

    Returns:
        The run record, the stitched OOS curve and trades, and the backtests executed.

    Raises:
        ConfigurationError: if workers < 1.
        SpecValidationError: if bars are missing for an instrument or parameters are invalid.
        BacktestInputError: if the bars hold no window or break the engine's contract.
    """
    if workers < 1:
        raise ConfigurationError(f"run_walkforward workers was {workers}; pass 1 or more")
    started_at, started = datetime.now(UTC), perf_counter()
    frames = _sliced_bars(spec, bars)
    timeline = _timeline(frames)
    plan = plan_windows(timeline, spec.walk_forward, spec_warmup_bars(spec))
    if not plan:
        raise BacktestInputError(_no_window_message(spec, timeline.len()))
    hashers = {key: BarHasher(key, frame) for key, frame in frames.items()}
    tasks = window_tasks(
        spec, hashers, timeline, plan, lambda bounds, digest: window_cache_key(spec, bounds, digest)
    )
    results, computed = evaluate_windows(
        spec,
        frames,
        tasks,
        cache=cache,
        workers=workers,
        parallelism=parallelism,
        initial_cash=DEFAULT_INITIAL_CASH,
        progress=progress,
    )
    if data_versions is None:
        data_versions = {key: hasher.digest() for key, hasher in hashers.items()}
    summary = summarize_windows(spec, results, initial_cash=DEFAULT_INITIAL_CASH)
    provenance = (dict(data_versions), preferences_hash, started_at, started)
    run = _run_record(spec, results, computed, summary, provenance)
    backtests = sum(results[i].backtests for i in computed)
    return WalkForwardOutcome(run, summary.oos_equity, summary.oos_trades, backtests)


def _run_record(
    spec: StrategySpec,
    results: tuple[WindowResult, ...],
    computed: list[int],
    summary: RunSummary,
    provenance: tuple[dict[str, str], str, datetime, float],
) -> WalkForwardRun:
    versions, preferences_hash, started_at, started = provenance
    return WalkForwardRun(
        run_id=run_id_of(spec.spec_id, versions, engine_version(), preferences_hash, results),
        spec_id=spec.spec_id,
        data_versions=versions,
        engine_version=engine_version(),
        preferences_hash=preferences_hash,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        seconds=perf_counter() - started,
        windows=results,
        windows_recomputed=len(computed),
        windows_reused=len(results) - len(computed),
        trials_executed=sum(results[i].trials for i in computed),
        trials_total=sum(result.trials for result in results),
        is_report=summary.is_report,
        oos_report=summary.oos_report,
        regimes=tuple(summary.regimes),
        deflated_sharpe=summary.oos_report.deflated_sharpe,
        step_summary=summary.step_summary,
    )


def _times(spans: Mapping[str, int], times: pl.Series | None) -> dict[str, datetime]:
    if times is None:
        return {}
    last_train, last_test = spans["train_end"] - 1, spans["test_end"] - 1
    rows = {
        "warmup_first_at": spans["warmup_start"],
        "train_first_at": spans["train_start"],
        "train_last_at": last_train,
        "test_first_at": spans["test_start"],
        "test_last_at": last_test,
    }
    return {name: times[row] for name, row in rows.items()}


def _module_warmups(modules: SpecModules) -> list[int]:
    parts = [modules.baseline, *modules.filters, modules.execution, modules.risk]
    return [module.warmup_bars() for module in parts]


def _corners(spec: StrategySpec) -> list[dict[str, ParamValue]]:
    # Every combination of each module's searched ranges at their ends (modules apart: a
    # module's warm-up depends on its own parameters only).
    by_module: dict[str, list[str]] = {}
    for path in sorted(spec.search_space):
        by_module.setdefault(path.rsplit(".", 1)[0], []).append(path)
    corners: list[dict[str, ParamValue]] = []
    for paths in by_module.values():
        ends = [_ends(spec.search_space[path]) for path in paths]
        corners += [dict(zip(paths, values, strict=True)) for values in product(*ends)]
    return corners


def _ends(bounds: ParamRange) -> tuple[ParamValue, ParamValue]:
    if bounds.kind == "int":
        return math.ceil(bounds.low), math.floor(bounds.high)
    return bounds.low, bounds.high


def _sliced_bars(spec: StrategySpec, bars: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    missing = [key for key in spec.data.instruments if key not in bars]
    if missing:
        raise SpecValidationError(
            f"spec '{spec.name}': no bars for instrument(s) {missing} (bars were given for "
            f"{sorted(bars)}); load every instrument of spec.data.instruments"
        )
    start, end = spec.data.start, spec.data.end
    frames = {}
    for key in spec.data.instruments:
        frame = bars[key]
        first = int(frame["ts"].search_sorted(start, side="left"))
        last = int(frame["ts"].search_sorted(end, side="left"))
        frames[key] = frame.slice(first, last - first)
        if frames[key].height == 0:
            raise BacktestInputError(
                f"spec '{spec.name}': instrument {key} has no bars in [{start.isoformat()}, "
                f"{end.isoformat()}); load its bars for the spec's period"
            )
    return frames


def _timeline(frames: Mapping[str, pl.DataFrame]) -> pl.Series:
    series = list(frames.values())
    if all(frame["ts"].equals(series[0]["ts"]) for frame in series[1:]):
        return series[0]["ts"]
    return pl.concat([frame["ts"] for frame in series]).unique().sort()


def _no_window_message(spec: StrategySpec, n_bars: int) -> str:
    config = spec.walk_forward
    needed = spec_warmup_bars(spec) + config.train_bars + config.embargo_bars + config.test_bars
    return (
        f"spec '{spec.name}': its {n_bars} bars in [{spec.data.start.isoformat()}, "
        f"{spec.data.end.isoformat()}) hold no walk-forward window, which needs {needed} bars "
        "(warm-up + train + embargo + test); load more history or shorten train_bars/test_bars"
    )
