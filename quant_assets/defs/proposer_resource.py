"""The proposer the research sensor asks: Claude when an API key is configured, else the policy.

The key reaches the resource only through `dg.EnvVar("ANTHROPIC_API_KEY")` (see
`proposer_resource_from_env`): Dagster shows the variable's name in the UI, never its value,
and nothing here logs it, stores it or puts it in a message.
"""

import logging
import os
from typing import Final

import dagster as dg
from pydantic import Field

from quant_assets.research.proposer import PolicyProposer, Proposer

API_KEY_VARIABLE: Final = "ANTHROPIC_API_KEY"
BASE_URL_VARIABLE: Final = "ANTHROPIC_BASE_URL"
DEFAULT_MODEL: Final = "claude-sonnet-4-6"
"""Claude's default model here (anthropic 2.11 deprecates claude-sonnet-4-5)."""


class ResearchProposerResource(dg.ConfigurableResource):
    """Which proposer drives the research loop, and how to reach Claude.

    Without `anthropic_api_key` the deterministic, offline `PolicyProposer` proposes.
    """

    anthropic_api_key: str = Field(default="", description="From the ANTHROPIC_API_KEY env var.")
    anthropic_base_url: str = Field(default="", description="API base URL; empty: Anthropic's.")
    model: str = Field(default=DEFAULT_MODEL, description="The Claude model to ask.")
    timeout_seconds: float = Field(default=60.0, gt=0)

    def proposer(self, logger: logging.Logger | None = None) -> Proposer:
        """Return the proposer: Claude with the policy as fallback, or the policy alone."""
        if not self.anthropic_api_key:
            return PolicyProposer()
        # The anthropic SDK takes about 2 s to import: load it only when Claude is asked.
        from quant_assets.research.anthropic_proposer import AnthropicProposer

        return AnthropicProposer(
            api_key=self.anthropic_api_key,
            model=self.model,
            base_url=self.anthropic_base_url or None,
            timeout_seconds=self.timeout_seconds,
            logger=logger,
        )


def proposer_resource_from_env() -> ResearchProposerResource:
    """Return the resource wired to the environment: the key via `dg.EnvVar` when it is set."""
    if not os.environ.get(API_KEY_VARIABLE):
        return ResearchProposerResource()
    base_url = os.environ.get(BASE_URL_VARIABLE, "")
    return ResearchProposerResource(
        anthropic_api_key=dg.EnvVar(API_KEY_VARIABLE),
        anthropic_base_url=base_url,
    )
