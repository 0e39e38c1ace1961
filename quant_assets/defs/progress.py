"""Adapt the core's Progress protocol to Dagster's run log (counts and ETA)."""

import time

import dagster as dg


class LogProgress:
    """Log progress to a run's log at most every few seconds, with an ETA."""

    def __init__(self, log: dg.DagsterLogManager, every_seconds: float = 5.0) -> None:
        self.log = log
        self.every_seconds = every_seconds
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done: int, total: int, message: str) -> None:
        """Log `done/total` with an ETA when enough time has passed or the work is finished."""
        now = time.monotonic()
        if done < total and now - self.last < self.every_seconds:
            return
        self.last = now
        elapsed = now - self.started
        eta = elapsed / done * (total - done) if done else 0.0
        self.log.info(f"{done}/{total} {message} (elapsed {elapsed:.1f}s, ETA {eta:.1f}s)")
