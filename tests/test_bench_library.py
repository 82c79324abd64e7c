"""bench/library_search.py runs end to end on a small library and prints a line per query and order (the
figures themselves belong in BENCHMARKS.md, not in a test)."""

from __future__ import annotations

import re

import pytest

from bench import library_search


def test_library_search_benchmark_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    assert library_search.main(["--transcripts", "40", "--words", "300", "--repeat", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.match(
        r"library: 40 transcripts, [\d,]+ words, [\d,]+ segments, \d+ MB on disk; filled in", lines[0]
    )
    rows = lines[1:]
    assert len(rows) == 2 * len(library_search.QUERIES)
    for row in rows:
        assert re.search(r"\d+ results  median +[\d.]+ ms  p95 +[\d.]+ ms$", row), row
    found = {row.split()[1] + row.split()[2]: int(re.search(r"(\d+) results", row).group(1)) for row in rows}
    assert found["singleword"] > 0 and found["CJKword"] > 0 and found["noaccent"] > 0
