"""Serve the browser with uvicorn: 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

try:
    import uvicorn
except ImportError as e:  # the web extra
    from autotuner.web import WebExtraMissingError

    raise WebExtraMissingError(e.name) from None

from archive import Archive
from autotuner.errors import AutotunerError
from autotuner.web.app import create_app

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_server(archive: Archive, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``archive`` (not started). On a loopback address only requests
    naming a loopback host are answered (no DNS rebinding from a web page)."""
    allowed = LOOPBACK_NAMES if is_loopback(host) else None
    app = create_app(archive, allowed_hosts=allowed)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug",
                            lifespan="off", server_header=False)  # fmt: skip
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port), or an error saying what to do."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise AutotunerError(f"cannot listen on {host}:{port}: {e.strerror}; choose another --port or --host") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(archive: Archive, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, log_level: str = "warning",
          on_ready: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Serve until interrupted; ``on_ready`` gets the URL once the socket is bound."""
    sock = bind(host, port)
    server = make_server(archive, host, port, log_level)
    if not is_loopback(host):
        log.warning("serving the archive on %s: anyone who can reach this address can read it", host)
    if on_ready is not None:
        on_ready(url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
