"""Write a generated CSV of mixed columns, the same file for the same ROWS and seed.

    python bench/make_csv.py 1000000 flights.csv [--seed 0]

Columns, chosen so a sync meets every kind of value it types:

    id       int, unique and increasing (a column with as many distinct values as rows)
    price    float with 2 decimals
    carrier  category, one of 8 codes
    day      ISO date over two years
    note     free text of a few words; about 1 in 6 holds a comma, so the csv module quotes it
    delay    int minutes, empty in about 10% of rows (a column with nulls)

Speed comes from drawing every column from a precomputed pool with one ``Random.choices`` call
per batch and writing each batch with one ``csv.writer.writerows`` call: about 3 s per
million rows.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import random
import sys
import time
from pathlib import Path

HEADER = ["id", "price", "carrier", "day", "note", "delay"]
CARRIERS = ["AA", "DL", "UA", "WN", "B6", "AS", "NK", "F9"]
# fmt: off
WORDS = [
    "late", "early", "gate", "crew", "weather", "delayed", "boarding", "smooth", "bumpy", "full",
    "empty", "quiet", "snack", "window", "aisle", "bag", "lost", "found", "connection", "missed",
    "made", "tight", "long", "short",
]
# fmt: on
BATCH_ROWS = 50_000
PRICE_POOL = 65_536
NOTE_POOL = 4_096
DELAY_POOL = 1_000
DAYS = 730


def price_pool(rng: random.Random) -> list[str]:
    """Prices from 19.00 to 1,500.00, skewed towards cheap tickets."""
    return [f"{19 + rng.expovariate(1 / 250) % 1481:.2f}" for _ in range(PRICE_POOL)]


def day_pool() -> list[str]:
    first = datetime.date(2023, 1, 1)
    return [(first + datetime.timedelta(days=n)).isoformat() for n in range(DAYS)]


def note_pool(rng: random.Random) -> list[str]:
    """Two to six words; about one note in six has a comma in it."""
    notes = []
    for _ in range(NOTE_POOL):
        words = rng.choices(WORDS, k=rng.randint(2, 6))
        if rng.random() < 1 / 6:
            cut = rng.randint(1, len(words) - 1)
            notes.append(" ".join(words[:cut]) + ", " + " ".join(words[cut:]))
        else:
            notes.append(" ".join(words))
    return notes


def delay_pool(rng: random.Random) -> list[str]:
    """Minutes late (negative when early); one value in ten is empty."""
    pool = [str(int(rng.gauss(10, 30))) for _ in range(DELAY_POOL)]
    for i in range(0, DELAY_POOL, 10):
        pool[i] = ""
    return pool


def write_csv(rows: int, out: Path, seed: int = 0) -> None:
    """Write ``rows`` data rows (plus the header) to ``out``."""
    rng = random.Random(seed)
    prices, days, notes, delays = price_pool(rng), day_pool(), note_pool(rng), delay_pool(rng)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for start in range(0, rows, BATCH_ROWS):
            n = min(BATCH_ROWS, rows - start)
            writer.writerows(
                zip(
                    range(start + 1, start + n + 1),
                    rng.choices(prices, k=n),
                    rng.choices(CARRIERS, k=n),
                    rng.choices(days, k=n),
                    rng.choices(notes, k=n),
                    rng.choices(delays, k=n),
                )
            )


def write_csv_atomically(rows: int, out: Path, seed: int = 0) -> None:
    """As ``write_csv``, but ``out`` appears only when complete (safe to cache)."""
    partial = out.with_name(out.name + f".{os.getpid()}.part")
    try:
        write_csv(rows, partial, seed)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int, help="number of data rows")
    parser.add_argument("out", type=Path, help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("ROWS must be 0 or more")
    started = time.perf_counter()
    write_csv_atomically(args.rows, args.out, args.seed)
    elapsed = time.perf_counter() - started
    size = args.out.stat().st_size / 2**20
    print(f"{args.rows:,} rows, {size:.1f} MiB -> {args.out} in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
