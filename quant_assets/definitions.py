"""The code location: every asset, check, job, schedule and resource under defs/."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Return the project's definitions, loaded from the defs/ folder."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
