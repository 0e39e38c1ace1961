"""Research goals, the loop's structured state (the ITER_STATE) and proposals, as data.

A `ResearchGoal` is what a person asks for (YAML under `goals/`): the data slice, the targets
that end the loop, the bar for archiving a candidate, the budget and the exploration rules.
A `ResearchState` is everything the loop knows after an iteration: every attempt with its key
metrics and verdict, the best so far, the exploration dimension to take next, the falsified
hypotheses, the induction summaries, the spend, and the status. It is rebuilt only by folding
results into the previous state (research/policy.py); nothing is inferred from a transcript.
"""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Final, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from quant_assets.domain.backtest import CostModel
from quant_assets.domain.governance import ArchiveThresholds, HoldoutPolicy
from quant_assets.domain.ids import content_id
from quant_assets.domain.strategy import DataSlice, ParamValue, StrategySpec, WalkForwardConfig

HYPOTHESIS_CHARS: Final = 500
"""Longest hypothesis text a proposal or attempt keeps (LLM text is stored as text only)."""
RATIONALE_CHARS: Final = 1000
"""Longest rationale text a proposal keeps."""
NOTE_CHARS: Final = 500
"""Longest note (an error message, a summary line) an attempt keeps."""


class Dimension(StrEnum):
    """The five directions of exploration (DESIGN.md, Research loop)."""

    PARAMETER = "parameter"
    STRUCTURE = "structure"
    HYPOTHESIS = "hypothesis"
    INDUCTION = "induction"
    RESEARCH = "research"


class ResearchStatus(StrEnum):
    """Where a goal's research stands; every status but CONTINUING ends the loop."""

    CONTINUING = "CONTINUING"
    GOAL_MET = "GOAL_MET"
    STAGNATED = "STAGNATED"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    STOPPED = "STOPPED"


class Verdict(StrEnum):
    """What one attempt taught the loop."""

    GOAL_MET = "goal_met"
    """Met the goal's targets and passed every blocking audit."""
    IMPROVED = "improved"
    """Raised the best OOS Sharpe by at least the rules' minimum gain."""
    NO_GAIN = "no_gain"
    """Ran, but did not raise the best OOS Sharpe enough."""
    REJECTED = "rejected"
    """Never produced a result: failed validation, pre-flight or the run."""


class ResearchTargets(BaseModel):
    """What counts as the goal met (out-of-sample figures of one walk-forward run)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_oos_sharpe: float = Field(default=1.2, description="Smallest annualized OOS Sharpe.")
    max_drawdown: float = Field(
        default=-0.15, ge=-1.0, lt=0.0, description="Deepest OOS drawdown (negative fraction)."
    )


class ResearchBudget(BaseModel):
    """How much the loop may spend before it stops (BUDGET_EXHAUSTED)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_iterations: int = Field(default=30, ge=1, le=10_000)
    max_llm_usd: float = Field(default=5.0, ge=0.0, description="LLM spend cap in US dollars.")
    proposals_per_iteration: int = Field(default=2, ge=1, le=16)


class ExplorationRules(BaseModel):
    """The exploration policy's knobs (defaults are DESIGN.md's figures)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    induction_every: int = Field(default=10, ge=2, description="Forced induction round period.")
    dead_ends_for_research: int = Field(
        default=3, ge=1, description="Consecutive iterations without gain before research."
    )
    stagnation_rounds: int = Field(default=5, ge=1)
    min_sharpe_gain: float = Field(
        default=0.05, ge=0.0, description="Smallest best-OOS-Sharpe gain that counts as progress."
    )
    parameter_rounds: int = Field(
        default=2, ge=1, description="Parameter rounds without gain before structure swaps."
    )
    structure_rounds: int = Field(
        default=2, ge=1, description="Structure rounds without gain before a new hypothesis."
    )
    narrow_fraction: float = Field(
        default=0.5, gt=0.0, le=1.0, description="Share of a range kept around the best value."
    )


class ResearchGoal(BaseModel):
    """A person's research goal: data, targets, archive bar, budget, rules, holdout, costs.

    Attributes:
        name: The goal's name (its file stem under `goals/`); runs are tagged with it.
        families: Strategy families to start from (catalog `family` values); empty: all.
        seed_templates: Templates the first iteration instantiates; empty: the policy picks.
        archive: The bar for a candidate record; None: the targets themselves.
        walk_forward: Windows and trials of every spec; None: the timeframe's default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=80)
    description: str = Field(min_length=1, max_length=2000)
    data: DataSlice
    families: tuple[str, ...] = ()
    seed_templates: tuple[str, ...] = ()
    targets: ResearchTargets = ResearchTargets()
    archive: ArchiveThresholds | None = None
    budget: ResearchBudget = ResearchBudget()
    rules: ExplorationRules = ExplorationRules()
    holdout: HoldoutPolicy = HoldoutPolicy()
    cost: CostModel = CostModel(commission_rate=0.001, slippage_bps=0.0)
    walk_forward: WalkForwardConfig | None = None

    @property
    def goal_id(self) -> str:
        """Return the content hash of the goal (16 hex digits)."""
        return content_id(self)

    def archive_thresholds(self) -> ArchiveThresholds:
        """Return the bar for a candidate: `archive` if set, else the targets."""
        if self.archive is not None:
            return self.archive
        return ArchiveThresholds(
            min_oos_sharpe=self.targets.min_oos_sharpe, max_drawdown=self.targets.max_drawdown
        )


