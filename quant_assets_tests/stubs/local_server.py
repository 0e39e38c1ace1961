"""A threaded HTTP server on 127.0.0.1 for the test stubs: a free port, a thread, clean stop."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class LocalServer:
    """Serves `handler` (which reads shared `state` from its class) on a free loopback port."""

    def __init__(self, name: str, handler: type[BaseHTTPRequestHandler], state: Any) -> None:
        """Prepare the server; `start()` (or `with`) binds a free port and serves.

        Args:
            name: What it imitates, for the not-running error ("the Binance stub").
            handler: The request handler class; a subclass gets `state` as a class attribute.
            state: What the handler threads share.
        """
        self._name = name
        self._handler = handler
        self._state = state
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Return the server root, e.g. http://127.0.0.1:54321."""
        if self._server is None:
            raise RuntimeError(f"{self._name} is not running; call start() or use it in `with`")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        handler = type("_BoundHandler", (self._handler,), {"state": self._state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval lets stop() return quickly (the default 0.5 s adds up in tests).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
