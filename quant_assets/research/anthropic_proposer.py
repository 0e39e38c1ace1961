"""The LLM proposer: Claude with one forced tool call that returns strategy specs as data.

One iteration is one request: the catalog prompt as a cached system prefix, the tool (its schema
generated from the catalog and the spec models, also cached), and the state prompt. The tool input
is validated (`tool_schema.proposals_from_tool_input`); an invalid batch is sent back once with
the validation errors as an error tool result, and if the answer is still invalid, or the API
fails (status error such as 529 overloaded, timeout, connection), the fallback proposer (the
deterministic policy) proposes for this iteration and the reason is logged. Token use and cost
of every call are summed in `last_usage`, which the caller adds to the state's spend.

The API key is held privately (by the SDK client, and once more to scrub it): it is never logged,
never part of an error text, a fallback reason, a proposal or the proposer's repr (`redact` scrubs
any text that could echo it, such as an error body).
"""

import logging
from typing import Final

import anthropic
from anthropic.types import (
    CacheControlEphemeralParam,
    ContentBlockParam,
    Message,
    MessageParam,
    TextBlockParam,
    ToolParam,
    ToolUseBlock,
)
from pydantic import BaseModel, ConfigDict, Field

from quant_assets.domain.errors import SpecValidationError
from quant_assets.domain.research import Proposal, ResearchState, Usage
from quant_assets.research.prompt import catalog_prompt, state_prompt
from quant_assets.research.proposer import PolicyProposer, Proposer, check_proposable
from quant_assets.research.tool_schema import (
    PROPOSER_CHARS,
    TOOL_NAME,
    proposals_from_tool_input,
    tool_definition,
)
from quant_assets.strategy.catalog.loader import Catalog

DEFAULT_MODEL: Final = "claude-sonnet-4-6"
"""Default model id (anthropic 2.11 warns that claude-sonnet-4-5 is deprecated)."""
REDACTED: Final = "[redacted]"
REASON_CHARS: Final = 2000
"""Longest fallback reason kept (the validation errors can be long)."""
_CACHED: Final[CacheControlEphemeralParam] = {"type": "ephemeral"}


class ModelPrices(BaseModel):
    """A model's prices in US dollars per million tokens (cache prices relative to input)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    input_usd_per_mtok: float = Field(default=3.0, ge=0.0)
    output_usd_per_mtok: float = Field(default=15.0, ge=0.0)
    cache_write_multiplier: float = Field(
        default=1.25, ge=0.0, description="Cache write price as a multiple of the input price."
    )
    cache_read_multiplier: float = Field(
        default=0.1, ge=0.0, description="Cache read price as a multiple of the input price."
    )

    def usage(self, response_usage: anthropic.types.Usage) -> Usage:
        """Return one call's usage with its cost (uncached input, output, cache write, read)."""
        created = response_usage.cache_creation_input_tokens or 0
        read = response_usage.cache_read_input_tokens or 0
        input_price = self.input_usd_per_mtok
        cost = (
            response_usage.input_tokens * input_price
            + response_usage.output_tokens * self.output_usd_per_mtok
            + created * input_price * self.cache_write_multiplier
            + read * input_price * self.cache_read_multiplier
        ) / 1_000_000
        return Usage(
            calls=1,
            input_tokens=response_usage.input_tokens,
            output_tokens=response_usage.output_tokens,
            cache_creation_input_tokens=created,
            cache_read_input_tokens=read,
            cost_usd=cost,
        )


def redact(text: str, secret: str) -> str:
    """Return the text with every occurrence of the secret replaced by `[redacted]`."""
    return text.replace(secret, REDACTED) if secret else text


class _RepairFailedError(Exception):
    """The model's proposals failed validation twice (the message holds the last errors)."""


