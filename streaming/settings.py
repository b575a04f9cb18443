"""Every setting, declared once: a typed field of ``Settings`` with its default and a line of help.

Settings come from the environment (``Settings.from_env``). README lists each one (a test keeps
them in step), ``python server.py settings`` prints them with their current values, and mypy
sees each one's type, so a misspelt setting is an error before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from streaming.errors import SettingError


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected on/off, got {text!r}")


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"expected a whole number of at least 0, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _auto_flag(text: str) -> bool | None:
    """``auto`` (None: let the code decide), or on/off."""
    return None if text.strip().lower() == "auto" else _flag(text)


def _workers(text: str) -> int:
    """``auto`` (the number of cores), or a whole number of at least 1."""
    if text.strip().lower() == "auto":
        return os.cpu_count() or 1
    return _positive_int(text)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"expected a number above 0, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise ValueError(f"expected a number of at least 0, got {text!r}")
    return value


def _date_order(text: str) -> str:
    value = text.strip().lower()
    if value not in ("mdy", "dmy"):
        raise ValueError(f"expected mdy or dmy, got {text!r}")
    return value


def _setting(
    default: str, help: str, parse: Callable[[str], Any] = str, secret: bool = False
) -> Any:
    """A field of Settings: its environment default as text, its help, how to read it."""
    meta = {"default": default, "help": help, "parse": parse, "secret": secret}
    return field(default=parse(default), metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Parsed settings; each field is read from the environment variable of its upper-case name
    (``max_upload_mb`` from MAX_UPLOAD_MB)."""

    host: str = _setting("127.0.0.1", "Address the server listens on.")
    port: int = _setting("5000", "Port the server listens on.", _positive_int)
    data_dir: Path = _setting("./data", "Directory holding uploads, jobs, datasets and keys.", Path)
    api_keys: str = _setting(
        "",
        "Extra keys as KEY:scope,KEY:scope (scope read or write), beside those in the keys file.",
        secret=True,
    )
    max_upload_mb: int = _setting(
        "1024", "Largest upload accepted, in MiB; larger gets 413.", _positive_int
    )
    max_header_kb: int = _setting(
        "32",
        "Request line plus headers stay under this many KiB; at it, waitress's plain-text 431.",
        _positive_int,
    )
    page_max: int = _setting("10000", "Largest `limit` a page may ask for.", _positive_int)
    sort_max: int = _setting(
        "10000",
        "Deepest sorted page: offset + limit of a sorted request (the sort keeps that many keys).",
        _positive_int,
    )
    groupby_max: int = _setting(
        "10000", "Most groups a group-by holds; past it the answer says truncated.", _positive_int
    )
    sync_worker: bool = _setting(
        "on",
        "Run the sync worker thread inside the server (off when `python sync_worker.py` runs).",
        _flag,
    )
    sync_concurrency: int = _setting("1", "How many syncs one worker runs at once.", _positive_int)
    sync_attempts: int = _setting(
        "2", "How many times an interrupted sync is tried before it fails.", _positive_int
    )
    sync_stats_process: bool | None = _setting(
        "auto",
        "Keep a sync's column statistics and column files in a second process, on a second "
        "CPU: auto (files of 4 MiB or more), on or off (one process: slower, about 6 MiB less "
        "memory).",
        _auto_flag,
    )
    csv_field_limit_kb: int = _setting(
        "128",
        "Largest CSV field accepted, in KiB (the csv module's field limit); larger fails the job.",
        _positive_int,
    )
    date_order: str = _setting(
        "mdy",
        "How a date column written NN/NN/YYYY is read when no value decides (no part over 12): "
        "mdy (month first) or dmy. Dotted dates (NN.NN.YYYY) are day first unless values say.",
        _date_order,
    )
    source_allow_private: bool = _setting(
        "0",
        "Let dataset sources be on loopback, private, link-local or other non-public addresses "
        "(a source on the same network); refused by default.",
        _flag,
    )
    source_timeout: float = _setting(
        "30",
        "Seconds a source may take to connect, answer or send its next chunk; past it the "
        "fetch fails (source_timeout).",
        _positive_float,
    )
    source_deadline: float = _setting(
        "600",
        "Seconds one fetch of a source may take in all, however steadily it trickles; past "
        "it the fetch fails (source_timeout).",
        _positive_float,
    )
    source_backoff_max: int = _setting(
        "86400",
        "Longest wait, in seconds, before a source that keeps failing is tried again (the "
        "wait doubles with each failure in a row, from twice its `every`).",
        _positive_int,
    )
    source_ca_file: str = _setting(
        "",
        "A PEM file of certificate authorities that sources and webhooks on https are checked "
        "against, instead of the system's (an origin with an internal CA).",
    )
    notify_attempts: int = _setting(
        "5",
        "How many times a webhook is sent before it is given up (waits of 2, 4, 8, ... "
        "seconds between tries).",
        _positive_int,
    )
    versions_kept: int = _setting(
        "3",
        "Versions of a dataset kept (the current one included) for reads that name one with "
        "version=N; older ones are removed, and a reader streaming one finishes it.",
        _positive_int,
    )
    csv_safe: bool = _setting(
        "on",
        "CSV safe for spreadsheets: a text cell starting = + - @ tab or CR gets a leading '.",
        _flag,
    )
    cors_origins: str = _setting(
        "", "Browser origins allowed to call the API (comma list, or *); none by default."
    )
    rate_limit: int = _setting(
        "3000",
        "Requests a minute per key (bursts of a tenth of it); 0 turns the limit off.",
        _non_negative_int,
    )
    workers: int = _setting(
        "auto",
        "Processes that answer requests, on one listening socket: auto (the number of cores) "
        "or a number. RATE_LIMIT and LLM_MAX are shared out among them.",
        _workers,
    )
    threads: int = _setting("8", "waitress threads in each of those processes.", _positive_int)
    drain_seconds: float = _setting(
        "10",
        "On SIGTERM, seconds a serving process waits for the answers in flight to finish "
        "(it accepts no new connection meanwhile); 0 stops at once.",
        _non_negative_float,
    )
    streams_max: int = _setting(
        "4",
        "Most responses streaming at once (exports, streamed chats, job progress); past it "
        "429. Keep it below THREADS: a client that stops reading holds a thread.",
        _positive_int,
    )
    groq_api_key: str = _setting(
        "", "Groq API key; without it insights use statistics alone.", secret=True
    )
    groq_base_url: str = _setting(
        "https://api.groq.com/openai/v1", "Groq's OpenAI-compatible base URL."
    )
    groq_model: str = _setting("openai/gpt-oss-20b", "Groq model for insights and chat.")
    llm_max: int = _setting(
        "2",
        "Most LLM calls at once (insights not cached yet, chats); past it 429. Keep it below "
        "THREADS: each call holds a thread while it waits.",
        _positive_int,
    )
    groq_timeout: float = _setting(
        "30",
        "Seconds to wait for Groq to answer (5 to connect); past it, a retry or a 504.",
        _positive_float,
    )
    groq_retries: int = _setting(
        "2",
        "Retries of a Groq call after a 408, 409, 429, 5xx, timeout or lost connection.",
        _non_negative_int,
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default: the process environment); keyword
        overrides (``data_dir=...``) win and must name a setting."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.name, setting.default)
            try:
                values[setting.name.lower()] = setting.parse(raw)
            except ValueError as exc:
                raise SettingError(f"setting {setting.name}: {exc}") from None
        for name, value in overrides.items():
            if name.lower() not in values:
                raise SettingError(f"no setting named {name.upper()}")
            values[name.lower()] = value
        values["data_dir"] = Path(values["data_dir"]).resolve()
        return cls(**values)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, shown value, help) for each setting; secrets are masked."""
        rows = []
        for setting in SETTINGS:
            value = getattr(self, setting.name.lower())
            shown = ("(set)" if value else "(unset)") if setting.secret else str(value)
            if value is None:
                shown = setting.default  # "auto": the code decides
            rows.append((setting.name, shown, setting.help))
        return rows


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(
        f.name.upper(),
        f.metadata["default"],
        f.metadata["help"],
        f.metadata["parse"],
        f.metadata["secret"],
    )
    for f in fields(Settings)
)
