"""The text views of archive records (pure: built records, no stores)."""

from quant_assets.domain.governance import RecordState
from quant_assets.governance.report_text import (
    SEALED,
    audit_lines,
    candidates_markdown,
    lineage_lines,
    metrics_lines,
    record_document,
    record_text,
    state_counts,
)
from quant_assets_tests.governance.archive_builders import (
    PREFERENCES_HASH,
    failed_blocking_audits,
    passing_audits,
    record_in,
)


def test_state_counts_lists_every_state_with_zeros() -> None:
    # Arrange
    records = [record_in(RecordState.CANDIDATE, spec_id=f"{i:016x}")[0] for i in range(2)]
    records.append(record_in(RecordState.FROZEN)[0])

    # Act
    counts = state_counts(records)

    # Assert
    assert counts == {
        RecordState.CANDIDATE: 2,
        RecordState.FROZEN: 1,
        RecordState.PRODUCTION: 0,
        RecordState.DEPRECATED: 0,
        RecordState.DISCARDED: 0,
    }


def test_candidates_markdown_lists_only_candidates_with_oos_figures() -> None:
    # Arrange: the builders' OOS report has Sharpe 1.1 and max drawdown -15%.
    candidate, _ = record_in(RecordState.CANDIDATE, spec_id="00000000000000c1")
    frozen, _ = record_in(RecordState.FROZEN, spec_id="00000000000000f1")

    # Act
    table = candidates_markdown([candidate, frozen])

    # Assert
    rows = table.splitlines()
    assert len(rows) == 3
    assert rows[2].startswith(f"| {candidate.record_id} | 00000000000000c1 | 1.10 | -15.00% | 40 |")
    assert candidates_markdown([frozen]) == "no candidates"


def test_lineage_lines_run_from_goal_through_root_spec_to_record() -> None:
    # Arrange: the builders' parents are fedcba9876543210 (nearest) and 00000000000000aa (root).
    record, _ = record_in(RecordState.CANDIDATE)

    # Act
    lines = lineage_lines(record, {"00000000000000aa": "root idea"})

    # Assert
    assert lines == [
        "goal btc-trend-2021",
        "└── spec 00000000000000aa  root idea [root]",
        "    └── spec fedcba9876543210  (spec not stored)",
        "        └── spec 0123456789abcdef  (spec not stored)",
        "            └── run run0000000000001",
        f"                └── record {record.record_id}  candidate",
    ]


def test_metrics_lines_show_sealed_holdout_until_frozen() -> None:
    # Arrange
    record, _ = record_in(RecordState.CANDIDATE)

    # Act
    lines = metrics_lines(record)

    # Assert
    assert lines[1].split() == ["Sharpe", "1.10", "1.60", "sealed"]
    assert lines[-1] == f"  holdout: {SEALED} (evaluated once, when the record is frozen)"


def test_audit_lines_mark_pass_fail_and_warn() -> None:
    # Arrange
    failed, _ = record_in(RecordState.FROZEN, audits=failed_blocking_audits())
    warned, _ = record_in(RecordState.FROZEN, audits=passing_audits())

    # Act
    failed_lines, warned_lines = audit_lines(failed), audit_lines(warned)

    # Assert
    assert [line.split()[:3] for line in failed_lines] == [
        ["FAIL", "min_trades", "blocking"],
        ["PASS", "drawdown_limit", "blocking"],
    ]
    assert warned_lines[2].split()[:3] == ["WARN", "survivorship", "warning"]


def test_record_text_and_document_flag_changed_preferences() -> None:
    # Arrange
    record, trail = record_in(RecordState.FROZEN)

    # Act
    same = record_text(record, trail, current_preferences_hash=PREFERENCES_HASH, spec_names={})
    changed = record_text(record, trail, current_preferences_hash="feedfeedfeedfeed", spec_names={})
    document = record_document(
        record, trail, current_preferences_hash="feedfeedfeedfeed", spec_names={}
    )

    # Assert
    assert f"Preferences     {PREFERENCES_HASH}  unchanged" in same.splitlines()
    assert (
        f"Preferences     {PREFERENCES_HASH}  CHANGED since this record (current "
        "feedfeedfeedfeed)" in changed.splitlines()
    )
    assert document["preferences_changed"] is True
    assert [t["to_state"] for t in document["transitions"]] == ["candidate", "frozen"]
    assert [s["spec_id"] for s in document["lineage"]["specs"]] == [
        "00000000000000aa",
        "fedcba9876543210",
        "0123456789abcdef",
    ]
