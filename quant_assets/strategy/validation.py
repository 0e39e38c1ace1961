"""Pre-flight validation of strategy specs against the template catalog, and specs from entries.

A spec passes when its template exists, its modules are ones the template allows, every parameter
and every search range lies inside the template's bounds, and its data slice names registered
instruments of the template's timeframes over a period the stored bars cover (DESIGN.md,
strategy_specs). Every problem found is reported at once, each with its field path, the value,
the rule and the fix.
"""

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from quant_assets.domain.backtest import CostModel
from quant_assets.domain.errors import SpecValidationError, UnknownInstrumentError
from quant_assets.domain.market import InstrumentKey, Timeframe
from quant_assets.domain.strategy import (
    DataSlice,
    Lineage,
    ModuleRef,
    ModuleRole,
    ParamRange,
    StrategySpec,
    WalkForwardConfig,
)
from quant_assets.strategy.catalog.conformance import template_problems
from quant_assets.strategy.catalog.loader import (
    Catalog,
    CatalogEntry,
    ModuleBounds,
    default_params,
)
from quant_assets.strategy.registry import module_class

_LISTED_INSTRUMENTS: Final = 8


def validate_spec(
    spec: StrategySpec,
    catalog: Catalog,
    *,
    registered_instruments: Collection[str] | None = None,
    data_ranges: Mapping[str, tuple[datetime, datetime]] | None = None,
    instrument_asset_classes: Mapping[str, str] | None = None,
) -> StrategySpec:
    """Return the spec unchanged if it lies inside the catalog and the data; raise otherwise.

    Args:
        spec: The spec to check.
        catalog: The template catalog that bounds the strategy space.
        registered_instruments: Instrument keys that may be traded; None skips the check.
        data_ranges: Per instrument key, the open times of its first and last stored bar; the
            spec's period must lie inside [first, last + one bar]. None skips the check.
        instrument_asset_classes: Per instrument key, its asset class (crypto, equity); each
            must be one the template is meant for. None skips the check.

    Raises:
        SpecValidationError: listing every problem with its field path, value, rule and fix.
    """
    problems: list[str] = []
    entry = _template(spec, catalog, problems)
    if entry is not None:
        problems += template_problems(spec, entry, instrument_asset_classes)
    problems += _instrument_problems(spec.data, registered_instruments)
    if data_ranges is not None:
        problems += _period_problems(spec.data, data_ranges)
    if problems:
        raise SpecValidationError(
            f"spec '{spec.name}' ({spec.spec_id}) failed validation with {len(problems)} "
            "problem(s):\n- " + "\n- ".join(problems)
        )
    return spec


def spec_from_entry(
    entry: CatalogEntry,
    data: DataSlice,
    *,
    name: str | None = None,
    filters: Sequence[str] | None = None,
    execution: str | None = None,
    risk: str | None = None,
    cost: CostModel | None = None,
    walk_forward: WalkForwardConfig | None = None,
    created_by: str = "catalog",
) -> StrategySpec:
    """Return a spec that instantiates a catalog entry on a data slice.

    Modules take the template's defaults (`default_params`: module default if allowed, else the
    middle of the range); the search space is the template's bounds for the baseline and for the
    bounded parameters of the chosen filters, execution and risk.

    Args:
        entry: The template to instantiate.
        data: Instruments, timeframe and period to trade.
        name: Spec name; defaults to the template name and instruments.
        filters: Filter module names; defaults to the template's required filters.
        execution: Execution module; defaults to the template's first.
        risk: Risk module; defaults to the template's first.
        cost: Trading costs; defaults to the spec's default (0.1% commission).
        walk_forward: Defaults to `default_walk_forward(data.timeframe)`.
        created_by: Lineage author.

    Raises:
        SpecValidationError: if a chosen module is not allowed by the template, or the result
            does not validate against the entry.
    """
    chosen_filters = (
        [m.module for m in entry.filters if m.required] if filters is None else list(filters)
    )
    refs = {
        ModuleRole.BASELINE: [entry.baseline.module],
        ModuleRole.FILTER: chosen_filters,
        ModuleRole.EXECUTION: [execution or entry.executions[0].module],
        ModuleRole.RISK: [risk or entry.risks[0].module],
    }
    allowances = {role: [_allowance_or_raise(entry, role, m) for m in refs[role]] for role in refs}
    modules = {
        role: [ModuleRef(module=a.module, params=default_params(role, a)) for a in allowances[role]]
        for role in allowances
    }
    spec = StrategySpec(
        name=(name or f"{entry.name} on {', '.join(data.instruments)}")[:120],
        hypothesis=entry.hypothesis.strip(),
        template=entry.name,
        data=data,
        baseline=modules[ModuleRole.BASELINE][0],
        filters=tuple(modules[ModuleRole.FILTER]),
        execution=modules[ModuleRole.EXECUTION][0],
        risk=modules[ModuleRole.RISK][0],
        search_space=_search_space_of(allowances),
        walk_forward=walk_forward or default_walk_forward(data.timeframe),
        cost=cost or StrategySpec.model_fields["cost"].default,
        lineage=Lineage(created_by=created_by),
    )
    return validate_spec(spec, Catalog(entries=(entry,)))


