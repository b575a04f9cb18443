"""Column names and values in words, for chart titles, reasons and insights."""

from __future__ import annotations

from typing import Any


def words(name: str) -> str:
    """A column name as words: ``arr_delay`` → ``arr delay``."""
    return name.replace("_", " ").strip()[:80] or name


def title(name: str) -> str:
    """A column name as a title: ``arr_delay`` → ``Arr delay``."""
    text = words(name)
    return text[:1].upper() + text[1:]


def number(value: Any) -> str:
    """A number as people read it: thousands separated, four significant digits."""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def value(item: Any) -> str:
    """A value as people read it: numbers as ``number``, text quoted and cut at 40 characters."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return number(item)
    text = str(item)
    return repr(text if len(text) <= 40 else text[:39] + "…")
