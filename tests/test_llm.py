"""charts.llm against FakeGroq: a real HTTP server on 127.0.0.1 speaking Groq's wire format.

Every test goes over real sockets (never a mock of httpx, never the internet). Waits between
retries go to a recording ``sleep``, so the retry rules are checked without waiting them out.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from charts.llm import Completion, CompletionStream, GroqClient, SharedClient
from streaming.errors import LLMFailed, LLMTimeout, RilletError
from streaming.settings import Settings
from tests.fake_groq import (
    DONE_LINE,
    FakeGroq,
    Reply,
    chunk_line,
    completion_body,
    error_body,
)

ROOT = Path(__file__).resolve().parent.parent
KEY = "gsk_Zq9testKEYthatMustNeverLeak4711"
MODEL = "openai/gpt-oss-20b"
MESSAGES = [
    {"role": "system", "content": "You describe datasets."},
    {"role": "user", "content": "Describe flights.csv"},
]
EVENTS = {"content-type": "text/event-stream"}


@pytest.fixture
def fake() -> Iterator[FakeGroq]:
    with FakeGroq() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def groq(fake: FakeGroq, sleeps: list[float]) -> Iterator[GroqClient]:
    client = GroqClient(KEY, fake.base_url, MODEL, timeout=2.0, retries=2, sleep=sleeps.append)
    yield client
    client.close()


def fail(call: Callable[[], object]) -> RilletError:
    """The Rillet error a call raises."""
    with pytest.raises(RilletError) as info:
        call()
    return info.value


def streamed(client: GroqClient) -> list[str]:
    stream = client.stream(MESSAGES)
    try:
        return list(stream)
    finally:
        stream.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What is sent, what comes back


def test_complete_sends_the_chat_request_groq_expects(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(content="Flights are mostly on time."))
    answer = groq.complete(MESSAGES, max_tokens=300, temperature=0.5)
    assert answer == Completion("Flights are mostly on time.", MODEL, "stop")
    (request,) = fake.requests
    assert request.path == "/openai/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "model": MODEL,
        "messages": MESSAGES,
        "temperature": 0.5,
        "max_completion_tokens": 300,
    }


def test_json_mode_asks_for_a_json_object(fake: FakeGroq, groq: GroqClient) -> None:
    answer = groq.complete(MESSAGES, json_mode=True)
    assert orjson.loads(answer.content) == {"ok": True}
    assert fake.requests[0].body["response_format"] == {"type": "json_object"}


def test_the_responder_writes_answers_from_the_request(sleeps: list[float]) -> None:
    def echo(request: dict[str, Any]) -> str:
        return f"you sent {len(request['messages'])} messages"

    with FakeGroq(echo) as fake:
        client = GroqClient(KEY, fake.base_url, MODEL, sleep=sleeps.append)
        try:
            assert client.complete(MESSAGES).content == "you sent 2 messages"
        finally:
            client.close()


def test_completion_names_the_model_groq_answered_with(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(body=completion_body("hi", "llama-3.3-70b-versatile")))
    assert groq.complete(MESSAGES).model == "llama-3.3-70b-versatile"


def test_completion_falls_back_to_the_asked_model(fake: FakeGroq, groq: GroqClient) -> None:
    body = b'{"choices": [{"message": {"role": "assistant", "content": "hi"}}]}'
    fake.script(Reply(body=body))
    assert groq.complete(MESSAGES) == Completion("hi", MODEL, None)


def test_reasoning_is_not_part_of_the_content(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(content="42", reasoning=["Let me think."]))
    assert groq.complete(MESSAGES).content == "42"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Bad gateway</html>",
        b"[]",
        b'{"choices": []}',
        b'{"choices": [{"message": {"role": "assistant", "content": null}}]}',
        b'{"object": "chat.completion"}',
    ],
)
def test_a_malformed_200_fails_without_retry(fake: FakeGroq, groq: GroqClient, body: bytes) -> None:
    fake.script(Reply(body=body))
    error = fail(lambda: groq.complete(MESSAGES))
    assert isinstance(error, LLMFailed) and error.status == 502
    assert "malformed" in error.message
    assert len(fake.requests) == 1


# Retries


def test_429_waits_what_retry_after_asks_then_succeeds(
    fake: FakeGroq, groq: GroqClient, sleeps: list[float]
) -> None:
    limited = error_body(429, "Rate limit reached for model", "tokens", "rate_limit_exceeded")
    fake.script(Reply(429, body=limited, headers={"retry-after": "1"}), Reply(content="ok"))
    assert groq.complete(MESSAGES).content == "ok"
    assert sleeps == [1.0]
    assert len(fake.requests) == 2


def test_503_twice_then_success_backs_off_exponentially(
    fake: FakeGroq, groq: GroqClient, sleeps: list[float]
) -> None:
    fake.script(Reply(503), Reply(503), Reply(content="ok"))
    assert groq.complete(MESSAGES).content == "ok"
    assert len(fake.requests) == 3
    first, second = sleeps
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0


@pytest.mark.parametrize(
    ("headers", "low", "high"),
    [
        ({"retry-after-ms": "250"}, 0.25, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5, 1.5),
        ({"retry-after": "2.5"}, 2.5, 2.5),
        ({"retry-after": "0"}, 0.375, 0.5),  # not a wait: the backoff instead
        ({"retry-after": "soon"}, 0.375, 0.5),
        ({}, 0.375, 0.5),
    ],
)
def test_the_wait_before_a_retry(
    fake: FakeGroq,
    groq: GroqClient,
    sleeps: list[float],
    headers: dict[str, str],
    low: float,
    high: float,
) -> None:
    fake.script(Reply(429, headers=headers), Reply(content="ok"))
    groq.complete(MESSAGES)
    (waited,) = sleeps
    assert low <= waited <= high


def test_retry_after_as_an_http_date(fake: FakeGroq, groq: GroqClient, sleeps: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    fake.script(Reply(429, headers={"retry-after": when}), Reply(content="ok"))
    groq.complete(MESSAGES)
    (waited,) = sleeps
    assert 3 < waited <= 5


def test_backoff_is_capped_at_8_seconds(fake: FakeGroq, sleeps: list[float]) -> None:
    client = GroqClient(KEY, fake.base_url, MODEL, retries=6, sleep=sleeps.append)
    try:
        fake.script(*[Reply(500)] * 6, Reply(content="ok"))
        client.complete(MESSAGES)
    finally:
        client.close()
    for attempt, waited in enumerate(sleeps):
        full = min(0.5 * 2**attempt, 8.0)  # 0.5, 1, 2, 4, 8, 8
        assert 0.75 * full <= waited <= full


def test_persistent_500_fails_after_every_attempt_with_groqs_message(
    fake: FakeGroq, groq: GroqClient, sleeps: list[float]
) -> None:
    broken = error_body(500, "Internal Server Error: the model crashed", "internal_server_error")
    fake.script(*[Reply(500, body=broken)] * 3)
    error = fail(lambda: groq.complete(MESSAGES))
    assert isinstance(error, LLMFailed) and error.status == 502 and error.code == "llm_failed"
    assert "the model crashed" in error.message
    assert error.extra["upstream_status"] == 500
    assert len(fake.requests) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_statuses_that_clear_are_retried(fake: FakeGroq, groq: GroqClient, status: int) -> None:
    fake.script(Reply(status), Reply(content="ok"))
    assert groq.complete(MESSAGES).content == "ok"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_statuses_that_would_fail_again_are_not_retried(
    fake: FakeGroq, groq: GroqClient, status: int
) -> None:
    fake.script(Reply(status, body=error_body(status, f"refused with {status}")))
    error = fail(lambda: groq.complete(MESSAGES))
    assert isinstance(error, LLMFailed)
    assert error.message.startswith(f"Groq answered {status}")
    assert f"refused with {status}" in error.message
    assert error.extra["upstream_status"] == status
    assert len(fake.requests) == 1


def test_groqs_long_messages_are_shortened(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(400, body=error_body(400, "too long " * 200)))
    error = fail(lambda: groq.complete(MESSAGES))
    assert len(error.message) < 400


def test_x_should_retry_false_stops_retrying(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(503, headers={"x-should-retry": "false"}), Reply(content="ok"))
    assert fail(lambda: groq.complete(MESSAGES)).extra["upstream_status"] == 503
    assert len(fake.requests) == 1


def test_x_should_retry_true_retries_any_status(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(400, headers={"x-should-retry": "true"}), Reply(content="ok"))
    assert groq.complete(MESSAGES).content == "ok"
    assert len(fake.requests) == 2


def test_retry_after_over_60_seconds_fails_at_once(
    fake: FakeGroq, groq: GroqClient, sleeps: list[float]
) -> None:
    limited = error_body(429, "Rate limit reached: tokens per day", "tokens", "rate_limit_exceeded")
    fake.script(Reply(429, body=limited, headers={"retry-after": "120"}), Reply(content="ok"))
    error = fail(lambda: groq.complete(MESSAGES))
    assert isinstance(error, LLMFailed) and error.status == 502
    assert error.extra == {"upstream_status": 429, "retry_after": 120}
    assert "120 s" in error.message and "tokens per day" in error.message
    assert sleeps == [] and len(fake.requests) == 1


def test_a_timeout_is_retried_then_answers_504(sleeps: list[float]) -> None:
    with FakeGroq() as fake:
        fake.script(Reply(delay=3), Reply(delay=3))
        client = GroqClient(KEY, fake.base_url, MODEL, timeout=0.3, retries=1, sleep=sleeps.append)
        try:
            error = fail(lambda: client.complete(MESSAGES))
        finally:
            client.close()
    assert isinstance(error, LLMTimeout) and error.status == 504 and error.code == "llm_timeout"
    assert error.message == "Groq did not answer within 0.3 s (2 attempts)"
    assert len(fake.requests) == 2 and len(sleeps) == 1


def test_a_late_answer_within_the_timeout_is_fine(fake: FakeGroq, sleeps: list[float]) -> None:
    client = GroqClient(KEY, fake.base_url, MODEL, timeout=1.0, sleep=sleeps.append)
    try:
        fake.script(Reply(content="slow but fine", delay=0.2))
        assert client.complete(MESSAGES).content == "slow but fine"
    finally:
        client.close()


def test_a_refused_connection_is_retried_then_fails(sleeps: list[float]) -> None:
    port = closed_port()
    client = GroqClient(KEY, f"http://127.0.0.1:{port}/openai/v1", MODEL, sleep=sleeps.append)
    try:
        error = fail(lambda: client.complete(MESSAGES))
    finally:
        client.close()
    assert isinstance(error, LLMFailed) and error.status == 502
    assert error.message.startswith(f"could not reach Groq at 127.0.0.1:{port}: ")
    assert error.message.endswith("(3 attempts)")
    assert len(sleeps) == 2
    assert error.__cause__ is None and error.__suppress_context__  # no httpx request attached


def test_a_dropped_connection_is_retried(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(drop=True), Reply(content="ok"))
    assert groq.complete(MESSAGES).content == "ok"
    assert len(fake.requests) == 2


def test_a_connection_dropped_every_time_fails(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(*[Reply(drop=True)] * 3)
    error = fail(lambda: groq.complete(MESSAGES))
    assert isinstance(error, LLMFailed) and "could not reach Groq" in error.message
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("base_url", "said"),
    [
        ("api.groq.com/openai/v1", "missing an 'http://' or 'https://' protocol"),
        ("http://[::1/openai/v1", "GROQ_BASE_URL is not a usable URL"),
    ],
)
def test_an_unusable_base_url_fails_at_once(sleeps: list[float], base_url: str, said: str) -> None:
    client = GroqClient(KEY, base_url, MODEL, sleep=sleeps.append)
    try:
        error = fail(lambda: client.complete(MESSAGES))
    finally:
        client.close()
    assert isinstance(error, LLMFailed) and said in error.message
    assert sleeps == []


# The key stays secret


def test_the_key_never_appears_in_an_error(
    fake: FakeGroq, groq: GroqClient, caplog: pytest.LogCaptureFixture
) -> None:
    echoed = error_body(401, f"Invalid API Key {KEY}", code="invalid_api_key")
    fake.script(Reply(500, body=echoed), Reply(401, body=echoed))
    with caplog.at_level(logging.DEBUG):
        error = fail(lambda: groq.complete(MESSAGES))
    assert "Invalid API Key [redacted]" in error.message
    assert error.extra["upstream_status"] == 401
    for text in (str(error), repr(error), orjson.dumps(error.to_dict()).decode(), caplog.text):
        assert KEY not in text
    assert error.__cause__ is None


def test_the_key_never_appears_in_a_stream_error(fake: FakeGroq, groq: GroqClient) -> None:
    event = b"data: " + error_body(500, f"bad key {KEY}", "api_error") + b"\n\n"
    fake.script(Reply(body=event, headers=EVENTS))
    error = fail(lambda: streamed(groq))
    assert KEY not in str(error) and "[redacted]" in error.message


# Streaming


def test_stream_relays_the_content_deltas_in_order(fake: FakeGroq, groq: GroqClient) -> None:
    pieces = ["Flights ", "leave ", "mostly ", "on time."]
    fake.script(Reply(pieces=pieces, reasoning=["The user wants", " a summary."]))
    stream = groq.stream(MESSAGES, max_tokens=100)
    assert isinstance(stream, CompletionStream)
    assert list(stream) == pieces
    assert (stream.model, stream.finish_reason) == (MODEL, "stop")
    stream.close()
    stream.close()  # idempotent
    (request,) = fake.requests
    assert request.body["stream"] is True and "response_format" not in request.body
    assert request.body["max_completion_tokens"] == 100
    assert request.headers["accept"] == "text/event-stream"


def test_stream_joined_equals_the_content(fake: FakeGroq, groq: GroqClient) -> None:
    content = '{"insights": [{"title": "Delays peak in July"}]}'
    fake.script(Reply(content=content))
    deltas = streamed(groq)
    assert len(deltas) == 3 and "".join(deltas) == content


def test_stream_skips_empty_deltas_and_ends_at_done(fake: FakeGroq, groq: GroqClient) -> None:
    events = [
        b": keep-alive\r\n\r\n",
        chunk_line(MODEL, role="assistant", content=""),
        chunk_line(MODEL, reasoning="hmm"),
        chunk_line(MODEL, content="a"),
        b'data: {"object": "chat.completion.chunk", "choices": []}\n\n',
        chunk_line(MODEL, content="b", finish_reason="stop"),
        DONE_LINE,
        chunk_line(MODEL, content="after the end"),
    ]
    fake.script(Reply(body=b"".join(events), headers=EVENTS))
    assert streamed(groq) == ["a", "b"]


def test_stream_retries_before_the_first_delta(
    fake: FakeGroq, groq: GroqClient, sleeps: list[float]
) -> None:
    fake.script(Reply(429, headers={"retry-after": "2"}), Reply(503), Reply(pieces=["x", "y"]))
    stream = groq.stream(MESSAGES)
    try:
        assert len(fake.requests) == 3 and sleeps[0] == 2.0  # all before stream() returned
        assert list(stream) == ["x", "y"]
    finally:
        stream.close()


@pytest.mark.parametrize(("status", "attempts"), [(400, 1), (401, 1), (500, 3)])
def test_stream_error_status_raises_from_stream_itself(
    fake: FakeGroq, groq: GroqClient, status: int, attempts: int
) -> None:
    fake.script(*[Reply(status, body=error_body(status, "no stream for you"))] * 3)
    error = fail(lambda: groq.stream(MESSAGES))
    assert isinstance(error, LLMFailed) and "no stream for you" in error.message
    assert error.extra["upstream_status"] == status
    assert len(fake.requests) == attempts


def test_stream_timeout_before_the_answer_raises_from_stream_itself(sleeps: list[float]) -> None:
    with FakeGroq() as fake:
        fake.script(Reply(delay=3), Reply(delay=3))
        client = GroqClient(KEY, fake.base_url, MODEL, timeout=0.3, retries=1, sleep=sleeps.append)
        try:
            assert isinstance(fail(lambda: client.stream(MESSAGES)), LLMTimeout)
        finally:
            client.close()


def test_stream_answered_with_json_is_malformed(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(body=completion_body("not streamed", MODEL)))
    error = fail(lambda: groq.stream(MESSAGES))
    assert isinstance(error, LLMFailed) and "malformed" in error.message


def test_a_connection_dropped_mid_stream_raises_from_iteration(
    fake: FakeGroq, groq: GroqClient
) -> None:
    fake.script(Reply(pieces=["one ", "two "], cut=True))
    stream = groq.stream(MESSAGES)
    got: list[str] = []
    with pytest.raises(LLMFailed, match="lost mid-stream"):
        got.extend(stream)
    assert got == ["one ", "two "]
    assert len(fake.requests) == 1  # not retried: half an answer has gone out


def test_a_timeout_mid_stream_raises_from_iteration(sleeps: list[float]) -> None:
    with FakeGroq() as fake:
        fake.script(Reply(pieces=["late"], piece_delay=3))
        client = GroqClient(KEY, fake.base_url, MODEL, timeout=0.3, sleep=sleeps.append)
        try:
            stream = client.stream(MESSAGES)
            with pytest.raises(LLMTimeout, match="mid-stream") as info:
                list(stream)
        finally:
            client.close()
    assert info.value.status == 504


@pytest.mark.parametrize(
    ("events", "said"),
    [
        (
            b'data: {"error": {"message": "Service Unavailable", "type": "internal_server_error"}}'
            b"\n\n",
            "Groq failed mid-stream: Service Unavailable",
        ),
        (b"data: {not json\n\n", "malformed"),
        (b'data: {"choices": "none"}\n\n', "malformed"),
        (b"", "ended before [DONE]"),  # a clean end of body, but no [DONE]
    ],
)
def test_a_bad_event_raises_from_iteration(
    fake: FakeGroq, groq: GroqClient, events: bytes, said: str
) -> None:
    body = chunk_line(MODEL, content="partial ") + events
    fake.script(Reply(body=body, headers=EVENTS))
    stream = groq.stream(MESSAGES)
    got: list[str] = []
    with pytest.raises(LLMFailed) as info:
        got.extend(stream)
    assert got == ["partial "] and said in info.value.message


def test_closing_a_stream_early_leaves_the_client_usable(fake: FakeGroq, groq: GroqClient) -> None:
    fake.script(Reply(pieces=["a", "b", "c"]), Reply(content="next"))
    stream = groq.stream(MESSAGES)
    deltas = iter(stream)
    assert next(deltas) == "a"
    stream.close()
    assert groq.complete(MESSAGES).content == "next"


def test_a_stream_reads_only_once(fake: FakeGroq, groq: GroqClient) -> None:
    stream = groq.stream(MESSAGES)
    assert "".join(stream) == '{"ok": true}'
    with pytest.raises(RuntimeError):
        list(stream)


# FakeGroq answers like Groq


def test_fake_groq_answers_404_to_another_path_and_401_without_a_key(fake: FakeGroq) -> None:
    with httpx.Client() as http:
        wrong = http.post(fake.base_url + "/completions", json={}, headers={"authorization": "x"})
        keyless = http.post(fake.base_url + "/chat/completions", json={"model": MODEL})
    assert wrong.status_code == 404 and wrong.json()["error"]["code"] == "unknown_url"
    assert keyless.status_code == 401 and keyless.json()["error"]["message"] == "Invalid API Key"


# One client per process


def groq_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "groq_api_key": KEY,
        "groq_base_url": "http://127.0.0.1:9/openai/v1",
        "groq_model": MODEL,
        **overrides,
    }
    return Settings.from_env({}, data_dir=tmp_path, **values)


def test_a_shared_client_is_none_without_a_key(tmp_path: Path) -> None:
    assert SharedClient(groq_settings(tmp_path, groq_api_key="")).get() is None


def test_a_shared_client_is_built_once_with_the_settings(tmp_path: Path) -> None:
    shared = SharedClient(groq_settings(tmp_path, groq_timeout=5.0, groq_retries=1))
    first = shared.get()
    assert first is not None and first.model == MODEL
    assert (first.timeout, first.retries) == (5.0, 1)
    assert shared.get() is first
    shared.close()
    again = shared.get()  # after close, a new pool
    assert again is not None and again is not first
    shared.close()


def test_a_shared_client_is_one_client_across_threads(tmp_path: Path) -> None:
    shared = SharedClient(groq_settings(tmp_path))
    got: list[GroqClient | None] = []
    threads = [threading.Thread(target=lambda: got.append(shared.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 8 and len({id(client) for client in got}) == 1
    shared.close()


def test_a_shared_client_talks_to_the_configured_groq(tmp_path: Path, fake: FakeGroq) -> None:
    shared = SharedClient(groq_settings(tmp_path, groq_base_url=fake.base_url))
    client = shared.get()
    assert client is not None and client.complete(MESSAGES).content == '{"ok": true}'
    shared.close()  # no pooled connection left behind


def test_importing_charts_llm_does_not_load_httpx() -> None:
    code = "import sys, charts.llm; print('httpx' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
