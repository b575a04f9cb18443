"""Numbers as exports write them: thousands separators, a currency symbol, a percent sign.

Spreadsheets and shops write ``1,234,567.89``, ``$1,234.50``, ``12 €``, ``-£3`` or ``45%``;
with ``decimal=","`` a European export writes ``1.234,56``. A column is read in one notation:
every value carries the same symbol (its ``unit``: a currency symbol or ``%``) or none, and
``#`` names the notation with separators but no symbol. A column that mixes symbols, or holds
one value the notation does not fit, is not numeric (it stays a string, as today).

The symbol and separators are removed from the whole batch at once (``str.translate`` over the
joined text) and the plain text left is typed by ``streaming.coerce``'s integer and number
converters, so their rules (no leading zeros, 64 bits, exact integers) hold here too. A
percentage keeps its written value (``45%`` is 45, with unit ``%``), so nothing is rescaled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

CURRENCIES = "$€£¥₹₩₽₺₪₫฿₴₦₱"
UNITS = CURRENCIES + "%"
NO_UNIT = "#"  # the notation of numbers written with separators but no symbol
SPACES = " \u00a0\u202f"  # space, no-break space, narrow no-break space (French thousands)

# A first value worth a closer look: a sign, digit, decimal point or symbol comes first.
_START = re.compile(rf"[-+]?[{re.escape(CURRENCIES)}]?\s?[-+]?[0-9.,]")


@lru_cache(maxsize=64)
def _value_pattern(unit: str, decimal: str) -> str:
    """The regular expression of one value written with ``unit`` and ``decimal``."""
    if decimal == ",":
        grouped, point = r"[0-9]{1,3}(?:[.\u00a0\u202f ][0-9]{3})+", ","
    else:
        grouped, point = r"[0-9]{1,3}(?:,[0-9]{3})+", r"\."
    number = rf"(?:(?:{grouped}|[0-9]+)(?:{point}[0-9]*)?|{point}[0-9]+)(?:[eE][-+]?[0-9]+)?"
    if unit == NO_UNIT:
        return rf"[-+]?{number}"
    symbol = re.escape(unit)
    if unit == "%":
        return rf"[-+]?{number}\s?%"
    return rf"[-+]?{symbol}\s?[-+]?{number}|[-+]?{number}\s?{symbol}"


@lru_cache(maxsize=64)
def _batch_matcher(unit: str, decimal: str) -> Callable[[str], re.Match[str] | None]:
    r"""A fullmatch of a batch's values joined by "\n", all in one notation."""
    one = _value_pattern(unit, decimal)
    return re.compile(rf"(?:(?:{one})\n)*(?:{one})").fullmatch


@lru_cache(maxsize=64)
def _plain_table(unit: str, decimal: str) -> dict[int, int | None]:
    """What str.translate needs to turn a written value into plain number text."""
    removed = SPACES + ("" if unit == NO_UNIT else unit)
    if decimal == ",":
        return str.maketrans(",", ".", removed + ".")
    return str.maketrans("", "", removed + ",")


def units_in(joined: str) -> list[str]:
    """The symbols that occur in a batch's joined text (more than one: not one notation)."""
    return [unit for unit in UNITS if unit in joined]


def plain_texts(texts: list[str], unit: str, decimal: str) -> list[str] | None:
    """The batch as plain number text, or None if a value is not written in the notation."""
    if not texts:
        return []
    joined = "\n".join(texts)
    if not _batch_matcher(unit, decimal)(joined):
        return None
    return joined.translate(_plain_table(unit, decimal)).split("\n")


def notation_of(texts: list[str], decimal: str) -> str | None:
    """The notation (a unit, or NO_UNIT) the batch may be written in, or None at first sight.

    Only a candidate: ``plain_texts`` and the numeric converters decide.
    """
    if not texts or not _START.match(texts[0]):
        return None
    joined = "\n".join(texts)
    units = units_in(joined)
    if len(units) > 1:
        return None
    return units[0] if units else NO_UNIT
