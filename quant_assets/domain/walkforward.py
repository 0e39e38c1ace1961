"""Walk-forward research records: window bounds, per-window results, the run and its cache seam.

Bar indices are positions on the run's timeline (the sorted bar times of the spec's instruments
inside its data slice) and ranges are half-open, [start, end). Timestamps are bar opens in UTC;
`*_first_at` / `*_last_at` name the first and the last bar of a range.
"""

from datetime import UTC, datetime
from typing import Protocol, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    field_validator,
    model_validator,
)

from quant_assets.domain.backtest import StepSummary, Trade
from quant_assets.domain.ids import digest_of
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ParamValue


class WindowBounds(BaseModel):
    """Where one walk-forward window sits: warm-up, train, embargo gap, test (bar indices).

    The window reads bars [warmup_start, test_end) and nothing after test_end: indicators
    warm up on [warmup_start, train_start); train runs trade [train_start, train_end) and the
    test run trades [test_start, test_end), its indicators reading every bar before it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    index: int = Field(ge=0, description="Position of the window in the plan, from 0.")
    warmup_start: int = Field(ge=0, description="First bar the window reads.")
    train_start: int = Field(ge=0)
    train_end: int = Field(ge=1, description="Exclusive.")
    test_start: int = Field(ge=1, description="train_end + embargo bars.")
    test_end: int = Field(ge=2, description="Exclusive; the window reads nothing from here on.")
    warmup_first_at: AwareDatetime | None = None
    train_first_at: AwareDatetime | None = None
    train_last_at: AwareDatetime | None = None
    test_first_at: AwareDatetime | None = None
    test_last_at: AwareDatetime | None = None

    @field_validator(
        "warmup_first_at",
        "train_first_at",
        "train_last_at",
        "test_first_at",
        "test_last_at",
    )
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        order = (
            self.warmup_start
            <= self.train_start
            < self.train_end
            <= self.test_start
            < self.test_end
        )
        if not order:
            raise ValueError(
                f"window {self.index} bounds were warm-up {self.warmup_start}, train "
                f"[{self.train_start}, {self.train_end}), test [{self.test_start}, "
                f"{self.test_end}); they must follow warm-up <= train start < train end <= "
                "test start < test end (plan them with plan_windows)"
            )
        return self


class WindowCurve(BaseModel):
    """An equity curve stored with a window: bar times, equity and exposure per bar.

    `base_equity` is the equity just before the first bar, so the first bar's return is
    equity[0] / base_equity - 1 (the initial cash for a run that starts there; zero or less
    when the run was ruined before). Exposure may be NaN (a ruined account), which JSON
    carries as the `NaN` constant.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")
    base_equity: FiniteFloat
    ts_us: tuple[int, ...] = Field(description="Bar opens, microseconds since the epoch (UTC).")
    equity: tuple[FiniteFloat, ...]
    exposure: tuple[float, ...] = Field(
        description="Signed position value / equity; NaN once the account is ruined."
    )

    @model_validator(mode="after")
    def _aligned(self) -> Self:
        lengths = {len(self.ts_us), len(self.equity), len(self.exposure)}
        if len(lengths) != 1:
            raise ValueError(
                f"curve columns have lengths ts {len(self.ts_us)}, equity {len(self.equity)}, "
                f"exposure {len(self.exposure)}; give one value of each per bar"
            )
        return self


class WindowTrade(Trade):
    """A round trip of one instrument; bar indices count that instrument's bars in the slice."""

    instrument: str = Field(min_length=1)


class WindowResult(BaseModel):
    """What one window produced: the searched params, their IS and OOS runs, and provenance.

    The OOS run trades the test span from flat with the best params; the IS run is the best
    trial on the train span. `is_curve` holds only the train bars this window contributes to
    the stitched in-sample curve (those no later window trains on), `is_trades` the trades
    entered there.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    bounds: WindowBounds
    best_params: dict[str, ParamValue]
    best_value: FiniteFloat = Field(description="The objective of the best trial on train.")
    trials: int = Field(ge=1, description="Trials searched on the train span.")
    worst_trials: int = Field(
        ge=0, description="Trials scored worst (too few trades or invalid params)."
    )
    backtests: int = Field(ge=0, description="Backtests run to produce this result.")
    seed: int = Field(ge=0, description="Seed of the window's TPE sampler.")
    is_report: EvalReport
    oos_report: EvalReport
    oos_steps: StepSummary
    oos_curve: WindowCurve
    oos_regimes: tuple[int, ...] = Field(
        description="Per OOS bar, the market regime's position in features.regimes."
        "REGIME_LABELS (-1 before the label is defined); see backtest.regimes."
    )
    oos_trades: tuple[WindowTrade, ...]
    is_curve: WindowCurve
    is_trades: tuple[WindowTrade, ...]
    cache_key: str = Field(min_length=1)
    bars_hash: str = Field(min_length=1, description="Hash of every bar the window reads.")


class RegimeStats(BaseModel):
    """Out-of-sample performance over the bars of one market regime."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    regime: str = Field(min_length=1, description="`<up|sideways|down>_<low|high>_vol`.")
    bars: int = Field(ge=0)
    total_return: FiniteFloat = Field(description="Compounded return over the regime's bars.")
    sharpe: FiniteFloat = Field(description="Annualized Sharpe of the regime's bar returns.")


class WalkForwardRun(BaseModel):
    """One walk-forward evaluation of a spec: provenance, windows, stitched reports, regimes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    run_id: str = Field(min_length=1, description="Hash of spec, data, engine and results.")
    spec_id: str = Field(min_length=1)
    data_versions: dict[str, str] = Field(description="Data version per instrument.")
    engine_version: str = Field(min_length=1)
    preferences_hash: str = ""
    started_at: AwareDatetime
    finished_at: AwareDatetime
    seconds: FiniteFloat = Field(ge=0)
    windows: tuple[WindowResult, ...] = Field(min_length=1)
    windows_recomputed: int = Field(ge=0)
    windows_reused: int = Field(ge=0)
    trials_executed: int = Field(ge=0, description="Trials searched by this run.")
    trials_total: int = Field(ge=1, description="Trials behind the results, reused included.")
    is_report: EvalReport
    oos_report: EvalReport
    regimes: tuple[RegimeStats, ...]
    deflated_sharpe: FiniteFloat = Field(ge=0, le=1, description="OOS DSR over trials_total.")
    step_summary: StepSummary


class WindowCache(Protocol):
    """Stores window results by cache key (see `backtest.walkforward.window_cache_key`)."""

    def get(self, key: str) -> WindowResult | None:
        """Return the result stored under `key`, or None."""

    def put(self, key: str, result: WindowResult) -> None:
        """Store `result` under `key` (replacing any earlier one)."""


def run_id_of(
    spec_id: str,
    data_versions: dict[str, str],
    engine_version: str,
    preferences_hash: str,
    windows: tuple[WindowResult, ...],
) -> str:
    """Return a run's id: a hash of what went in and of each window's result (not timings)."""
    parts = [spec_id, engine_version, preferences_hash]
    parts += [f"{key}={value}" for key, value in sorted(data_versions.items())]
    parts += [f"{window.cache_key}:{window.best_value!r}" for window in windows]
    return digest_of(parts)[:16]
