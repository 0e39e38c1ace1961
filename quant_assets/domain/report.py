"""The metrics of one backtest: EvalReport."""

from datetime import UTC, datetime
from typing import Final, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    field_validator,
    model_validator,
)

RATIO_CAP: Final = 1_000_000.0
"""Value that stands for an unbounded metric (no losing trade, no drawdown) so reports stay JSON."""


class EvalReport(BaseModel):
    """Performance, risk and trade statistics of one equity curve and its trades.

    Every float is finite: degenerate cases have documented values (see
    `quant_assets.backtest.metrics.compute_report`), and a metric that would be infinite is capped
    at `RATIO_CAP`. Ratios are fractions, never percents.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: AwareDatetime = Field(description="Timestamp of the first equity row (UTC).")
    end: AwareDatetime = Field(description="Timestamp of the last equity row (UTC).")
    bars: int = Field(ge=1, description="Number of equity rows, one per bar.")
    periods_per_year: FiniteFloat = Field(gt=0, description="Bars per year used to annualize.")
    total_return: FiniteFloat = Field(description="Final equity / initial cash - 1.")
    cagr: FiniteFloat = Field(description="Compound annual growth rate over bars/periods_per_year.")
    annualized_volatility: FiniteFloat = Field(ge=0, description="Std of bar returns * sqrt(ppy).")
    sharpe: FiniteFloat = Field(description="Annualized Sharpe ratio with a zero risk-free rate.")
    sortino: FiniteFloat = Field(description="Annualized Sortino ratio, target return zero.")
    calmar: FiniteFloat = Field(description="CAGR / |max_drawdown|.")
    max_drawdown: FiniteFloat = Field(le=0, description="Deepest fall from a peak (negative).")
    max_drawdown_duration_bars: int = Field(ge=0, description="Longest peak-to-recovery in bars.")
    max_drawdown_duration_seconds: FiniteFloat = Field(
        ge=0, description="Longest peak-to-recovery (or peak-to-end) in wall-clock seconds."
    )
    win_rate: FiniteFloat = Field(ge=0, le=1, description="Fraction of trades with pnl > 0.")
    profit_factor: FiniteFloat = Field(ge=0, description="Gross profit / gross loss, capped.")
    trades: int = Field(ge=0, description="Number of closed round-trip trades.")
    average_trade_return: FiniteFloat = Field(description="Mean of trade return_rate.")
    exposure: FiniteFloat = Field(ge=0, le=1, description="Fraction of bars holding a position.")
    turnover: FiniteFloat = Field(ge=0, description="Annual traded notional / average equity.")
    fees_paid: FiniteFloat = Field(description="Sum of trade fees, in account currency.")
    probabilistic_sharpe: FiniteFloat = Field(
        ge=0, le=1, description="Probability that the true Sharpe ratio is above zero (PSR)."
    )
    deflated_sharpe: FiniteFloat = Field(
        ge=0, le=1, description="PSR against the expected best Sharpe of n_trials (DSR)."
    )
    n_trials: int = Field(ge=1, description="Number of configurations tried to find this one.")
    skewness: FiniteFloat = Field(description="Skewness of bar returns (population moments).")
    kurtosis: FiniteFloat = Field(
        ge=0, description="Kurtosis of bar returns, not excess (normal = 3)."
    )

    @field_validator("start", "end")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        # Timestamps are UTC everywhere (STYLE.md section 3); convert, never reinterpret.
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _check_span(self) -> Self:
        if self.end < self.start:
            raise ValueError(
                f"end was {self.end.isoformat()}, before start {self.start.isoformat()}; "
                "an equity curve must be sorted by ts"
            )
        return self
