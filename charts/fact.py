"""A fact about a dataset: what the profile hands the LLM and ``charts.findings`` says in words.

Made by ``charts.profile`` (from the statistics and the sample) and ``charts.patterns`` (from
group-bys over all rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Fact:
    """Something true of the data, with its numbers; ``weight`` ranks facts (0 to 1)."""

    kind: str
    columns: tuple[str, ...]
    numbers: dict[str, Any] = field(default_factory=dict)
    weight: float = 0.5


def round_to(value: Any, digits: int = 4) -> Any:
    """A computed float (a mean, a share, a coefficient) to ``digits`` significant digits;
    other values as they are. Values found in the data (min, max, quantiles) are never rounded."""
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        places = digits - 1 - math.floor(math.log10(abs(value)))
        return round(value, places) if places > 0 else float(round(value))
    return value
