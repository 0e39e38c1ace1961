"""Run a spec on one span of bars (a walk-forward train or test span), from flat, per sleeve.

Each instrument's frame holds the traded rows and earlier rows for warm-up (and possibly later
rows, which causal indicators never let into a traded row's values). No entry candidate is
taken before the first traded row, so every run starts flat there (the baseline's entries are
masked before the filters and the risk module see them), and the kernel trades the traded
rows only. Sleeves trade an equal share of the cash and the portfolio is their sum on the
union of their bar times, as in `run_spec`.

Two paths share the compose step and the kernel: `simulate` is a search trial's lean path (the
kernel on preallocated arrays, the portfolio's equity array, no frames); `run` goes through
`run_composed` (the engine, its input checks, frames and reports) for the best parameters.
Both give the same equity to the last bit.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Final

import numpy as np
import polars as pl

from quant_assets.backtest import kernel
from quant_assets.backtest.engine import EQUITY_SCHEMA, TRADES_SCHEMA
from quant_assets.backtest.kernel_inputs import (
    FILL_MODE_CODES,
    NO_FLAGS,
    NO_FLOATS,
    SIMULATE,
    STOPS_FROM_CODES,
    rate_or_nan,
)
from quant_assets.backtest.metrics import annualization_factor, compute_report
from quant_assets.backtest.run_spec import SpecModules, run_composed, sleeve_config, summed_steps
from quant_assets.domain.arrays import FloatArray, Int64Array
from quant_assets.domain.backtest import (
    StepSummary,
)
from quant_assets.domain.market import AssetClass, Timeframe
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ModuleRole, StrategySpec
from quant_assets.strategy.compose import ComposedInputs, compose
from quant_assets.strategy.modules import Baseline, BaselineSignals
from quant_assets.strategy.risks.annualization import asset_class_of

PRICE_COLUMNS: Final = ("open", "high", "low", "close")
TRADES_WITH_INSTRUMENT: Final = pl.Schema({"instrument": pl.String(), **TRADES_SCHEMA})


@dataclass(frozen=True)
class PortfolioCurve:
    """The portfolio's equity per bar of a span and its trade count (numpy, no frames)."""

    equity: FloatArray
    trades: int


@dataclass(frozen=True)
class SpanRun:
    """A full run of one parameter set on a span.

    Attributes:
        equity: ts, equity, exposure per bar of the span's timeline.
        trades: An `instrument` column, then TRADES_SCHEMA; bar indices count the instrument's
            traded bars from the span's first one.
        steps: Candidates, fills and rejections by name, summed over the sleeves.
        report: compute_report of the portfolio curve and all trades.
    """

    equity: pl.DataFrame
    trades: pl.DataFrame
    steps: StepSummary
    report: EvalReport


