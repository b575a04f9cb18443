"""The web page for people: ``GET /`` and its files under ``/static/`` (no key: they hold no data).

The page is plain HTML, CSS and JavaScript modules in ``streaming/web/static/``, shipped inside
the installed package; everything it shows it asks of the public API with the key the person
types (kept in the browser's session storage, sent as ``X-API-Key``).

Caching: every file is named twice, ``/static/NAME`` and ``/static/v-HASH/NAME``, HASH covering
all of them. The page links the second, so the browser keeps each file for a year and a new
release is a new URL; relative imports between modules stay under the same HASH. Both names
carry a strong ETag of the file's bytes (a 304 for a revalidation). Only the known files are
served: a name is looked up, never joined to a directory, so no path can leave it.

vega-embed: with the ``render`` extra (vl-convert) installed, ``vega-embed.js`` is vl-convert's
bundle of vega-embed, Vega and Vega-Lite (made once per process, about 1.7 s, on the first
chart), so the page draws charts offline. Without it, the same name is a small module that
loads vega-embed from its public CDN, and the Content-Security-Policy allows that origin.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from streaming.errors import NotFound
from streaming.web.exchange import Answer, Call, not_modified
from streaming.web.openapi import Doc, errors
from streaming.web.state import Rillet

STATIC = Path(__file__).with_name("static")
VEGA = "vega-embed.js"
CDN = "https://cdn.jsdelivr.net"
CDN_MODULE = f"""// vl-convert is not installed (the render extra): vega-embed from its public CDN.
import embed from "{CDN}/npm/vega-embed@7/+esm";
window.vegaEmbed = embed;
""".encode()
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
YEAR = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"  # keep it, but ask each time: a 304 when it has not changed


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _asset(body: bytes, name: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:24]
    return Asset(body, TYPES.get(Path(name).suffix, "application/octet-stream"), f'"{digest}"')


@cache
def bundled_vega() -> bool:
    """Whether vl-convert (the render extra) is installed to give vega-embed's bundle."""
    try:
        import vl_convert  # noqa: F401
    except ImportError:
        return False
    return True


def _vega_source() -> str:
    if not bundled_vega():
        return "cdn"
    from importlib.metadata import version as installed

    return "vl-convert " + installed("vl-convert-python")


@cache
def assets() -> dict[str, Asset]:
    """Every file of the page by its name under /static/, read once per process."""
    found = {
        p.relative_to(STATIC).as_posix(): _asset(p.read_bytes(), p.name)
        for p in sorted(STATIC.rglob("*"))
        if p.is_file() and p.suffix in TYPES
    }
    if not bundled_vega():
        found[VEGA] = _asset(CDN_MODULE, VEGA)
    return found


@cache
def version() -> str:
    """One hash over every file (and over where vega-embed comes from): the URLs' version."""
    seed = hashlib.sha256(_vega_source().encode())
    for name, asset in sorted(assets().items()):
        seed.update(f"{name}\n{asset.etag}\n".encode())
    return "v-" + seed.hexdigest()[:16]


_vega_lock = threading.Lock()


@cache
def _vega_bundle() -> Asset:
    with _vega_lock:  # two first charts at once make it once
        import vl_convert

        snippet = "window.vegaEmbed = vegaEmbed;"  # what the page uses, as the CDN module does
        return _asset(vl_convert.javascript_bundle(snippet).encode(), VEGA)


def policy() -> str:
    """The Content-Security-Policy of the page: no inline script, no other origin but the CDN
    when vega-embed must come from it. Vega compiles chart expressions with ``new Function``
    unless told to interpret them (vega-embed's ``ast``), which the page does, so no
    'unsafe-eval' either."""
    scripts = "'self'" if bundled_vega() else f"'self' {CDN}"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self'; "
        "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _headers(asset: Asset, cache_control: str) -> dict[str, str]:
    return {
        "Content-Type": asset.content_type,
        "ETag": asset.etag,
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
    }


INDEX = Doc(
    "The web page (no key)",
    {"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}}},
)


def index(rillet: Rillet, call: Call) -> Answer:
    """The page, its links naming this release's files (so the files can be kept a year)."""
    page = assets()["index.html"]
    body = page.body.replace(b"/static/", f"/static/{version()}/".encode())
    asset = Asset(body, page.content_type, f'"{version()}"')
    headers = {
        **_headers(asset, REVALIDATE),
        "Content-Security-Policy": policy(),
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    return not_modified(asset.etag, call) or Answer(body, 200, headers)


STATIC_DOC = Doc(
    "The page's files (no key)",
    {
        "200": {
            "description": "A file of the page",
            "content": {
                t.split(";")[0]: {"schema": {"type": "string"}}
                for t in ("text/javascript", "text/css", "text/html", "image/svg+xml")
            },
        },
        "304": {"description": "Not modified"},
        **errors(404),
    },
)


def static(rillet: Rillet, call: Call) -> Answer:
    """A file of the page by name; 404 for any other name."""
    name = call.args["path"]
    head, _, rest = name.partition("/")
    versioned = head.startswith("v-") and bool(rest)
    if versioned:
        name = rest
    asset = _vega_bundle() if name == VEGA and bundled_vega() else assets().get(name)
    if asset is None:
        raise NotFound(f"no file {call.args['path']!r} in /static/")
    cache_control = YEAR if versioned and head == version() else REVALIDATE
    return not_modified(asset.etag, call) or Answer(asset.body, 200, _headers(asset, cache_control))
