"""A stoppable HTTP ``/metrics`` endpoint for one Prometheus registry.

``prometheus_client.start_http_server`` binds 0.0.0.0 by default and hands back a bare server; this
handle binds loopback unless told otherwise, reports the port it really got (``port=0`` picks a free
one), and ``stop()`` shuts the thread down and closes the socket so the port is free again.

Examples:
    >>> from prometheus_client import CollectorRegistry
    >>> server = start_metrics_server(CollectorRegistry(), "127.0.0.1", 0)
    >>> server.port > 0
    True
    >>> server.stop()
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["MetricsServer", "WsgiApp", "make_metrics_app", "start_metrics_server"]

#: A WSGI application: ``app(environ, start_response) -> iterable of bytes``.
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, so a slow client never blocks the next one."""

    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Do not write one access-log line to stderr per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def make_metrics_app(registry: CollectorRegistry) -> WsgiApp:
    """Return ``prometheus_client.make_wsgi_app`` bound to ``registry`` (never the global one).

    Examples:
        >>> callable(make_metrics_app(CollectorRegistry()))
        True
    """
    app: WsgiApp = make_wsgi_app(registry)
    return app


class MetricsServer:
    """A running metrics endpoint; use :func:`start_metrics_server` to make one.

    Attributes:
        host: The bound address.
        port: The bound TCP port (the real one when 0 was asked for).
    """

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.host = host
        self.port: int = int(server.server_address[1])
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The scrape URL, e.g. ``http://127.0.0.1:9090/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @property
    def running(self) -> bool:
        """Whether the server thread is still serving."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving, join the thread and close the socket; safe to call twice.

        Examples:
            >>> server = start_metrics_server(CollectorRegistry(), "127.0.0.1", 0)
            >>> server.stop(); server.stop(); server.running
            False
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"MetricsServer(url={self.url!r}, {state})"


def start_metrics_server(registry: CollectorRegistry, host: str = "127.0.0.1", port: int = 9090) -> MetricsServer:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread.

    Args:
        registry: The registry to expose.
        host: Address to bind (IPv4 or IPv6 literal, or a name); loopback by default.
        port: TCP port; 0 picks a free one.

    Returns:
        The running :class:`MetricsServer`.

    Raises:
        OSError: If the address cannot be bound (e.g. the port is taken).

    Examples:
        >>> with start_metrics_server(CollectorRegistry(), port=0) as server:
        ...     server.host
        '127.0.0.1'
    """
    server_cls = _ThreadingServer6 if ":" in host else _ThreadingServer
    server = make_server(host, port, make_metrics_app(registry), server_cls, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"tinydancer-metrics-{port}", daemon=True)
    thread.start()
    return MetricsServer(server, thread, host)
