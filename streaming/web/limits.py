"""Slots: a cap on how many of one kind of work run at once, answering 429 past it.

Some work holds a waitress thread for long: a stream to a client that may stop reading, a call
to the LLM that may take its whole timeout. Capping each below THREADS keeps threads free for
every other request, whatever those clients or the LLM do::

    streams = Slots(4, "responses are streaming", "STREAMS_MAX", "too_many_streams")
    release = streams.take()     # RateLimited (429, Retry-After) when 4 are taken
    try:
        ...
    finally:
        release()                # idempotent: a second call frees nothing
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from streaming.errors import RateLimited

RETRY_AFTER = 5  # seconds: such work usually ends within a few


class Slots:
    """At most ``limit`` holders at once; ``taken`` is how many hold one now."""

    def __init__(self, limit: int, doing: str, setting: str, code: str) -> None:
        self.limit = limit
        self.taken = 0
        self._doing = doing
        self._setting = setting
        self._code = code
        self._lock = threading.Lock()

    def take(self) -> Callable[[], None]:
        """Hold a slot; answer the function that gives it back."""
        with self._lock:
            if self.taken >= self.limit:
                raise RateLimited(
                    f"{self.taken} {self._doing}, the most at once ({self._setting}); "
                    "try again shortly",
                    retry_after=RETRY_AFTER,
                    code=self._code,
                )
            self.taken += 1
        given_back = False

        def release() -> None:
            nonlocal given_back
            with self._lock:
                if not given_back:
                    given_back = True
                    self.taken -= 1

        return release