def default_walk_forward(timeframe: str) -> WalkForwardConfig:
    """Return walk-forward windows suited to a timeframe.

    Intraday bars: train one year, test one quarter, embargo one day (calendar time, crypto
    trades around the clock). Daily and longer bars: train 756 bars (three trading years), test
    126, embargo 5.
    """
    bar = Timeframe.parse(timeframe)
    if not bar.is_intraday:
        return WalkForwardConfig(train_bars=756, test_bars=126, embargo_bars=5)
    bars_per_day = 86_400 // bar.seconds
    return WalkForwardConfig(
        train_bars=365 * bars_per_day, test_bars=91 * bars_per_day, embargo_bars=bars_per_day
    )


def _template(spec: StrategySpec, catalog: Catalog, problems: list[str]) -> CatalogEntry | None:
    try:
        return catalog.entry(spec.template)
    except SpecValidationError:
        problems.append(
            f"template was '{spec.template}', which is not in the catalog; use one of "
            f"{list(catalog.names())}"
        )
        return None


def _instrument_problems(data: DataSlice, registered: Collection[str] | None) -> list[str]:
    problems: list[str] = []
    try:
        Timeframe.parse(data.timeframe)
    except UnknownInstrumentError as e:
        problems.append(f"data.timeframe was '{data.timeframe}': {e}")
    for position, key in enumerate(data.instruments):
        where = f"data.instruments[{position}] was '{key}'"
        try:
            instrument = InstrumentKey.parse(key)
        except UnknownInstrumentError as e:
            problems.append(f"{where}: {e}")
            continue
        if data.instruments.index(key) != position:
            problems.append(f"{where}, listed twice; keep one")
        if instrument.timeframe != data.timeframe:
            problems.append(
                f"{where}, a {instrument.timeframe} instrument, but data.timeframe is "
                f"'{data.timeframe}'; use the {data.timeframe} key or change data.timeframe"
            )
        if registered is not None and key not in registered:
            known = sorted(registered)[:_LISTED_INSTRUMENTS]
            problems.append(
                f"{where}, which is not a registered instrument; register it "
                f"(`quant-assets instruments add {key} ...`) or use a registered one, e.g. {known}"
            )
    return problems


def _period_problems(
    data: DataSlice, data_ranges: Mapping[str, tuple[datetime, datetime]]
) -> list[str]:
    problems: list[str] = []
    for position, key in enumerate(data.instruments):
        if key not in data_ranges:
            problems.append(
                f"data.instruments[{position}] was '{key}', which has no stored bars; ingest "
                "its bars (materialize `bars` for it) before using it"
            )
            continue
        try:
            bar = Timeframe.parse(InstrumentKey.parse(key).timeframe).duration
        except UnknownInstrumentError:
            continue  # reported by _instrument_problems
        first, last = (_aware(ts) for ts in data_ranges[key])
        # A period ends where its last bar closes: last open + one bar.
        data_end = last + bar
        if data.start < first:
            problems.append(
                f"data.start was {_iso(data.start)}, before the first stored bar of '{key}' "
                f"({_iso(first)}): the period is outside the data; start at {_iso(first)} or later"
            )
        if data.end > data_end:
            problems.append(
                f"data.end was {_iso(data.end)}, after the last stored bar of '{key}' closes "
                f"({_iso(data_end)}): the period is outside the data; end at {_iso(data_end)} "
                "or earlier, or ingest newer bars"
            )
    return problems


def _search_space_of(allowances: Mapping[ModuleRole, list[ModuleBounds]]) -> dict[str, ParamRange]:
    space: dict[str, ParamRange] = {}
    for role, modules in allowances.items():
        for allowance in modules:
            params = module_class(role, allowance.module).params
            for param, (low, high) in allowance.bounds.items():
                kind = params[param].kind
                if kind not in ("int", "float"):
                    continue
                prefix = f"filters.{allowance.module}" if role == ModuleRole.FILTER else role.value
                space[f"{prefix}.{param}"] = ParamRange(low=low, high=high, kind=kind)
    return space


def _allowance_or_raise(entry: CatalogEntry, role: ModuleRole, module: str) -> ModuleBounds:
    allowance = entry.allowance(role, module)
    if allowance is None:
        allowed = [m.module for m in entry.allowed(role)]
        raise SpecValidationError(
            f"{role.value} '{module}' is not allowed by template '{entry.name}'; "
            f"use one of {allowed}"
        )
    return allowance


def _aware(ts: datetime) -> datetime:
    # Stored bar times are UTC; a naive one is read as UTC rather than compared and failing.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
