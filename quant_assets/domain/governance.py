"""Governance records: archive records, their state transitions and the sealed holdout.

An `ArchiveRecord` is immutable: every change of state is a new version of the record plus one
`Transition` row, and nothing is updated in place or deleted (DESIGN.md, Governance). The
record's id is the content hash of what was archived (lineage, run, data, engine, preferences,
pinned parameters, metrics and audits), so a version that changed any of it would not validate.
The legal moves live here, next to the models, so that no `Transition` can even be built for a
move the lifecycle forbids (`governance.lifecycle` turns a refused move into a clear error).
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationInfo,
    field_validator,
    model_validator,
)

from quant_assets.domain.errors import HoldoutSealedError
from quant_assets.domain.report import EvalReport
from quant_assets.domain.strategy import ParamValue


class RecordState(StrEnum):
    """Where an archive record is in its life (DESIGN.md, Governance)."""

    CANDIDATE = "candidate"
    FROZEN = "frozen"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"
    DISCARDED = "discarded"


SYSTEM_ACTOR: Final = "system"
"""The actor of automatic moves (creation and freezing); never a person's name."""

LEGAL_MOVES: Final[Mapping[RecordState | None, tuple[RecordState, ...]]] = {
    None: (RecordState.CANDIDATE, RecordState.DISCARDED),
    RecordState.CANDIDATE: (RecordState.FROZEN,),
    RecordState.FROZEN: (RecordState.PRODUCTION, RecordState.DEPRECATED),
    RecordState.PRODUCTION: (RecordState.DEPRECATED,),
    RecordState.DEPRECATED: (),
    RecordState.DISCARDED: (),
}
"""Every legal move: from a state (None: a new result) to the states it may reach."""

PERSON_MOVES: Final[frozenset[tuple[RecordState | None, RecordState]]] = frozenset(
    {
        (RecordState.FROZEN, RecordState.PRODUCTION),  # approval
        (RecordState.FROZEN, RecordState.DEPRECATED),  # rejection
        (RecordState.PRODUCTION, RecordState.DEPRECATED),  # decommission
    }
)
"""Moves only a named person may make; every other legal move is made by `SYSTEM_ACTOR`."""

IDENTITY_FIELDS: Final = frozenset(
    {
        "spec_id",
        "parent_spec_ids",
        "run_id",
        "goal",
        "data_versions",
        "engine_version",
        "preferences_hash",
        "pinned",
        "metrics",
        "audits",
    }
)
"""The fields an archive record's id hashes: what was archived, never its state or history."""

_DRAFT: Final = "archive_record_draft"


def is_person_name(actor: str) -> bool:
    """Return whether `actor` names a person: not blank and not the system actor."""
    name = actor.strip()
    return bool(name) and name.lower() != SYSTEM_ACTOR


class Transition(BaseModel):
    """One append-only row of a record's trail: who moved it from which state to which, and why.

    Attributes:
        sequence: Position in the record's trail, 0 for its creation.
        from_state: The state left; None for the creation of the record.
        actor: `system` for automatic moves, otherwise the name of the person deciding.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    record_id: str = Field(min_length=1)
    sequence: int = Field(ge=0)
    from_state: RecordState | None
    to_state: RecordState
    actor: str = Field(min_length=1, max_length=120)
    at: AwareDatetime
    reason: str = Field(min_length=1)

    @field_validator("at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _legal(self) -> Self:
        move = f"record {self.record_id}: move {self.from_state} -> {self.to_state}"
        if self.to_state not in LEGAL_MOVES[self.from_state]:
            raise ValueError(f"{move} is not a legal move; see LEGAL_MOVES")
        if (self.sequence == 0) != (self.from_state is None):
            raise ValueError(
                f"{move} has sequence {self.sequence}; only the creation (from None) is 0"
            )
        if self.actor != self.actor.strip() or not self.reason.strip():
            raise ValueError(f"{move}: actor {self.actor!r} or reason {self.reason!r} is blank")
        if (self.from_state, self.to_state) in PERSON_MOVES:
            if not is_person_name(self.actor):
                raise ValueError(f"{move} needs a person's name, but the actor was {self.actor!r}")
        elif self.actor != SYSTEM_ACTOR:
            raise ValueError(f"{move} is automatic (actor 'system'), but was {self.actor!r}")
        return self


class RecordAudit(BaseModel):
    """An audit's verdict as archived with a record (from `governance.audits.AuditOutcome`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1)
    passed: bool
    blocking: bool
    message: str = Field(min_length=1)

    @property
    def blocks(self) -> bool:
        """Return whether this verdict stops the record (a failed blocking audit)."""
        return self.blocking and not self.passed


class MetricsSnapshot(BaseModel):
    """The run's metrics as archived: stitched out-of-sample and in-sample reports, run DSR."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    oos: EvalReport
    in_sample: EvalReport
    deflated_sharpe: FiniteFloat = Field(ge=0, le=1, description="OOS DSR over the run's trials.")


class ArchiveThresholds(BaseModel):
    """A goal's bar for archiving a result as a candidate (out-of-sample metrics)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_oos_sharpe: FiniteFloat = Field(description="Smallest annualized OOS Sharpe ratio.")
    max_drawdown: FiniteFloat = Field(
        ge=-1.0, lt=0.0, description="Deepest OOS drawdown allowed (negative fraction)."
    )


