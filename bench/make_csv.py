"""Write a generated CSV of mixed columns, the same file for the same ROWS and seed.

    python bench/make_csv.py 1000000 flights.csv [--seed 0] [--wide]

Columns, chosen so a sync meets every kind of value it types:

    id       int, unique and increasing (a column with as many distinct values as rows)
    price    float with 2 decimals
    carrier  category, one of 8 codes
    day      ISO date over two years
    note     free text of a few words; about 1 in 6 holds a comma, so the csv module quotes it
    delay    int minutes, empty in about 10% of rows (a column with nulls)

``--wide`` writes the wider file (``write_wide_csv``): 14 columns of what exports hold beyond
that: timestamps (naive with a space, and UTC with "Z", some empty), names and cities in
many scripts (accents, CJK, Cyrillic, emoji), quoted review text with commas, doubled quotes
and line breaks, booleans, a sparse number column, dates and categories.

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
from typing import Any

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


WIDE_HEADER = [
    "order_id", "created", "shipped_at", "customer", "city", "country", "status", "paid",
    "amount", "quantity", "discount", "review", "delivered_on", "rating",
]  # fmt: skip
# fmt: off
FIRST_NAMES = [
    "José", "Zoë", "Søren", "Łukasz", "Ana", "Chloé", "Björn", "François", "Mei", "Hiroshi",
    "Олег", "Αλέξης", "Nguyễn", "Priya", "Ólafur", "İlker", "Dvořák", "Renée", "小明", "Şule",
]
LAST_NAMES = [
    "Álvarez", "Müller", "Ørsted", "Żak", "Smith", "Brontë", "Nuñez", "O'Brien", "李", "田中",
    "Иванов", "Παπαδόπουλος", "Trần", "Patel", "Jónsson", "Yılmaz", "Grün", "Łęcki", "García",
]
CITIES = [
    ("São Paulo", "BR"), ("Zürich", "CH"), ("Kraków", "PL"), ("東京", "JP"), ("Москва", "RU"),
    ("Reykjavík", "IS"), ("Montréal", "CA"), ("Łódź", "PL"), ("İstanbul", "TR"), ("Αθήνα", "GR"),
    ("Hà Nội", "VN"), ("München", "DE"), ("Málaga", "ES"), ("Göteborg", "SE"), ("北京", "CN"),
    ("Québec", "CA"), ("Düsseldorf", "DE"), ("Bogotá", "CO"), ("Orléans", "FR"), ("서울", "KR"),
]
STATUSES = ["delivered", "shipped", "pending", "returned", "cancelled"]
REVIEW_WORDS = [
    "great", "fast", "broken", "late", "perfect", "arrived", "box", "damaged", "très", "bien",
    "sehr", "gut", "очень", "хорошо", "素晴らしい", "😀", "👍", "would", "buy", "again", "never",
    "quality", "cheap", "size", "fits", "colour", "as", "described", "refund", "support",
]
# fmt: on
WIDE_SECONDS = 37  # mean seconds between orders (with jitter): a timestamp per row, unique


def review_pool(rng: random.Random) -> list[str]:
    """Five to twenty words; some with commas, doubled quotes or a line break (quoted)."""
    reviews = []
    for _ in range(NOTE_POOL):
        words = rng.choices(REVIEW_WORDS, k=rng.randint(5, 20))
        text = " ".join(words)
        roll = rng.random()
        if roll < 0.3:
            text = text.replace(" ", ", ", 1)
        elif roll < 0.4:
            text = f'"{words[0]}" {text}'
        elif roll < 0.45:
            text = text.replace(" ", "\n", 1)
        reviews.append(text)
    return reviews


def wide_columns(rng: random.Random, start: int, n: int) -> list[list[Any]]:
    """The columns of ``n`` rows of the wide file from row ``start`` on (but the pooled ones)."""
    first = datetime.datetime(2024, 1, 1)
    created = [
        first + datetime.timedelta(seconds=(start + i) * WIDE_SECONDS + rng.randrange(30))
        for i in range(n)
    ]
    shipped = [
        (c + datetime.timedelta(seconds=rng.randrange(3600, 400_000))).isoformat() + "Z"
        if rng.random() > 0.15
        else ""
        for c in created
    ]
    return [[c.isoformat(sep=" ") for c in created], shipped]


def write_wide_csv(rows: int, out: Path, seed: int = 0) -> None:
    """Write ``rows`` data rows (plus the header) of the wide file to ``out``."""
    rng = random.Random(seed)
    names = [f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}" for _ in range(NOTE_POOL)]
    amounts = [f"{rng.lognormvariate(3.5, 1):.2f}" for _ in range(PRICE_POOL)]
    discounts = [f"{rng.random() * 0.5:.3f}" if rng.random() < 0.3 else "" for _ in range(1000)]
    reviews, days = review_pool(rng), day_pool()
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(WIDE_HEADER)
        for start in range(0, rows, BATCH_ROWS):
            n = min(BATCH_ROWS, rows - start)
            created, shipped = wide_columns(rng, start, n)
            cities = rng.choices(CITIES, k=n)
            writer.writerows(
                zip(
                    range(start + 1, start + n + 1),
                    created,
                    shipped,
                    rng.choices(names, k=n),
                    [c for c, _ in cities],
                    [c for _, c in cities],
                    rng.choices(STATUSES, weights=[60, 20, 10, 6, 4], k=n),
                    rng.choices(["true", "false"], k=n),
                    rng.choices(amounts, k=n),
                    rng.choices(range(1, 10), weights=range(9, 0, -1), k=n),
                    rng.choices(discounts, k=n),
                    rng.choices(reviews, k=n),
                    rng.choices(days, k=n),
                    rng.choices(["1", "2", "3", "4", "5", ""], k=n),
                )
            )


def write_csv_atomically(rows: int, out: Path, seed: int = 0, wide: bool = False) -> None:
    """As ``write_csv`` (``wide``: ``write_wide_csv``), but ``out`` appears only when complete
    (safe to cache)."""
    partial = out.with_name(out.name + f".{os.getpid()}.part")
    try:
        (write_wide_csv if wide else write_csv)(rows, partial, seed)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int, help="number of data rows")
    parser.add_argument("out", type=Path, help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--wide", action="store_true", help="the wide file (write_wide_csv)")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("ROWS must be 0 or more")
    started = time.perf_counter()
    write_csv_atomically(args.rows, args.out, args.seed, args.wide)
    elapsed = time.perf_counter() - started
    size = args.out.stat().st_size / 2**20
    print(f"{args.rows:,} rows, {size:.1f} MiB -> {args.out} in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
