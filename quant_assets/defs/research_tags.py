"""Run tags of the research loop: which goal, iteration and spec a run works for."""

from typing import Final

ITERATION_TAG: Final = "quant_assets/iteration"
"""The goal iteration a spec run belongs to."""
SPEC_TAG: Final = "quant_assets/spec"
"""The spec a research run evaluates."""
ACTION_TAG: Final = "quant_assets/research_action"
"""start, fold or stop: what a research_state run does."""
