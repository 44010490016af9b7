"""Instructions per minatBakatUmum render, counted by valgrind's callgrind: a yardstick that the machine's
speed drifts do not move, for comparing versions of a template (timed CPU on this machine drifts by 15 %
and more between runs; the count drifts by well under 1 %).

`python -m bench.render_instructions [DIR ...]` counts, for each directory holding a `minatBakatUmum.typ`
(with its `.schema.json`; the built-in templates when none is given), the instructions of a process that
renders `FEW` reports and of one that renders `FEW + MORE`, and prints the difference per render:
start-up and loading cancel out. Each render gets another participant's data (`varied_sample`). Needs
`valgrind` on the PATH; each directory takes about a minute. It counts, it does not time: `make bench`
is where render CPU is reported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.sample_data import varied_sample
from render.registry import BUILTIN_DIR
from render.typst_template import Typesetting, TypstTemplate

PRODUCT = "minatBakatUmum"
FEW, MORE = 3, 10


def render_in_this_process(directory: Path, renders: int) -> None:
    """Load the template of `directory` and render it `renders` times (the process callgrind counts)."""
    from render import load_registry

    context = load_registry().get(PRODUCT).context
    template = TypstTemplate.load(directory / f"{PRODUCT}.typ", typesetting=Typesetting(), context=context)
    for number in range(renders):
        template.render(varied_sample(number), code=f"count-{number}", job_id=f"count-{number}")


def counted_instructions(directory: Path, renders: int) -> int:
    """Instructions callgrind counted in a child process that renders `renders` reports."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-m",
                   "bench.render_instructions", "--child", str(directory), str(renders)]
        subprocess.run(command, check=True, capture_output=True)
        for line in out.read_text().splitlines():
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"callgrind wrote no total for {directory}")


def instructions_per_render(directory: Path) -> float:
    """Instructions of one render with the template of `directory`, start-up and loading taken out."""
    return (counted_instructions(directory, FEW + MORE) - counted_instructions(directory, FEW)) / MORE


def main(argv: list[str]) -> int:
    """Print millions of instructions per render for each directory given (the built-in one by default)."""
    if argv[:1] == ["--child"]:
        render_in_this_process(Path(argv[1]), int(argv[2]))
        return 0
    if shutil.which("valgrind") is None:
        print("render_instructions needs valgrind (apt-get install valgrind); nothing counted", file=sys.stderr)
        return 2
    for directory in [Path(arg).resolve() for arg in argv] or [BUILTIN_DIR]:
        print(f"{instructions_per_render(directory) / 1e6:8.2f} M instructions per render  {directory}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
