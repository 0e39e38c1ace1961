"""Research goals as YAML files under `goals/`: read, checked against the catalog, listed."""

from pathlib import Path

import yaml
from pydantic import ValidationError

from quant_assets.domain.errors import ConfigurationError, SpecValidationError
from quant_assets.domain.research import ResearchGoal
from quant_assets.strategy.catalog.loader import Catalog, StrategyFamily
from quant_assets.strategy.spec_io import describe_validation_error


def goal_path(goals_dir: Path, name: str) -> Path:
    """Return the file of the goal called `name` (or `name` itself if it is a YAML path)."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    return goals_dir / f"{name}.yaml"


def load_goal(path: Path, catalog: Catalog) -> ResearchGoal:
    """Return the goal a YAML file describes, checked against the catalog.

    Raises:
        ConfigurationError: naming the file, each bad field path, its value, the rule and the
            fix; or a family or seed template the catalog does not know; or a file name that
            differs from the goal's name.
    """
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise ConfigurationError(
            f"research goal file {path} does not exist; write it or use one of {known}"
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigurationError(f"research goal {path} is not valid YAML ({e})") from e
    try:
        goal = ResearchGoal.model_validate(document)
    except ValidationError as e:
        problems = "\n- ".join(describe_validation_error(e))
        raise ConfigurationError(f"research goal {path} is malformed:\n- {problems}") from e
    if goal.name != path.stem:
        raise ConfigurationError(
            f"research goal {path}: name was '{goal.name}', not the file stem '{path.stem}'; "
            "rename the file or the goal so that they agree"
        )
    check_goal(goal, catalog, str(path))
    return goal


def check_goal(goal: ResearchGoal, catalog: Catalog, source: str) -> None:
    """Check a goal's families and seed templates against the catalog.

    Raises:
        ConfigurationError: naming the source, the value, the rule and the fix.
    """
    families = {family.value for family in StrategyFamily}
    unknown = sorted(set(goal.families) - families)
    if unknown:
        raise ConfigurationError(
            f"research goal {source}: families {unknown} are not catalog families; use some of "
            f"{sorted(families)}"
        )
    for template in goal.seed_templates:
        try:
            entry = catalog.entry(template)
        except SpecValidationError as e:
            raise ConfigurationError(f"research goal {source}: seed_templates: {e}") from e
        if goal.data.timeframe not in entry.timeframes:
            raise ConfigurationError(
                f"research goal {source}: seed template '{template}' is meant for "
                f"{list(entry.timeframes)}, not {goal.data.timeframe}; pick another template"
            )


def list_goal_files(goals_dir: Path) -> list[Path]:
    """Return the goal files of a directory, in name order."""
    return sorted(goals_dir.glob("*.yaml")) if goals_dir.is_dir() else []
