"""A local HTTP server that speaks Groq's chat-completions wire format, for tests.

It is a real server on 127.0.0.1, so the client under test goes through real sockets, real
timeouts and real dropped connections, never a mock of httpx::

    with FakeGroq() as fake:
        fake.script(Reply(status=429, headers={"retry-after": "1"}), Reply(content="hi"))
        client = GroqClient("gsk_test", fake.base_url, "openai/gpt-oss-20b")
        ...
        assert fake.requests[0].headers["authorization"] == "Bearer gsk_test"

Scripted replies are used first, in order; then ``responder(request_json)`` writes the content
of a normal answer. Like Groq it answers 404 to another path and 401 without a Bearer key, and
a request with ``"stream": true`` gets server-sent events: a role chunk, optional reasoning
chunks, one chunk per piece of content, a closing chunk with ``finish_reason`` and the usage,
then ``data: [DONE]``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

PATH = "/openai/v1/chat/completions"


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    content: str | None = None  # a normal completion (streamed in pieces if stream=true)
    body: bytes | None = None  # raw body instead (malformed JSON, an error, raw events)
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "0"}
    delay: float = 0.0  # seconds before answering (for timeouts)
    pieces: list[str] | None = None  # streaming: the content deltas, one chunk each
    piece_delay: float = 0.0  # streaming: seconds before each piece
    gate: threading.Event | None = None  # streaming: the last piece waits until this is set
    drop: bool = False  # close the connection without answering
    reasoning: list[str] | None = None  # reasoning deltas sent before the content
    cut: bool = False  # streaming: after the pieces, close without the last chunk or [DONE]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # the parsed JSON, or None when the body is not JSON
    raw: bytes


def completion_body(content: str, model: str, reasoning: str | None = None) -> bytes:
    """A ``chat.completion`` as Groq sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning"] = reasoning
    return orjson.dumps(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            ],
            "usage": _usage(content),
            "system_fingerprint": "fp_fake",
            "x_groq": {"id": "req_fake"},
        }
    )


def error_body(
    status: int, message: str, type: str = "invalid_request_error", code: str | None = None
) -> bytes:
    """Groq's error body: ``{"error": {"message", "type", "code"?}}``."""
    error: dict[str, Any] = {"message": message, "type": type}
    if code is not None:
        error["code"] = code
    return orjson.dumps({"error": error})


def chunk_line(
    model: str,
    *,
    content: str | None = None,
    reasoning: str | None = None,
    role: str | None = None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
) -> bytes:
    """One server-sent event carrying a ``chat.completion.chunk``."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if reasoning is not None:
        delta["reasoning"] = reasoning
    if content is not None:
        delta["content"] = content
    chunk: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["x_groq"] = {"id": "req_fake", "usage": usage}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


DONE_LINE = b"data: [DONE]\n\n"


def split_pieces(content: str, count: int = 3) -> list[str]:
    """The content in about ``count`` pieces (one for short content)."""
    size = max(1, -(-len(content) // count))
    return [content[i : i + size] for i in range(0, len(content), size)] or [""]


def _usage(content: str) -> dict[str, Any]:
    completion_tokens = max(1, len(content) // 4)
    return {
        "queue_time": 0.0123,
        "prompt_tokens": 42,
        "prompt_time": 0.0021,
        "completion_tokens": completion_tokens,
        "completion_time": 0.05,
        "total_tokens": 42 + completion_tokens,
        "total_time": 0.0521,
    }


class FakeGroq:
    """A Groq look-alike on a free port of 127.0.0.1; use it as a context manager."""

    def __init__(self, responder: Callable[[dict[str, Any]], str] | None = None) -> None:
        self.responder = responder or (lambda request: '{"ok": true}')
        self.requests: list[Recorded] = []
        self._replies: list[Reply] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/openai/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies to use first, in order."""
        with self._lock:
            self._replies.extend(replies)

    def __enter__(self) -> FakeGroq:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, end every open connection, and wait for the handler threads."""
        self._stopping.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.end_connections()
        self._server.server_close()  # joins the handler threads (daemon_threads is off)

    def _record(self, recorded: Recorded) -> Reply | None:
        with self._lock:
            self.requests.append(recorded)
            return self._replies.pop(0) if self._replies else None

    def _pause(self, seconds: float) -> bool:
        """Wait; False when the server is stopping meanwhile (then answer nothing)."""
        return seconds <= 0 or not self._stopping.wait(seconds)


class _Server(ThreadingHTTPServer):
    # Handler threads are joined by server_close(), so none outlives its test; end_connections()
    # first wakes those blocked reading the next request on a kept-alive connection.
    daemon_threads = False

    def __init__(self, fake: FakeGroq) -> None:
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    def end_connections(self) -> None:
        with self._open_lock:
            open_sockets = list(self._open)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streams, as Groq
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet tests

    def do_POST(self) -> None:
        try:
            self._answer()
        except OSError:
            # The client gave up (a timeout) or stop() ended the connection: nobody to answer.
            self.close_connection = True

    def _answer(self) -> None:
        fake = self.server.fake
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = fake._record(Recorded(self.path, headers, body, raw))
        if self.path != PATH:
            msg = f"Unknown request URL: POST {self.path}. Please check the URL for typos."
            return self._send(404, error_body(404, msg, code="unknown_url"))
        if not headers.get("authorization", "").startswith("Bearer "):
            msg = "Invalid API Key"
            return self._send(401, error_body(401, msg, code="invalid_api_key"))
        reply = reply or Reply(content=fake.responder(body))
        if not fake._pause(reply.delay):
            self.close_connection = True
            return None
        if reply.drop:
            self.close_connection = True  # socketserver closes the socket, unanswered
            return None
        model = body.get("model", "") if isinstance(body, dict) else ""
        if reply.body is not None or reply.status != 200:
            return self._send(reply.status, reply.body or b"", reply.headers)
        content = reply.content or ""
        if isinstance(body, dict) and body.get("stream"):
            return self._stream(reply, model, content)
        reasoning = "".join(reply.reasoning) if reply.reasoning else None
        return self._send(200, completion_body(content, model, reasoning), reply.headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        headers = {"content-type": "application/json", **(headers or {})}
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, reply: Reply, model: str, content: str) -> None:
        """Server-sent events in HTTP/1.1 chunks, each flushed as it is written."""
        self.send_response(200)
        for name, value in {"content-type": "text/event-stream", **reply.headers}.items():
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self._chunk(chunk_line(model, role="assistant", content=""))
        for thought in reply.reasoning or []:
            self._chunk(chunk_line(model, reasoning=thought))
        pieces = reply.pieces if reply.pieces is not None else split_pieces(content)
        for number, piece in enumerate(pieces, 1):
            if not self.server.fake._pause(reply.piece_delay):
                self.close_connection = True
                return
            if reply.gate is not None and number == len(pieces):
                reply.gate.wait(10)
            self._chunk(chunk_line(model, content=piece))
        if reply.cut:
            self.close_connection = True  # no closing chunk, no [DONE], no end of body
            return
        self._chunk(chunk_line(model, finish_reason="stop", usage=_usage(content)))
        self._chunk(DONE_LINE)
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()
