"""Small real HTTP servers on loopback that play another city's server in the peer tests.

- :class:`Answering`: answers every request (GET, POST, PUT, DELETE) as ``answer(path)``
  says, after ``delay`` seconds: garbage, a refusal, an error, pages, or a valid answer
  of the test's making. ``answer`` may be changed between requests; the paths asked and
  the ``Authorization`` headers sent are kept in :attr:`Answering.paths` and
  :attr:`Answering.tokens`. :func:`always` builds the answer of a server that says one
  thing whatever it is asked.
- :class:`Relay`: passes every request on to a real server (``target``) and its answer
  back; ``meddle(method, path)`` runs before each request is passed on and may answer
  instead (a refusal of the peer) or do something meanwhile (an officer there edits).
- :func:`serving`: serves one of them in a thread for the ``with`` block, then closes it.

Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

__all__ = ["Answer", "Answering", "Relay", "always", "serving"]

# (status, body) or (status, body, content type); a body that is not bytes goes as JSON
Answer = tuple[int, object] | tuple[int, object, str]
GEOJSON = "application/geo+json"


def _send(handler: http.server.BaseHTTPRequestHandler, answer: Answer) -> None:
    """Write ``answer`` (content type application/geo+json unless it says otherwise)."""
    status, body, kind = (*answer, GEOJSON) if len(answer) == 2 else answer
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:
        pass  # the client gave up (a slow peer's)


def _body(handler: http.server.BaseHTTPRequestHandler) -> bytes | None:
    size = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(size) if size else None


class Answering(http.server.ThreadingHTTPServer):
    """A loopback server answering every request with ``answer(path)``, after ``delay`` s."""

    daemon_threads = True

    def __init__(self, answer: Callable[[str], Answer], delay: float = 0.0):
        super().__init__(("127.0.0.1", 0), _AnsweringHandler)
        self.answer, self.delay = answer, delay
        self.paths: list[str] = []
        self.tokens: list[str | None] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _AnsweringHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self) -> None:
        server: Answering = self.server
        _body(self)
        server.paths.append(self.path)
        server.tokens.append(self.headers.get("Authorization"))
        if server.delay:
            time.sleep(server.delay)
        _send(self, server.answer(self.path))

    do_GET = do_POST = do_PUT = do_DELETE = _answer


def always(status: int, body: object, content_type: str = GEOJSON) -> Callable[[str], Answer]:
    """The ``answer`` of a server saying ``body`` with ``status`` whatever it is asked."""
    return lambda _path: (status, body, content_type)


class Relay(http.server.ThreadingHTTPServer):
    """A loopback relay to the server at ``target``.

    Before each request is passed on, ``meddle(method, path)`` runs (when given): it may
    act meanwhile and return None (the request then goes on), or return an
    :data:`Answer` that the relay sends instead of asking ``target``.
    """

    daemon_threads = True

    def __init__(self, target: str,
                 meddle: Callable[[str, str], Answer | None] | None = None):
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.target, self.meddle = target, meddle
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _RelayHandler(http.server.BaseHTTPRequestHandler):
    PASSED = ("authorization", "content-type", "if-match", "if-none-match", "accept")

    def log_message(self, *args) -> None:  # quiet
        pass

    def _relay(self) -> None:
        server: Relay = self.server
        data = _body(self)
        instead = server.meddle(self.command, self.path) if server.meddle else None
        if instead is not None:
            _send(self, instead)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() in self.PASSED}
        r = requests.request(self.command, server.target + self.path, data=data,
                             headers=headers, timeout=30, allow_redirects=False)
        self.send_response(r.status_code)
        for k in ("Content-Type", "ETag", "Location"):
            if k in r.headers:
                self.send_header(k, r.headers[k])
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    do_GET = do_POST = do_PUT = do_DELETE = _relay


@contextmanager
def serving(httpd: http.server.HTTPServer) -> Iterator[http.server.HTTPServer]:
    """Serve ``httpd`` in a daemon thread for the block; shut it down and close it after."""
    # shutdown() waits for the loop to look again: every 0.05 s rather than the 0.5 s default
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
