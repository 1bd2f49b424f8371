"""Generate sample customers: the demo audience and the benchmark's audiences.

    python bench/generate_customers.py --count 1200 --seed 7 > scenarios/demo/customers.csv

Phones are valid E.164 numbers in the US, Canada and Australia (they only ever reach the
local simulator). A few rows are deliberately broken (`--broken`) so an import shows how
rejected rows are reported.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator

FIRST_NAMES = [
    "Ann",
    "Bob",
    "Chloé",
    "Dan",
    "Eva",
    "Frank",
    "Grace",
    "Hugo",
    "Iris",
    "Jack",
    "Kim",
    "Liam",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Quinn",
    "Rosa",
    "Sam",
    "Tess",
]
# (country, calling code, area codes, time zone)
REGIONS = [
    ("US", "1", ["201", "212", "305", "312", "415", "512", "617", "702"], "America/New_York"),
    ("US", "1", ["213", "310", "408", "503", "206"], "America/Los_Angeles"),
    ("CA", "1", ["416", "613", "604", "514"], "America/Toronto"),
    ("AU", "61", ["4"], "Australia/Sydney"),
]
COLUMNS = [
    "id",
    "phone",
    "first_name",
    "country",
    "timezone",
    "vip",
    "orders",
    "consent:sms_marketing",
]


def customers(count: int, seed: int) -> Iterator[dict[str, object]]:
    rng = random.Random(seed)
    for number in range(1, count + 1):
        country, code, areas, zone = rng.choice(REGIONS)
        area = rng.choice(areas)
        if code == "61":
            phone = f"+61 41{rng.randint(0, 9)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
        else:
            phone = f"+1 {area} {rng.randint(200, 999)} {number % 10000:04d}"
        yield {
            "id": f"c{number:07d}",
            "phone": phone,
            "first_name": rng.choice(FIRST_NAMES),
            "country": country,
            "timezone": zone,
            "vip": rng.random() < 0.2,
            "orders": rng.randint(0, 12),
            "consent:sms_marketing": rng.random() < 0.9,
        }


def broken_rows() -> list[dict[str, object]]:
    return [
        {"id": "bad-national", "phone": "0601 234 567", "first_name": "Nat"},
        {"id": "bad-short", "phone": "+1 555", "first_name": "Short"},
        {"id": "", "phone": "+1 212 555 0100", "first_name": "Nobody"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--broken", action="store_true", help="append three invalid rows")
    args = parser.parse_args()
    writer = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in customers(args.count, args.seed):
        writer.writerow(row)
    if args.broken:
        for row in broken_rows():
            writer.writerow(row)


if __name__ == "__main__":
    main()
