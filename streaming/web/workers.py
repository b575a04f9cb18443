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
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence

from streaming.errors import SettingError
from streaming.settings import Settings
from streaming.web.share import SHARE_FD, SHARE_TOKEN

log = logging.getLogger("rillet.workers")
LISTEN_FD = "RILLET_LISTEN_FD"  # tells a child which inherited descriptor to serve
PARENT_PID = "RILLET_PARENT_PID"  # and which process it serves for
CHECK_SECONDS = 0.5
RESTART_PAUSE = 1.0  # a child that dies at once is not restarted in a tight loop
QUICK_DEATH = 10.0  # seconds: a child that dies sooner than this after its start died "at once"
GIVE_UP = 5  # that many in a row, and the server stops (exit 1) rather than hang its clients


def listening_socket(settings: Settings) -> socket.socket:
    """The socket every child serves: bound and listening before any child starts (the first
    address HOST resolves to, as waitress takes it); SettingError if it cannot be had."""
    try:
        found = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = found[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise SettingError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def inherited_socket() -> socket.socket | None:
    """In a child: the listening socket its parent passed down, or None."""
    fd = os.environ.get(LISTEN_FD)
    return socket.socket(fileno=int(fd)) if fd else None


def exit_with_parent() -> None:
    """In a child: exit when the parent is gone (killed with SIGKILL, it cannot stop us), so
    no orphan keeps serving the socket. The parent's pid comes from the parent itself: one
    that died while this child was starting is already gone when getppid() is first asked."""
    parent = int(os.environ.get(PARENT_PID) or os.getppid())

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(CHECK_SECONDS)
        log.warning("the parent process is gone; this serving process stops")
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Supervisor:
    """Starts the children, starts one again when it dies, stops them all on SIGTERM/SIGINT."""

    def __init__(
        self,
        command: Sequence[str],
        sock: socket.socket,
        count: int,
        grace: float = 10.0,
        shared: socket.socket | None = None,
    ) -> None:
        self.command = list(command)
        self.grace = grace  # how long a child may drain its answers in flight
        self.sock = sock
        self.shared = shared  # the socket the children share questions on (web.share)
        self.token = secrets.token_hex(16)  # which every question between them carries
        self.count = count
        self.children: list[subprocess.Popen[bytes]] = []
        self.started: list[float] = [0.0] * count  # when each slot's child was started
        self.quick_deaths = 0  # children in a row that died soon after their start
        self.failed = False  # gave up: the caller exits non-zero
        self.stopping = threading.Event()

    def run(self) -> None:
        """Serve until a signal says stop; blocks the calling (main) thread."""
        signals = (signal.SIGTERM, signal.SIGINT)
        before = [signal.signal(n, lambda *_: self.stopping.set()) for n in signals]
        self.children = [self._start(i) for i in range(self.count)]
        try:
            while not self.stopping.wait(CHECK_SECONDS):
                self._replace_dead()
        finally:
            self.stop()
            for signum, handler in zip(signals, before):
                signal.signal(signum, handler)

    def _start(self, slot: int) -> subprocess.Popen[bytes]:
        self.started[slot] = time.monotonic()
        fd = self.sock.fileno()
        env = dict(
            os.environ,
            **{LISTEN_FD: str(fd), PARENT_PID: str(os.getpid()), "SYNC_WORKER": "off"},
        )
        fds = [fd]
        if self.shared is not None:
            env[SHARE_FD] = str(self.shared.fileno())
            env[SHARE_TOKEN] = self.token
            fds.append(self.shared.fileno())
        return subprocess.Popen(self.command, env=env, pass_fds=fds)

    def _replace_dead(self) -> None:
        for i, child in enumerate(self.children):
            code = child.poll()
            if code is None:
                continue
            quick = time.monotonic() - self.started[i] < QUICK_DEATH
            self.quick_deaths = self.quick_deaths + 1 if quick else 0
            if self.quick_deaths >= GIVE_UP:  # every start dies at once: stop, do not hang
                log.error("serving processes die as they start (%d in a row); stopping", GIVE_UP)
                self.failed = True
                self.stopping.set()
                return
            log.error("serving process %d exited with code %s; starting another", child.pid, code)
            pause = RESTART_PAUSE * 2 ** min(self.quick_deaths, 5)  # 1 s, 2 s, 4 s ... 32 s
            if self.stopping.wait(pause):
                return
            self.children[i] = self._start(i)

    def stop(self) -> None:
        self.sock.close()  # no new connection waits in a backlog nobody will serve
        if self.shared is not None:
            self.shared.close()
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=self.grace + 5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
