"""The research audits: deterministic checks a walk-forward result must pass before archiving.

Each audit is one function over plain inputs (a spec, bars, reports, numbers, the preferences)
returning an `AuditOutcome`; the Dagster layer wires them as asset checks on
`walkforward_results` (DESIGN.md, Governance). Blocking audits stop a result from becoming a
candidate; the survivorship audit only warns.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, Self

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quant_assets.backtest.run_spec import SpecModules, build_spec_modules
from quant_assets.domain.errors import (
    ConfigurationError,
    SpecValidationError,
    UnknownInstrumentError,
)
from quant_assets.domain.market import AssetClass
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ParamValue, StrategySpec
from quant_assets.features.lookahead import LookAheadViolation, find_look_ahead
from quant_assets.governance.preferences import Preferences
from quant_assets.strategy.compose import compose

MetricValue = float | int | str | bool
# Relative slack for float rounding in the engine's sizing (1.0 comes out as 1.0000000000000009).
FRACTION_TOLERANCE: Final = 1e-9
_LOOK_AHEAD_FIX: Final = (
    "compute it from the current and earlier bars only (no shift(-k), centred windows or "
    "full-sample statistics)"
)


class AuditName(StrEnum):
    """The audits, named as their asset checks."""

    LOOK_AHEAD = "look_ahead"
    OVERFITTING_GAP = "overfitting_gap"
    MIN_TRADES = "min_trades"
    DRAWDOWN_LIMIT = "drawdown_limit"
    CONCENTRATION = "concentration"
    SURVIVORSHIP = "survivorship"


class AuditOutcome(BaseModel):
    """The verdict of one audit: passed or not, whether a failure blocks, and why.

    Attributes:
        severity: How a failure is reported: "error" for blocking audits, "warn" otherwise.
        message: Names the thing audited, the value, the limit and (on failure) the fix.
        metrics: The numbers behind the verdict (shown as check metadata).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: AuditName
    passed: bool
    blocking: bool
    severity: Literal["error", "warn"]
    message: str = Field(min_length=1)
    metrics: dict[str, MetricValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _blocking_is_error(self) -> Self:
        if self.blocking and self.severity != "error":
            raise ValueError(
                f"audit '{self.name}' is blocking but its severity was '{self.severity}'; a "
                "blocking audit reports failures as 'error'"
            )
        return self

    @property
    def blocks(self) -> bool:
        """Return whether this outcome stops the result (a failed blocking audit)."""
        return self.blocking and not self.passed


def _outcome(
    name: AuditName, passed: bool, message: str, metrics: dict[str, MetricValue]
) -> AuditOutcome:
    # Every audit blocks but survivorship, which warns (issue 5).
    blocking = name is not AuditName.SURVIVORSHIP
    severity: Literal["error", "warn"] = "error" if blocking else "warn"
    text = f"{name.value}: {message}"
    return AuditOutcome(
        name=name,
        passed=passed,
        blocking=blocking,
        severity=severity,
        message=text,
        metrics=metrics,
    )


@dataclass(frozen=True)
class _Finding:
    # A look-ahead difference: instrument, module (rank = pipeline order) and output.
    instrument: str
    rank: int
    module: str
    output: str
    violation: LookAheadViolation


def audit_look_ahead(
    spec: StrategySpec,
    bars: Mapping[str, pl.DataFrame],
    params: Mapping[str, ParamValue] | None,
    *,
    cut_points: int = 8,
    seed: int = 0,
) -> AuditOutcome:
    """Fail when a module of the spec reads bars after the one it decides on.

    Builds the spec's modules with `params` (e.g. a window's best parameters; None keeps the
    spec's values) and runs `audit_modules_look_ahead` on the bars of the spec's instruments.

    Raises:
        SpecValidationError: if an instrument's bars are missing or shorter than 2 bars, or a
            parameter is invalid.
        ValueError: if `cut_points` is below 1.
    """
    missing = [key for key in spec.data.instruments if key not in bars]
    if missing:
        raise SpecValidationError(
            f"look_ahead: spec '{spec.name}' has no bars for {missing} (bars were given for "
            f"{sorted(bars)}); pass every instrument of spec.data.instruments"
        )
    modules = build_spec_modules(spec, params)
    selected = {key: bars[key] for key in spec.data.instruments}
    return audit_modules_look_ahead(modules, selected, cut_points=cut_points, seed=seed)


def audit_modules_look_ahead(
    modules: SpecModules, bars: Mapping[str, pl.DataFrame], *, cut_points: int = 8, seed: int = 0
) -> AuditOutcome:
    """Fail when a module's output at a bar changes once the bars after it are removed.

    Per instrument, the modules' outputs are computed on all bars and on the bars cut after
    each of `cut_points` bars drawn (seeded, so repeatable) between the longest warm-up and the
    second-to-last bar; every value up to the cut must be equal (NaN equals NaN). Outputs: the
    baseline's entries and exits; each filter's passes and the risk's sizes for a long and a
    short candidate on every bar; the execution's stop, target and trailing distances; and the
    composed entries, exits and sizes the engine gets. The message names the first module (in
    pipeline order) that differs, its first differing bar, the bar's ts and both values.

    Args:
        modules: Built modules (from `build_spec_modules`, or built directly).
        bars: Canonical bars of each instrument to check, by instrument key.
        cut_points: Cuts drawn per instrument (fewer when the bars are shorter).
        seed: Seed of the draw.

    Raises:
        SpecValidationError: if an instrument has fewer than 2 bars.
        ValueError: if `cut_points` is below 1.
    """
    if cut_points < 1:
        raise ValueError(f"look_ahead: cut_points was {cut_points}; draw at least 1 cut")
    labels = _module_labels(modules)
    parts = (modules.baseline, *modules.filters, modules.risk, modules.execution)
    warmup = max(module.warmup_bars() for module in parts)
    rng = np.random.default_rng(seed)
    findings: list[_Finding] = []
    cuts = 0
    for key, frame in bars.items():
        cut_indices = _sample_cuts(key, frame.height, warmup, cut_points, rng)
        cuts += len(cut_indices)
        violations = find_look_ahead(
            lambda part: _module_outputs(modules, labels, part), frame, cut_indices=cut_indices
        )
        for violation in violations:
            module, output = violation.column.rsplit(": ", 1)
            findings.append(_Finding(key, labels.index(module), module, output, violation))
    metrics: dict[str, MetricValue] = {"cuts": cuts, "differences": len(findings)}
    if not findings:
        message = (
            f"no output of {', '.join(labels)} changed when the bars after any of {cuts} cuts "
            f"were removed ({len(bars)} instrument(s))"
        )
        return _outcome(AuditName.LOOK_AHEAD, True, message, metrics)
    return _outcome(AuditName.LOOK_AHEAD, False, *_describe_findings(findings, bars, metrics))


def _describe_findings(
    findings: list[_Finding], bars: Mapping[str, pl.DataFrame], metrics: dict[str, MetricValue]
) -> tuple[str, dict[str, MetricValue]]:
    first = min(findings, key=lambda finding: (finding.rank, finding.violation.row_index))
    found = first.violation
    row_ts = bars[first.instrument]["ts"][found.row_index]
    culprits = sorted({(finding.rank, finding.module) for finding in findings})
    message = (
        f"{first.module} reads future bars on {first.instrument}: its output '{first.output}' at "
        f"bar {found.row_index} ({row_ts.isoformat()}) was {found.full_value!r} on the full bars "
        f"but {found.truncated_value!r} on the bars cut after bar {found.cut_index}; "
        f"{len(findings)} difference(s) in {', '.join(name for _, name in culprits)}; "
        f"{_LOOK_AHEAD_FIX}"
    )
    details: dict[str, MetricValue] = {
        **metrics,
        "module": first.module,
        "instrument": first.instrument,
        "first_bar": found.row_index,
        "first_ts": row_ts.isoformat(),
        "cut_bar": found.cut_index,
    }
    return message, details


def _module_labels(modules: SpecModules) -> list[str]:
    filters = [
        f"filter {index + 1} '{module.name}'" for index, module in enumerate(modules.filters)
    ]
    return [
        f"baseline '{modules.baseline.name}'",
        *filters,
        f"risk '{modules.risk.name}'",
        f"execution '{modules.execution.name}'",
        "composed pipeline",
    ]


def _module_outputs(modules: SpecModules, labels: list[str], bars: pl.DataFrame) -> pl.DataFrame:
    # One row per bar, one column per "<module label>: <output>"; labels follow _module_labels.
    rows = bars.height
    signals = modules.baseline.signals(bars)
    outputs: list[tuple[str, str, np.ndarray | None]] = [
        (labels[0], "entries", signals.entries),
        (labels[0], "exits", signals.exits),
        (labels[0], "long_exits", signals.long_exits),
        (labels[0], "short_exits", signals.short_exits),
    ]
    for label, module in zip(labels[1:], modules.filters, strict=False):
        outputs.append((label, "passes_long", module.passes(bars, _candidates(rows, 1))))
        outputs.append((label, "passes_short", module.passes(bars, _candidates(rows, -1))))
    risk, execution, pipeline = labels[-3:]
    outputs.append((risk, "size_long", modules.risk.sizes(bars, _candidates(rows, 1))))
    outputs.append((risk, "size_short", modules.risk.sizes(bars, _candidates(rows, -1))))
    plan = modules.execution.plan(bars)
    outputs.append((execution, "stop_loss_distance", plan.stop_loss_distance))
    outputs.append((execution, "take_profit_distance", plan.take_profit_distance))
    outputs.append((execution, "trailing_distance", plan.trailing_distance))
    composed = compose(bars, modules.baseline, modules.filters, modules.execution, modules.risk)
    outputs.append((pipeline, "entries", composed.entries))
    outputs.append((pipeline, "exits", composed.exits))
    outputs.append((pipeline, "size", composed.size))
    return pl.DataFrame(
        [
            pl.Series(f"{label}: {name}", np.full(rows, np.nan) if values is None else values)
            for label, name, values in outputs
        ]
    )


def _candidates(rows: int, side: int) -> np.ndarray:
    # A candidate on every bar, so each bar's pass or size is decided (a fresh array per call).
    return np.full(rows, side, dtype=np.int8)


def _sample_cuts(
    key: str, rows: int, warmup: int, count: int, rng: np.random.Generator
) -> list[int]:
    if rows < 2:
        raise SpecValidationError(
            f"look_ahead: instrument '{key}' has {rows} bar(s); the audit cuts the bars before "
            "the last one, so it needs at least 2; load more history"
        )
    # Cutting after the last bar would keep every bar; cuts inside the warm-up see only NaN.
    population = np.arange(min(warmup, rows - 2), rows - 1)
    chosen = rng.choice(population, size=min(count, population.size), replace=False)
    return sorted(int(cut) for cut in chosen)


def audit_overfitting_gap(
    is_report: EvalReport, oos_report: EvalReport, deflated_sharpe: float, prefs: Preferences
) -> AuditOutcome:
    """Fail when IS minus OOS Sharpe exceeds the limit or the deflated Sharpe is below its floor.

    Args:
        is_report: Metrics of the in-sample (train) periods.
        oos_report: Metrics of the stitched out-of-sample periods.
        deflated_sharpe: Probability that the OOS Sharpe beats the best of the trials by luck.
        prefs: The limits (`max_sharpe_gap`, `min_deflated_sharpe`).

    Raises:
        ValueError: if `deflated_sharpe` is not a probability.
    """
    if not 0.0 <= deflated_sharpe <= 1.0:
        raise ValueError(
            f"overfitting_gap: deflated_sharpe was {deflated_sharpe!r}, not a probability in "
            "[0, 1]; pass the deflated Sharpe probability, not the Sharpe ratio"
        )
    gap = is_report.sharpe - oos_report.sharpe
    problems: list[str] = []
    if gap > prefs.max_sharpe_gap:
        problems.append(
            f"in-sample Sharpe {is_report.sharpe:.3f} minus out-of-sample Sharpe "
            f"{oos_report.sharpe:.3f} is {gap:.3f}, above the limit {prefs.max_sharpe_gap:.3f} "
            "(preferences max_sharpe_gap)"
        )
    if deflated_sharpe < prefs.min_deflated_sharpe:
        problems.append(
            f"deflated Sharpe probability {deflated_sharpe:.3f} is below the floor "
            f"{prefs.min_deflated_sharpe:.3f} (preferences min_deflated_sharpe)"
        )
    if problems:
        message = (
            "; ".join(problems) + "; the fit looks overfitted: narrow the search space, use "
            "fewer parameters or trials, or evaluate on more out-of-sample data"
        )
    else:
        message = (
            f"Sharpe gap {gap:.3f} is within {prefs.max_sharpe_gap:.3f} and deflated Sharpe "
            f"{deflated_sharpe:.3f} is at least {prefs.min_deflated_sharpe:.3f}"
        )
    metrics: dict[str, MetricValue] = {
        "is_sharpe": is_report.sharpe,
        "oos_sharpe": oos_report.sharpe,
        "sharpe_gap": gap,
        "max_sharpe_gap": prefs.max_sharpe_gap,
        "deflated_sharpe": deflated_sharpe,
        "min_deflated_sharpe": prefs.min_deflated_sharpe,
    }
    return _outcome(AuditName.OVERFITTING_GAP, not problems, message, metrics)


def audit_min_trades(oos_report: EvalReport, prefs: Preferences) -> AuditOutcome:
    """Fail when the out-of-sample period holds fewer trades than `prefs.min_trades`."""
    passed = oos_report.trades >= prefs.min_trades
    message = (
        f"{oos_report.trades} out-of-sample trades, at least the minimum {prefs.min_trades}"
        if passed
        else f"{oos_report.trades} out-of-sample trades is below the minimum {prefs.min_trades} "
        "(preferences min_trades); too few to trust the metrics: lengthen the out-of-sample "
        "period, add instruments or use a faster signal"
    )
    metrics: dict[str, MetricValue] = {"trades": oos_report.trades, "limit": prefs.min_trades}
    return _outcome(AuditName.MIN_TRADES, passed, message, metrics)


def audit_drawdown_limit(oos_report: EvalReport, prefs: Preferences) -> AuditOutcome:
    """Fail when the out-of-sample max drawdown is deeper than `prefs.max_drawdown`."""
    drawdown, limit = oos_report.max_drawdown, prefs.max_drawdown
    passed = drawdown >= limit
    message = (
        f"out-of-sample max drawdown {drawdown:.2%} is within the limit {limit:.2%}"
        if passed
        else f"out-of-sample max drawdown {drawdown:.2%} is deeper than the limit {limit:.2%} "
        "(preferences max_drawdown); reduce position sizes, add a stop or a volatility target"
    )
    metrics: dict[str, MetricValue] = {"max_drawdown": drawdown, "limit": limit}
    return _outcome(AuditName.DRAWDOWN_LIMIT, passed, message, metrics)


def audit_concentration(max_position_fraction_used: float, prefs: Preferences) -> AuditOutcome:
    """Fail when the largest position taken exceeds `prefs.max_position_fraction` of equity.

    A relative `FRACTION_TOLERANCE` absorbs float rounding of the engine's sizing.

    Args:
        max_position_fraction_used: The largest fraction of equity committed at an entry (see
            `largest_entry_fraction`); infinity stands for a position on non-positive equity.
        prefs: The limit (`max_position_fraction`).

    Raises:
        ValueError: if the fraction is negative or NaN.
    """
    used, limit = max_position_fraction_used, prefs.max_position_fraction
    if not used >= 0.0:
        raise ValueError(
            f"concentration: max_position_fraction_used was {used!r}, not a fraction >= 0; pass "
            "the largest |position value| / equity at entry"
        )
    passed = used <= limit * (1.0 + FRACTION_TOLERANCE)
    message = (
        f"largest position {used:.4f} of equity is within the cap {limit:.4f}"
        if passed
        else f"largest position {used:.4f} of equity is above the cap {limit:.4f} (preferences "
        "max_position_fraction); lower the risk module's fraction or its max_fraction"
    )
    shown: MetricValue = used if np.isfinite(used) else "unbounded"
    metrics: dict[str, MetricValue] = {"max_position_fraction_used": shown, "limit": limit}
    return _outcome(AuditName.CONCENTRATION, passed, message, metrics)


def largest_entry_fraction(
    trades: pl.DataFrame, *, sleeve_cash: float, commission_rate: float
) -> float:
    """Return the largest fraction of its sleeve's equity any trade committed at entry (0 if none).

    The engine enters only when flat, so a sleeve's equity at an entry is its starting cash plus
    the pnl of its earlier trades, and an entry commits qty x price x (1 + commission_rate) of
    it (`backtest/kernel.py`). Unlike max |exposure| of the equity curve, this ignores the drift
    of a position's value after entry (a losing short grows past 1).

    Args:
        trades: One continuous run's trades (TRADES_SCHEMA, with an `instrument` column when
            several sleeves traded).
        sleeve_cash: Starting cash of each sleeve.
        commission_rate: The spec's commission rate per side.
    """
    if trades.height == 0:
        return 0.0
    sleeve = pl.col("instrument") if "instrument" in trades.columns else pl.lit("")
    earlier_pnl = pl.col("pnl").cum_sum().shift(1, fill_value=0.0).over(sleeve, order_by="entry_ts")
    committed = pl.col("qty") * pl.col("entry_price") * (1.0 + commission_rate)
    equity = sleeve_cash + earlier_pnl
    fractions = trades.select(
        pl.when(equity > 0.0).then(committed / equity).otherwise(float("inf")).alias("fraction")
    )
    return float(fractions["fraction"].max())  # type: ignore[arg-type]


def audit_survivorship(spec: StrategySpec, asset_classes: Mapping[str, str]) -> AuditOutcome:
    """Warn (non-blocking) when the spec trades equities: the shipped universe has survived.

    The shipped equities are today's S&P 500 members and long-lived ETFs, so delisted or
    dropped names are missing and back-tests look better than the past allowed.

    Args:
        spec: The strategy spec.
        asset_classes: Asset class ("crypto" or "equity") by instrument key, e.g. from
            instruments.yaml; every instrument of the spec must be present.

    Raises:
        UnknownInstrumentError: if an instrument of the spec has no asset class.
        ConfigurationError: if an asset class is not one of the known values.
    """
    instruments = spec.data.instruments
    equities = [key for key in instruments if _asset_class(key, asset_classes) is AssetClass.EQUITY]
    message = (
        f"spec '{spec.name}' trades equities {equities} from a universe of today's constituents "
        "(data/market/README.md), so delisted and dropped names are missing and results are "
        "biased upwards; treat its metrics as optimistic, or use a point-in-time universe"
        if equities
        else f"spec '{spec.name}' trades no equities ({len(instruments)} instrument(s))"
    )
    passed = not equities
    metrics: dict[str, MetricValue] = {"equity_instruments": len(equities)}
    return _outcome(AuditName.SURVIVORSHIP, passed, message, metrics)


def _asset_class(key: str, asset_classes: Mapping[str, str]) -> AssetClass:
    if key not in asset_classes:
        raise UnknownInstrumentError(
            f"survivorship: instrument '{key}' has no asset class in the mapping given (it holds "
            f"{sorted(asset_classes)}); register the instrument in instruments.yaml"
        )
    value = asset_classes[key]
    try:
        return AssetClass(value)
    except ValueError as e:
        raise ConfigurationError(
            f"survivorship: asset class of '{key}' was {value!r}, not one of "
            f"{[member.value for member in AssetClass]}; correct it"
        ) from e
