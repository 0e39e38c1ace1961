"""The progress seam: the core reports counts; Dagster logs them, the CLI draws a bar."""

from typing import Protocol


class Progress(Protocol):
    """Receives progress of long work (counts done out of a total)."""

    def update(self, done: int, total: int, message: str) -> None:
        """Report that `done` of `total` units are finished."""


class SilentProgress:
    """A Progress that reports nothing."""

    def update(self, done: int, total: int, message: str) -> None:
        """Ignore the report."""
