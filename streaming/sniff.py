"""Which delimiter a CSV file uses, judged from the records of its head.

``csv.Sniffer`` counts characters per line, so a quoted delimiter, a short file or a field
holding a line break fools it (the two-line file ``c0,c1`` / ``"s"";",0`` made it choose ``;``
and then fail the sync). Here each candidate reads the head with the csv module itself, as the
sync will, record by record (a quoted line break stays inside its field):

- a candidate the csv module cannot read (text after a closing quote) is out;
- the best splits every record into the same number of fields, more than one;
- failing that, the one whose most common width (more than one field) covers most records;
- on a tie, the earlier of ``, ; tab |``: a comma.

A file of one column has no delimiter to find, and reads as comma-separated.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from itertools import islice

DELIMITERS = ",;\t|"
SAMPLE_BYTES = 65536
SAMPLE_RECORDS = 2000  # many short records are worth more than the first few lines


def sniff_delimiter(head: bytes, codec: str) -> str:
    """The delimiter of a file starting with ``head`` (its first SAMPLE_BYTES or fewer).

    >>> sniff_delimiter(b'c0,c1\\n"s"";",0\\n', "utf-8")
    ','
    """
    text = head.decode(codec, errors="replace")
    complete = len(head) < SAMPLE_BYTES
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # the last line was probably cut short
    best, best_score = ",", (False, 0.0)
    for delimiter in DELIMITERS:
        widths = record_widths(text, delimiter, complete)
        score = _score(widths) if widths is not None else None
        if score is not None and score > best_score:
            best, best_score = delimiter, score
    return best


def record_widths(text: str, delimiter: str, complete: bool = True) -> list[int] | None:
    """The field count of each non-blank record of ``text``; None if the csv module cannot
    read it with ``delimiter``. A head cut short may end inside a quoted field: a record that
    breaks on the last line is dropped rather than held against the delimiter."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    widths: list[int] = []
    try:
        widths.extend(len(record) for record in islice(reader, SAMPLE_RECORDS) if record)
    except csv.Error:
        lines = text.count("\n") + (not text.endswith("\n"))
        if complete or reader.line_num < lines:
            return None
    return widths


def _score(widths: list[int]) -> tuple[bool, float]:
    """(every record as wide, more than one field; the share of records of the usual width)."""
    if not widths:
        return (False, 0.0)
    width, count = Counter(widths).most_common(1)[0]
    if width < 2:
        return (False, 0.0)
    share = count / len(widths)
    return (share == 1.0, share)