class HoldoutPolicy(BaseModel):
    """How a goal reserves its final, sealed period: a fraction of its slice, or a set start."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    fraction: FiniteFloat = Field(
        default=0.15, gt=0.0, lt=1.0, description="Share of the slice's time span, at its end."
    )
    start: AwareDatetime | None = Field(
        default=None, description="Explicit first sealed instant; overrides `fraction`."
    )

    @field_validator("start")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)


class HoldoutResult(BaseModel):
    """The one evaluation of a frozen record's pinned strategy on its goal's holdout."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    start: AwareDatetime = Field(description="First sealed instant (bars at or after it).")
    end: AwareDatetime = Field(description="End of the goal's data slice (exclusive).")
    window_index: int = Field(ge=0, description="The walk-forward window whose params ran.")
    params: dict[str, ParamValue]
    report: EvalReport
    evaluated_at: AwareDatetime

    @field_validator("start", "end", "evaluated_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class HoldoutGuard(BaseModel):
    """The seal on one goal's holdout: bars at or after `start` are not for research.

    The storage layer's bars reader applies it; only the freeze-time evaluation reads
    [start, end), and only for a frozen record of the goal whose holdout is still unread.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    goal: str = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime

    @field_validator("start", "end")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(
                f"goal '{self.goal}': holdout end {self.end.isoformat()} is not after its start "
                f"{self.start.isoformat()}; the holdout must hold some time"
            )
        return self

    def check_research_read(
        self, instrument: str, start: datetime | None, end: datetime | None
    ) -> None:
        """Refuse a research read of bars [start, end) that reaches the sealed holdout.

        Args:
            instrument: The instrument key (for the message).
            start: First bar time asked for (None: from the first stored bar).
            end: Exclusive end asked for (None: up to the last stored bar).

        Raises:
            HoldoutSealedError: if `end` is None or after the holdout start.
        """
        if end is not None and end <= self.start:
            return
        shown_start = "the first bar" if start is None else start.isoformat()
        shown_end = "the last stored bar" if end is None else end.isoformat()
        raise HoldoutSealedError(
            f"goal '{self.goal}': reading {instrument} bars from {shown_start} to {shown_end} "
            f"would reach its sealed holdout, which starts at {self.start.isoformat()}; "
            f"research, searches and audits read only bars before it (end the read at "
            f"{self.start.isoformat()}); the holdout is read once, when a record is frozen"
        )


class ArchiveRecord(BaseModel):
    """One archived research result: lineage, pinned strategy, metrics, audits and state.

    Versions of a record share its id and differ only in `state`, `sequence` (the trail row
    that set the state), the goal-level deflated Sharpe stamped at freezing and the holdout
    result; build a new record with `ArchiveRecord.create`, which computes `record_id`.

    Attributes:
        record_id: Hash of the identity fields (IDENTITY_FIELDS), 16 hex digits.
        parent_spec_ids: The spec's ancestors, nearest first, up to the root.
        goal: Name (or id) of the research goal the result was produced for.
        data_versions: Data version per instrument of the bars the run read.
        pinned: Best parameters per walk-forward window index.
        preferences_hash: Hash of the preferences the audits applied.
        goal_deflated_sharpe: DSR of the OOS Sharpe over every trial run under the goal.
        goal_trials: The number of those trials.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    record_id: str = Field(min_length=1)
    spec_id: str = Field(min_length=1)
    parent_spec_ids: tuple[str, ...] = ()
    run_id: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    data_versions: dict[str, str] = Field(min_length=1)
    engine_version: str = Field(min_length=1)
    preferences_hash: str = Field(min_length=1)
    pinned: dict[int, dict[str, ParamValue]] = Field(min_length=1)
    metrics: MetricsSnapshot
    audits: tuple[RecordAudit, ...]
    state: RecordState
    sequence: int = Field(default=0, ge=0, description="Trail row that set `state`.")
    created_at: AwareDatetime
    holdout: HoldoutResult | None = None
    goal_deflated_sharpe: FiniteFloat | None = Field(default=None, ge=0, le=1)
    goal_trials: int | None = Field(default=None, ge=1)

    @classmethod
    def create(cls, **fields: Any) -> Self:
        """Return a validated record whose `record_id` is the hash of its identity fields."""
        draft = cls.model_validate({**fields, "record_id": "draft"}, context={_DRAFT: True})
        return cls.model_validate({**draft.model_dump(), "record_id": identity_digest(draft)})

    @field_validator("created_at")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        if (self.goal_deflated_sharpe is None) != (self.goal_trials is None):
            raise ValueError(
                f"record {self.record_id}: goal_deflated_sharpe and goal_trials are stamped "
                "together at freezing; give both or neither"
            )
        if self.holdout is not None and self.goal_trials is None:
            raise ValueError(
                f"record {self.record_id}: a holdout result exists only on a frozen record; "
                "freeze it first (governance.holdout.freeze_record)"
            )
        if info.context and info.context.get(_DRAFT):
            return self
        expected = identity_digest(self)
        if self.record_id != expected:
            raise ValueError(
                f"record_id was {self.record_id!r} but the archived content hashes to "
                f"{expected!r}; an archived record cannot change (build it with "
                "ArchiveRecord.create, and record every change as a new version)"
            )
        return self


def identity_digest(record: ArchiveRecord) -> str:
    """Return the 16-hex-digit hash of a record's identity fields (its canonical JSON)."""
    content = record.model_dump(mode="json", include=set(IDENTITY_FIELDS))
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
