"""Rillet's server: the entry point, and the assembly of its parts.

    python server.py                     # serve on HOST:PORT (127.0.0.1:5000) with DATA_DIR
    python server.py keys create write   # print a new key (shown once) and store its hash
    python server.py settings            # every setting, its value and what it does

The parts: the app (``streaming.web.app``, serving the route table in
``streaming.web.routes``) wrapped in gzip (``streaming.web.compress``), CORS and the access
log (``streaming.web.wsgi``), served by waitress in WORKERS processes on one socket
(``streaming.web.workers``), with the sync worker (``sync_worker.py``) in threads of this
process unless SYNC_WORKER=off. The command line is ``streaming.web.cli``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streaming.errors import SettingError
from streaming.memory import limit_malloc_arenas
from streaming.settings import Settings
from streaming.store import Store
from streaming.web import cli, reads
from streaming.web.app import create_app
from streaming.web.auth import KeyRing
from streaming.web.compress import Compress
from streaming.web.drain import serve_draining
from streaming.web.share import Sharing, inherited_shared_socket, route_answer, shared_socket
from streaming.web.state import VERSION, Rillet
from streaming.web.workers import (
    Supervisor,
    exit_with_parent,
    inherited_socket,
    listening_socket,
)
from streaming.web.wsgi import AccessLog, Cors

__all__ = ["Rillet", "create_app", "wsgi_app", "serve", "serve_worker", "main"]

# How long a thread of a serving process holds the GIL before it is asked to pass it (Python's
# default: 5 ms). A process answers several requests in threads; with one of them computing a
# group-by, a short request (/health, a page) waits for the GIL at every step of its own.
SWITCH_SECONDS = 0.001


def wsgi_app(rillet: Rillet) -> Callable[..., Any]:
    """The whole WSGI stack as served: the access log sees every response, preflights and
    compressed bodies included."""
    return AccessLog(Cors(Compress(create_app(rillet)), rillet.settings.cors_origins))


def serve(settings: Settings) -> None:
    """Serve with waitress: in this process (WORKERS=1), or in WORKERS child processes on one
    listening socket (``streaming.web.workers``); the sync worker runs here either way, in
    threads of this process, unless SYNC_WORKER=off."""
    import sync_worker

    limit_malloc_arenas()
    Store(settings.data_dir)  # the data directory and its folders, before anything uses them
    ring = KeyRing(settings.data_dir / "keys.json", settings.api_keys)
    new_key = ring.ensure_one()
    if new_key:
        print(
            f"Created a write key (shown once, only its hash is stored):\n\n    {new_key}\n",
            flush=True,
        )
    if settings.workers == 1:
        rillet = Rillet(settings)
        if settings.sync_worker:
            rillet.wake = sync_worker.run_in_thread(settings).wake
        _announce(settings, "1 process")
        _waitress(rillet, host=settings.host, port=settings.port)
        return
    sock = listening_socket(settings)  # bound before the children start: none can miss it
    if settings.sync_worker:
        sync_worker.run_in_thread(settings)
    _announce(settings, f"{settings.workers} processes")
    command = [sys.executable, str(Path(__file__).resolve()), "worker"]
    supervisor = Supervisor(
        command, sock, settings.workers, settings.drain_seconds, shared_socket()
    )
    supervisor.run()
    if supervisor.failed:
        raise SettingError("the serving processes kept dying as they started: see the log above")


def serve_worker(settings: Settings) -> None:
    """One of WORKERS children: serve the listening socket the parent passed down."""
    sock = inherited_socket()
    if sock is None:
        raise SettingError("`python server.py worker` is started by `python server.py` only")
    limit_malloc_arenas()
    exit_with_parent()
    rillet = Rillet(settings)
    shared = inherited_shared_socket()
    if shared is not None:
        questions, token = shared
        rillet.sharing = Sharing(questions, route_answer(rillet, reads.SHARED), token)
        rillet.sharing.start()
    _waitress(rillet, sockets=[sock])


def _announce(settings: Settings, processes: str) -> None:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(
        f"Rillet {VERSION} on http://{host}:{settings.port} "
        f"(data in {settings.data_dir}; {processes})",
        flush=True,
    )


def _waitress(rillet: Rillet, **where: Any) -> None:
    import waitress

    settings = rillet.settings
    sys.setswitchinterval(SWITCH_SECONDS)
    server = waitress.create_server(
        wsgi_app(rillet),
        threads=settings.threads,
        ident="rillet",
        # Both limits are checked by waitress before the app sees the request, so they answer
        # in waitress's plain text (431, 413), not in the JSON error shape. The header limit
        # covers the request line too: a long URL counts against it.
        max_request_header_size=settings.max_header_kb * 1024,
        max_request_body_size=settings.max_upload_mb * 2**20 + 16 * 2**20,
        clear_untrusted_proxy_headers=True,
        expose_tracebacks=False,
        **where,
    )
    sharing = rillet.sharing
    if sharing is None:
        serve_draining(server, settings.drain_seconds)
    else:
        serve_draining(server, settings.drain_seconds, sharing.refuse, lambda: sharing.answering)


def main(argv: list[str] | None = None) -> int:
    return cli.main(sys.argv[1:] if argv is None else argv, serve, serve_worker)


if __name__ == "__main__":
    sys.exit(main())
