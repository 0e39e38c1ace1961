"""Plan the work of a walk-forward run per window and run it, reusing cached windows.

`window_tasks` turns planned windows into tasks: each instrument's rows, the hash of exactly
the bars the window reads (warm-up included) and the memo key. `evaluate_windows` returns the
cached results and computes the others in this thread, on threads or on worker processes;
each window's trials run in order with a seed of its own, so results do not depend on how
windows are spread over workers.
"""

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import (
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Final, Literal

import numpy as np
import polars as pl

from quant_assets.backtest.search import quiet_optuna
from quant_assets.backtest.window_eval import (
    RowRange,
    WindowTask,
    evaluate_window,
    window_frames,
)
from quant_assets.domain.progress import Progress
from quant_assets.domain.strategy import StrategySpec
from quant_assets.domain.walkforward import WindowBounds, WindowCache, WindowResult

HASHED_COLUMNS: Final = ("open", "high", "low", "close", "volume")
BLOCK_ROWS: Final = 1_024
Parallelism = Literal["threads", "processes"]
"""How windows run at once. Threads share the process: the kernel and polars release the GIL,
but Optuna and the modules' Python hold it, so on this workload threads barely beat one
worker. Processes run fully in parallel; they are spawned once (about a second: imports and
compiled kernels) and kept for later runs, and need the `if __name__ == "__main__":` guard in
a script that calls run_walkforward at top level."""
KeyFunction = Callable[[WindowBounds, str], str]


def window_tasks(
    spec: StrategySpec,
    hashers: Mapping[str, "BarHasher"],
    timeline: pl.Series,
    plan: list[WindowBounds],
    cache_key: KeyFunction,
) -> list[WindowTask]:
    """Return one task per planned window.

    Args:
        spec: The spec (its step decides each window's share of the stitched IS curve).
        hashers: Per instrument, a hasher over its bars sliced to the spec's period.
        timeline: The times the plan's bar indices count.
        plan: The windows.
        cache_key: Returns a window's memo key from its bounds and bars hash.
    """
    step = spec.walk_forward.step_bars or spec.walk_forward.test_bars
    timeline_us = timeline.dt.epoch("us").to_numpy()
    # One past the last bar: an exclusive end at the end of the data.
    edges_us = np.append(timeline_us, np.iinfo(np.int64).max)
    tasks = []
    for bounds in plan:
        rows = {}
        hasher = hashlib.sha256()
        for key in sorted(hashers):
            # Instruments may miss some of the timeline's times: their rows are found by time.
            found = np.searchsorted(hashers[key].ts_us, edges_us[_edges(bounds)], side="left")
            rows[key] = RowRange(*(int(row) for row in found))
            hashers[key].update(hasher, rows[key].warmup_start, rows[key].test_end)
        bars_hash = hasher.hexdigest()
        # Train bars no later window trains on: this window's share of the stitched IS curve.
        segment = bounds.train_start if bounds.index == 0 else bounds.train_end - step
        tasks.append(
            WindowTask(
                bounds=bounds,
                rows=rows,
                bars_hash=bars_hash,
                cache_key=cache_key(bounds, bars_hash),
                is_segment_first_at_us=int(timeline_us[max(segment, bounds.train_start)]),
            )
        )
    return tasks


class BarHasher:
    """Content hashes of row ranges of one instrument's bars, each row read once.

    A range's hash covers its times and OHLCV values (little-endian bytes) and its length:
    rows are grouped in fixed blocks of BLOCK_ROWS, each block's digest computed once, and a
    range feeds the digests of the whole blocks it covers and the bytes of the rows around
    them, so the many overlapping windows of a run cost one pass over the bars.
    """

    def __init__(self, key: str, frame: pl.DataFrame) -> None:
        """Read the frame's columns and digest its whole blocks."""
        self.key = key
        self.rows = frame.height
        self.ts_us = np.ascontiguousarray(frame["ts"].dt.epoch("us").to_numpy(), dtype="<i8")
        self._columns = [self.ts_us] + [
            np.ascontiguousarray(frame[name].cast(pl.Float64).to_numpy(), dtype="<f8")
            for name in HASHED_COLUMNS
        ]
        self._blocks = [
            self._digest(start, start + BLOCK_ROWS)
            for start in range(0, self.rows - BLOCK_ROWS + 1, BLOCK_ROWS)
        ]

    def update(self, hasher: "hashlib._Hash", first: int, end: int) -> None:
        """Feed rows [first, end) to `hasher`."""
        hasher.update(f"{self.key}:{end - first};".encode())
        head_end = min(end, -(-first // BLOCK_ROWS) * BLOCK_ROWS)
        tail_start = max(head_end, end // BLOCK_ROWS * BLOCK_ROWS)
        self._feed(hasher, first, head_end)
        for block in range(head_end // BLOCK_ROWS, tail_start // BLOCK_ROWS):
            hasher.update(self._blocks[block])
        self._feed(hasher, tail_start, end)

    def digest(self) -> str:
        """Return the hash of all rows (the instrument's data version here)."""
        hasher = hashlib.sha256()
        self.update(hasher, 0, self.rows)
        return hasher.hexdigest()

    def _digest(self, first: int, end: int) -> bytes:
        hasher = hashlib.sha256()
        self._feed(hasher, first, end)
        return hasher.digest()

    def _feed(self, hasher: "hashlib._Hash", first: int, end: int) -> None:
        if end > first:
            for column in self._columns:
                hasher.update(column[first:end].data)


def evaluate_windows(
    spec: StrategySpec,
    bars: Mapping[str, pl.DataFrame],
    tasks: list[WindowTask],
    *,
    cache: WindowCache | None,
    workers: int,
    parallelism: Parallelism,
    initial_cash: float,
    progress: Progress | None = None,
) -> tuple[tuple[WindowResult, ...], list[int]]:
    """Return every task's result, reusing cached ones and computing the rest.

    With one window to compute or one worker, windows run in this thread. Otherwise they run
    on `workers` threads or on a pool of `workers` processes, kept for later runs (see
    `Parallelism`). Each computed result is cached as soon as its window ends, so a failure
    later in the run keeps the windows already done. Optuna logs only warnings meanwhile.

    Returns:
        The results in task order, and the positions of the tasks that were computed.
    """
    results: dict[int, WindowResult] = {}
    for position, task in enumerate(tasks):
        cached = cache.get(task.cache_key) if cache is not None else None
        if cached is not None:
            results[position] = cached
    missing = [position for position in range(len(tasks)) if position not in results]
    trials = spec.walk_forward.trials_per_window if spec.search_space else 1
    counter = _TrialCounter(progress, len(missing) * trials, len(missing))
    with quiet_optuna():  # set here too: worker threads would race to set and restore it
        jobs = [
            (position, tasks[position], window_frames(bars, tasks[position]))
            for position in missing
        ]
        for position, result in _computed(spec, jobs, workers, parallelism, initial_cash, counter):
            if cache is not None:
                cache.put(result.cache_key, result)
            results[position] = result
            counter.window_done(result.trials)
    return tuple(results[position] for position in range(len(tasks))), missing


def shutdown_process_pools() -> None:
    """Stop the worker processes kept by earlier runs (they start again when needed)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)


Job = tuple[int, WindowTask, dict[str, pl.DataFrame]]


def _computed(
    spec: StrategySpec,
    jobs: list[Job],
    workers: int,
    parallelism: Parallelism,
    initial_cash: float,
    counter: "_TrialCounter",
) -> Iterator[tuple[int, WindowResult]]:
    def in_thread(task: WindowTask, frames: dict[str, pl.DataFrame]) -> WindowResult:
        return evaluate_window(
            spec, frames, task, initial_cash=initial_cash, on_trial=counter.trial
        )

    if workers == 1 or len(jobs) <= 1:
        yield from ((position, in_thread(task, frames)) for position, task, frames in jobs)
        return
    if parallelism == "threads":
        with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as threads:
            yield from _as_completed(
                [
                    (position, threads.submit(in_thread, task, frames))
                    for position, task, frames in jobs
                ]
            )
        return
    processes = _process_pool(workers)
    submitted = [
        (position, processes.submit(_evaluate_quietly, spec, frames, task, initial_cash))
        for position, task, frames in jobs
    ]
    try:
        yield from _as_completed(submitted)
    except BrokenProcessPool:
        _discard_pool(workers, processes)  # a worker died (e.g. out of memory): start afresh
        raise


def _as_completed(
    submitted: list[tuple[int, "Future[WindowResult]"]],
) -> Iterator[tuple[int, WindowResult]]:
    positions = {future: position for position, future in submitted}
    try:
        for future in as_completed(positions):
            yield positions[future], future.result()
    finally:
        for future in positions:
            future.cancel()  # after a failure, windows not started yet are dropped


def _evaluate_quietly(
    spec: StrategySpec,
    frames: dict[str, pl.DataFrame],
    task: WindowTask,
    initial_cash: float,
) -> WindowResult:
    # Runs in a worker process, whose Optuna logging is its own.
    with quiet_optuna():
        return evaluate_window(spec, frames, task, initial_cash=initial_cash)


_POOLS: dict[int, ProcessPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _process_pool(workers: int) -> ProcessPoolExecutor:
    # Spawned, not forked: polars' thread pool does not survive a fork. Kept between runs,
    # since starting a worker (imports, compiled kernels) costs about a second.
    with _POOLS_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
            _POOLS[workers] = pool
        return pool


def _discard_pool(workers: int, pool: ProcessPoolExecutor) -> None:
    with _POOLS_LOCK:
        if _POOLS.get(workers) is pool:
            del _POOLS[workers]
    pool.shutdown(wait=False, cancel_futures=True)


class _TrialCounter:
    # Reports trials done out of the trials to run, about a hundred times per run at most
    # (per window only when windows run in other processes).
    def __init__(self, progress: Progress | None, total: int, windows: int) -> None:
        self.progress, self.total, self.windows = progress, total, windows
        self.every = max(1, total // 100)
        self.trials = 0
        self.windows_done = 0
        self.window_trials = 0
        self._lock = threading.Lock()
        self._report()

    def trial(self) -> None:
        with self._lock:
            self.trials += 1
            if self.trials % self.every == 0:
                self._report()

    def window_done(self, trials: int) -> None:
        with self._lock:
            self.windows_done += 1
            self.window_trials += trials
            self.trials = max(self.trials, self.window_trials)
            self._report()

    def _report(self) -> None:
        if self.progress is not None:
            message = f"walk-forward: {self.windows_done} of {self.windows} window(s) computed"
            self.progress.update(self.trials, self.total, message)


def _edges(bounds: WindowBounds) -> list[int]:
    # RowRange's fields in order; an exclusive end maps to the first row at or after it.
    return [
        bounds.warmup_start,
        bounds.train_start,
        bounds.train_end,
        bounds.test_start,
        bounds.test_end,
    ]
