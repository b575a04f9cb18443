"""Charts as pictures: a spec rendered to SVG or PNG by vl-convert, an optional extra.

Example::

    body, media_type = image(chart(dataset, query, "bar", "carrier", ...), "png")

Without vl-convert-python installed, ``image`` raises RenderUnavailable (501), whose message
says how to install it; the specs themselves never need it.
"""

from __future__ import annotations

from typing import Any

from streaming.errors import BadRequest, RenderUnavailable

MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


def image(spec: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """The chart drawn as ``svg`` or ``png``, and its media type."""
    if fmt not in MEDIA_TYPES:
        message = f"format must be json, svg or png, not {fmt!r}"
        raise BadRequest(message, code="bad_parameter", parameter="format")
    try:
        import vl_convert
    except ImportError:
        raise RenderUnavailable(
            "drawing charts as images needs vl-convert-python: pip install vl-convert-python "
            "(or this project's 'render' extra); the JSON spec (format=json) needs nothing"
        ) from None
    if fmt == "svg":
        return vl_convert.vegalite_to_svg(spec).encode("utf-8"), MEDIA_TYPES["svg"]
    return bytes(vl_convert.vegalite_to_png(spec)), MEDIA_TYPES["png"]
