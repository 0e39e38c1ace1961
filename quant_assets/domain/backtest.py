"""Backtest vocabulary: fill and stop timing, exit reasons, costs, sizing, exits, fills and trades.

Units are in names and are fractions, never percents (STYLE.md section 3). The `IntEnum` mirrors
(`ExitCode`, `EntryCode`) are what crosses into the Numba kernel; the `StrEnum`s are what is
persisted and shown.
"""

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, FiniteFloat, model_validator


class FillMode(StrEnum):
    """When a signal decided at a bar's close is executed."""

    NEXT_OPEN = "next_open"  # the next bar's open (realistic, the default)
    CLOSE = "close"  # the signal bar's own close (optimistic; for comparison only)


class StopsFrom(StrEnum):
    """First bar whose high/low range can trigger a stop-loss, target or trailing stop."""

    ENTRY_BAR = "entry_bar"  # after a fill at the open, the rest of the entry bar counts
    NEXT_BAR = "next_bar"  # the bar after the entry bar


class PositionSide(StrEnum):
    """Direction of a position or a round-trip trade."""

    LONG = "long"
    SHORT = "short"


class OrderSide(StrEnum):
    """Direction of one execution (a fill), not of the position it changes."""

    BUY = "buy"
    SELL = "sell"


class ExitReason(StrEnum):
    """Why a trade was closed."""

    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    TIME = "time"
    SIGNAL = "signal"
    REVERSAL = "reversal"
    END_OF_DATA = "end_of_data"


class ExitCode(IntEnum):
    """Integer mirror of ExitReason for the Numba kernel (0 means no exit)."""

    STOP_LOSS = 1
    TAKE_PROFIT = 2
    TRAILING_STOP = 3
    TIME = 4
    SIGNAL = 5
    REVERSAL = 6
    END_OF_DATA = 7

    @property
    def reason(self) -> ExitReason:
        """Return the persisted reason of this code."""
        return ExitReason[self.name]


class EntryOutcome(StrEnum):
    """What the engine did with an entry candidate (a non-zero entry signal)."""

    FILLED = "filled"
    ALREADY_IN_POSITION = "already_in_position"  # same-direction signal while holding
    REVERSAL_NOT_ALLOWED = "reversal_not_allowed"  # opposite signal with allow_reversal=False
    WARM_UP_NAN = "warm_up_nan"  # a per-bar input (size, stop distances) was NaN at the signal
    ZERO_QUANTITY = "zero_quantity"  # sizing gave no units (size 0, whole units, no equity)
    NO_BAR_TO_FILL = "no_bar_to_fill"  # signal on the last bar


class EntryCode(IntEnum):
    """Integer mirror of EntryOutcome for the Numba kernel (0 means no candidate)."""

    FILLED = 1
    ALREADY_IN_POSITION = 2
    REVERSAL_NOT_ALLOWED = 3
    WARM_UP_NAN = 4
    ZERO_QUANTITY = 5
    NO_BAR_TO_FILL = 6

    @property
    def outcome(self) -> EntryOutcome:
        """Return the persisted outcome of this code."""
        return EntryOutcome[self.name]


class CostModel(BaseModel):
    """Trading costs charged on every fill."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    commission_rate: float = Field(ge=0, lt=0.01, description="Fraction of notional, per side.")
    slippage_bps: float = Field(ge=0, le=100, description="Adverse price move on each fill.")
    fill: FillMode = Field(default=FillMode.NEXT_OPEN, description="When signals are executed.")


class SizingConfig(BaseModel):
    """How many units an entry buys or sells."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    equity_fraction: float = Field(
        default=1.0, gt=0, le=1, description="Fraction of equity committed at each entry."
    )
    whole_units: bool = Field(default=False, description="Floor quantities to whole units.")


class ExitRules(BaseModel):
    """Exits managed by the engine once a position is open (rates are of the entry price)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stop_loss_rate: float | None = Field(default=None, gt=0, lt=1)
    take_profit_rate: float | None = Field(default=None, gt=0)
    trailing_stop_rate: float | None = Field(default=None, gt=0, lt=1)
    max_bars_in_trade: int | None = Field(
        default=None, ge=1, description="Time exit: bars from the entry fill to the exit fill."
    )
    stops_from: StopsFrom = StopsFrom.ENTRY_BAR


class BacktestConfig(BaseModel):
    """Everything the engine needs besides bars and signals."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cost: CostModel
    exits: ExitRules = Field(default_factory=ExitRules)
    sizing: SizingConfig = Field(default_factory=SizingConfig)
    initial_cash: float = Field(default=10_000.0, gt=0, allow_inf_nan=False)
    allow_reversal: bool = Field(
        default=True, description="An opposite signal closes and reopens in one fill."
    )
    periods_per_year: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Bars per year; None infers it from bar spacing (1d -> 252, else 365 days).",
    )
    n_trials: int = Field(default=1, ge=1, description="Configurations tried (deflated Sharpe).")


class StepSummary(BaseModel):
    """Counts of what happened to entry candidates, with engine rejections by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    candidates: int = Field(ge=0, description="Bars with a non-zero entry signal.")
    fills: int = Field(ge=0, description="Candidates that opened a position.")
    rejections: dict[str, int] = Field(
        default_factory=dict, description="Rejected candidates by EntryOutcome value."
    )


class Fill(BaseModel):
    """One execution: a buy or sell of some quantity at one price."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    ts: AwareDatetime
    bar: int = Field(ge=0)
    side: OrderSide
    qty: FiniteFloat = Field(gt=0)
    price: FiniteFloat = Field(gt=0, description="Fill price including slippage.")
    fee: FiniteFloat = Field(ge=0, description="Commission paid, account currency.")


class Trade(BaseModel):
    """A round trip: one position from its entry fill to its exit fill."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    entry_ts: AwareDatetime
    exit_ts: AwareDatetime
    entry_bar: int = Field(ge=0)
    exit_bar: int = Field(ge=0)
    bars_held: int = Field(ge=0)
    side: PositionSide
    qty: FiniteFloat = Field(gt=0)
    entry_price: FiniteFloat = Field(gt=0, description="Entry fill price including slippage.")
    exit_price: FiniteFloat = Field(gt=0, description="Exit fill price including slippage.")
    pnl: FiniteFloat = Field(description="Net of all fees of the round trip.")
    fees: FiniteFloat = Field(ge=0, description="Entry plus exit commission.")
    return_rate: FiniteFloat = Field(description="pnl / entry notional.")
    exit_reason: ExitReason

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        if self.exit_bar < self.entry_bar or self.exit_ts < self.entry_ts:
            raise ValueError(
                f"trade exit (bar {self.exit_bar}, {_iso(self.exit_ts)}) was before its entry "
                f"(bar {self.entry_bar}, {_iso(self.entry_ts)}); a trade exits at or after entry"
            )
        return self


def _iso(value: datetime) -> str:
    return value.isoformat()
