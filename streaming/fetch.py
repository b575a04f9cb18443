"""Fetch a dataset's source URL into its upload spool file: the worker's first step for a
source, before the sync reads the file as it reads an upload.

Run by the worker loop in its own thread, never in the sync process (which stays free of httpx
and OpenSSL). The fetch is waiting on a socket, not Python work: the body is written in the
pieces it comes in, counted, capped at MAX_UPLOAD_MB and hashed on the way, into ``DEST.part``,
renamed to ``DEST`` only once whole, so nothing half-fetched is ever synced.

Address rules (``streaming.sources``) are checked three times: when the dataset is created, on
each redirect's URL, and at connect time by ``GuardedBackend``, the httpcore network backend
every connection goes through: it resolves the host itself, refuses the connection if any
address is refused, and connects to the address it checked (TLS still names the host, for SNI
and the certificate), so a name that answers a public address to the check and a private one
to the connection has nothing to slip through.

A fetch again of a dataset that has data is conditional: ``If-None-Match`` and
``If-Modified-Since`` from the answer the served data came from (``streaming.schedule``). A
304, or a body whose SHA-256 is the served data's, leaves no upload file: the job is done with
``"changed": false`` and no sync runs. Errors (each fails the job)::

    source_failed        a non-2xx answer, a refused connection, a cut body
    source_timeout       no answer, or a stalled body, within SOURCE_TIMEOUT seconds, or
                         a fetch not finished within SOURCE_DEADLINE seconds in all
    source_not_csv       an HTML page (Content-Type text/html, or a body starting <html)
    source_redirects     more than MAX_REDIRECTS redirects
    source_not_allowed   an address sources may not reach
    too_large            a body past MAX_UPLOAD_MB
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import ssl
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpcore
import httpx
import orjson

from streaming.errors import PayloadTooLarge, RilletError
from streaming.jobs import Jobs, progress
from streaming.settings import Settings
from streaming.sources import check_address, check_url, load_secrets, mask_url, resolve
from streaming.store import utc_now

MAX_REDIRECTS = 5
# httpx logs every request line, full URL included, at INFO: a signed query string would land
# in the log. Its warnings still pass.
logging.getLogger("httpx").setLevel(logging.WARNING)


class SourceFailed(RilletError):
    status = 502
    code = "source_failed"


@dataclass(frozen=True)
class Fetched:
    bytes: int
    sha256: str | None  # None: a 304, nothing fetched
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.sha256 is None


class GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the rules allow, checked as the socket is opened."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve(host, port)
        if not self.allow_private:
            for address in addresses:
                check_address(address)
        error: Exception | None = None
        for address in addresses:
            try:
                # The checked address, not the name: nothing resolves it a second time.
                return super().connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"no address for {host!r}")


@functools.lru_cache(maxsize=4)
def _tls(ca_file: str) -> ssl.SSLContext:
    """The TLS settings of every fetch and webhook, made once a process: loading the system's
    certificate authorities takes about 18 ms, most of a 304's re-sync. A context is safe to
    share between connections and threads."""
    return ssl.create_default_context(cafile=ca_file or None)


def guarded_client(allow_private: bool, timeout: float, ca_file: str = "") -> httpx.Client:
    """An httpx client whose every connection goes through ``GuardedBackend``; no proxies
    from the environment (a proxy would connect for us, unchecked), no redirects of its own.
    Certificates are checked against ``ca_file`` (SOURCE_CA_FILE) if given, else the system's."""
    transport = httpx.HTTPTransport(retries=0)
    # httpx takes no network backend, so its pool is replaced by one with ours (same TLS).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_tls(ca_file),
        network_backend=GuardedBackend(allow_private),
        retries=0,
    )
    return httpx.Client(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
    )


def fetch(
    url: str,
    headers: dict[str, str],
    dest: Path,
    *,
    max_bytes: int,
    allow_private: bool,
    timeout: float,
    deadline: float = float("inf"),
    validators: dict[str, str] | None = None,
    ca_file: str = "",
) -> Fetched:
    """GET ``url`` (redirects followed by hand, each checked) into ``dest``; SourceFailed or
    another RilletError says why not, with the URL masked and no header value.

    ``validators`` (If-None-Match, If-Modified-Since) make the GET conditional: a 304 is a
    Fetched with no hash and nothing written. ``deadline`` (seconds) bounds the whole fetch,
    where ``timeout`` bounds each wait: an origin that trickles a byte a second never stalls
    long enough for the one, but meets the other."""
    origin = _origin(url)
    ends = time.monotonic() + deadline
    with guarded_client(allow_private, timeout, ca_file) as client:
        for _ in range(MAX_REDIRECTS + 1):
            host, port = check_url(url)
            if not allow_private:
                for address in resolve(host, port):
                    check_address(address)
            # The headers go to the origin the dataset named, never to where it redirects.
            sent = {**(validators or {}), **headers} if _origin(url) == origin else {}
            wait = min(timeout, max(0.001, ends - time.monotonic()))
            try:
                with client.stream("GET", url, headers=sent, timeout=wait) as answer:
                    if answer.is_redirect and "location" in answer.headers:
                        url = str(answer.url.join(answer.headers["location"]))
                        continue
                    return _store(answer, dest, max_bytes, ends, deadline)
            except httpx.TimeoutException:
                raise _timeout(url, timeout, ends, deadline) from None
            except httpx.HTTPError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise SourceFailed(
                        f"{mask_url(url)}'s certificate is not trusted (SOURCE_CA_FILE names "
                        "the authorities to trust)"
                    ) from None
                raise SourceFailed(
                    f"fetching {mask_url(url)} failed ({type(exc).__name__}: the connection "
                    "was refused, reset or cut)"
                ) from None
    raise SourceFailed(
        f"the source redirected more than {MAX_REDIRECTS} times", code="source_redirects"
    )


