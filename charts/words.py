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
    """A number as people read it: ``0.1235``, ``12.35``, ``12,346``, ``1.235e+18``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "n/a" if value is None else str(value)
    size = abs(value)
    if size >= 1e15:  # past what digits say better than an exponent
        return f"{value:.4g}"
    if isinstance(value, int) or size >= 1e4:
        return f"{round(value):,}"
    return f"{value:,.4g}"


def value(item: Any) -> str:
    """A value as people read it: numbers as ``number``, text quoted and cut at 40 characters."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return number(item)
    text = str(item)
    return repr(text if len(text) <= 40 else text[:39] + "…")
