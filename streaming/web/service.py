"""The service's own routes: liveness and counts, and the API's document."""

from __future__ import annotations

import os
import sys
import time

from streaming.memory import rss_bytes
from streaming.web.exchange import Answer, Call, json_answer, raw_json
from streaming.web.openapi import Doc, json_content, ref
from streaming.web.state import VERSION, Rillet

HEALTH = Doc("Liveness and counts", {"200": json_content(ref("Health"), "OK")})


def health(rillet: Rillet, call: Call) -> Answer:
    return json_answer(
        {
            "status": "ok",
            "version": VERSION,
            "datasets": rillet.store.count_ready(),
            "jobs": rillet.jobs.counts(),
            "rss_bytes": rss_bytes(),  # of the process that answered (`pid`, one of `workers`)
            "pid": os.getpid(),
            "workers": rillet.settings.workers,
            "uptime_seconds": round(time.monotonic() - rillet.started, 1),
            "open_streams": rillet.streams.taken,
            "llm_calls": rillet.llm_calls.taken,
            # Questions this process handed to another, and answered for another (web.share).
            "shared": None
            if rillet.sharing is None
            else {"asked": rillet.sharing.asked, "answered": rillet.sharing.answered},
            # httpx is imported only by the LLM routes: the memory they cost shows here.
            "llm_client_loaded": "httpx" in sys.modules,
        }
    )


OPENAPI = Doc("This document", {"200": json_content({"type": "object"}, "OpenAPI 3.1")})


def openapi(rillet: Rillet, call: Call) -> Answer:
    return raw_json(rillet.openapi)