class AnthropicProposer:
    """Proposes specs with Claude tool use, falling back to the policy when that fails.

    Attributes:
        name: `anthropic:<model>`, stamped on its proposals and their lineage.
        last_usage: Tokens and cost of the last `propose` call (every request, the repair
            included, plus the fallback's usage).
        last_fallback_reason: Why the last call used the fallback (None: it did not).
    """

    def __init__(
        self,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        max_tokens: int = 4096,
        prices: ModelPrices | None = None,
        fallback: Proposer | None = None,
        logger: logging.Logger | None = None,
        max_retries: int = 1,
    ) -> None:
        """Build the SDK client (no request is made here).

        Args:
            api_key: The Anthropic API key (kept inside the client, never shown).
            model: The model id.
            base_url: The API root (None: the SDK's default); a stub server's URL in tests.
            timeout_seconds: Limit of one HTTP request.
            max_tokens: Most output tokens per reply.
            prices: The model's prices (None: Sonnet's 3 / 15 USD per million tokens).
            fallback: Proposes when the model cannot (None: a `PolicyProposer`).
            logger: Where fallbacks are logged (None: this module's logger).
            max_retries: SDK retries of a failed request (429, 5xx, 529, timeouts).
        """
        self.name = f"anthropic:{model}"[:PROPOSER_CHARS]
        self.last_usage = Usage()
        self.last_fallback_reason: str | None = None
        self._model = model
        self._max_tokens = max_tokens
        self._timeout_seconds = timeout_seconds
        self._prices = prices or ModelPrices()
        self._fallback: Proposer = fallback if fallback is not None else PolicyProposer()
        self._logger = logger or logging.getLogger(__name__)
        self._secret = api_key
        self._client = anthropic.Anthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=max_retries
        )

    def __repr__(self) -> str:
        return (
            f"AnthropicProposer(model={self._model!r}, base_url={str(self._client.base_url)!r}, "
            f"timeout_seconds={self._timeout_seconds})"
        )

    def propose(self, state: ResearchState, catalog: Catalog, n: int) -> list[Proposal]:
        """Return n proposals for the state's dimension (the fallback's when the model fails).

        Args:
            state: The research state (goal, attempts, best result, dimension, spend).
            catalog: The template catalog.
            n: How many proposals to return.

        Raises:
            QuantAssetsError: if the loop has ended or `n` is below 1.
        """
        self.last_usage = Usage()
        self.last_fallback_reason = None
        check_proposable(state, n)
        budget = state.goal.budget.max_llm_usd
        # A zero cap leaves spend unlimited (research/policy.py, termination).
        if 0 < budget <= state.spend.cost_usd:
            reason = f"the goal's LLM budget ${budget:.2f} is spent (${state.spend.cost_usd:.4f})"
            return self._fall_back(state, catalog, n, reason)
        try:
            proposals = self._exchange(state, catalog, n)
        except anthropic.AnthropicError as e:
            return self._fall_back(state, catalog, n, self._describe_api_error(e))
        except _RepairFailedError as e:
            return self._fall_back(state, catalog, n, str(e))
        if len(proposals) < n:
            reason = f"the model proposed {len(proposals)} valid spec(s) of {n}"
            return self._fall_back(state, catalog, n, reason, kept=proposals)
        return proposals

    def _exchange(self, state: ResearchState, catalog: Catalog, n: int) -> list[Proposal]:
        # One request; if its batch is invalid, one repair request with the errors.
        timeframe = state.goal.data.timeframe
        system: list[TextBlockParam] = [
            {"type": "text", "text": catalog_prompt(catalog, timeframe), "cache_control": _CACHED}
        ]
        definition = tool_definition(catalog, timeframe, n)
        tool: ToolParam = {
            "name": definition["name"],
            "description": definition["description"],
            "input_schema": definition["input_schema"],
            "cache_control": _CACHED,
        }
        request = (
            f"{state_prompt(state)}\n\nPropose {n} strategy spec(s) for the "
            f"{state.dimension.value} dimension by calling {TOOL_NAME}."
        )
        messages: list[MessageParam] = [{"role": "user", "content": request}]
        response = self._create(system, tool, messages)
        try:
            return self._validated(response, state, catalog, n)
        except SpecValidationError as e:
            messages += _repair_turns(response, str(e))
        response = self._create(system, tool, messages)
        try:
            return self._validated(response, state, catalog, n)
        except SpecValidationError as e:
            raise _RepairFailedError(
                f"the model's proposals failed validation twice; the second time: {e}"
            ) from e

    def _create(
        self, system: list[TextBlockParam], tool: ToolParam, messages: list[MessageParam]
    ) -> Message:
        response = self._client.messages.create(
            model=self._model,
            max_tokens=self._max_tokens,
            system=system,
            tools=[tool],
            tool_choice={"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True},
            messages=messages,
        )
        self.last_usage += self._prices.usage(response.usage)
        return response

    def _validated(
        self, response: Message, state: ResearchState, catalog: Catalog, n: int
    ) -> list[Proposal]:
        call = _tool_call(response)
        if call is None:
            cut = (
                " (the reply was cut at max_tokens)" if response.stop_reason == "max_tokens" else ""
            )
            raise SpecValidationError(
                f"the reply had no {TOOL_NAME} tool call{cut}; call the tool with the proposals"
            )
        return proposals_from_tool_input(call.input, state, catalog, n, self.name)

    def _fall_back(
        self,
        state: ResearchState,
        catalog: Catalog,
        n: int,
        reason: str,
        kept: list[Proposal] | None = None,
    ) -> list[Proposal]:
        kept = kept or []
        fallback = self._fallback
        self.last_fallback_reason = redact(reason, self._secret)[:REASON_CHARS]
        self._logger.warning(
            "%s fell back to %s for %d of %d proposal(s) of iteration %d: %s",
            self.name,
            fallback.name,
            n - len(kept),
            n,
            state.iteration + 1,
            self.last_fallback_reason,
        )
        extra = fallback.propose(state, catalog, n - len(kept))
        self.last_usage += getattr(fallback, "last_usage", Usage())
        kept_ids = {proposal.spec.spec_id for proposal in kept}
        return [*kept, *(p for p in extra if p.spec.spec_id not in kept_ids)]

    def _describe_api_error(self, error: anthropic.AnthropicError) -> str:
        if isinstance(error, anthropic.APITimeoutError):
            text = f"the Anthropic API did not answer within {self._timeout_seconds} s"
        elif isinstance(error, anthropic.APIConnectionError):
            text = f"the Anthropic API at {self._client.base_url} was unreachable ({error.message})"
        elif isinstance(error, anthropic.APIStatusError):
            kind = f" {error.type}" if error.type else ""
            message = error.api_message or error.message
            text = f"the Anthropic API answered HTTP {error.status_code}{kind}: {message}"
        else:
            text = f"the Anthropic API call failed: {type(error).__name__}: {error}"
        return redact(text, self._secret)


def _tool_call(response: Message) -> ToolUseBlock | None:
    return next(
        (
            block
            for block in response.content
            if block.type == "tool_use" and block.name == TOOL_NAME
        ),
        None,
    )


def _repair_turns(response: Message, errors: str) -> list[MessageParam]:
    # The model's turn goes back (its text and its one tool call), then the errors: as the
    # tool's error result when it called the tool, else as text (a tool_result answers a tool_use).
    fix = f"{errors}\nCall {TOOL_NAME} again with corrected proposals."
    blocks: list[ContentBlockParam] = [
        {"type": "text", "text": block.text} for block in response.content if block.type == "text"
    ]
    call = _tool_call(response)
    answer: ContentBlockParam
    if call is None:
        answer = {"type": "text", "text": fix}
    else:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input})
        answer = {"type": "tool_result", "tool_use_id": call.id, "is_error": True, "content": fix}
    turns: list[MessageParam] = [{"role": "assistant", "content": blocks}] if blocks else []
    return [*turns, {"role": "user", "content": [answer]}]
