"""A dataset's source URL: what a create request may name, which addresses are refused, and
where the URL and its headers are kept.

No httpx here: the web process checks a source with these functions, and only the worker's
fetch (``streaming.fetch``) loads httpx. Checks, in order, each a 400 at create time::

    parse_request(body)        the JSON body: fields, types, caps (bad_source, bad_parameter)
    check_url(url, ...)        http/https, no user:pass@, a host and a port (the source's
                               URL and the webhook's, ``notify.url``, alike)
    check_address(ip)          loopback, private, link-local, multicast, unspecified,
                               reserved (and IPv4-mapped forms of them): source_not_allowed
    resolve(host, port)        every address of a name; 0177.0.0.1 and 2130706433 are read as
                               the kernel reads them (inet_aton), without asking DNS

The full URL, the header values and the webhook's URL and secret are secrets (a token, a
signed query string, the key that signs events): they live in
``secrets/DATASET.json``, mode 0600, never in the job record or METADATA, which hold the URL
masked (``mask_url``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streaming import params
from streaming.convert import resolve_encoding
from streaming.errors import BadRequest
from streaming.options import OPTIONS, upload_options

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MIN_EVERY = 60
MAX_URL = 2048
MAX_HEADERS = 20
MAX_HEADER_BYTES = 8192  # all names and values together
MAX_NAME = 200
MAX_SECRET = 1024
BODY_LIMIT = 64 * 1024
READING_FIELDS = ("delimiter", "encoding", *OPTIONS)
SOURCE_FIELDS = ("url", "headers", "every", *READING_FIELDS)
# Headers the client library sets itself: a source cannot choose another host or framing.
_RESERVED_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "te", "upgrade"}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class SourceNotAllowed(BadRequest):
    """The URL's host is (or resolves to) an address sources may not reach."""

    code = "source_not_allowed"


@dataclass(frozen=True)
class SourceRequest:
    """A checked create request: the public part, the secret part, the reading options."""

    name: str
    url: str
    headers: dict[str, str]
    every: int | None
    options: dict[str, Any]  # as an upload's job options: delimiter, encoding, types, ...
    notify: dict[str, str] | None = None  # {"url", "secret"} of the webhook, kept secret too