class Usage(BaseModel):
    """Tokens and dollars one or more LLM calls used (zero for the policy proposer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    calls: int = Field(default=0, ge=0)
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_creation_input_tokens: int = Field(default=0, ge=0)
    cache_read_input_tokens: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0.0)

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            calls=self.calls + other.calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class Proposal(BaseModel):
    """One proposed spec with the dimension it explores and why (free text, bounded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    spec: StrategySpec
    dimension: Dimension
    hypothesis: str = Field(min_length=1, max_length=HYPOTHESIS_CHARS)
    rationale: str = Field(default="", max_length=RATIONALE_CHARS)
    proposer: str = Field(min_length=1, max_length=80, description="policy or anthropic:<model>")


class AttemptMetrics(BaseModel):
    """The key out-of-sample and in-sample figures of an attempt's walk-forward run."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    oos_sharpe: float
    oos_max_drawdown: float
    oos_total_return: float
    oos_trades: int = Field(ge=0)
    is_sharpe: float
    deflated_sharpe: float = Field(ge=0.0, le=1.0)


class Attempt(BaseModel):
    """One spec tried: what it was, what it scored, and the verdict.

    Attributes:
        modules: The spec's modules in one line (baseline + filters / execution / risk).
        best_params: The centre of the best region: per parameter path, the median of the
            windows' best values (numbers) or the most frequent value.
        record_id: The archive record of its run (None if it never ran).
        failed_audits: Names of the blocking audits it failed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    iteration: int = Field(ge=1)
    spec_id: str = Field(min_length=1)
    template: str = Field(min_length=1)
    family: str = Field(min_length=1)
    dimension: Dimension
    proposer: str = Field(min_length=1, max_length=80)
    modules: str = Field(min_length=1)
    hypothesis: str = Field(min_length=1, max_length=HYPOTHESIS_CHARS)
    metrics: AttemptMetrics | None = None
    best_params: dict[str, ParamValue] = Field(default_factory=dict)
    record_id: str | None = None
    record_state: str | None = None
    failed_audits: tuple[str, ...] = ()
    verdict: Verdict = Verdict.NO_GAIN
    note: str = Field(default="", max_length=NOTE_CHARS)

    @model_validator(mode="after")
    def _rejected_has_no_metrics(self) -> Self:
        if (self.verdict is Verdict.REJECTED) != (self.metrics is None):
            raise ValueError(
                f"attempt {self.spec_id}: verdict {self.verdict} with metrics "
                f"{'absent' if self.metrics is None else 'present'}; only rejected attempts "
                "have no metrics"
            )
        return self


class ResearchState(BaseModel):
    """The loop's structured state after `iteration` completed iterations (the ITER_STATE).

    Attributes:
        goal: The goal, embedded so that the state alone drives a proposer.
        iteration: Iterations completed (0 before the first).
        dimension: The dimension the next iteration explores.
        attempts: Every spec tried, in order.
        best: The attempt with the best OOS Sharpe (ran, not rejected); None before one ran.
        best_spec: The best attempt's spec, which parameter and structure rounds start from.
        best_by_iteration: The best OOS Sharpe after each completed iteration (None: none yet).
        dimension_log: The dimension each completed iteration explored, in order.
        falsified: Hypotheses the results refuted, one line each.
        inductions: Induction summaries, one per induction round.
        dead_ends: Consecutive iterations that did not raise the best OOS Sharpe enough.
        pending: Spec ids of the iteration in flight (proposed, results not folded yet).
        spend: LLM usage and cost so far (counts against the budget).
        frozen_record_id: The record frozen when the loop ended, if any.
        reason: Why the loop ended (None while CONTINUING).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    goal: ResearchGoal
    iteration: int = Field(default=0, ge=0)
    status: ResearchStatus = ResearchStatus.CONTINUING
    dimension: Dimension = Dimension.HYPOTHESIS
    attempts: tuple[Attempt, ...] = ()
    best: Attempt | None = None
    best_spec: StrategySpec | None = None
    best_by_iteration: tuple[float | None, ...] = ()
    dimension_log: tuple[Dimension, ...] = ()
    falsified: tuple[str, ...] = ()
    inductions: tuple[str, ...] = ()
    dead_ends: int = Field(default=0, ge=0)
    next_action: str = "propose the first hypotheses"
    pending: tuple[str, ...] = ()
    spend: Usage = Usage()
    frozen_record_id: str | None = None
    reason: str | None = None
    updated_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("updated_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def is_running(self) -> bool:
        """Return whether the loop goes on (status CONTINUING)."""
        return self.status is ResearchStatus.CONTINUING

    def tried_spec_ids(self) -> frozenset[str]:
        """Return every spec id tried or in flight (proposals must avoid them)."""
        return frozenset(a.spec_id for a in self.attempts) | frozenset(self.pending)
