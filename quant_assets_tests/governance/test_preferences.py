"""Preferences: the shipped file loads, limits are validated, hashed and cannot be changed."""

import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from quant_assets.domain.errors import ConfigurationError
from quant_assets.governance.preferences import Preferences, load_preferences, preferences_hash

VALID_YAML = """\
# A person's limits.
max_drawdown: -0.25
min_trades: 20
max_sharpe_gap: 1.0
min_deflated_sharpe: 0.5
max_position_fraction: 1.0
"""
FIELDS = (
    "max_drawdown",
    "min_trades",
    "max_sharpe_gap",
    "min_deflated_sharpe",
    "max_position_fraction",
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "preferences.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_preferences_shipped_file_holds_the_documented_limits(
    shipped_preferences: Preferences,
) -> None:
    # Act
    limits = shipped_preferences.model_dump()

    # Assert: the values preferences.yaml documents in its comments.
    assert limits == {
        "max_drawdown": -0.25,
        "min_trades": 20,
        "max_sharpe_gap": 1.0,
        "min_deflated_sharpe": 0.5,
        "max_position_fraction": 1.0,
    }


def test_preferences_hash_equals_sha256_of_canonical_json(tmp_path: Path) -> None:
    # Arrange: the hash computed by hand, 16 hex digits of sha256 over sorted, compact JSON.
    canonical = (
        '{"max_drawdown":-0.25,"max_position_fraction":1.0,"max_sharpe_gap":1.0,'
        '"min_deflated_sharpe":0.5,"min_trades":20}'
    )
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    # Act
    digest = preferences_hash(load_preferences(write(tmp_path, VALID_YAML)))

    # Assert
    assert digest == expected


def test_preferences_hash_comments_and_key_order_do_not_change_it(tmp_path: Path) -> None:
    # Arrange: the same limits, reordered, with other comments and an int where a float goes.
    reordered = (
        "min_trades: 20  # trades\nmax_position_fraction: 1\nmin_deflated_sharpe: 0.5\n"
        "max_sharpe_gap: 1.0\n# drawdown\nmax_drawdown: -0.25\n"
    )
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir()
    second.mkdir()

    # Act
    original = preferences_hash(load_preferences(write(first, VALID_YAML)))
    rewritten = preferences_hash(load_preferences(write(second, reordered)))

    # Assert
    assert rewritten == original


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_drawdown", -0.3),
        ("min_trades", 21),
        ("max_sharpe_gap", 1.1),
        ("min_deflated_sharpe", 0.4),
        ("max_position_fraction", 0.9),
    ],
)
def test_preferences_hash_any_changed_limit_changes_it(
    field: str, value: float, strict_preferences: Preferences
) -> None:
    # Arrange
    changed = Preferences.model_validate({**strict_preferences.model_dump(), field: value})

    # Act
    digests = {preferences_hash(strict_preferences), preferences_hash(changed)}

    # Assert
    assert len(digests) == 2


@pytest.mark.parametrize("field", FIELDS)
def test_preferences_assignment_raises_and_keeps_the_limit(
    field: str, strict_preferences: Preferences
) -> None:
    # Arrange
    before = getattr(strict_preferences, field)

    # Act / Assert
    with pytest.raises(ValidationError, match="frozen"):
        setattr(strict_preferences, field, 0)
    assert getattr(strict_preferences, field) == before


def test_preferences_deletion_raises(strict_preferences: Preferences) -> None:
    # Act / Assert
    with pytest.raises(ValidationError, match="frozen"):
        del strict_preferences.max_drawdown
    assert strict_preferences.max_drawdown == -0.25


def test_preferences_model_copy_with_update_raises(strict_preferences: Preferences) -> None:
    # Act / Assert: a research step cannot derive looser limits from the loaded ones.
    with pytest.raises(ConfigurationError, match=r"max_drawdown.*-0\.9.*editing preferences"):
        strict_preferences.model_copy(update={"max_drawdown": -0.9})