def _store(
    answer: httpx.Response, dest: Path, max_bytes: int, ends: float, deadline: float
) -> Fetched:
    """Check the answer, then stream its body to ``dest`` whole or not at all (by ``ends``,
    a time.monotonic())."""
    shown = mask_url(str(answer.url))
    headers = answer.headers
    if answer.status_code == 304:
        return Fetched(0, None, headers.get("etag"), headers.get("last-modified"))
    if not answer.is_success:
        raise SourceFailed(f"{shown} answered {answer.status_code} {answer.reason_phrase}")
    kind = answer.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        raise _html(shown)
    length = answer.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise _too_large(max_bytes)
    part = dest.with_name(dest.name + ".part")
    digest, size = hashlib.sha256(), 0
    try:
        with part.open("wb") as out:
            # Decoded bytes (a gzip Content-Encoding undone): the cap is on what is stored.
            # Pieces as they come, not 64 KiB chunks, so the deadline is looked at each time.
            for chunk in answer.iter_bytes():
                if time.monotonic() > ends:
                    raise _timeout(str(answer.url), 0, ends, deadline)
                head = chunk.lstrip()[:9].lower() if size == 0 else b""
                if head.startswith((b"<!doctype", b"<html")):
                    raise _html(shown)
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise SourceFailed(f"{shown} answered an empty body", code="empty_file")
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return Fetched(size, digest.hexdigest(), headers.get("etag"), headers.get("last-modified"))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or ""), parts.port


def _timeout(url: str, timeout: float, ends: float, deadline: float) -> SourceFailed:
    if time.monotonic() >= ends:
        message = f"{mask_url(url)} did not finish within {deadline:g} seconds (SOURCE_DEADLINE)"
    else:
        message = f"{mask_url(url)} did not answer within {timeout:g} seconds"
    return SourceFailed(message, code="source_timeout")


def _html(shown: str) -> SourceFailed:
    return SourceFailed(
        f"{shown} answered an HTML page, not a CSV (a login page or an error page?)",
        code="source_not_csv",
    )


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the source's body exceeds the limit of {max_bytes / 2**20:g} MiB",
        limit_bytes=max_bytes,
    )


def fetch_job_source(
    settings: Settings, jobs: Jobs, job: dict[str, Any], validators: dict[str, str | None]
) -> bool:
    """Fetch a queued source job's URL into its upload file and record what was fetched in
    its ``source`` (the masked URL, size, hash, ETag, Last-Modified, when) and whether it
    ``changed``; False (and no upload file) when the source has not changed since the data
    the dataset serves: a 304 to ``validators`` (its ``etag`` and ``last_modified``), or a
    body whose SHA-256 is the served data's."""
    store = jobs.store
    dataset_id = job["dataset_id"]
    secrets = load_secrets(store.root, dataset_id)
    if secrets is None:
        raise SourceFailed("the source's URL is no longer stored", code="no_source")
    served = orjson.loads(store.meta_bytes(dataset_id) or b"null")
    conditional = {}
    if served is not None:  # conditional only when there is data to keep serving
        if validators.get("etag"):
            conditional["If-None-Match"] = str(validators["etag"])
        if validators.get("last_modified"):
            conditional["If-Modified-Since"] = str(validators["last_modified"])
    dest = store.upload_path(job["id"])
    fetched = fetch(
        secrets["url"],
        secrets["headers"],
        dest,
        max_bytes=settings.max_upload_mb * 2**20,
        allow_private=settings.source_allow_private,
        timeout=settings.source_timeout,
        deadline=settings.source_deadline,
        validators=conditional,
        ca_file=settings.source_ca_file,
    )
    source = {**job["source"], "checked_at": utc_now()}
    changed = not fetched.not_modified
    if changed:
        source |= {"bytes": fetched.bytes, "sha256": fetched.sha256}
        source |= {"etag": fetched.etag, "last_modified": fetched.last_modified}
        changed = served is None or served["source"].get("sha256") != fetched.sha256
    if not changed:
        dest.unlink(missing_ok=True)
    total = fetched.bytes if changed else 0
    jobs.update(job["id"], source=source, changed=changed, progress=progress(0, total, 0))
    return changed
