"""The application's state: what every handler is given besides its request's values."""

from __future__ import annotations

import time
from collections.abc import Callable

from charts.insights import AnswerCache
from charts.llm import SharedClient
from streaming.jobs import Jobs
from streaming.schedule import Schedules
from streaming.settings import Settings
from streaming.store import Store
from streaming.web.auth import KeyRing, RateLimiter
from streaming.web.limits import Slots
from streaming.web.share import Sharing

VERSION = "0.1.0"


class Rillet:
    """Settings, the data directory, keys and limits, the LLM client, and the worker to wake."""

    def __init__(self, settings: Settings, wake: Callable[[], None] = lambda: None) -> None:
        self.settings = settings
        self.store = Store(settings.data_dir)
        self.jobs = Jobs(self.store)
        self.schedules = Schedules(settings.data_dir)  # sources' schedules, for METADATA
        self.keys = KeyRing(settings.data_dir / "keys.json", settings.api_keys)
        # Shared out among the WORKERS processes that answer requests (streaming.web.workers):
        # each enforces its share, so together they allow what the settings say.
        self.limiter = RateLimiter(_share(settings.rate_limit, settings.workers))
        self.insights_cache = AnswerCache(settings.data_dir / "cache" / "insights")
        self.llm = SharedClient(settings)  # built when an LLM route first runs
        self.wake = wake
        self.started = time.monotonic()
        self.openapi = b"{}"  # the document of the routes served, set by the app factory
        # Work that holds a thread for long, each capped below THREADS (streaming.web.limits).
        self.streams = Slots(
            settings.streams_max, "responses are streaming", "STREAMS_MAX", "too_many_streams"
        )
        # Questions handed among the serving processes (streaming.web.share); None in one.
        self.sharing: Sharing | None = None
        self.llm_calls = Slots(
            max(1, settings.llm_max // settings.workers),
            "LLM calls are running",
            "LLM_MAX",
            "too_many_llm_calls",
        )

    def close(self) -> None:
        """Release what the app holds open between requests (the LLM's connections)."""
        self.llm.close()


def _share(total: int, workers: int) -> int:
    """One process's share of a per-minute limit (0: no limit stays no limit)."""
    return -(-total // workers) if total else 0
