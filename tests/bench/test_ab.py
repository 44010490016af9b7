"""The A/B bench: a tiny real run of both sides from this working tree, its checkouts and its pairing.
Checks what ran and what is left behind, never how fast."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.ab import main, parse_args
from bench.ab_report import AbResults, Round
from bench.ab_side import checkout

PROJECT_DIR = Path(__file__).resolve().parents[2]
SERVICE_PROGRAMS = {"api", "pdf_worker", "webhook_worker", "scheduler", "redis", "supervisord"}


def _processes_with_data_under(directory: Path) -> list[int]:
    """Live processes whose DATA_DIR lies under DIRECTORY (every process of a side has it)."""
    marker = f"DATA_DIR={directory}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A scratch directory with a short path: a side's Unix sockets live below it (108 bytes at most)."""
    directory = Path(tempfile.mkdtemp(prefix="ab-test-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.timeout(300)
def test_ab_one_round_per_side_of_this_tree_reports_both_sides_and_a_ratio(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))  # the bench's scratch directory goes here
    out = short_tmp / "report" / "ab.md"
    tree = str(PROJECT_DIR)

    assert main(["--a", tree, "--b", tree, "--rounds", "1", "--jobs", "3", "--warmup", "1", "--timeout", "120",
                 "--env-b", "LOG_LEVEL=WARNING", "--out", str(out)]) == 0

    text = out.read_text()
    assert text in capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert [row.split(" | ")[1] for row in rows[:2]] == ["A", "B"]
    assert all(" | 3/3 | " in row for row in rows[:2])  # every webhook of both rounds arrived
    header = next(line for line in text.splitlines() if line.startswith("| # | side |"))
    assert SERVICE_PROGRAMS <= {cell.strip() for cell in header.split("|")}
    assert "env {'LOG_LEVEL': 'WARNING'}" in text.splitlines()[3]  # side B's line
    assert "| 1 | AB |" in text and "B/A of jobs/s (above 1: B faster): median " in text
    assert text.rstrip().splitlines()[-1].startswith("B/A median ") and text.rstrip().endswith("(1 pair)")
    # nothing left behind: the scratch directory is gone, and no process of either side lives on
    assert [path.name for path in short_tmp.iterdir()] == ["report"]
    assert _processes_with_data_under(short_tmp) == []


def test_ab_checkout_of_a_revision_is_a_worktree_removed_afterwards(tmp_path: Path) -> None:
    head = subprocess.run(["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    with checkout("HEAD", tmp_path, "a") as source:
        assert source.commit == head and source.launcher == "ops.run"
        assert (source.path / "ops" / "run.py").is_file() and source.path.parent == tmp_path
        path = source.path
    listed = subprocess.run(["git", "-C", str(PROJECT_DIR), "worktree", "list", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout
    assert not path.exists() and str(path) not in listed


def test_ab_checkout_refuses_what_is_neither_a_directory_nor_a_revision(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rev-parse"), checkout("no-such-revision-xyz", tmp_path, "a"):
        pass
    with checkout(str(tmp_path), tmp_path, "a") as source, pytest.raises(FileNotFoundError, match="ops/run.py"):
        source.launcher  # noqa: B018 - a directory without the service's launcher


def _round(side: str, jobs_per_second: float, *, webhooks: int = 10, cpu: float = 1.0) -> Round:
    return Round(side, 10, 10, webhooks, webhooks / jobs_per_second, {"pdf_worker": cpu})


def test_ab_pairs_adjacent_rounds_in_alternating_order_and_leaves_out_incomplete_ones() -> None:
    results = AbResults({"A": "a", "B": "b"}, "plan", "now")
    results.rounds = [_round("A", 10), _round("B", 15, cpu=0.5), _round("B", 12), _round("A", 6),
                      _round("A", 10), _round("B", 30, webhooks=9)]

    pairs = results.pairs()
    assert [(pair.order, pair.a.side, pair.b.side) for pair in pairs] == [("AB", "A", "B"), ("BA", "A", "B"),
                                                                          ("AB", "A", "B")]
    assert [pair.speed_ratio for pair in pairs[:2]] == [1.5, 2.0] and pairs[0].cpu_ratio == 0.5
    assert not pairs[2].complete and results.ratios() == [1.5, 2.0]
    assert results.verdict() == "B/A median 1.750 (2 pairs)"


def test_ab_arguments_gather_env_pairs_and_refuse_malformed_ones() -> None:
    config, out = parse_args(["--a", "HEAD~1", "--b", "HEAD", "--env-a", "X=1", "Y=a=b", "--env-a", "Z="])
    assert (config.a, config.b, config.rounds, config.jobs, config.workers, out) == ("HEAD~1", "HEAD", 10, 300, 2,
                                                                                      None)
    assert config.env_a == {"X": "1", "Y": "a=b", "Z": ""} and config.env_b == {}
    for bad in (["--env-b", "NOEQUALS"], ["--rounds", "0"]):
        with pytest.raises(SystemExit):
            parse_args(["--a", "x", "--b", "y", *bad])
