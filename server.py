"""Rillet's server: the entry point, and the assembly of its parts.

    python server.py                     # serve on HOST:PORT (127.0.0.1:5000) with DATA_DIR
    python server.py keys create write   # print a new key (shown once) and store its hash
    python server.py settings            # every setting, its value and what it does

The parts: the app (``streaming.web.app``, serving the route table in
``streaming.web.routes``) wrapped in gzip (``streaming.web.compress``), CORS and the access
log (``streaming.web.wsgi``), served by waitress, with the sync worker (``sync_worker.py``) in
threads of this process unless SYNC_WORKER=off. The command line is ``streaming.web.cli``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from streaming.memory import limit_malloc_arenas
from streaming.settings import Settings
from streaming.web import cli
from streaming.web.app import create_app
from streaming.web.compress import Compress
from streaming.web.state import VERSION, Rillet
from streaming.web.wsgi import AccessLog, Cors

__all__ = ["Rillet", "create_app", "wsgi_app", "serve", "main"]


def wsgi_app(rillet: Rillet) -> Callable[..., Any]:
    """The whole WSGI stack as served: the access log sees every response, preflights and
    compressed bodies included."""
    return AccessLog(Cors(Compress(create_app(rillet)), rillet.settings.cors_origins))


def serve(settings: Settings) -> None:
    """Start the worker threads (unless SYNC_WORKER=off) and serve with waitress."""
    import waitress

    import sync_worker

    limit_malloc_arenas()
    rillet = Rillet(settings)
    new_key = rillet.keys.ensure_one()
    if new_key:
        print(
            f"Created a write key (shown once, only its hash is stored):\n\n    {new_key}\n",
            flush=True,
        )
    if settings.sync_worker:
        worker = sync_worker.run_in_thread(settings)
        rillet.wake = worker.wake
    print(
        f"Rillet {VERSION} on http://{settings.host}:{settings.port} (data in {settings.data_dir})",
        flush=True,
    )
    waitress.serve(
        wsgi_app(rillet),
        host=settings.host,
        port=settings.port,
        threads=settings.threads,
        ident="rillet",
        # Both limits are checked by waitress before the app sees the request, so they answer
        # in waitress's plain text (431, 413), not in the JSON error shape. The header limit
        # covers the request line too: a long URL counts against it.
        max_request_header_size=settings.max_header_kb * 1024,
        max_request_body_size=settings.max_upload_mb * 2**20 + 16 * 2**20,
        clear_untrusted_proxy_headers=True,
        expose_tracebacks=False,
    )


def main(argv: list[str] | None = None) -> int:
    return cli.main(sys.argv[1:] if argv is None else argv, serve)


if __name__ == "__main__":
    sys.exit(main())
