import logging
from collections.abc import Iterator
from typing import Any

import pytest

from quant_assets.domain.errors import QuantAssetsError
from quant_assets.domain.research import (
    Dimension,
    ResearchGoal,
    ResearchState,
    Usage,
)
from quant_assets.research.anthropic_proposer import (
    REDACTED,
    AnthropicProposer,
    ModelPrices,
    redact,
)
from quant_assets.research.proposer import PolicyProposer
from quant_assets.research.tool_schema import TOOL_NAME
from quant_assets.strategy.catalog.loader import Catalog
from quant_assets.strategy.validation import validate_spec
from quant_assets_tests.stubs.anthropic_stub import (
    AnthropicStub,
    error_reply,
    overloaded_reply,
    slow_reply,
    text_reply,
    tool_use_reply,
)

API_KEY = "sk-ant-api03-TEST-SECRET-0123456789abcdef"
MODEL = "claude-sonnet-4-6"
USAGE = {
    "input_tokens": 1200,
    "output_tokens": 400,
    "cache_creation_input_tokens": 9000,
    "cache_read_input_tokens": 0,
}
CACHED_USAGE = {
    "input_tokens": 1500,
    "output_tokens": 350,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 9000,
}


@pytest.fixture
def state(goal: ResearchGoal) -> ResearchState:
    return ResearchState(goal=goal, dimension=Dimension.HYPOTHESIS)


@pytest.fixture
def stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as server:
        yield server


def proposer_for(stub: AnthropicStub, **options: Any) -> AnthropicProposer:
    return AnthropicProposer(api_key=API_KEY, model=MODEL, base_url=stub.base_url, **options)


def valid_input() -> dict[str, Any]:
    return {
        "proposals": [
            {
                "template": "ema_crossover",
                "dimension": "hypothesis",
                "filters": [{"module": "adx_strength", "params": {"min_adx": 25}}],
                "execution": {"module": "atr_stops"},
                "baseline_params": {"fast_span_bars": 12},
                "hypothesis": "Hourly crypto trends persist after an EMA cross confirmed by ADX.",
                "rationale": "ADX removes the whipsaws the catalog names as the failure.",
            },
            {
                "template": "donchian_volume_breakout",
                "dimension": "hypothesis",
                "hypothesis": "Breakouts of the prior range on high volume keep going.",
                "rationale": "A breakout family the state has not tried.",
            },
        ]
    }


def invalid_input() -> dict[str, Any]:
    tool_input = valid_input()
    tool_input["proposals"][0]["baseline_params"] = {"fast_span_bars": 500}
    return tool_input


def expected_cost(usage: dict[str, int], prices: ModelPrices) -> float:
    per_token = prices.input_usd_per_mtok / 1e6
    return (
        usage["input_tokens"] * per_token
        + usage["output_tokens"] * prices.output_usd_per_mtok / 1e6
        + usage["cache_creation_input_tokens"] * per_token * 1.25
        + usage["cache_read_input_tokens"] * per_token * 0.1
    )


