"""bench.form_fill: both ways fill the form and the line names each figure."""

from __future__ import annotations

import re

from bench import form_fill


def test_form_fill_prints_both_ways_and_their_ratio(capsys) -> None:  # noqa: ANN001
    assert form_fill.main(["1", "1"]) == 0
    line = capsys.readouterr().out
    found = re.search(r"parsed per fill ([\d.]+) ms, kept parse ([\d.]+) ms CPU per fill \(([\d.]+)x\)", line)
    assert found is not None, line
    assert float(found[1]) > 0 and float(found[2]) > 0
