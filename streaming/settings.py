"""Every setting, declared once with its default and a line of help.

Settings come from the environment. README lists each one (a test keeps them in step), and
``python server.py settings`` prints them with their current values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streaming.errors import RilletError


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


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"expected a number above 0, got {text!r}")
    return value


def _date_order(text: str) -> str:
    value = text.strip().lower()
    if value not in ("mdy", "dmy"):
        raise ValueError(f"expected mdy or dmy, got {text!r}")
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("HOST", "127.0.0.1", "Address the server listens on."),
    Setting("PORT", "5000", "Port the server listens on.", _positive_int),
    Setting("DATA_DIR", "./data", "Directory holding uploads, jobs, datasets and keys.", Path),
    Setting(
        "API_KEYS",
        "",
        "Extra keys as KEY:scope,KEY:scope (scope read or write), beside those in the keys file.",
        secret=True,
    ),
    Setting(
        "MAX_UPLOAD_MB", "1024", "Largest upload accepted, in MiB; larger gets 413.", _positive_int
    ),
    Setting(
        "MAX_HEADER_KB",
        "32",
        "Request line plus headers stay under this many KiB; at it, waitress's plain-text 431.",
        _positive_int,
    ),
    Setting("PAGE_MAX", "10000", "Largest `limit` a page may ask for.", _positive_int),
    Setting(
        "SORT_MAX",
        "10000",
        "Deepest sorted page: offset + limit of a sorted request (the sort keeps that many keys).",
        _positive_int,
    ),
    Setting(
        "GROUPBY_MAX",
        "10000",
        "Most groups a group-by holds; past it the answer says truncated.",
        _positive_int,
    ),
    Setting(
        "SYNC_WORKER",
        "on",
        "Run the sync worker thread inside the server (off when `python sync_worker.py` runs).",
        _flag,
    ),
    Setting("SYNC_CONCURRENCY", "1", "How many syncs one worker runs at once.", _positive_int),
    Setting(
        "SYNC_ATTEMPTS",
        "2",
        "How many times an interrupted sync is tried before it fails.",
        _positive_int,
    ),
    Setting(
        "SYNC_STATS_PROCESS",
        "auto",
        "Keep a sync's column statistics in a second process, on a second CPU: auto (files of "
        "4 MiB or more), on or off (one process: slower, about 5 MiB less memory).",
        _auto_flag,
    ),
    Setting(
        "CSV_FIELD_LIMIT_KB",
        "128",
        "Largest CSV field accepted, in KiB (the csv module's field limit); larger fails the job.",
        _positive_int,
    ),
    Setting(
        "DATE_ORDER",
        "mdy",
        "How a date column written NN/NN/YYYY is read when no value decides (no part over 12): "
        "mdy (month first) or dmy. Dotted dates (NN.NN.YYYY) are day first unless values say.",
        _date_order,
    ),
    Setting(
        "CSV_SAFE",
        "on",
        "CSV safe for spreadsheets: a text cell starting = + - @ tab or CR gets a leading '.",
        _flag,
    ),
    Setting(
        "CORS_ORIGINS",
        "",
        "Browser origins allowed to call the API (comma list, or *); none by default.",
    ),
    Setting(
        "RATE_LIMIT",
        "3000",
        "Requests a minute per key (bursts of a tenth of it); 0 turns the limit off.",
        _non_negative_int,
    ),
    Setting("THREADS", "8", "waitress worker threads.", _positive_int),
    Setting(
        "STREAMS_MAX",
        "4",
        "Most responses streaming at once (exports, streamed chats); past it 429. Keep it "
        "below THREADS: a client that stops reading holds a thread.",
        _positive_int,
    ),
    Setting(
        "GROQ_API_KEY", "", "Groq API key; without it insights use statistics alone.", secret=True
    ),
    Setting(
        "GROQ_BASE_URL", "https://api.groq.com/openai/v1", "Groq's OpenAI-compatible base URL."
    ),
    Setting("GROQ_MODEL", "openai/gpt-oss-20b", "Groq model for insights and chat."),
    Setting(
        "LLM_MAX",
        "2",
        "Most LLM calls at once (insights not cached yet, chats); past it 429. Keep it below "
        "THREADS: each call holds a thread while it waits.",
        _positive_int,
    ),
    Setting(
        "GROQ_TIMEOUT",
        "30",
        "Seconds to wait for Groq to answer (5 to connect); past it, a retry or a 504.",
        _positive_float,
    ),
    Setting(
        "GROQ_RETRIES",
        "2",
        "Retries of a Groq call after a 408, 409, 429, 5xx, timeout or lost connection.",
        _non_negative_int,
    ),
)


class SettingError(RilletError):
    code = "bad_setting"


class Settings:
    """Parsed settings, as attributes named in lower case (``settings.max_upload_mb``)."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name.upper()]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every setting from ``environ`` (default: the process environment)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.name, setting.default)
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as exc:
                raise SettingError(f"setting {setting.name}: {exc}") from None
        for name, value in overrides.items():
            if name.upper() not in values:
                raise SettingError(f"no setting named {name.upper()}")
            values[name.upper()] = value
        values["DATA_DIR"] = Path(values["DATA_DIR"]).resolve()
        return cls(values)

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, shown value, help) for each setting; secrets are masked."""
        rows = []
        for setting in SETTINGS:
            value = self._values[setting.name]
            shown = ("(set)" if value else "(unset)") if setting.secret else str(value)
            if value is None:
                shown = setting.default  # "auto": the code decides
            rows.append((setting.name, shown, setting.help))
        return rows
