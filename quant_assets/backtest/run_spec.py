"""Run one strategy spec with one parameter set: modules -> compose -> engine, per sleeve.

Each instrument of the spec is a sleeve trading an equal share of the cash; the portfolio is
the sum of the sleeves. This is the function a parameter search calls once per trial, so it
builds each module once, evaluates each indicator once per sleeve and never loops over bars.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

import polars as pl

from quant_assets.backtest.engine import TRADES_SCHEMA, BacktestResult, run_backtest
from quant_assets.backtest.metrics import annualization_factor, compute_report
from quant_assets.domain.backtest import BacktestConfig, SizingConfig, StepSummary
from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.market import AssetClass, InstrumentKey, Timeframe
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ModuleRef, ParamValue, StrategySpec
from quant_assets.strategy.compose import ComposedInputs, compose, configure, merge_steps
from quant_assets.strategy.modules import Baseline, Execution, Filter, Risk
from quant_assets.strategy.registry import build_baseline, build_execution, build_filter, build_risk
from quant_assets.strategy.risks.annualization import asset_class_of

DEFAULT_INITIAL_CASH: Final = float(BacktestConfig.model_fields["initial_cash"].default)
_SINGLE_ROLES: Final = ("baseline", "execution", "risk")


@dataclass(frozen=True)
class SpecModules:
    """The four built modules of a spec (parameters resolved and checked)."""

    baseline: Baseline
    filters: tuple[Filter, ...]
    execution: Execution
    risk: Risk


@dataclass(frozen=True)
class SpecRunResult:
    """What one run of a spec produced.

    Attributes:
        sleeves: The backtest of each instrument, by instrument key.
        equity: Portfolio curve on the union of the sleeves' ts: ts, equity (sum of the sleeves'
            equity, each carried forward between its bars), exposure (signed position value /
            equity).
        trades: Every sleeve's trades (TRADES_SCHEMA) with an `instrument` column first.
        report: Metrics of the portfolio curve and all trades.
        steps: Candidates, fills and rejections by name, summed over the sleeves.
    """

    sleeves: dict[str, BacktestResult]
    equity: pl.DataFrame
    trades: pl.DataFrame
    report: EvalReport
    steps: StepSummary


def build_spec_modules(
    spec: StrategySpec, params: Mapping[str, ParamValue] | None = None
) -> SpecModules:
    """Return the spec's modules with `params` (search-space paths) overriding its values.

    Paths are `baseline.<p>`, `execution.<p>`, `risk.<p>` and `filters.<module>.<p>` (the latter
    applies to every filter of that module).

    Raises:
        SpecValidationError: if a path is malformed or names no module of the spec, or a module
            rejects its parameters.
    """
    overrides = _overrides_by_module(spec, params or {})
    return SpecModules(
        baseline=build_baseline(_with(spec.baseline, overrides.get("baseline", {}))),
        filters=tuple(
            build_filter(_with(ref, overrides.get(f"filters.{ref.module}", {})))
            for ref in spec.filters
        ),
        execution=build_execution(_with(spec.execution, overrides.get("execution", {}))),
        risk=build_risk(_with(spec.risk, overrides.get("risk", {}))),
    )


def run_spec(
    spec: StrategySpec,
    bars: Mapping[str, pl.DataFrame],
    params: Mapping[str, ParamValue] | None = None,
    *,
    initial_cash: float = DEFAULT_INITIAL_CASH,
    n_trials: int = 1,
) -> SpecRunResult:
    """Backtest `spec` with one parameter set on canonical bars per instrument.

    Bars are used as given (slice them to the period, plus any warm-up history, before).
    Costs are the spec's; equities (yahoo venue) trade whole units; each sleeve's report and
    the portfolio's are annualized by `metrics.annualization_factor` of the timeframe and the
    asset class (yahoo -> equity, else crypto; a mixed portfolio counts as crypto).

    Args:
        spec: The strategy spec.
        bars: Canonical bars by instrument key; every key of `spec.data.instruments` must be
            present (others are ignored).
        params: Search-space paths overriding the spec's module parameters.
        initial_cash: Cash of the whole portfolio, split equally between the sleeves.
        n_trials: Configurations tried so far, for the deflated Sharpe ratio.

    Returns:
        The sleeves, the portfolio curve, all trades, the portfolio report and the step counts.

    Raises:
        SpecValidationError: if an instrument's bars are missing or a parameter is invalid.
        BacktestInputError: if bars break the engine's input contract.
    """
    missing = [key for key in spec.data.instruments if key not in bars]
    if missing:
        raise SpecValidationError(
            f"spec '{spec.name}': no bars for instrument(s) {missing} (bars were given for "
            f"{sorted(bars)}); load every instrument of spec.data.instruments"
        )
    modules = build_spec_modules(spec, params)
    sleeve_cash = initial_cash / len(spec.data.instruments)
    sleeves: dict[str, BacktestResult] = {}
    for key in spec.data.instruments:
        frame = bars[key]
        inputs = compose(frame, modules.baseline, modules.filters, modules.execution, modules.risk)
        config = sleeve_config(spec, key, sleeve_cash, n_trials)
        sleeves[key] = run_composed(frame, inputs, config)
    equity = _portfolio_equity(sleeves, sleeve_cash)
    trades = _all_trades(sleeves)
    classes = {asset_class_of(key) for key in spec.data.instruments}
    asset_class = AssetClass.EQUITY if classes == {AssetClass.EQUITY} else AssetClass.CRYPTO
    report = compute_report(
        equity,
        trades,
        initial_cash=initial_cash,
        periods_per_year=annualization_factor(Timeframe.parse(spec.data.timeframe), asset_class),
        n_trials=n_trials,
    )
    steps = summed_steps([result.steps for result in sleeves.values()])
    return SpecRunResult(sleeves, equity, trades, report, steps)


def run_composed(
    bars: pl.DataFrame, inputs: ComposedInputs, config: BacktestConfig
) -> BacktestResult:
    """Run the engine on composed inputs; the step summary counts every stage.

    The plan's exit rules and reversal policy replace those of `config`.
    """
    plan = inputs.plan
    result = run_backtest(
        bars,
        inputs.entries,
        configure(config, plan),
        inputs.exits,
        size=inputs.size,
        stop_loss_distance=plan.stop_loss_distance,
        take_profit_distance=plan.take_profit_distance,
        trailing_distance=plan.trailing_distance,
    )
    return replace(result, steps=merge_steps(inputs, result.steps))


def sleeve_config(spec: StrategySpec, key: str, cash: float, n_trials: int = 1) -> BacktestConfig:
    """Return the backtest config of one instrument's sleeve.

    The spec's costs, the sleeve's cash, whole units for equities, and the annualization of
    the instrument's bars.
    """
    asset_class = asset_class_of(key)
    return BacktestConfig(
        cost=spec.cost,
        sizing=SizingConfig(whole_units=asset_class is AssetClass.EQUITY),
        initial_cash=cash,
        periods_per_year=annualization_factor(InstrumentKey.parse(key).bar, asset_class),
        n_trials=n_trials,
    )


def _overrides_by_module(
    spec: StrategySpec, params: Mapping[str, ParamValue]
) -> dict[str, dict[str, ParamValue]]:
    filter_names = {ref.module for ref in spec.filters}
    overrides: dict[str, dict[str, ParamValue]] = {}
    for path, value in params.items():
        parts = path.split(".")
        if len(parts) == 2 and parts[0] in _SINGLE_ROLES:
            owner = parts[0]
        elif len(parts) == 3 and parts[0] == "filters" and parts[1] in filter_names:
            owner = f"filters.{parts[1]}"
        else:
            raise SpecValidationError(
                f"spec '{spec.name}': parameter path '{path}' names no module of the spec; write "
                "baseline.<param>, execution.<param>, risk.<param> or filters.<module>.<param> "
                f"with a filter module of the spec (its filters are {sorted(filter_names)})"
            )
        overrides.setdefault(owner, {})[parts[-1]] = value
    return overrides


def _with(ref: ModuleRef, overrides: Mapping[str, ParamValue]) -> ModuleRef:
    if not overrides:
        return ref
    return ModuleRef(module=ref.module, params={**ref.params, **overrides})


def _portfolio_equity(sleeves: Mapping[str, BacktestResult], sleeve_cash: float) -> pl.DataFrame:
    curves = [result.equity for result in sleeves.values()]
    same_bars = all(curve["ts"].equals(curves[0]["ts"]) for curve in curves[1:])
    if same_bars:
        frame = pl.DataFrame({"ts": curves[0]["ts"]})
    else:
        frame = pl.concat([curve.select("ts") for curve in curves]).unique().sort("ts")
    for index, curve in enumerate(curves):
        part = curve.select(
            "ts",
            pl.col("equity").alias(f"equity_{index}"),
            # The signed position value; a ruined sleeve (NaN exposure) counts as no position.
            (pl.col("exposure").fill_nan(0.0) * pl.col("equity")).alias(f"value_{index}"),
        )
        if same_bars:
            frame = frame.with_columns(part.drop("ts"))
            continue
        # Between its own bars a sleeve keeps its last value; before its first bar, its cash.
        frame = frame.join(part, on="ts", how="left", maintain_order="left").with_columns(
            pl.col(f"equity_{index}").forward_fill().fill_null(sleeve_cash),
            pl.col(f"value_{index}").forward_fill().fill_null(0.0),
        )
    equity = pl.sum_horizontal(pl.col(f"equity_{index}") for index in range(len(curves)))
    value = pl.sum_horizontal(pl.col(f"value_{index}") for index in range(len(curves)))
    exposure = pl.when(value == 0.0).then(0.0).when(equity > 0.0).then(value / equity)
    return frame.select(
        "ts",
        equity.alias("equity"),
        exposure.otherwise(float("nan")).alias("exposure"),
    )


def _all_trades(sleeves: Mapping[str, BacktestResult]) -> pl.DataFrame:
    frames = [
        result.trades.select(pl.lit(key, dtype=pl.String).alias("instrument"), pl.all())
        for key, result in sleeves.items()
    ]
    schema = pl.Schema({"instrument": pl.String(), **TRADES_SCHEMA})
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat(frames).sort("entry_ts", maintain_order=True)


def summed_steps(steps: list[StepSummary]) -> StepSummary:
    """Return the step summaries added up (candidates, fills, rejections by name)."""
    rejections: dict[str, int] = {}
    for summary in steps:
        for name, count in summary.rejections.items():
            rejections[name] = rejections.get(name, 0) + count
    return StepSummary(
        candidates=sum(summary.candidates for summary in steps),
        fills=sum(summary.fills for summary in steps),
        rejections=rejections,
    )
