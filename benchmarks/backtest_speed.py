"""Backtest speed benchmark: engine, bare kernel, a hand-written yardstick, backtesting.py, a grid.

Run with `make bench` (or `.venv/bin/python benchmarks/backtest_speed.py [--quick]`). Everything
is measured in one process and compared as ratios, so the figures hold on a busy machine as long
as each ratio's two sides ran under the same load; each timing is the best of N repeats after a
warm-up call (compile time is measured separately, in fresh processes). The run prints a table
and rewrites benchmarks/README.md with the figures, the targets and PASS/FAIL.

Bars: the shipped Binance BTC-USDT 1h history (67,078 bars) tiled to the wanted length, every
other copy time-reversed (a reversed bar swaps open and close), so each copy starts exactly where
the previous one ended and prices stay within the real range; timestamps run hourly.

Strategy (every engine runs the same): EMA(10) / EMA(50) crossover on closes, +1 when the fast
EMA crosses above the slow one, -1 below, reversals allowed; fills at the next open; a 2% stop
loss and a 4% take profit from the fill price, checked on each bar's range from the entry bar on;
commission 0.1% per side, slippage 1 bp.
"""

import argparse
import contextlib
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numba
import numpy as np
import polars as pl
from numba import njit
from readme_sections import write_section

from quant_assets.backtest import kernel
from quant_assets.backtest.engine import BacktestResult, run_backtest
from quant_assets.backtest.grid import (
    IndicatorCache,
    ParamSet,
    SignalArrays,
    crossover_entries,
    run_grid,
)
from quant_assets.backtest.run_spec import run_spec
from quant_assets.domain.backtest import BacktestConfig, CostModel, ExitRules
from quant_assets.domain.strategy import DataSlice, ModuleRef, StrategySpec, utc
from quant_assets.features.moving_averages import ema
from quant_assets.market.canonical import to_canonical

ROOT = Path(__file__).resolve().parents[1]
INSTRUMENT = "binance.BTC-USDT.1h"
SAMPLE = ROOT / "data" / "sample" / "binance_BTC-USDT_1h.parquet"
README = Path(__file__).resolve().parent / "README.md"
FAST, SLOW = 10, 50
STOP_LOSS_RATE, TAKE_PROFIT_RATE = 0.02, 0.04
COMMISSION_RATE, SLIPPAGE_BPS, INITIAL_CASH = 0.001, 1.0, 10_000.0
GRID_FAST = tuple(range(5, 51, 5))
GRID_SLOW = tuple(range(20, 201, 20))
WORKERS = 2
PERIODS_PER_YEAR = 24 * 365.0
CONFIG = BacktestConfig(
    cost=CostModel(commission_rate=COMMISSION_RATE, slippage_bps=SLIPPAGE_BPS),
    exits=ExitRules(stop_loss_rate=STOP_LOSS_RATE, take_profit_rate=TAKE_PROFIT_RATE),
    initial_cash=INITIAL_CASH,
    periods_per_year=PERIODS_PER_YEAR,
)
# name: (description, threshold, passes when the value is below it); the spec rows hold the
# same targets for the path the issue names (spec -> modules -> compose -> engine -> report).
TARGETS = {
    "e2e_vs_kernel": ("engine end to end (1 backtest, stops) within 4x the bare kernel", 4.0, True),
    "e2e_vs_backtesting_py": ("engine end to end >= 250x backtesting.py's bars/s", 250.0, False),
    "spec_vs_kernel": ("same through `run_spec`, within 4x the bare kernel", 4.0, True),
    "spec_vs_backtesting_py": ("same through `run_spec`, >= 250x backtesting.py", 250.0, False),
    "grid_seconds": ("100-combination grid on 1M bars, 2 threads, < 1.5 s", 1.5, True),
    "grid_peak_mb": ("grid peak memory (process RSS) < 1 GB", 1024.0, True),
}


