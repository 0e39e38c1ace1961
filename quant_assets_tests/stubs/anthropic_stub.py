"""A local stand-in for the Anthropic Messages API (`POST /v1/messages`) on 127.0.0.1.

Replies are scripted: a queue of `StubReply` served in order (a `tool_use` message with usage,
an HTTP error such as 529 overloaded, a reply that arrives late to trigger client timeouts).
Every request is recorded with its headers and JSON body, so tests can assert what the real
`anthropic` client sent (cache_control blocks, the tool schema, the repair turn, the API key,
which anthropic 2.x sends as a bearer token). With no scripted reply left the stub answers
500 `api_error`, naming the problem.
"""

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Final

from quant_assets_tests.stubs.local_server import LocalServer

MESSAGES_PATH: Final = "/v1/messages"
DEFAULT_USAGE: Final = {
    "input_tokens": 1200,
    "output_tokens": 400,
    "cache_creation_input_tokens": 9000,
    "cache_read_input_tokens": 0,
}


@dataclass(frozen=True)
class StubReply:
    """One scripted reply.

    Attributes:
        status: HTTP status.
        body: The JSON body.
        delay_seconds: How long the stub waits before answering (a client timeout test).
        headers: Extra response headers (e.g. `retry-after-ms`).
    """

    status: int
    body: dict[str, Any]
    delay_seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def api_key(self) -> str | None:
        """Return the key the client sent (`x-api-key`, or anthropic 2.x's bearer token)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token if scheme.lower() == "bearer" and token else None


def tool_use_reply(
    tool_input: dict[str, Any],
    *,
    tool_name: str = "propose_strategy_specs",
    usage: dict[str, int] | None = None,
    text: str | None = None,
    model: str = "claude-sonnet-4-6",
) -> StubReply:
    """Return a 200 message whose content is one `tool_use` block (after optional text)."""
    content: list[dict[str, Any]] = [] if text is None else [{"type": "text", "text": text}]
    content.append(
        {"type": "tool_use", "id": "toolu_stub_01", "name": tool_name, "input": tool_input}
    )
    return StubReply(status=200, body=_message(content, "tool_use", usage, model))


def text_reply(
    text: str, *, usage: dict[str, int] | None = None, model: str = "claude-sonnet-4-6"
) -> StubReply:
    """Return a 200 message with text only (no tool call)."""
    return StubReply(
        status=200, body=_message([{"type": "text", "text": text}], "end_turn", usage, model)
    )


def error_reply(
    status: int, error_type: str, message: str, *, retry_after_ms: int | None = None
) -> StubReply:
    """Return an API error reply in Anthropic's shape (`{"type": "error", "error": {...}}`)."""
    headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return StubReply(status=status, body=body, headers=headers)


def overloaded_reply(retry_after_ms: int | None = 10) -> StubReply:
    """Return HTTP 529 `overloaded_error` (the API's answer when it is overloaded)."""
    return error_reply(529, "overloaded_error", "Overloaded", retry_after_ms=retry_after_ms)


def slow_reply(reply: StubReply, delay_seconds: float) -> StubReply:
    """Return the reply delivered only after `delay_seconds`."""
    return StubReply(reply.status, reply.body, delay_seconds, dict(reply.headers))


@dataclass
class _State:
    """Everything the handler threads share (guarded by `lock`)."""

    replies: deque[StubReply] = field(default_factory=deque)
    log: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


class AnthropicStub(LocalServer):
    """A threaded HTTP server on 127.0.0.1 imitating the Anthropic Messages API."""

    def __init__(self) -> None:
        """Prepare the stub; `start()` (or `with`) binds a free port and serves."""
        self._state = _State()
        super().__init__("the Anthropic stub", _Handler, self._state)

    def script(self, *replies: StubReply) -> None:
        """Queue replies that the next requests receive, in order."""
        with self._state.lock:
            self._state.replies.extend(replies)

    def requests(self) -> list[RecordedRequest]:
        """Return the requests received so far."""
        with self._state.lock:
            return list(self._state.log)

    def stop(self) -> None:
        """Release delayed replies, stop serving and free the port."""
        self._state.stopping.set()
        super().stop()


class _Handler(BaseHTTPRequestHandler):
    state: _State

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        body = json.loads(raw) if raw else {}
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.state.lock:
            self.state.log.append(RecordedRequest(path=self.path, headers=headers, body=body))
            served = self.path == MESSAGES_PATH and bool(self.state.replies)
            reply = self.state.replies.popleft() if served else None
        if self.path != MESSAGES_PATH:
            reply = error_reply(404, "not_found_error", f"no such path {self.path}")
        elif reply is None:
            reply = error_reply(500, "api_error", "the stub has no scripted reply left")
        if reply.delay_seconds:
            # Wait like a slow server, but let stop() release the thread at once.
            self.state.stopping.wait(reply.delay_seconds)
        self._send(reply)

    def _send(self, reply: StubReply) -> None:
        payload = json.dumps(reply.body).encode("utf-8")
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("request-id", "req_stub")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout) before the delayed reply was sent.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: requests are recorded in the stub's state instead of stderr.
        return


def _message(
    content: list[dict[str, Any]], stop_reason: str, usage: dict[str, int] | None, model: str
) -> dict[str, Any]:
    return {
        "id": "msg_stub_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": dict(DEFAULT_USAGE if usage is None else usage),
    }
