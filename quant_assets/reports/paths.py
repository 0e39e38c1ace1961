"""Where a walk-forward run's tear sheet lives: `<reports_dir>/<spec_id>/<run_id>.html|.png`."""

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TearSheetPaths:
    """The files of one run's tear sheet.

    Attributes:
        html: The self-contained HTML tear sheet.
        png: The static equity and drawdown chart.
    """

    html: Path
    png: Path


def tear_sheet_paths(reports_dir: Path, spec_id: str, run_id: str) -> TearSheetPaths:
    """Return the tear sheet files of a run: one folder per spec, one file pair per run.

    Raises:
        ValueError: if an id is blank or holds a path separator (it would leave the folder).
    """
    for label, value in (("spec_id", spec_id), ("run_id", run_id)):
        if not value or "/" in value or "\\" in value or value in {".", ".."}:
            raise ValueError(
                f"tear sheet {label} was {value!r}; ids name files, so they must be non-blank "
                "and hold no path separator (pass WalkForwardRun.spec_id and run_id)"
            )
    folder = reports_dir / spec_id
    return TearSheetPaths(html=folder / f"{run_id}.html", png=folder / f"{run_id}.png")


def write_bytes_atomically(content: bytes, path: Path) -> Path:
    """Write `content` to a temp file in the target folder, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, suffix=f"{path.suffix}.tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        # mkstemp creates the file private (0600); a report is for anyone who reads the project.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path
