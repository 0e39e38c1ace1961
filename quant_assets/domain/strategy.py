"""Strategy specs: what to run, as data (the LLM and people both write these)."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from quant_assets.domain.backtest import CostModel
from quant_assets.domain.ids import content_id

ParamValue = float | int | bool | str


class ModuleRole(StrEnum):
    """The four parts of a strategy (DESIGN.md, the backtest contract)."""

    BASELINE = "baseline"
    FILTER = "filter"
    EXECUTION = "execution"
    RISK = "risk"


class ModuleRef(BaseModel):
    """A registered module by name with its parameter values (missing ones take defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    module: str = Field(min_length=1)
    params: dict[str, ParamValue] = Field(default_factory=dict)


class ParamRange(BaseModel):
    """The inclusive range a search draws one parameter from."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    low: float
    high: float
    kind: Literal["int", "float"] = "int"
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "ParamRange":
        if not self.low <= self.high:
            raise ValueError(f"low {self.low} is above high {self.high}; swap them")
        return self


class DataSlice(BaseModel):
    """Which bars a spec trades: instruments of one timeframe over a period."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    instruments: tuple[str, ...] = Field(min_length=1)
    timeframe: str
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "DataSlice":
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}; swap them")
        return self


class WalkForwardConfig(BaseModel):
    """How a spec is evaluated out of sample (windows in bars; issue 5 runs it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    train_bars: int = Field(default=8760, ge=100)
    test_bars: int = Field(default=2190, ge=10)
    step_bars: int | None = Field(default=None, ge=10, description="None: equal to test_bars.")
    embargo_bars: int = Field(default=24, ge=0)
    anchored: bool = False
    trials_per_window: int = Field(default=50, ge=1, le=10_000)
    objective: Literal["sharpe", "sortino", "calmar", "total_return"] = "sharpe"
    min_trades: int = Field(default=10, ge=0, description="Below this a trial scores worst.")
    seed: int = 42


class Lineage(BaseModel):
    """Where a spec came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    parent_id: str | None = None
    generation: int = Field(default=0, ge=0)
    created_by: str = Field(default="person", min_length=1, max_length=80)


class StrategySpec(BaseModel):
    """One strategy to research: template, modules, search space, data, costs, lineage.

    Search space keys are parameter paths: `baseline.<param>`, `execution.<param>`,
    `risk.<param>` and `filters.<module>.<param>`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=120)
    hypothesis: str = Field(min_length=1, max_length=2000)
    template: str = Field(min_length=1)
    data: DataSlice
    baseline: ModuleRef
    filters: tuple[ModuleRef, ...] = ()
    execution: ModuleRef = ModuleRef(module="signal_exit_only")
    risk: ModuleRef = ModuleRef(module="fixed_fraction")
    search_space: dict[str, ParamRange] = Field(default_factory=dict)
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    cost: CostModel = CostModel(commission_rate=0.001, slippage_bps=0.0)
    lineage: Lineage = Lineage()

    @property
    def spec_id(self) -> str:
        """Return the content hash that identifies this spec (16 hex digits)."""
        return content_id(self)


def utc(year: int, month: int, day: int) -> datetime:
    """Return midnight UTC of a date (a convenience for specs written in code)."""
    return datetime(year, month, day, tzinfo=UTC)