def test_preferences_model_copy_without_update_is_an_equal_copy(
    strict_preferences: Preferences,
) -> None:
    # Act
    copy = strict_preferences.model_copy()

    # Assert
    assert copy == strict_preferences
    assert preferences_hash(copy) == preferences_hash(strict_preferences)


def test_preferences_model_construct_raises() -> None:
    # Act / Assert: the unvalidated constructor would accept any limit.
    with pytest.raises(ConfigurationError, match="skip validation"):
        Preferences.model_construct(
            max_drawdown=-5.0,
            min_trades=0,
            max_sharpe_gap=100.0,
            min_deflated_sharpe=0.0,
            max_position_fraction=10.0,
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # field, value, rule and fix named for each problem
        (
            VALID_YAML.replace("-0.25", "0.25"),
            r"max_drawdown was 0\.25: Input should be less than 0; change it",
        ),
        (
            VALID_YAML.replace("min_trades: 20", "min_trades: 0"),
            r"min_trades was 0: Input should be greater than or equal to 1",
        ),
        (
            VALID_YAML.replace("min_trades: 20", "min_trades: many"),
            r"min_trades was 'many': Input should be a valid integer.*write a value of that type",
        ),
        (
            VALID_YAML.replace("min_deflated_sharpe: 0.5", "min_deflated_sharpe: 1.5"),
            r"min_deflated_sharpe was 1\.5: Input should be less than or equal to 1",
        ),
        (
            VALID_YAML.replace("max_position_fraction: 1.0", "max_position_fraction: 2.0"),
            r"max_position_fraction was 2\.0: Input should be less than or equal to 1",
        ),
        (
            VALID_YAML.replace("max_sharpe_gap: 1.0", "max_sharpe_gap: .nan"),
            r"max_sharpe_gap was nan: Input should be a finite number",
        ),
        (
            VALID_YAML.replace("max_drawdown", "max_drawdwn"),
            r"max_drawdown is missing.*add it[\s\S]*max_drawdwn was -0\.25: Extra inputs are not "
            r"permitted; remove it or correct its spelling",
        ),
    ],
    ids=[
        "positive-drawdown",
        "zero-trades",
        "text-trades",
        "dsr-above-1",
        "leverage",
        "nan",
        "typo",
    ],
)
def test_load_preferences_invalid_limit_raises_naming_the_field(
    text: str, expected: str, tmp_path: Path
) -> None:
    # Arrange
    path = write(tmp_path, text)

    # Act / Assert
    with pytest.raises(ConfigurationError, match=expected) as raised:
        load_preferences(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_drawdown: [-0.25\n", r"(?s)is not valid YAML .*line 1, column 15.*fix the syntax"),
        ("- -0.25\n- 20\n", r"top level was list, not a mapping of limits; write `max_drawdown"),
        ("", r"top level was NoneType, not a mapping"),
    ],
    ids=["syntax", "list", "empty"],
)
def test_load_preferences_malformed_file_raises(text: str, expected: str, tmp_path: Path) -> None:
    # Arrange
    path = write(tmp_path, text)

    # Act / Assert
    with pytest.raises(ConfigurationError, match=expected):
        load_preferences(path)


def test_load_preferences_missing_file_raises_naming_the_path(tmp_path: Path) -> None:
    # Arrange
    path = tmp_path / "nowhere" / "preferences.yaml"

    # Act / Assert
    with pytest.raises(ConfigurationError, match=r"does not exist; create it") as raised:
        load_preferences(path)
    assert str(path) in str(raised.value)


def test_preferences_json_round_trip_keeps_limits_and_hash(
    strict_preferences: Preferences,
) -> None:
    # Act
    restored = Preferences.model_validate(json.loads(strict_preferences.model_dump_json()))

    # Assert
    assert restored == strict_preferences
    assert preferences_hash(restored) == preferences_hash(strict_preferences)
