"""The launch benchmark at a tiny size: what it prints and that every design sent each
customer exactly once (timings are never asserted)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bench.launch import DESIGNS, Measured, main, summary
from tests.conftest import POSTGRES_URL, postgres_schema_url

KEYS = {
    "customers",
    "msgs_per_s",
    "floor_msgs_per_s",
    "runtime_msgs_per_s",
    "naive_msgs_per_s",
    "peak_rss_mb",
}


@pytest.fixture
def postgres() -> Iterator[str]:
    """The test server's URL once it answers (skipped, or failed under CI, as elsewhere);
    the benchmark makes schemas of its own."""
    for _unused_schema in postgres_schema_url():
        yield POSTGRES_URL


def test_every_design_sends_each_customer_once_and_the_last_line_is_the_json(
    postgres, tmp_path, capsys
):
    results = tmp_path / "RESULTS.md"
    rows = main(
        ["--sizes", "150,300", "--naive", "20", "--postgres", postgres, "--results", str(results)]
    )

    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed.keys() >= KEYS
    assert printed["customers"] == 300
    assert printed["naive_sample"] == 20
    assert [entry["customers"] for entry in printed["sizes"]] == [150, 300]
    assert KEYS - {"naive_msgs_per_s"} <= printed["postgres"].keys()
    assert "peak_rss_growth" in printed
    measured = {(r.design, r.database, r.customers) for r in rows}
    assert measured == {
        (design, database, size)
        for design in DESIGNS
        for database in ("SQLite", "PostgreSQL")
        for size in (150, 300)
    } | {("naive", "none", 20)}
    for row in rows:
        assert (row.messages, row.most_per_recipient) == (row.customers, 1), row
    # One provider request per 1,000 recipients at most; the naive design one per message.
    assert [r.requests for r in rows if r.design == "naive"] == [20]
    assert all(r.requests == 1 for r in rows if r.design != "naive")
    assert results.read_text().count("\n| ") == len(rows) + 1  # header and one row each


def row(design: str, database: str, customers: int, seconds: float, rss: float) -> Measured:
    return Measured(design, database, customers, seconds, customers / seconds, rss, 1, 1, 1)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # One size: its figures at the top; end to end against the floor and the naive rate.
        (
            [
                row("floor", "SQLite", 1000, 0.02, 80),
                row("end to end", "SQLite", 1000, 0.1, 150),
                row("runtime, no Prefect", "SQLite", 1000, 0.05, 100),
                row("naive", "none", 10, 1.0, 90),
            ],
            {
                "customers": 1000,
                "msgs_per_s": 10000,
                "floor_msgs_per_s": 50000,
                "runtime_msgs_per_s": 20000,
                "peak_rss_mb": 150,
                "of_floor": 0.2,
                "naive_msgs_per_s": 10,
                "of_naive": 1000,
            },
        ),
        # Two sizes: the largest at the top, its peak RSS against the smallest's.
        (
            [
                row("floor", "SQLite", 100, 0.01, 80),
                row("end to end", "SQLite", 100, 0.1, 100),
                row("runtime, no Prefect", "SQLite", 100, 0.05, 100),
                row("floor", "SQLite", 1000, 0.02, 80),
                row("end to end", "SQLite", 1000, 0.5, 105),
                row("runtime, no Prefect", "SQLite", 1000, 0.25, 100),
                row("naive", "none", 10, 2.0, 90),
            ],
            {
                "customers": 1000,
                "msgs_per_s": 2000,
                "floor_msgs_per_s": 50000,
                "of_floor": 0.04,
                "peak_rss_mb": 105,
                "naive_msgs_per_s": 5,
                "of_naive": 400,
                "peak_rss_growth": 0.05,
            },
        ),
    ],
)
def test_summary_reports_the_largest_size_and_its_ratios(rows, expected):
    result = summary(rows)
    assert {key: result[key] for key in expected} == expected
    assert "postgres" not in result
