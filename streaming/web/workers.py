"""Serving on every core: WORKERS processes answer requests on one listening socket.

A Python process runs one thread of Python at a time, so requests that compute (a scan, a
group-by, a chart) queue behind each other however many threads waitress has. With WORKERS
above 1, ``python server.py`` binds the listening socket itself and starts that many child
processes (``python server.py worker``) that inherit it and each serve it with waitress; the
kernel hands each new connection to one of them. The parent answers no request: it runs the
sync worker (so exactly one process claims jobs, as with WORKERS=1) and starts a child again
when one dies, so a child killed mid-query costs only that query::

    parent: bind 127.0.0.1:5000 ─┬─ child 1: waitress, THREADS threads ─┐
            sync worker thread   └─ child 2: waitress, THREADS threads ─┴─ accept() on one socket

What is per process: each child enforces its share of RATE_LIMIT and LLM_MAX (the limit
divided by WORKERS, so together they allow what the setting says; a key whose requests all
land on one child may be limited a little early), STREAMS_MAX of its own threads, and answers
/health with its own `pid` and `rss_bytes`. Keys come from the keys file, which each child
reads again when it changes. An upload's sync starts within the worker's poll (0.5 s), since
the child that took the upload cannot wake the parent's thread.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence

from streaming.settings import Settings

log = logging.getLogger("rillet.workers")
LISTEN_FD = "RILLET_LISTEN_FD"  # tells a child which inherited descriptor to serve
CHECK_SECONDS = 0.5
RESTART_PAUSE = 1.0  # a child that dies at once is not restarted in a tight loop


def listening_socket(settings: Settings) -> socket.socket:
    """The socket every child serves: bound and listening before any child starts."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def inherited_socket() -> socket.socket | None:
    """In a child: the listening socket its parent passed down, or None."""
    fd = os.environ.get(LISTEN_FD)
    return socket.socket(fileno=int(fd)) if fd else None


def exit_with_parent() -> None:
    """In a child: exit when the parent is gone (killed with SIGKILL, it cannot stop us), so
    no orphan keeps serving the socket."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(CHECK_SECONDS)
        log.warning("the parent process is gone; this serving process stops")
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Supervisor:
    """Starts the children, starts one again when it dies, stops them all on SIGTERM/SIGINT."""

    def __init__(self, command: Sequence[str], sock: socket.socket, count: int) -> None:
        self.command = list(command)
        self.sock = sock
        self.count = count
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        """Serve until a signal says stop; blocks the calling (main) thread."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        self.children = [self._start() for _ in range(self.count)]
        try:
            while not self.stopping.wait(CHECK_SECONDS):
                self._replace_dead()
        finally:
            self.stop()

    def _start(self) -> subprocess.Popen[bytes]:
        fd = self.sock.fileno()
        env = dict(os.environ, **{LISTEN_FD: str(fd), "SYNC_WORKER": "off"})
        return subprocess.Popen(self.command, env=env, pass_fds=(fd,))

    def _replace_dead(self) -> None:
        for i, child in enumerate(self.children):
            code = child.poll()
            if code is None:
                continue
            log.error("serving process %d exited with code %s; starting another", child.pid, code)
            if self.stopping.wait(RESTART_PAUSE):
                return
            self.children[i] = self._start()

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