def parse_request(body: bytes, *, allow_private: bool) -> SourceRequest:
    """The create request's JSON, checked whole before anything is stored.

    >>> parse_request(b'{"source": {"url": "http://10.0.0.5/a.csv"}}', allow_private=True).name
    'a.csv'
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _bad("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad("the body must be a JSON object with 'source'")
    _only(data, ("name", "source", "notify"), "the body")
    notify = _notify(data.get("notify"), allow_private=allow_private)
    source = data.get("source")
    if not isinstance(source, dict):
        raise _bad("'source' must be an object with a 'url'")
    _only(source, SOURCE_FIELDS, "source")
    url = source.get("url")
    if not isinstance(url, str):
        raise _bad("source.url must be a string")
    host, port = check_url(url)
    if not allow_private:
        for address in resolve(host, port):
            check_address(address)
    return SourceRequest(
        name=_name(data.get("name"), url),
        url=url,
        headers=_headers(source.get("headers")),
        every=_every(source.get("every")),
        options=_options(source),
        notify=notify,
    )


def check_url(url: str, field: str = "source.url") -> tuple[str, int]:
    """(host, port) of an http or https URL without credentials; BadRequest says what is wrong."""
    if len(url) > MAX_URL or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise _bad(f"{field} must be at most {MAX_URL} characters, without spaces")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise _bad(f"{field} must be http or https, not {parts.scheme or 'no scheme'!r}")
    if "@" in parts.netloc:
        raise _bad(
            f"{field} must not hold credentials (user:password@); "
            "send a token in source.headers instead"
        )
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise _bad(f"{field} has an invalid port") from None
    if not parts.hostname:
        raise _bad(f"{field} has no host")
    return parts.hostname, port


def check_address(address: IPAddress) -> None:
    """Refuse an address a source may not be on (SourceNotAllowed); the rest pass."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:  # judged by the IPv4 address it carries
            check_address(embedded)
            return
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or not address.is_global
    ):
        raise SourceNotAllowed(
            f"sources may not be on {address} (loopback, private, link-local, multicast, "
            "unspecified or reserved); SOURCE_ALLOW_PRIVATE=1 allows them"
        )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` stands for: a literal read as the kernel reads it, else DNS."""
    literal = parse_literal(host)
    if literal is not None:
        return [literal]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise SourceNotAllowed(f"the source's host {host!r} could not be resolved") from None
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]


def parse_literal(host: str) -> IPAddress | None:
    """An IP literal in any spelling a resolver accepts (``::ffff:7f00:1``, ``0177.0.0.1``,
    ``2130706433``, ``0x7f.1``), or None for a name."""
    bare = host.strip("[]").partition("%")[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if not re.fullmatch(r"[0-9a-fA-FxX.]+", bare):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def mask_url(url: str) -> str:
    """The URL as METADATA shows it: query values and any password replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(":" + parts.password + "@", ":***@", 1)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{urllib.parse.quote(k, safe='')}=***" for k, _ in pairs)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


# the secrets file ---------------------------------------------------------------------------


def secrets_path(root: Path, dataset_id: str) -> Path:
    return root / "secrets" / f"{dataset_id}.json"


def save_secrets(
    root: Path,
    dataset_id: str,
    url: str,
    headers: dict[str, str],
    notify: dict[str, str] | None = None,
) -> None:
    """Write the URL, headers and webhook readable by this user only (0600 from its creation)."""
    folder = root / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = secrets_path(root, dataset_id)
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps({"url": url, "headers": headers, "notify": notify}))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_secrets(root: Path, dataset_id: str) -> dict[str, Any] | None:
    """``{"url", "headers", "notify"}`` of a dataset with a source, or None."""
    try:
        data: dict[str, Any] = orjson.loads(secrets_path(root, dataset_id).read_bytes())
    except FileNotFoundError:
        return None
    return data


def forget(root: Path, dataset_id: str) -> None:
    secrets_path(root, dataset_id).unlink(missing_ok=True)


# fields -------------------------------------------------------------------------------------


def _only(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r} in {where}; allowed: {', '.join(allowed)}")


def _name(value: Any, url: str) -> str:
    if value is None:
        tail = urllib.parse.urlsplit(url).path.rstrip("/").rpartition("/")[2]
        return urllib.parse.unquote(tail)[:MAX_NAME] or "source.csv"
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise _bad(f"name must be a non-empty string of at most {MAX_NAME} characters")
    return value


def _headers(value: Any) -> dict[str, str]:
    """Header names and values as strings, few and small, none the client sets itself."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        raise _bad(f"source.headers must be an object of at most {MAX_HEADERS} headers")
    size = 0
    for name, text in value.items():
        if not _TOKEN.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
            raise _bad(f"source.headers: {name[:40]!r} is not a header a source may set")
        # The value is never echoed: it may be the token.
        if not isinstance(text, str) or any(c in text for c in "\r\n\0"):
            raise _bad(f"source.headers: the value of {name!r} must be a one-line string")
        size += len(name) + len(text.encode("utf-8"))
    if size > MAX_HEADER_BYTES:
        raise _bad(f"source.headers must total at most {MAX_HEADER_BYTES} bytes")
    return dict(value)


def _notify(value: Any, *, allow_private: bool) -> dict[str, str] | None:
    """The webhook: an http(s) URL under the sources' address rules, and a secret to sign with."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad("'notify' must be null or an object with 'url' and 'secret'")
    _only(value, ("url", "secret"), "notify")
    url, secret = value.get("url"), value.get("secret")
    if not isinstance(url, str):
        raise _bad("notify.url must be a string")
    # The secret is never echoed, not even its length.
    if not isinstance(secret, str) or not secret or len(secret) > MAX_SECRET:
        raise _bad(f"notify.secret must be a non-empty string of at most {MAX_SECRET} characters")
    host, port = check_url(url, "notify.url")
    if not allow_private:
        for address in resolve(host, port):
            check_address(address)
    return {"url": url, "secret": secret}


def _every(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_EVERY:
        raise BadRequest(
            f"source.every must be null or a whole number of seconds, at least {MIN_EVERY}",
            code="bad_parameter",
            parameter="every",
        )
    return value


def _options(source: dict[str, Any]) -> dict[str, Any]:
    """The upload options inside ``source``, checked as an upload's query is."""
    given: dict[str, str] = {}
    for name in READING_FIELDS:
        value = source.get(name)
        if isinstance(value, bool) and name == "header":
            value = "true" if value else "false"
        if value is None:
            continue
        if not isinstance(value, str):
            raise _bad(f"source.{name} must be a string, as the upload parameter is")
        given[name] = value
    encoding = resolve_encoding(given["encoding"]) if given.get("encoding") else None
    return {"delimiter": params.delimiter(given), "encoding": encoding, **upload_options(given)}


def _bad(message: str) -> BadRequest:
    return BadRequest(message, code="bad_source")