def test_propose_with_a_valid_tool_call_returns_validated_llm_proposals(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    stub.script(tool_use_reply(valid_input(), usage=USAGE))
    proposer = proposer_for(stub)

    # Act
    proposals = proposer.propose(state, catalog, 2)

    # Assert
    assert [p.spec.template for p in proposals] == ["ema_crossover", "donchian_volume_breakout"]
    assert {p.proposer for p in proposals} == {f"anthropic:{MODEL}"}
    assert {p.spec.lineage.created_by for p in proposals} == {f"anthropic:{MODEL}"}
    assert all(validate_spec(p.spec, catalog) == p.spec for p in proposals)
    assert proposer.last_fallback_reason is None
    assert proposer.name == f"anthropic:{MODEL}"
    assert len(stub.requests()) == 1


def test_propose_records_usage_and_cost_from_the_reply(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    prices = ModelPrices(input_usd_per_mtok=3.0, output_usd_per_mtok=15.0)
    stub.script(tool_use_reply(valid_input(), usage=USAGE))
    proposer = proposer_for(stub, prices=prices)

    # Act
    proposer.propose(state, catalog, 2)

    # Assert
    usage = proposer.last_usage
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (1, 1200, 400)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (9000, 0)
    # (1200 * 3 + 400 * 15 + 9000 * 3 * 1.25) / 1e6
    assert usage.cost_usd == pytest.approx(0.04335)
    assert usage.cost_usd == pytest.approx(expected_cost(USAGE, prices))


def test_propose_sends_cached_catalog_prefix_forced_tool_and_key_header(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    stub.script(tool_use_reply(valid_input(), usage=USAGE))

    # Act
    proposer_for(stub, max_tokens=2048).propose(state, catalog, 2)

    # Assert
    (request,) = stub.requests()
    body = request.body
    assert request.api_key == API_KEY
    assert (body["model"], body["max_tokens"]) == (MODEL, 2048)
    (system,) = body["system"]
    assert system["cache_control"] == {"type": "ephemeral"}
    assert "### ema_crossover (" in system["text"]
    (tool,) = body["tools"]
    assert tool["name"] == TOOL_NAME
    assert tool["cache_control"] == {"type": "ephemeral"}
    assert tool["input_schema"]["properties"]["proposals"]["maxItems"] == 2
    assert body["tool_choice"]["type"] == "tool"
    assert body["tool_choice"]["name"] == TOOL_NAME
    (message,) = body["messages"]
    assert message["role"] == "user"
    assert "# Research goal: btc_eth_trend_1h" in message["content"]
    assert "Propose 2 strategy spec(s) for the hypothesis dimension" in message["content"]


def test_propose_with_an_invalid_batch_sends_the_errors_back_once_and_uses_the_repair(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    stub.script(
        tool_use_reply(invalid_input(), usage=USAGE),
        tool_use_reply(valid_input(), usage=CACHED_USAGE),
    )
    proposer = proposer_for(stub)

    # Act
    proposals = proposer.propose(state, catalog, 2)

    # Assert
    assert [p.proposer for p in proposals] == [f"anthropic:{MODEL}"] * 2
    assert proposer.last_fallback_reason is None
    first, second = stub.requests()
    user, assistant, repair = second.body["messages"]
    assert user == first.body["messages"][0]
    assert assistant["role"] == "assistant"
    assert assistant["content"][-1]["type"] == "tool_use"
    assert assistant["content"][-1]["input"] == invalid_input()
    (result,) = repair["content"]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == assistant["content"][-1]["id"]
    assert result["is_error"] is True
    assert "proposals[0]" in result["content"]
    assert "'fast_span_bars' was 500" in result["content"]
    usage = proposer.last_usage
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (2, 2700, 750)
    assert (usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (9000, 9000)
    prices = ModelPrices()
    assert usage.cost_usd == pytest.approx(
        expected_cost(USAGE, prices) + expected_cost(CACHED_USAGE, prices)
    )


def test_propose_with_a_text_reply_asks_for_the_tool_call_as_text(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    stub.script(text_reply("Here are my ideas.", usage=USAGE), tool_use_reply(valid_input()))
    proposer = proposer_for(stub)

    # Act
    proposals = proposer.propose(state, catalog, 2)

    # Assert
    assert len(proposals) == 2
    _, second = stub.requests()
    _, assistant, repair = second.body["messages"]
    assert assistant["content"] == [{"type": "text", "text": "Here are my ideas."}]
    (text,) = repair["content"]
    assert text["type"] == "text"
    assert f"the reply had no {TOOL_NAME} tool call" in text["text"]


def test_propose_invalid_twice_falls_back_to_the_policy_and_logs_why(
    stub: AnthropicStub,
    state: ResearchState,
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange
    stub.script(tool_use_reply(invalid_input()), tool_use_reply(invalid_input()))
    proposer = proposer_for(stub)
    expected = PolicyProposer().propose(state, catalog, 2)

    # Act
    with caplog.at_level(logging.WARNING):
        proposals = proposer.propose(state, catalog, 2)

    # Assert
    assert proposals == expected
    assert {p.proposer for p in proposals} == {"policy"}
    assert len(stub.requests()) == 2
    reason = proposer.last_fallback_reason
    assert reason is not None
    assert "failed validation twice" in reason
    assert "fast_span_bars" in reason
    assert proposer.last_usage.calls == 2
    assert any("fell back to policy" in r.getMessage() for r in caplog.records)


def test_propose_with_too_few_valid_proposals_fills_the_rest_from_the_policy(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    one = valid_input()
    one["proposals"] = one["proposals"][:1]
    stub.script(tool_use_reply(one))
    proposer = proposer_for(stub)

    # Act
    proposals = proposer.propose(state, catalog, 2)

    # Assert
    assert [p.proposer for p in proposals] == [f"anthropic:{MODEL}", "policy"]
    assert proposals[0].spec.spec_id != proposals[1].spec.spec_id
    assert proposer.last_fallback_reason == "the model proposed 1 valid spec(s) of 2"


def test_propose_on_http_529_overloaded_retries_then_falls_back(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    stub.script(overloaded_reply(), overloaded_reply())
    proposer = proposer_for(stub, max_retries=1)

    # Act
    proposals = proposer.propose(state, catalog, 2)

    # Assert
    assert proposals == PolicyProposer().propose(state, catalog, 2)
    assert len(stub.requests()) == 2
    assert [r.headers["x-stainless-retry-count"] for r in stub.requests()] == ["0", "1"]
    reason = proposer.last_fallback_reason
    assert reason == "the Anthropic API answered HTTP 529 overloaded_error: Overloaded"
    assert proposer.last_usage == Usage()


def test_propose_on_timeout_falls_back(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    late = slow_reply(tool_use_reply(valid_input()), delay_seconds=2.0)
    stub.script(late, late)
    proposer = proposer_for(stub, timeout_seconds=0.5, max_retries=1)

    # Act
    proposals = proposer.propose(state, catalog, 2)

    # Assert
    assert {p.proposer for p in proposals} == {"policy"}
    assert len(stub.requests()) == 2
    assert proposer.last_fallback_reason == "the Anthropic API did not answer within 0.5 s"
    assert proposer.last_usage.calls == 0


def test_propose_with_the_llm_budget_spent_makes_no_request(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog
) -> None:
    # Arrange
    spent = state.model_copy(update={"spend": Usage(calls=50, cost_usd=2.0)})
    proposer = proposer_for(stub)

    # Act
    proposals = proposer.propose(spent, catalog, 2)

    # Assert
    assert {p.proposer for p in proposals} == {"policy"}
    assert stub.requests() == []
    assert proposer.last_fallback_reason is not None
    assert "LLM budget $2.00 is spent" in proposer.last_fallback_reason


def test_the_api_key_never_appears_in_logs_reasons_proposals_or_repr(
    stub: AnthropicStub,
    state: ResearchState,
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Arrange: a server that echoes the key in its error message, then a valid answer.
    echo = error_reply(401, "authentication_error", f"invalid x-api-key: {API_KEY}")
    stub.script(echo, tool_use_reply(valid_input()))
    proposer = proposer_for(stub)

    # Act
    with caplog.at_level(logging.DEBUG):
        fallen_back = proposer.propose(state, catalog, 2)
        reason = proposer.last_fallback_reason
        answered = proposer.propose(state, catalog, 2)

    # Assert
    assert reason is not None
    assert "HTTP 401 authentication_error" in reason
    assert REDACTED in reason
    assert API_KEY not in reason
    assert [p.proposer for p in answered] == [f"anthropic:{MODEL}"] * 2
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "fell back to policy" in logged
    assert API_KEY not in logged
    assert all(API_KEY not in p.model_dump_json() for p in [*fallen_back, *answered])
    assert API_KEY not in repr(proposer)
    assert API_KEY not in str(proposer)
    assert stub.requests()[0].api_key == API_KEY


@pytest.mark.parametrize("n", [0, -1])
def test_propose_below_one_proposal_raises_without_a_request(
    stub: AnthropicStub, state: ResearchState, catalog: Catalog, n: int
) -> None:
    # Act / Assert
    with pytest.raises(QuantAssetsError, match=f"proposal count n was {n}"):
        proposer_for(stub).propose(state, catalog, n)
    assert stub.requests() == []


def test_redact_replaces_every_occurrence_of_the_secret() -> None:
    # Act
    text = redact("key abc123 and again abc123.", "abc123")

    # Assert
    assert text == f"key {REDACTED} and again {REDACTED}."
    assert redact("nothing to hide", "") == "nothing to hide"
