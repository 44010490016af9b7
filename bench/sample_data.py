"""The sample minatBakatUmum data, and varied copies of it: what the bench's jobs render.

Kept apart from the render (no Typst import), so that the load generator's processes can build
their requests without loading the templates."""

from __future__ import annotations

import copy
import json
import random
import zlib
from functools import cache
from pathlib import Path
from typing import Any

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "minatBakatUmum.json"


@cache
def sample_data() -> dict[str, Any]:
    """The data of the sample minatBakatUmum request."""
    return json.loads(SAMPLE.read_text())["data"]


def varied_sample(number: int) -> dict[str, Any]:
    """The sample data as another participant's would differ: name, every score and each description changed,
    deterministically by `number`. Timed renders use it so that none can reuse an earlier render's layout
    (Typst memoizes across renders in a process; a real queue rarely holds the same data twice)."""
    draw = random.Random(number)
    data = copy.deepcopy(sample_data())
    data["participant"]["name"] += f" {number}"
    for scale in data["scales"]:
        scale["score"], scale["raw_score"] = draw.randint(5, 99), draw.randint(5, 40)
        scale.pop("category", None)  # derived from the new score
        if "description" in scale:
            scale["description"] += f" ({draw.randint(1, 999)})"
    return data


def data_for(code: str) -> dict[str, Any]:
    """The varied sample for a job's `code`: each job of a bench run gets data of its own."""
    return varied_sample(zlib.crc32(code.encode()))
