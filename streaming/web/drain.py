"""Stopping without cutting answers short.

On SIGTERM (a deploy, ``kill``, the parent of WORKERS stopping its children) a serving process
closes its listening socket, lets every answer in flight finish, its body streamed to the last
byte, and then stops; DRAIN_SECONDS bounds the wait, so a client that stopped reading cannot
hold a deploy. Ctrl-C (SIGINT) still stops at once.

"In flight" is read from waitress's own channels: one that holds a request (the app is still
producing its body) or bytes not yet sent. Idle keep-alive connections do not count; they
close with the server, as they would at any stop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("rillet.server")

POLL_SECONDS = 0.05


def serve_draining(
    server: Any,
    grace: float,
    stopping: Callable[[], None] = lambda: None,
    working: Callable[[], bool] = lambda: False,
) -> None:
    """Run a waitress server (from ``waitress.create_server``) until SIGINT, or until SIGTERM
    and the drain that follows it end. ``stopping`` is told when it begins (it may only set
    flags); ``working`` says whether work besides the connections' is in flight (a question
    answered for another process), which the drain waits for too. Call from the main
    thread."""
    channels: dict[int, Any] = server.map if hasattr(server, "map") else server._map

    def on_term(signum: int, frame: Any) -> None:
        # A handler runs in the main thread, which is waitress's loop: flags are safe to set
        # here, but not a socket to close (select() may be retried on its descriptor) nor a
        # lock to take. The drain thread closes the listeners from inside the loop.
        for listener in _listeners(channels):
            listener.accepting = False
        stopping()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM changes nothing
        # The drain ends in a real SIGINT: it interrupts the loop's select() at once, and
        # waitress stops on the KeyboardInterrupt that Python's handler raises. That handler
        # is set here, since a process started in the background inherits SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log.info("stopping: no new connections; waiting for answers in flight")
        drain = threading.Thread(
            target=_stop_when_drained, args=(channels, grace, working), daemon=True
        )
        drain.start()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def in_flight(channels: dict[int, Any]) -> int:
    """Connections with a request being answered or bytes still to send."""
    from waitress.channel import HTTPChannel

    return sum(
        1
        for channel in list(channels.values())
        if isinstance(channel, HTTPChannel) and (channel.requests or channel.total_outbufs_len)
    )


def _listeners(channels: dict[int, Any]) -> list[Any]:
    from waitress.server import BaseWSGIServer

    return [c for c in list(channels.values()) if isinstance(c, BaseWSGIServer)]


def _stop_when_drained(channels: dict[int, Any], grace: float, working: Callable[[], bool]) -> None:
    deadline = time.monotonic() + grace
    # Closed, a listener refuses new connections at once instead of leaving them to wait in
    # its backlog for a process that will not accept them (with WORKERS, the socket lives on
    # in the processes still serving). A trigger's thunk runs in the loop, between two polls.
    from waitress import wasyncore

    for listener in _listeners(channels):
        listener.trigger.pull_trigger(
            lambda listener=listener: wasyncore.dispatcher.close(listener)
        )
    while (busy := in_flight(channels) + working()) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    if busy:
        log.warning("stopping with %d answer(s) unfinished after %.0f s", busy, grace)
    os.kill(os.getpid(), signal.SIGINT)
