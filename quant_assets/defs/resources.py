"""Resources: configuration only; they build the core objects assets use."""

from collections.abc import Mapping
from pathlib import Path
from typing import Final

import dagster as dg

from quant_assets.domain.errors import ConfigurationError, UnknownInstrumentError
from quant_assets.domain.governance import ArchiveThresholds, HoldoutGuard, HoldoutPolicy
from quant_assets.domain.market import InstrumentConfig
from quant_assets.domain.research import ResearchGoal
from quant_assets.domain.strategy import StrategySpec
from quant_assets.governance import holdout
from quant_assets.governance.preferences import Preferences, load_preferences
from quant_assets.market.instruments import load_instrument_file
from quant_assets.market.sources.base import MarketSource
from quant_assets.market.sources.factory import SourceSettings, build_source
from quant_assets.storage.archive import ArchiveStore
from quant_assets.storage.bars_reader import BarsReader
from quant_assets.storage.lake import Lake
from quant_assets.storage.research_loop import registered_goal
from quant_assets.storage.warehouse import Warehouse

DEFAULT_GOAL: Final = "default"
"""The goal of specs run outside a research goal (added by a person with `specs add`)."""
GOAL_TAG: Final = "quant_assets/goal"
"""The run tag naming the research goal a run works for (absent: `DEFAULT_GOAL`)."""


def run_goal(tags: Mapping[str, str]) -> str:
    """Return the research goal a run works for: its `GOAL_TAG`, else `DEFAULT_GOAL`."""
    return tags.get(GOAL_TAG, DEFAULT_GOAL)


class WarehouseResource(dg.ConfigurableResource):
    """Where the lake, the warehouse, the shipped sample and the instrument list live.

    Relative paths resolve against `project_dir` (the working directory by default, which is
    the project root for `make demo`, `make dev` and the dagster CLI).

    A run works for the research goal its `GOAL_TAG` names (registered in the warehouse by
    `quant-assets research start`): the goal's archive bar and sealed holdout apply. Specs run
    outside a goal work for `DEFAULT_GOAL`, whose archive thresholds are
    `archive_min_oos_sharpe` and `archive_max_drawdown` and whose holdout is `HoldoutPolicy()`
    (the last 15% of each spec's own data slice).
    """

    project_dir: str = "."
    lake_dir: str = "data/lake"
    warehouse_path: str = "data/warehouse.duckdb"
    sample_dir: str = "data/sample"
    instruments_file: str = "instruments.yaml"
    preferences_file: str = "preferences.yaml"
    goals_dir: str = "goals"
    reports_dir: str = "data/reports"
    ccxt_api_base_url: str = ""
    walkforward_workers: int = 2
    archive_min_oos_sharpe: float = 1.2
    archive_max_drawdown: float = -0.15

    def _path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else Path(self.project_dir).resolve() / path

    def lake(self) -> Lake:
        """Return the Parquet lake."""
        return Lake(self._path(self.lake_dir))

    def warehouse(self) -> Warehouse:
        """Return the DuckDB warehouse."""
        return Warehouse(self._path(self.warehouse_path), self.lake())

    def archive(self) -> ArchiveStore:
        """Return the append-only archive of records and transitions (in the warehouse)."""
        return ArchiveStore(self.warehouse())

    def goals_path(self) -> Path:
        """Return the directory of research goal files."""
        return self._path(self.goals_dir)

    def reports_path(self) -> Path:
        """Return the directory tear sheets are written to."""
        return self._path(self.reports_dir)

    def research_goal(self, name: str) -> ResearchGoal | None:
        """Return the registered research goal called `name` (None for `DEFAULT_GOAL`).

        Raises:
            ConfigurationError: if no goal of that name was registered (started).
        """
        if name == DEFAULT_GOAL:
            return None
        goal = registered_goal(self.warehouse(), name)
        if goal is None:
            raise ConfigurationError(
                f"research goal '{name}' is not registered; start it with "
                f"`quant-assets research start {name}`"
            )
        return goal

    def archive_thresholds(self, goal: str = DEFAULT_GOAL) -> ArchiveThresholds:
        """Return a goal's bar for a candidate (the resource's fields for `DEFAULT_GOAL`)."""
        research_goal = self.research_goal(goal)
        if research_goal is not None:
            return research_goal.archive_thresholds()
        return ArchiveThresholds(
            min_oos_sharpe=self.archive_min_oos_sharpe, max_drawdown=self.archive_max_drawdown
        )

    def holdout_policy(self, goal: str = DEFAULT_GOAL) -> HoldoutPolicy:
        """Return how a goal seals its holdout (the last 15% for `DEFAULT_GOAL`)."""
        research_goal = self.research_goal(goal)
        return research_goal.holdout if research_goal is not None else HoldoutPolicy()

    def holdout_guard(self, spec: StrategySpec, goal: str = DEFAULT_GOAL) -> HoldoutGuard:
        """Return the seal on a spec's data slice under a goal's holdout policy."""
        return holdout.holdout_guard(
            goal, spec.data.start, spec.data.end, self.holdout_policy(goal)
        )

    def bars_reader(self, spec: StrategySpec, goal: str = DEFAULT_GOAL) -> BarsReader:
        """Return the reader research uses for a spec: bars before its holdout start only."""
        return BarsReader(self.lake(), self.archive(), self.holdout_guard(spec, goal))

    def preferences(self) -> Preferences:
        """Return the human risk limits (read-only; only a person edits the file)."""
        return load_preferences(self._path(self.preferences_file))

    def default_instruments(self) -> list[InstrumentConfig]:
        """Return the instruments listed in instruments.yaml."""
        return load_instrument_file(self._path(self.instruments_file))

    def instrument(self, key: str) -> InstrumentConfig:
        """Return a registered instrument, registering it from instruments.yaml if listed there.

        Raises:
            UnknownInstrumentError: if neither the warehouse nor instruments.yaml knows the key.
        """
        warehouse = self.warehouse()
        try:
            return warehouse.instrument(key)
        except UnknownInstrumentError:
            defaults = {config.key: config for config in self.default_instruments()}
            if key not in defaults:
                raise
            warehouse.register_instrument(defaults[key])
            return defaults[key]

    def source(self, config: InstrumentConfig) -> MarketSource:
        """Return the source an instrument's registration names."""
        urls = {}
        if self.ccxt_api_base_url:
            urls[config.options.get("exchange", config.instrument.venue)] = self.ccxt_api_base_url
        settings = SourceSettings(
            sample_dir=self._path(self.sample_dir),
            project_dir=Path(self.project_dir).resolve(),
            ccxt_api_base_urls=urls,
        )
        return build_source(config, settings)


@dg.definitions
def resources() -> dg.Definitions:
    """Return the default resources and executor (embedded: sample, DuckDB file, local lake).

    The executor is in_process: one import per run (about 3 s per CLI run instead of 6-7 s,
    NOTES-stack.md B7); walk-forward windows get their parallelism from threads inside the step.
    """
    # Imported here: the proposer resource pulls in the research package (and anthropic).
    from quant_assets.defs.proposer_resource import proposer_resource_from_env

    return dg.Definitions(
        resources={
            "warehouse": WarehouseResource(),
            "research_proposer": proposer_resource_from_env(),
        },
        executor=dg.in_process_executor,
    )
