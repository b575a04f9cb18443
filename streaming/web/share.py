"""Sharing the computing among the serving processes: a question asked of a busy process is
answered by the first process free to compute it.

WORKERS processes accept connections on one socket (``streaming.web.workers``), so where a
connection lands is the kernel's choice, made when it opens. A dashboard opening its six tiles
at once on keep-alive connections may have five of them on one process: they share its one
core while the other process idles (measured on 1M rows: the six at once in 490 to 600 ms,
by where the connections landed).

So the processes also share a second socket, a Unix socket the parent listens on (Linux's
abstract namespace: no file to leave behind), whose connections carry questions. A process
already computing when a question comes hands it to the socket instead of computing it in
another thread; each process's ``helper`` thread accepts from it only while its process
computes nothing, so a handed question goes to whichever process is free first (the asker's
own included), and each process computes one question at a time::

    request ─ process A, busy ─ ask ──> shared socket ──> helper of B (or of A), once idle
                  <─ status, headers, body ─────────────────┘

A question is its route's name, path arguments and parameters: the helper runs the route as
the asker would have (``ROUTES[name](rillet, call)``), and the asker relays the status,
headers and body. The asker has checked the key, the rate limit, the parameters (400) and
the client's ETag (304) before handing anything over, and names the version it opened, so
both read the same data. Only routes whose answer is a body of bounded size are handed over
(pages, statistics, group-bys, charts; never an export's stream).

When no process takes the question within HANDOFF_SECONDS (all are busy with long
questions), the asker computes it itself, as without sharing; so it does when the helper
fails or dies mid-answer, answers an error, or the question cannot be sent. A helper answers
only the server's own processes: the peer must run as its user (``SO_PEERCRED``) and the
question must carry the token the parent gave its children (the socket's name is visible to
every process, and a question is answered without a key). Where sharing cannot work (not
Linux) nothing is shared. WORKERS=1 shares nothing: there is no other process.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import select
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from streaming.errors import RilletError
from streaming.filter import pairs
from streaming.web.exchange import Answer, Call, Streamed, error_answer

log = logging.getLogger("rillet.share")
SHARE_FD = "RILLET_SHARE_FD"  # tells a child which inherited descriptor is the shared socket
SHARE_TOKEN = "RILLET_SHARE_TOKEN"  # and the token its siblings' questions carry
HANDOFF_SECONDS = 1.0  # how long a question waits for a free process before its asker computes
POLL_SECONDS = 0.5  # how often an idle helper looks again whether its process is idle
_SIZE = struct.Struct("<I")
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_ACK, _GO = b"a", b"g"
JOB_BYTES = 1 << 20  # a question is a route and a query string (waitress caps those at 256 KiB)

Route = Callable[[Any, Call], Answer]
Compute = Callable[[], Answer]


def shared_socket() -> socket.socket | None:
    """In the parent: the listening socket the children share questions on, or None where
    sharing is not possible (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("")  # an address the kernel picks in the abstract namespace
    sock.listen(256)
    return sock


def inherited_shared_socket() -> tuple[socket.socket, str] | None:
    """In a child: the shared socket its parent passed down and the token its questions
    carry, or None."""
    fd, token = os.environ.get(SHARE_FD), os.environ.get(SHARE_TOKEN)
    return (socket.socket(fileno=int(fd)), token) if fd and token else None


class Sharing:
    """One process's side: its questions handed over, and its helper answering others'.

    ``answer(job)`` runs a question handed over (the app's routes); a test may give its own.
    """

    def __init__(
        self, sock: socket.socket, answer: Callable[[dict[str, Any]], Answer], token: str
    ) -> None:
        self.sock = sock
        self.token = token  # the parent's, in every question: only the server's own are answered
        self.address = sock.getsockname()
        self.answer = answer
        self.busy = 0  # questions this process is computing
        self.answering = False  # the helper is answering a sibling's question
        self.changed = threading.Condition()
        self.helping = threading.local()  # set in the helper's thread: it never hands over
        self.asked = self.answered = 0  # questions handed over, and answered for others
        self.stopped = False
        self.helper: threading.Thread | None = None

    def start(self) -> None:
        self.sock.setblocking(False)
        self.helper = threading.Thread(target=self._help, name="share-helper", daemon=True)
        self.helper.start()

    def refuse(self) -> None:
        """Take no more questions, from now (a flag: safe in a signal handler); the question
        the helper answers, if one, is finished (``answering``)."""
        self.stopped = True

    def stop(self) -> None:
        """Take no more questions: the helper ends (after the question it answers, if one)
        and this side's descriptor of the socket is closed."""
        self.stopped = True
        with self.changed:
            self.changed.notify_all()
        if self.helper is not None:
            self.helper.join()
        self.sock.close()

    def run(self, route: str | None, call: Call, version: int, compute: Compute) -> Answer:
        """The answer to a question that computes: ``compute()`` here when this process is
        idle (claimed under the lock, so that of several requests at once one computes and
        the rest are handed over); else a free process's answer to the question ``route``
        names; else, when none takes it in time or the one that took it failed or answered
        an error (raised here then, as without sharing), ``compute()`` here after all."""
        with self.changed:
            idle = self.busy == 0
            self.busy += 1
        try:
            if idle:
                return compute()
        finally:
            self._release()
        if route is not None and not getattr(self.helping, "on", False) and not self.stopped:
            relayed = self._ask({**job_of(route, call, version), "token": self.token})
            # An error is computed again here and raised as without sharing (relayed, it
            # would carry the ETag of a good answer): errors after the parameters are rare.
            if relayed is not None and relayed.status < 300:
                return relayed
        with self.computing():
            return compute()

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        """Hold the process busy while a question is computed here."""
        with self.changed:
            self.busy += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self.changed:
            self.busy -= 1
            if not self.busy:
                self.changed.notify_all()

    def _ask(self, job: dict[str, Any]) -> Answer | None:
        """A free process's answer, or None (none took it in time, it failed or went away)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(HANDOFF_SECONDS)
                conn.connect(self.address)
                _send(conn, orjson.dumps(job))
                if conn.recv(1) != _ACK:
                    return None
                conn.settimeout(None)  # taken: its answer takes as long as it takes
                conn.sendall(_GO)
                head = orjson.loads(_receive(conn))
                if not head.get("status"):
                    return None  # the helper could not answer: compute it here
                body = _receive(conn)
        except (OSError, ValueError):  # no answer in time, a helper gone, a torn frame
            return None
        with self.changed:
            self.asked += 1
        return Answer(body, head["status"], head["headers"])

    def _help(self) -> None:
        """The helper: take a question whenever this process is idle."""
        self.helping.on = True
        # poll, not select: a process serving many connections holds descriptors past 1024
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        while not self.stopped:
            with self.changed:
                self.changed.wait_for(lambda: self.busy == 0 or self.stopped)
            try:
                ready = poller.poll(POLL_SECONDS * 1000)
            except (OSError, ValueError):  # the socket closed under it: only when stopping
                if not self.stopped:
                    log.error("the shared socket failed\n%s", traceback.format_exc())
                return
            with self.changed:
                if not ready or self.busy or self.stopped:
                    continue  # nothing, or a request of its own came first, or draining
                self.busy += 1
                self.answering = True
            try:
                self._take()
            except Exception:  # a question must never stop the helper
                log.error("a shared question failed\n%s", traceback.format_exc())
            finally:
                with self.changed:
                    self.answering = False
                self._release()

    def _take(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another process took it
        with conn:
            try:
                self._exchange(conn)
            except (OSError, ValueError, struct.error):  # the asker gave up or went away
                return

    def _exchange(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(HANDOFF_SECONDS)
        if not _same_user(conn):
            return
        job = orjson.loads(_receive(conn, JOB_BYTES))
        if not hmac.compare_digest(str(job.get("token", "")), self.token):
            return  # not one of the server's own processes: it has no key to show
        conn.sendall(_ACK)
        if conn.recv(1) != _GO:
            return  # the asker stopped waiting and computes it itself
        conn.settimeout(None)
        try:
            answer = self.answer(job)
            body = _whole(answer.body)
        except Exception:
            log.error("a shared question failed\n%s", traceback.format_exc())
            _send(conn, orjson.dumps({"status": 0}))
            return
        with self.changed:
            self.answered += 1  # counted before the asker can read the last byte
        _send(conn, orjson.dumps({"status": answer.status, "headers": answer.headers}))
        _send(conn, body)


def job_of(route: str, call: Call, version: int) -> dict[str, Any]:
    """A question as it crosses the socket: its route, path arguments, parameters (repeated
    filters included) and the version the asker opened."""
    return {
        "route": route,
        "args": dict(call.args),
        "path": call.path,
        "query": call.query_string,
        "params": list(pairs(call.params)),
        "version": version,
    }


def route_answer(rillet: Any, routes: Mapping[str, Route]) -> Callable[[dict[str, Any]], Answer]:
    """How a helper answers a question: the named route, run as the asker would have run it."""

    def answer(job: dict[str, Any]) -> Answer:
        pairs = [(name, value) for name, value in job["params"] if name != "version"]
        values = Params([*pairs, ("version", str(job["version"]))])  # the version it opened
        call = Call("GET", job["path"], job["query"], values, job["args"])
        try:
            return routes[job["route"]](rillet, call)
        except RilletError as exc:  # as the app answers it (the data may have changed since)
            return error_answer(exc)

    return answer


class Params(Mapping[str, str]):
    """A question's parameters as the app's (bottle's FormsDict) hold them: a name's last
    value, and every pair by ``allitems``, repeated filters included."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.last = dict(pairs)

    def __getitem__(self, name: str) -> str:
        return self.last[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.last)

    def __len__(self) -> int:
        return len(self.last)

    def allitems(self) -> list[tuple[str, str]]:
        return list(self.pairs)


def _whole(body: Any) -> bytes:
    """An answer's body as bytes (a page's chunks joined; never a stream's)."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, Streamed):
        raise ValueError("a streamed answer is not shared")
    return b"".join(body)


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer runs as this process's user (``SO_PEERCRED``): a first cut before
    the question's token is read."""
    try:
        _, uid, _ = _CREDENTIALS.unpack(
            conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
        )
    except (OSError, AttributeError):
        return False
    return uid == os.getuid()


def _send(conn: socket.socket, data: bytes) -> None:
    conn.sendall(_SIZE.pack(len(data)) + data)


def _receive(conn: socket.socket, limit: int | None = None) -> bytes:
    (size,) = _SIZE.unpack(_exactly(conn, _SIZE.size))
    if limit is not None and size > limit:
        raise ValueError(f"a frame of {size} bytes, over {limit}")
    return _exactly(conn, size)


def _exactly(conn: socket.socket, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = conn.recv(min(left, 1 << 20))
        if not part:
            raise ConnectionResetError("the other side closed mid-frame")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)