def tiled_bars(n_bars: int) -> pl.DataFrame:
    """Return n_bars canonical hourly bars tiled from the BTC history, forward then mirrored."""
    raw = to_canonical(pl.read_parquet(SAMPLE), INSTRUMENT)
    forward = raw.select("open", "high", "low", "close", "volume")
    # Reversed in time, a bar opens at its old close and closes at its old open.
    mirrored = forward.reverse().select(
        pl.col("close").alias("open"), "high", "low", pl.col("open").alias("close"), "volume"
    )
    copies = -(-n_bars // forward.height)
    tiles = pl.concat([forward if index % 2 == 0 else mirrored for index in range(copies)])
    start = raw["ts"][0]
    hours = pl.Series("ts", np.arange(n_bars, dtype=np.int64) * 3_600_000_000 + _epoch_us(start))
    ts = hours.cast(pl.Datetime("us", "UTC"))
    return (
        tiles.head(n_bars)
        .with_columns(ts=ts, instrument=pl.lit(INSTRUMENT))
        .select("ts", "open", "high", "low", "close", "volume", "instrument")
        .rechunk()  # one chunk per column, like a frame read from Parquet: zero-copy to_numpy
    )


def _epoch_us(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


@njit(cache=True, nogil=True, error_model="numpy")
def ema_cross_stops_nb(  # noqa: C901 (one loop on purpose)
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    fast_span: int,
    slow_span: int,
    stop_loss_rate: float,
    take_profit_rate: float,
    commission_rate: float,
    slippage_rate: float,
    initial_cash: float,
    equity_out: np.ndarray,
) -> tuple[float, int]:
    """Yardstick: EMA cross with stops in one hand-written loop (indicators included)."""
    fast_alpha, slow_alpha = 2.0 / (fast_span + 1.0), 2.0 / (slow_span + 1.0)
    fast, slow, fast_sum, slow_sum = math.nan, math.nan, 0.0, 0.0
    cash, side, qty, entry_fee = initial_cash, 0.0, 0.0, 0.0
    stop, target = math.nan, math.nan
    previous_above, pending, n_trades = -1, 0, 0
    n_bars = close.shape[0]
    for bar in range(n_bars):
        if pending != 0:
            price = open_[bar]
            if side != 0.0:  # reversal: close first, at the same open
                fill = (
                    price * (1.0 - slippage_rate) if side > 0.0 else price * (1.0 + slippage_rate)
                )
                cash += side * qty * fill - qty * fill * commission_rate
                n_trades += 1
            fill = price * (1.0 + slippage_rate) if pending > 0 else price * (1.0 - slippage_rate)
            side = float(pending)
            qty = 1.0 * cash / (fill * (1.0 + commission_rate))
            entry_fee = qty * fill * commission_rate
            cash -= side * qty * fill + entry_fee
            stop = fill * (1.0 - side * stop_loss_rate)
            target = fill * (1.0 + side * take_profit_rate)
            pending = 0
        exit_price = math.nan
        if side > 0.0:
            if low[bar] <= stop:
                exit_price = min(open_[bar], stop)
            elif high[bar] >= target:
                exit_price = max(open_[bar], target)
        elif side < 0.0:
            if high[bar] >= stop:
                exit_price = max(open_[bar], stop)
            elif low[bar] <= target:
                exit_price = min(open_[bar], target)
        if not math.isnan(exit_price):
            fill = exit_price * (1.0 - slippage_rate * side)
            cash += side * qty * fill - qty * fill * commission_rate
            side, qty, n_trades = 0.0, 0.0, n_trades + 1
        value = close[bar]
        # EMAs seeded with the SMA of their first span values (features.moving_averages.ema).
        if bar < fast_span:
            fast_sum += value
            fast = (1.0 / fast_span) * fast_sum if bar == fast_span - 1 else math.nan
        else:
            fast = fast + fast_alpha * (value - fast)
        if bar < slow_span:
            slow_sum += value
            slow = (1.0 / slow_span) * slow_sum if bar == slow_span - 1 else math.nan
        else:
            slow = slow + slow_alpha * (value - slow)
        if math.isnan(fast) or math.isnan(slow):
            previous_above = -1
        else:
            above = 1 if fast > slow else 0
            if previous_above >= 0 and above != previous_above and bar < n_bars - 1:
                signal = 1 if above == 1 else -1
                if signal != side:
                    pending = signal
            previous_above = above
        equity_out[bar] = cash + (side * qty) * value
    if side != 0.0:
        fill = close[n_bars - 1] * (1.0 - slippage_rate * side)
        cash += side * qty * fill - qty * fill * commission_rate
        n_trades += 1
        equity_out[n_bars - 1] = cash
    return cash, n_trades


def best_of(repeats: int, action: Callable[[], Any]) -> tuple[float, Any]:
    """Return the best wall time of `repeats` calls after one warm-up call, and its result."""
    result = action()
    best = math.inf
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = action()
        best = min(best, time.perf_counter() - start)
    return best, result


def best_of_interleaved(
    repeats: int, actions: dict[str, Callable[[], Any]]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Return each action's best wall time and last result, the actions taking turns.

    Taking turns puts every action under the same passing load, so ratios of the best times
    stay fair on a machine shared with other work.
    """
    results = {name: action() for name, action in actions.items()}  # warm-up
    best = dict.fromkeys(actions, math.inf)
    for _ in range(repeats):
        for name, action in actions.items():
            gc.collect()
            start = time.perf_counter()
            results[name] = action()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, results


def ema_cross_signals(cache: IndicatorCache, params: ParamSet) -> SignalArrays:
    """Build the EMA-cross entries of one parameter set from cached EMAs."""
    fast = cache.feature(ema(span_bars=int(params["fast_span"])))
    slow = cache.feature(ema(span_bars=int(params["slow_span"])))
    return SignalArrays(entries=crossover_entries(fast, slow))


def ema_entries(bars: pl.DataFrame) -> np.ndarray:
    """Return the crossover entries of EMA(FAST) and EMA(SLOW), computed with polars."""
    # Nulls filled inside polars: cheaper than the null-to-NaN copy of Series.to_numpy.
    features = bars.select(ema(span_bars=span).fill_null(math.nan) for span in (FAST, SLOW))
    fast, slow = (column.to_numpy() for column in features.get_columns())
    return crossover_entries(fast, slow)


def engine_end_to_end(bars: pl.DataFrame) -> BacktestResult:
    """Run features -> entries -> run_backtest (kernel, frames, report) once."""
    return run_backtest(bars, ema_entries(bars), CONFIG)


def kernel_arguments(bars: pl.DataFrame) -> tuple[list[Any], list[np.ndarray]]:
    """Return simulate_nb's inputs for the benchmark strategy, as the engine prepares them."""

    def frozen(array: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
        view = np.ascontiguousarray(array, dtype=dtype).view()
        view.flags.writeable = False
        return view

    prices = [
        frozen(bars[name].to_numpy(), np.float64) for name in ("open", "high", "low", "close")
    ]
    entries = ema_entries(bars)
    none = frozen(np.empty(0), np.float64)
    inputs: list[Any] = [*prices, frozen(entries, np.int8), frozen(np.empty(0, np.int8), np.int8)]
    inputs += [none, none, none, none, 1.0, STOP_LOSS_RATE, TAKE_PROFIT_RATE, math.nan, 0, True]
    inputs += [COMMISSION_RATE, SLIPPAGE_BPS, kernel.FILL_NEXT_OPEN, kernel.STOPS_FROM_ENTRY_BAR]
    inputs += [INITIAL_CASH, False]
    n_bars = bars.height
    outputs: list[np.ndarray] = [np.empty(n_bars), np.empty(n_bars), np.empty(n_bars)]
    outputs.append(np.empty(n_bars, np.int8))
    outputs.append(np.empty(np.count_nonzero(entries), dtype=kernel.TRADE_DTYPE))
    return inputs, outputs


def backtesting_py_seconds(bars: pl.DataFrame, repeats: int, *, idiomatic: bool) -> float:
    """Time backtesting.py's FractionalBacktest on the same strategy (best of repeats).

    The lean variant trades the precomputed crossover entries (the least work per bar
    backtesting.py allows); the idiomatic one declares both EMAs with `self.I` and calls
    `lib.crossover` in `next()`, as its documentation does.
    """
    import pandas as pd  # type: ignore[import-untyped]
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    signals = ema_entries(bars)

    def polars_ema(values: np.ndarray, span: int) -> np.ndarray:
        return (
            pl.DataFrame({"close": np.asarray(values)})
            .select(ema(span_bars=span))
            .to_series()
            .to_numpy()
        )

    class EmaCrossStops(Strategy):
        def init(self) -> None:
            self.fast = self.I(polars_ema, self.data.Close, FAST) if idiomatic else None
            self.slow = self.I(polars_ema, self.data.Close, SLOW) if idiomatic else None

        def next(self) -> None:
            if idiomatic:
                signal = 1 if crossover(self.fast, self.slow) else 0
                signal = -1 if crossover(self.slow, self.fast) else signal
            else:
                signal = signals[len(self.data) - 1]
            price = self.data.Close[-1]
            if signal > 0 and not self.position.is_long:
                self.buy(sl=price * (1 - STOP_LOSS_RATE), tp=price * (1 + TAKE_PROFIT_RATE))
            elif signal < 0 and not self.position.is_short:
                self.sell(sl=price * (1 + STOP_LOSS_RATE), tp=price * (1 - TAKE_PROFIT_RATE))

    columns = {"Open": "open", "High": "high", "Low": "low", "Close": "close", "Volume": "volume"}
    frame = pd.DataFrame(
        {name: bars[source].to_numpy() for name, source in columns.items()},
        index=pd.DatetimeIndex(bars["ts"].dt.replace_time_zone(None).to_numpy()),
    )

    def run() -> Any:
        backtest = FractionalBacktest(
            frame,
            EmaCrossStops,
            cash=INITIAL_CASH,
            commission=COMMISSION_RATE,
            exclusive_orders=True,
            trade_on_close=False,
        )
        return backtest.run()

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")  # pandas 3 deprecations inside backtesting.py 0.6.6
        seconds, _ = best_of(repeats, run)  # (and its progress bar, on stderr, is hidden)
    return seconds


def callee_profile(action: Callable[[], Any], function: str, calls: int) -> list[tuple[str, float]]:
    """Return the direct callees of `function` within `action`, and its own lines, in ms per call.

    Measured by cProfile over `calls` runs of `action` (profiler overhead included).
    """
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        action()
    profiler.disable()
    stats: Any = pstats.Stats(profiler)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats
    rows: list[tuple[str, float]] = []
    others = 0.0
    for (path, _, name), (_, _, own_s, _, callers) in table.items():
        # Time spent in this function when `function` called it (cProfile keeps it per caller).
        total_s = sum(timing[3] for caller, timing in callers.items() if caller[2] == function)
        if name == function:
            rows.append((f"{function}'s own lines", own_s / calls * 1e3))
        elif total_s > 0.0:
            module = path.split("site-packages/")[-1].split(f"{ROOT}/")[-1]
            label = name if path == "~" else f"{module.removesuffix('.py')}:{name}"
            if total_s / calls >= 1e-4:
                rows.append((label.replace("/", "."), total_s / calls * 1e3))
            else:
                others += total_s / calls * 1e3
    rows.sort(key=lambda row: -row[1])
    return [*rows, ("the other callees, each < 0.1 ms", others)]


def benchmark_spec() -> StrategySpec:
    """Return the benchmark strategy as a spec: ema_cross, fixed_stop_target, fixed_fraction."""
    return StrategySpec(
        name="benchmark ema_cross with stops",
        hypothesis="None: a speed benchmark.",
        template="ema_cross",
        data=DataSlice(
            instruments=(INSTRUMENT,), timeframe="1h", start=utc(2018, 1, 1), end=utc(2200, 1, 1)
        ),
        baseline=ModuleRef(
            module="ema_cross", params={"fast_span_bars": FAST, "slow_span_bars": SLOW}
        ),
        execution=ModuleRef(
            module="fixed_stop_target",
            params={"stop_loss_rate": STOP_LOSS_RATE, "take_profit_rate": TAKE_PROFIT_RATE},
        ),
        risk=ModuleRef(module="fixed_fraction", params={"equity_fraction": 1.0}),
        cost=CONFIG.cost,
    )


def grid_params() -> list[ParamSet]:
    """Return the 100 parameter sets: fast 5..50 step 5 x slow 20..200 step 20."""
    return [{"fast_span": fast, "slow_span": slow} for fast in GRID_FAST for slow in GRID_SLOW]


def grid_once(bars: pl.DataFrame) -> list[Any]:
    """Run the grid with a fresh indicator cache (EMAs are part of the cost)."""
    return run_grid(bars, grid_params(), ema_cross_signals, CONFIG, workers=WORKERS)


_COMPILE_PROBE = """
import json, time
t0 = time.perf_counter()
import sys; sys.path.insert(0, {benchmarks!r})
import backtest_speed as b
t1 = time.perf_counter()
bars = b.tiled_bars(2_000)
def path():
    b.engine_end_to_end(bars)
    b.run_spec(b.benchmark_spec(), {{b.INSTRUMENT: bars}})
    b.run_grid(bars, b.grid_params()[:4], b.ema_cross_signals, b.CONFIG, workers=2)
    b.ema_cross_stops_nb(*[bars[c].to_numpy() for c in ("open", "high", "low", "close")],
                         10, 50, 0.02, 0.04, 0.001, 1e-4, 1e4, b.np.empty(bars.height))
t2 = time.perf_counter(); path(); t3 = time.perf_counter(); path(); t4 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "first": t3 - t2, "second": t4 - t3}}))
"""


def compile_probe(cache_dir: str) -> dict[str, float]:
    """Time the first and second call of every kernel on the path in a fresh process."""
    code = _COMPILE_PROBE.format(benchmarks=str(Path(__file__).resolve().parent))
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def memory_probe(n_bars: int) -> None:
    """Child mode: tile bars, reset the RSS high-water mark, run the grid, print RSS figures."""
    bars = tiled_bars(n_bars)
    grid_once(tiled_bars(10_000))  # compile or load kernels before measuring
    gc.collect()
    with contextlib.suppress(OSError):  # without the reset the peak is the process's own
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
    before = _status_kb("VmRSS")
    grid_once(bars)
    print(json.dumps({"rss_before_mb": before / 1024, "peak_mb": _status_kb("VmHWM") / 1024}))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}; the memory probe needs Linux")


def grid_memory(n_bars: int) -> dict[str, float]:
    """Run the memory probe in a fresh process and return its figures."""
    done = subprocess.run(
        [sys.executable, __file__, "--memory-probe", str(n_bars)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(n_bars: int, peer_bars: int, repeats: int, grid_repeats: int) -> dict[str, Any]:
    """Run every measurement in this process (compile and memory in fresh ones)."""
    figures: dict[str, Any] = {"n_bars": n_bars, "peer_bars": peer_bars, "repeats": repeats}
    figures["load_before"] = os.getloadavg()[0]
    figures["grid_repeats"] = grid_repeats
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache_dir:
        figures["compile_cold"] = compile_probe(cache_dir)
        figures["compile_cached"] = compile_probe(cache_dir)
    bars = tiled_bars(n_bars)
    inputs, outputs = kernel_arguments(bars)
    figures.update(measure_single(bars, inputs, outputs, repeats))
    peer = bars.head(peer_bars)
    peer_repeats = max(1, repeats // 3)
    figures["peer_s"] = backtesting_py_seconds(peer, peer_repeats, idiomatic=False)
    figures["peer_idiomatic_s"] = backtesting_py_seconds(peer, peer_repeats, idiomatic=True)
    figures["grid_s"], grid = best_of(grid_repeats, lambda: grid_once(bars))
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    grid_once(bars)
    figures["grid_parallelism"] = (time.process_time() - cpu_start) / (
        time.perf_counter() - wall_start
    )
    figures["grid_trades"] = sum(item.trades for item in grid)
    spans = sorted({*GRID_FAST, *GRID_SLOW})
    figures["grid_spans"] = len(spans)
    figures["grid_indicators_s"], _ = best_of(
        grid_repeats, lambda: bars.select(ema(span_bars=span) for span in spans)
    )
    figures["grid_kernels_s"] = _grid_kernel_seconds(bars, inputs, outputs)
    figures["grid_memory"] = grid_memory(n_bars)
    figures["load_after"] = os.getloadavg()[0]
    return figures


def measure_single(
    bars: pl.DataFrame, inputs: list[Any], outputs: list[np.ndarray], repeats: int
) -> dict[str, Any]:
    """Time the yardstick, the bare kernel, the engine end to end and its parts."""
    prices = [bars[name].to_numpy() for name in ("open", "high", "low", "close")]
    curve = np.empty(bars.height)
    yardstick: Callable[..., tuple[float, int]] = ema_cross_stops_nb
    simulate: Callable[..., int] = kernel.simulate_nb
    rules = (FAST, SLOW, STOP_LOSS_RATE, TAKE_PROFIT_RATE, COMMISSION_RATE, SLIPPAGE_BPS / 1e4)
    entries = ema_entries(bars)
    spec = benchmark_spec()
    best, results = best_of_interleaved(
        repeats,
        {
            "yardstick_s": lambda: yardstick(*prices, *rules, INITIAL_CASH, curve),
            "kernel_s": lambda: simulate(*inputs, *outputs),
            "e2e_s": lambda: engine_end_to_end(bars),
            "entries_s": lambda: ema_entries(bars),
            "run_backtest_s": lambda: run_backtest(bars, entries, CONFIG),
            "spec_s": lambda: run_spec(spec, {INSTRUMENT: bars}),
        },
    )
    figures: dict[str, Any] = dict(best)
    (_, yard_trades), result = results["yardstick_s"], results["e2e_s"]
    sleeve = results["spec_s"].sleeves[INSTRUMENT]
    figures["spec_agrees"] = bool(
        sleeve.report.trades == result.report.trades
        and np.array_equal(sleeve.equity["equity"].to_numpy(), result.equity["equity"].to_numpy())
    )
    figures["profile"] = callee_profile(
        lambda: run_backtest(bars, entries, CONFIG), "run_backtest", repeats
    )
    figures["spec_profile"] = callee_profile(
        lambda: run_spec(spec, {INSTRUMENT: bars}), "run_spec", repeats
    )
    figures["trades"] = result.report.trades
    figures["final_equity"] = float(result.equity["equity"][-1])
    figures["yardstick_trades"] = yard_trades
    figures["yardstick_agrees"] = bool(
        yard_trades == result.report.trades
        and np.array_equal(curve, result.equity["equity"].to_numpy())
    )
    return figures


def _grid_kernel_seconds(bars: pl.DataFrame, inputs: list[Any], outputs: list[Any]) -> float:
    # The bare kernel on each of the 100 combinations' entries, one thread, summed.
    cache = IndicatorCache(bars)
    simulate: Callable[..., int] = kernel.simulate_nb
    total = 0.0
    for params in grid_params():
        entries = ema_cross_signals(cache, params).entries
        entries.flags.writeable = False  # the kernel's compiled signature takes read-only inputs
        arguments = [*inputs[:4], entries, *inputs[5:]]
        trades = np.empty(np.count_nonzero(entries), dtype=kernel.TRADE_DTYPE)
        start = time.perf_counter()
        simulate(*arguments, *outputs[:4], trades)
        total += time.perf_counter() - start
    return total


def verdicts(figures: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """Return each target's measured value and whether it passes."""
    n_bars = figures["n_bars"]
    peer_rate = figures["peer_bars"] / figures["peer_s"]
    values = {
        "e2e_vs_kernel": figures["e2e_s"] / figures["kernel_s"],
        "e2e_vs_backtesting_py": n_bars / figures["e2e_s"] / peer_rate,
        "spec_vs_kernel": figures["spec_s"] / figures["kernel_s"],
        "spec_vs_backtesting_py": n_bars / figures["spec_s"] / peer_rate,
        "grid_seconds": figures["grid_s"],
        "grid_peak_mb": figures["grid_memory"]["peak_mb"],
    }
    verdict: dict[str, tuple[float, bool]] = {}
    for name, value in values.items():
        _, limit, below = TARGETS[name]
        verdict[name] = (value, value < limit if below else value >= limit)
    return verdict


def render(figures: dict[str, Any], quick: bool) -> str:
    """Return the README text: machine, targets, figures, ratios, method."""
    lines = [
        "# Backtest speed benchmark",
        "",
        "Generated by `make bench` (`benchmarks/backtest_speed.py`); do not edit by hand."
        + (" **Quick smoke run: sizes reduced, not the reference figures.**" if quick else ""),
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} cores (nproc), {platform.machine()}, {platform.system()} "
        f"{platform.release()}; 1-minute load average {figures['load_before']:.2f} before the "
        f"run, {figures['load_after']:.2f} after (other work on the machine slows every figure)",
        f"- Python {platform.python_version()}, numba {numba.__version__}, numpy "
        f"{np.__version__}, polars {pl.__version__}",
        f"- Timings: best of {figures['repeats']} repeats after a warm-up call (backtesting.py: "
        f"best of {max(1, figures['repeats'] // 3)}, grid: best of {figures['grid_repeats']}); "
        "compile time is measured apart, in fresh processes.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    units = {"grid_seconds": " s", "grid_peak_mb": " MB"}
    for name, (value, passed) in verdicts(figures).items():
        verdict = "PASS" if passed else "FAIL"
        lines.append(f"| {TARGETS[name][0]} | {value:,.2f}{units.get(name, 'x')} | {verdict} |")
    return "\n".join(
        lines + _single_section(figures) + _grid_section(figures) + _compile_section(figures)
    )


def _single_section(figures: dict[str, Any]) -> list[str]:
    n_bars, peer_bars, yard = figures["n_bars"], figures["peer_bars"], figures["yardstick_s"]

    def row(name: str, seconds: float, note: str = "", bars: int = n_bars) -> str:
        rate, relative = bars / seconds, yard / seconds * bars / n_bars
        numbers = f"{bars:,} | {seconds * 1e3:,.1f} | {rate / 1e6:,.3g} | {relative:.3g}"
        return f"| {name} | {numbers} | {note} |"

    run_s = figures["run_backtest_s"]
    peer_rate = peer_bars / figures["peer_s"]
    budget_ms = n_bars / (TARGETS["e2e_vs_backtesting_py"][1] * peer_rate) * 1e3
    idiomatic_ratio = (n_bars / figures["e2e_s"]) / (peer_bars / figures["peer_idiomatic_s"])
    agrees = "agrees bit for bit" if figures["yardstick_agrees"] else "DISAGREES"
    return [
        "",
        f"## One backtest: EMA {FAST}/{SLOW} cross, {STOP_LOSS_RATE:.0%} stop, "
        f"{TAKE_PROFIT_RATE:.0%} target",
        "",
        "| what | bars | best ms | M bars/s | speed / yardstick's | note |",
        "|---|---|---|---|---|---|",
        row("yardstick: hand-written numba loop", yard, "EMAs inside the loop"),
        row("bare kernel `simulate_nb`", figures["kernel_s"], "prepared inputs, reused outputs"),
        row("**engine end to end**", figures["e2e_s"], "the two rows below"),
        row("- polars EMAs + crossover entries", figures["entries_s"], ""),
        row("- `run_backtest`", run_s, "profiled below"),
        row(
            "**spec end to end: `run_spec`**",
            figures["spec_s"],
            "modules, compose, engine, portfolio; profiled below",
        ),
        row("backtesting.py 0.6.6, lean", figures["peer_s"], "precomputed entries", peer_bars),
        row(
            "backtesting.py 0.6.6, idiomatic",
            figures["peer_idiomatic_s"],
            "`self.I`, `crossover()`",
            peer_bars,
        ),
        "",
        f"{figures['trades']:,} trades; final equity {figures['final_equity']:.6g} (fast EMAs "
        "and 0.1% commission lose money; the figures are about speed). The yardstick "
        f"{agrees} with the engine: {figures['yardstick_trades']:,} trades and the same "
        "equity at every bar. `run_spec`'s sleeve "
        f"{'agrees bit for bit' if figures['spec_agrees'] else 'DISAGREES'} with the engine "
        "end to end as well.",
        "",
        f"- End to end / bare kernel: {figures['e2e_s'] / figures['kernel_s']:.2f}x; bare kernel "
        f"/ yardstick: {figures['kernel_s'] / yard:.2f}x; end to end / yardstick: "
        f"{figures['e2e_s'] / yard:.2f}x; `run_spec` / bare kernel: "
        f"{figures['spec_s'] / figures['kernel_s']:.2f}x.",
        f"- Against backtesting.py: {(n_bars / figures['e2e_s']) / peer_rate:,.0f}x its bars/s "
        f"(lean; the target's basis), {idiomatic_ratio:,.0f}x (idiomatic). 250x the lean "
        f"variant's {peer_rate:,.0f} bars/s allows {budget_ms:.1f} ms end to end here.",
        "",
        f"Where `run_backtest`'s time goes (cProfile over {figures['repeats']} calls, mean ms per "
        "call, profiler overhead included; its direct callees and its own lines):",
        "",
        "| function | ms per call |",
        "|---|---|",
        *(f"| `{name}` | {ms:.2f} |" for name, ms in figures["profile"]),
        "",
        "Where `run_spec`'s time goes (the same way):",
        "",
        "| function | ms per call |",
        "|---|---|",
        *(f"| `{name}` | {ms:.2f} |" for name, ms in figures["spec_profile"]),
    ]


def _grid_section(figures: dict[str, Any]) -> list[str]:
    n_bars, memory = figures["n_bars"], figures["grid_memory"]
    grid_bars = n_bars * len(GRID_FAST) * len(GRID_SLOW)
    return [
        "",
        f"## Grid: fast {GRID_FAST[0]}..{GRID_FAST[-1]} x slow {GRID_SLOW[0]}..{GRID_SLOW[-1]}, "
        f"{WORKERS} threads",
        "",
        "| what | seconds | note |",
        "|---|---|---|",
        f"| **`run_grid`, 100 combinations on {n_bars:,} bars** | {figures['grid_s']:.3f} | "
        f"{grid_bars / figures['grid_s'] / 1e6:,.0f} M bars/s; {figures['grid_trades']:,} "
        "trades in all |",
        f"| - the {figures['grid_spans']} distinct EMAs, once each (polars) | "
        f"{figures['grid_indicators_s']:.3f} | each span computed once, shared by threads |",
        f"| - 100 bare kernels, one thread, summed | {figures['grid_kernels_s']:.3f} | "
        f"{figures['grid_kernels_s'] / WORKERS:.3f} s if split perfectly over {WORKERS} "
        "threads |",
        "",
        f"Parallelism of one more grid run (process CPU time / wall time): "
        f"{figures['grid_parallelism']:.2f} of {WORKERS} threads.",
        "",
        "Peak memory: the resident-set high-water mark (VmHWM in /proc/self/status, the figure "
        "ru_maxrss reports) of a fresh process, reset through /proc/self/clear_refs just before "
        f"the grid runs: {memory['peak_mb']:,.0f} MB at the peak, "
        f"{memory['peak_mb'] - memory['rss_before_mb']:,.0f} MB above the "
        f"{memory['rss_before_mb']:,.0f} MB held before the grid (interpreter, libraries, "
        f"bars). The grid's share is the {figures['grid_spans']} cached EMAs "
        f"({figures['grid_spans'] * n_bars * 8 / 2**20:,.0f} MB) and each thread's reused "
        "output arrays; the target is judged on the whole process.",
    ]


def _compile_section(figures: dict[str, Any]) -> list[str]:
    cold, cached = figures["compile_cold"], figures["compile_cached"]
    return [
        "",
        "## Compile time (numba `cache=True`)",
        "",
        "The whole path (engine, `run_spec`, grid, features, yardstick) on 2,000 bars, called "
        "twice in a fresh process with an empty NUMBA_CACHE_DIR, then twice in a second fresh "
        "process reusing that cache:",
        "",
        "| process | import s | first call s | second call s |",
        "|---|---|---|---|",
        f"| empty cache: compiles | {cold['import']:.2f} | {cold['first']:.2f} | "
        f"{cold['second']:.3f} |",
        f"| second process: loads the cache | {cached['import']:.2f} | {cached['first']:.2f} | "
        f"{cached['second']:.3f} |",
        "",
        "## Method",
        "",
        __doc__.split("\n\n", 2)[2].strip() if __doc__ else "",
        "",
        "The yardstick computes both EMAs inside its loop and writes the equity curve; the bare "
        "kernel gets precomputed entries and reuses its output arrays. End to end is everything "
        "after the bars exist: polars EMAs, crossover entries, `run_backtest` "
        "(validation, kernel, equity and trades frames, EvalReport). The grid builds a fresh "
        "IndicatorCache each repeat, so its time includes every EMA, and returns summary "
        "metrics per combination (`quant_assets.backtest.grid.run_grid`).",
        "",
    ]


def main() -> None:
    """Parse arguments, measure, print the report, rewrite its README.md section (full runs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes; keeps README.md")
    parser.add_argument("--memory-probe", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.memory_probe:
        memory_probe(arguments.memory_probe)
        return
    if arguments.quick:
        figures = measure(100_000, 10_000, repeats=3, grid_repeats=2)
    else:
        figures = measure(1_000_000, 100_000, repeats=9, grid_repeats=5)
    text = render(figures, arguments.quick)
    print(text)
    if not arguments.quick:
        write_section(README, "backtest_speed", text)
        print(f"wrote the backtest_speed section of {README}")
    failed = [name for name, (_, passed) in verdicts(figures).items() if not passed]
    if failed:
        print(f"FAILED targets: {', '.join(failed)}")


if __name__ == "__main__":
    main()
