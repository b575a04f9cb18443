"""API keys: hashed at rest, compared in constant time, never logged or echoed.

Keys come from two places: the keys file (``DATA_DIR/keys.json``, managed with
``python server.py keys create|list|revoke``) and the API_KEYS setting (``KEY:scope,...``).
Only SHA-256 digests are kept: keys are 32 random bytes, so a fast hash is enough, and a stolen
keys file gives no key. A presented key is hashed and compared with every stored digest by
``hmac.compare_digest``, with no early exit, so timing tells nothing about which digest is
close. The keys file is read again when it changes, so keys rotate without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streaming.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    SettingError,
    Unauthorized,
)
from streaming.store import utc_now, write_atomic

SCOPES = ("read", "write")
KEY_PREFIX = "rk_"


@dataclass(frozen=True)
class Key:
    id: str
    scope: str
    digest: bytes
    created_at: str | None = None


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def parse_env_keys(text: str) -> list[Key]:
    """Keys from the API_KEYS setting: ``KEY:scope,KEY:scope`` (scope defaults to read)."""
    keys = []
    for n, item in enumerate(filter(None, (part.strip() for part in text.split(","))), start=1):
        key, _, scope = item.rpartition(":")
        if not key:
            key, scope = scope, "read"
        if scope not in SCOPES:
            raise SettingError(f"setting API_KEYS: key {n} has scope {scope!r}; use read or write")
        keys.append(Key(id=f"env-{n}", scope=scope, digest=digest(key)))
    return keys


class KeyRing:
    """The keys the server accepts."""

    def __init__(self, path: Path, env_keys: str = "") -> None:
        self.path = path
        self._env = parse_env_keys(env_keys)
        self._file: list[Key] = []
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _load(self) -> list[Key]:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            with self._lock:
                self._file = self._read() if stamp else []
                self._stamp = stamp
        return self._env + self._file

    def _read(self) -> list[Key]:
        with open(self.path, "rb") as f:
            entries = orjson.loads(f.read())
        return [
            Key(e["id"], e["scope"], bytes.fromhex(e["sha256"]), e.get("created_at"))
            for e in entries
        ]

    def _write(self, keys: list[Key]) -> None:
        entries = [
            {"id": k.id, "scope": k.scope, "sha256": k.digest.hex(), "created_at": k.created_at}
            for k in keys
        ]
        write_atomic(self.path, orjson.dumps(entries, option=orjson.OPT_INDENT_2))
        os.chmod(self.path, 0o600)

    def authenticate(self, presented: str | None) -> str:
        """The scope of a presented key; Unauthorized if it is missing or unknown."""
        return self.identify(presented).scope

    def identify(self, presented: str | None) -> Key:
        """The stored key a presented key matches; Unauthorized if it is missing or unknown."""
        if not presented:
            raise Unauthorized(
                "send an API key as X-API-Key: KEY or Authorization: Bearer KEY", code="missing_key"
            )
        wanted = digest(presented)
        found = None
        for key in self._load():
            if hmac.compare_digest(key.digest, wanted):  # no break: equal time for all keys
                found = key
        if found is None:
            raise Unauthorized("the API key is not valid", code="invalid_key")
        return found

    @staticmethod
    def require(scope: str, needed: str) -> None:
        if needed == "write" and scope != "write":
            raise Forbidden(
                "this key has the read scope; this request needs write", code="insufficient_scope"
            )

    def create(self, scope: str) -> tuple[str, str]:
        """Add a key to the keys file; returns (id, key). The key is shown only here."""
        if scope not in SCOPES:
            raise BadRequest(f"scope must be read or write, not {scope!r}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        entry = Key(
            id="key_" + secrets.token_hex(4), scope=scope, digest=digest(key), created_at=utc_now()
        )
        self._write([*self._load_file_only(), entry])
        return entry.id, key

    def revoke(self, key_id: str) -> None:
        keys = self._load_file_only()
        kept = [k for k in keys if k.id != key_id]
        if len(kept) == len(keys):
            raise NotFound(f"no key with id {key_id!r} in {self.path}")
        self._write(kept)

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "id": k.id,
                "scope": k.scope,
                "created_at": k.created_at,
                "source": "API_KEYS" if k.id.startswith("env-") else "keys file",
            }
            for k in self._load()
        ]

    def _load_file_only(self) -> list[Key]:
        return self._read() if self.path.exists() else []

    def ensure_one(self) -> str | None:
        """With no key configured anywhere, create a write key and return it (to print once)."""
        if self._load():
            return None
        return self.create("write")[1]


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, in bursts of up to a tenth of
    that (at least 10). Zero turns it off."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(10.0, per_minute / 10.0)
        self._buckets: dict[str, tuple[float, float]] = {}  # key id: (tokens, when)
        self._lock = threading.Lock()

    def take(self, key_id: str) -> None:
        """Spend one request of a key's allowance; RateLimited (with Retry-After) if spent."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / self.rate)
                raise RateLimited(
                    f"too many requests for this key; retry in {wait} s", retry_after=wait
                )
            self._buckets[key_id] = (tokens - 1.0, now)
