"""The module registry: every baseline, filter, execution and risk module, by role and name.

Registration is this explicit list (no import-time side effects, no plugin discovery); a new
module is added here and the contract suite covers it on arrival.
"""

from typing import Final

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.strategy import ModuleRef, ModuleRole
from quant_assets.strategy.baselines.breakouts import (
    DonchianBreakoutBaseline,
    KeltnerBreakoutBaseline,
    SupertrendBaseline,
    TsmomBaseline,
)
from quant_assets.strategy.baselines.crossovers import (
    AroonTrendBaseline,
    EmaCrossBaseline,
    MacdTrendBaseline,
    SmaCrossBaseline,
    TrendflexBaseline,
)
from quant_assets.strategy.baselines.reversion import (
    BollingerReversionBaseline,
    RsiReversionBaseline,
    ZscoreReversionBaseline,
)
from quant_assets.strategy.executions.atr import AtrStopExecution, ChandelierExecution
from quant_assets.strategy.executions.fixed import (
    FixedStopTargetExecution,
    SignalExitOnlyExecution,
    TimeExitExecution,
    TrailingPctExecution,
)
from quant_assets.strategy.filters.activity import VolatilityRegimeFilter, VolumeActivityFilter
from quant_assets.strategy.filters.gates import DirectionFilter, TimeOfDayFilter
from quant_assets.strategy.filters.trend import AdxStrengthFilter, HigherTimeframeTrendFilter
from quant_assets.strategy.modules import Baseline, Execution, Filter, Risk, StrategyModule
from quant_assets.strategy.risks.sizing import (
    CappedKellyRisk,
    FixedFractionRisk,
    VolatilityTargetRisk,
)

_MODULES: Final[tuple[type[StrategyModule], ...]] = (
    EmaCrossBaseline,
    SmaCrossBaseline,
    DonchianBreakoutBaseline,
    BollingerReversionBaseline,
    RsiReversionBaseline,
    MacdTrendBaseline,
    TsmomBaseline,
    SupertrendBaseline,
    KeltnerBreakoutBaseline,
    TrendflexBaseline,
    ZscoreReversionBaseline,
    AroonTrendBaseline,
    AdxStrengthFilter,
    VolatilityRegimeFilter,
    HigherTimeframeTrendFilter,
    VolumeActivityFilter,
    TimeOfDayFilter,
    DirectionFilter,
    SignalExitOnlyExecution,
    FixedStopTargetExecution,
    AtrStopExecution,
    TrailingPctExecution,
    ChandelierExecution,
    TimeExitExecution,
    FixedFractionRisk,
    VolatilityTargetRisk,
    CappedKellyRisk,
)
_ROLE_BASES: Final[dict[ModuleRole, type[StrategyModule]]] = {
    ModuleRole.BASELINE: Baseline,
    ModuleRole.FILTER: Filter,
    ModuleRole.EXECUTION: Execution,
    ModuleRole.RISK: Risk,
}


def registered_modules(role: ModuleRole | None = None) -> list[type[StrategyModule]]:
    """Return the registered module classes, of one role or of all, in registration order."""
    return [module for module in _MODULES if role is None or module.role is role]


def module_class(role: ModuleRole, name: str) -> type[StrategyModule]:
    """Return the module class registered under `name` for `role`.

    Raises:
        SpecValidationError: naming the role, the unknown name and the known names.
    """
    for module in _MODULES:
        if module.role is role and module.name == name:
            return module
    known = ", ".join(module.name for module in registered_modules(role))
    raise SpecValidationError(
        f"{role.value} module '{name}' is not registered; choose one of: {known}"
    )


def build_module(role: ModuleRole, ref: ModuleRef) -> StrategyModule:
    """Return the module `ref` names, built with its parameters (missing ones take defaults).

    Raises:
        SpecValidationError: if the name is unknown or a parameter is unknown, of the wrong
            kind, outside the module's bounds or breaks a cross-parameter rule.
    """
    return module_class(role, ref.module)(**ref.params)


def build_baseline(ref: ModuleRef) -> Baseline:
    """Return the baseline module `ref` names (see `build_module`)."""
    module = build_module(ModuleRole.BASELINE, ref)
    if not isinstance(module, Baseline):
        raise _role_mismatch(module, "Baseline")
    return module


def build_filter(ref: ModuleRef) -> Filter:
    """Return the filter module `ref` names (see `build_module`)."""
    module = build_module(ModuleRole.FILTER, ref)
    if not isinstance(module, Filter):
        raise _role_mismatch(module, "Filter")
    return module


def build_execution(ref: ModuleRef) -> Execution:
    """Return the execution module `ref` names (see `build_module`)."""
    module = build_module(ModuleRole.EXECUTION, ref)
    if not isinstance(module, Execution):
        raise _role_mismatch(module, "Execution")
    return module


def build_risk(ref: ModuleRef) -> Risk:
    """Return the risk module `ref` names (see `build_module`)."""
    module = build_module(ModuleRole.RISK, ref)
    if not isinstance(module, Risk):
        raise _role_mismatch(module, "Risk")
    return module


def _role_mismatch(module: StrategyModule, base: str) -> TypeError:
    # The role attribute and the class hierarchy disagree: a registry bug, not a spec error.
    return TypeError(f"module '{module.name}' has role {module.role.value} but is no {base}")


def check_registry() -> None:
    """Raise if two modules of a role share a name or a module's role and base class disagree.

    Raises:
        TypeError: naming the offending module.
    """
    seen: set[tuple[ModuleRole, str]] = set()
    for module in _MODULES:
        key = (module.role, module.name)
        if key in seen:
            raise TypeError(f"{module.role.value} module name '{module.name}' is registered twice")
        seen.add(key)
        if not issubclass(module, _ROLE_BASES[module.role]):
            raise TypeError(
                f"module '{module.name}' has role {module.role.value} but does not subclass "
                f"{_ROLE_BASES[module.role].__name__}"
            )