class SpanRunner:
    """Backtest parameter sets of one spec on fixed frames, trading a range of their rows."""

    def __init__(
        self,
        spec: StrategySpec,
        frames: Mapping[str, pl.DataFrame],
        traded_rows: Mapping[str, tuple[int, int]],
        *,
        initial_cash: float,
    ) -> None:
        """Prepare the sleeves' arrays and output buffers once for every run on the span.

        Args:
            spec: The spec whose instruments, costs and timeframe apply.
            frames: Per instrument, canonical bars including the traded rows and their warm-up.
            traded_rows: Per instrument, the traded rows [first, end) of its frame.
            initial_cash: Cash of the whole portfolio, split equally between the sleeves.
        """
        self.instruments = tuple(spec.data.instruments)
        self.frames = {key: frames[key] for key in self.instruments}
        self.traded_rows = {key: traded_rows[key] for key in self.instruments}
        self.initial_cash = initial_cash
        self.sleeve_cash = initial_cash / len(self.instruments)
        self.configs = {key: sleeve_config(spec, key, self.sleeve_cash) for key in self.instruments}
        self.periods_per_year = portfolio_periods_per_year(spec)
        self.traded = {
            key: self.frames[key].slice(first, end - first)
            for key, (first, end) in self.traded_rows.items()
        }
        self._columns = {key: _price_columns(frame) for key, frame in self.traded.items()}
        self.ts, self._gather = _timeline(self.traded)
        self._buffers = {key: _Buffers(frame.height) for key, frame in self.traded.items()}

    def compose(self, modules: SpecModules) -> dict[str, ComposedInputs]:
        """Return each sleeve's engine inputs over its traded rows."""
        inputs = {}
        for key in self.instruments:
            first, end = self.traded_rows[key]
            baseline = _in_span(modules.baseline, first, end)
            composed = compose(
                self.frames[key], baseline, modules.filters, modules.execution, modules.risk
            )
            inputs[key] = _sliced(composed, first, end)
        return inputs

    def simulate(self, modules: SpecModules) -> PortfolioCurve:
        """Return the portfolio's equity for `modules` via the kernel alone (a search trial).

        The engine's input checks are skipped; `run` applies them to the chosen parameters.
        """
        total_trades = 0
        equities = []
        for key, inputs in self.compose(modules).items():
            buffers = self._buffers[key]
            total_trades += self._kernel(key, inputs, buffers)
            equities.append(buffers.equity)
        return PortfolioCurve(self._equity(equities), total_trades)

    def run(self, modules: SpecModules, *, n_trials: int = 1) -> SpanRun:
        """Return the full run of `modules`: frames, step counts and the portfolio report.

        Raises:
            BacktestInputError: if a module's arrays break the engine's input contract.
        """
        sleeves = {
            key: run_composed(self.traded[key], inputs, self.configs[key])
            for key, inputs in self.compose(modules).items()
        }
        equities = [result.equity["equity"].to_numpy() for result in sleeves.values()]
        exposures = [result.equity["exposure"].to_numpy() for result in sleeves.values()]
        equity = self._equity(equities)
        exposure = self._exposure(equity, equities, exposures)
        frame = pl.DataFrame(
            {"ts": self.ts, "equity": equity, "exposure": exposure}, schema=EQUITY_SCHEMA
        )
        trades = _all_trades({key: result.trades for key, result in sleeves.items()})
        report = compute_report(
            frame,
            trades,
            initial_cash=self.initial_cash,
            periods_per_year=self.periods_per_year,
            n_trials=n_trials,
        )
        steps = summed_steps([result.steps for result in sleeves.values()])
        return SpanRun(frame, trades, steps, report)

    def _kernel(self, key: str, inputs: ComposedInputs, buffers: "_Buffers") -> int:
        plan, config = inputs.plan, self.configs[key]
        rules, cost = plan.rules, config.cost
        trades = np.empty(np.count_nonzero(inputs.entries), dtype=kernel.TRADE_DTYPE)
        exits = NO_FLAGS if inputs.exits is None else inputs.exits.view(np.int8)
        return SIMULATE(
            *self._columns[key],
            _read_only(inputs.entries),
            _read_only(exits),
            _read_only(inputs.size),
            _read_only(_or_empty(plan.stop_loss_distance)),
            _read_only(_or_empty(plan.take_profit_distance)),
            _read_only(_or_empty(plan.trailing_distance)),
            config.sizing.equity_fraction,
            rate_or_nan(rules.stop_loss_rate),
            rate_or_nan(rules.take_profit_rate),
            rate_or_nan(rules.trailing_stop_rate),
            rules.max_bars_in_trade or 0,
            plan.allow_reversal,
            cost.commission_rate,
            cost.slippage_bps,
            FILL_MODE_CODES[cost.fill],
            STOPS_FROM_CODES[rules.stops_from],
            config.initial_cash,
            config.sizing.whole_units,
            buffers.equity,
            buffers.position,
            buffers.exposure,
            buffers.status,
            trades,
        )

    def _equity(self, equities: list[FloatArray]) -> FloatArray:
        # Portfolio = sum of the sleeves; a sleeve keeps its last equity between its own bars
        # and its cash before its first one.
        equity = np.zeros(self.ts.len())
        for key, sleeve in zip(self.instruments, equities, strict=True):
            equity += (
                sleeve if self._gather is None else self._aligned(key, sleeve, self.sleeve_cash)
            )
        return equity

    def _exposure(
        self, equity: FloatArray, equities: list[FloatArray], exposures: list[FloatArray]
    ) -> FloatArray:
        # Signed position value / equity; a ruined sleeve's NaN exposure counts as flat.
        value = np.zeros(self.ts.len())
        for key, sleeve, exposure in zip(self.instruments, equities, exposures, strict=True):
            held = np.where(np.isnan(exposure), 0.0, exposure) * sleeve
            value += held if self._gather is None else self._aligned(key, held, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(value == 0.0, 0.0, np.where(equity > 0.0, value / equity, np.nan))

    def _aligned(self, key: str, values: FloatArray, before_first: float) -> FloatArray:
        gather = self._gather[key] if self._gather is not None else None
        if gather is None:
            return values
        return np.where(gather < 0, before_first, values[np.maximum(gather, 0)])


class _Buffers:
    # Kernel outputs reused by every trial of a span (one thread runs a span's trials).
    def __init__(self, n_bars: int) -> None:
        self.equity = np.empty(n_bars)
        self.position = np.empty(n_bars)
        self.exposure = np.empty(n_bars)
        self.status = np.empty(n_bars, dtype=np.int8)


class _SpanBaseline(Baseline):
    """A baseline without entry candidates outside rows [first, end) (a run starts flat)."""

    role = ModuleRole.BASELINE

    def __init__(self, inner: Baseline, first: int, end: int) -> None:
        super().__init__()
        self.inner = inner
        self.first, self.end = first, end

    def warmup_bars(self) -> int:
        """Return the wrapped baseline's warm-up."""
        return self.inner.warmup_bars()

    def signals(self, bars: pl.DataFrame) -> BaselineSignals:
        """Return the wrapped baseline's signals with entries only on rows [first, end)."""
        signals = self.inner.signals(bars)
        entries = np.zeros(len(signals.entries), dtype=np.int8)
        entries[self.first : self.end] = signals.entries[self.first : self.end]
        return replace(signals, entries=entries)


@cache
def _span_type(inner: type[Baseline]) -> type[_SpanBaseline]:
    # A subclass per wrapped class, so errors raised by compose name the real baseline.
    attributes = {"name": inner.name, "description": inner.description}
    return type(f"{inner.__name__}InSpan", (_SpanBaseline,), attributes)


def _in_span(baseline: Baseline, first: int, end: int) -> Baseline:
    return _span_type(type(baseline))(baseline, first, end)


def _sliced(inputs: ComposedInputs, first: int, end: int) -> ComposedInputs:
    # Candidate and rejection counts stay as they are: the span baseline proposes nothing
    # outside the traded rows.
    plan = inputs.plan
    return replace(
        inputs,
        entries=inputs.entries[first:end],
        exits=None if inputs.exits is None else inputs.exits[first:end],
        size=inputs.size[first:end],
        plan=replace(
            plan,
            stop_loss_distance=_part(plan.stop_loss_distance, first, end),
            take_profit_distance=_part(plan.take_profit_distance, first, end),
            trailing_distance=_part(plan.trailing_distance, first, end),
        ),
    )


def _part(values: FloatArray | None, first: int, end: int) -> FloatArray | None:
    return None if values is None else values[first:end]


def portfolio_periods_per_year(spec: StrategySpec) -> float:
    """Return the portfolio's bars per year: equities' calendar only if every sleeve is one."""
    classes = {asset_class_of(key) for key in spec.data.instruments}
    asset_class = AssetClass.EQUITY if classes == {AssetClass.EQUITY} else AssetClass.CRYPTO
    return annualization_factor(Timeframe.parse(spec.data.timeframe), asset_class)


def _price_columns(frame: pl.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    arrays = [_read_only(frame[name].cast(pl.Float64).to_numpy()) for name in PRICE_COLUMNS]
    return arrays[0], arrays[1], arrays[2], arrays[3]


def _timeline(traded: Mapping[str, pl.DataFrame]) -> tuple[pl.Series, dict[str, Int64Array] | None]:
    # The union of the sleeves' bar times; per sleeve, the row of its last bar at or before
    # each time (-1 before its first), or None when every sleeve has the same times.
    series = [frame["ts"] for frame in traded.values()]
    if all(ts.equals(series[0]) for ts in series[1:]):
        return series[0], None
    union = pl.concat(series).unique().sort()
    union_us = union.to_physical().to_numpy()
    gather = {
        key: np.searchsorted(frame["ts"].to_physical().to_numpy(), union_us, side="right") - 1
        for key, frame in traded.items()
    }
    return union, gather


def _all_trades(trades: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    frames = [
        frame.select(pl.lit(key, dtype=pl.String).alias("instrument"), pl.all())
        for key, frame in trades.items()
    ]
    return pl.concat(frames).sort("entry_ts", maintain_order=True)


def _or_empty(values: FloatArray | None) -> FloatArray:
    return NO_FLOATS if values is None else values


def _read_only(array: np.ndarray) -> np.ndarray:
    # The kernel is compiled for read-only contiguous inputs, as the engine passes them.
    view = np.ascontiguousarray(array).view()
    view.flags.writeable = False
    return view
