"""The bench's timed renders get data that is valid and differs from render to render."""

from __future__ import annotations

import json

from bench.legacy.minat_bakat import MinatBakatTemplate
from bench.loadgen import Target
from bench.sample_data import data_for, sample_data, varied_sample
from render import load_registry


def test_varied_samples_are_valid_for_both_renderers_and_all_differ() -> None:
    samples = [varied_sample(n) for n in range(5)]
    template = load_registry().get("minatBakatUmum")
    for data in samples:
        assert template.validate(data) == []
        assert MinatBakatTemplate().validate(data) == []
    scores = {tuple(scale["score"] for scale in data["scales"]) for data in samples}
    names = {data["participant"]["name"] for data in samples}
    assert len(scores) == len(names) == 5


def test_varied_sample_is_deterministic_and_leaves_the_sample_alone() -> None:
    before = sample_data()["participant"]["name"]
    assert varied_sample(3) == varied_sample(3)
    assert sample_data()["participant"]["name"] == before
    assert [s["name"] for s in varied_sample(3)["scales"]] == [s["name"] for s in sample_data()["scales"]]


def test_bench_jobs_get_data_of_their_own_by_code() -> None:
    assert data_for("job-1") == data_for("job-1") != data_for("job-2")
    target = Target(8000, "key", {"productId": "minatBakatUmum", "code": "", "data": {}}, vary_data=True)
    first, second = (json.loads(target.submit_request(code).split(b"\r\n\r\n", 1)[1]) for code in ("a", "b"))
    assert first["data"] == data_for("a") and second["data"] == data_for("b") and first["code"] == "a"
    assert json.loads(Target(8000, "key", {"data": {}}).submit_request("a").split(b"\r\n\r\n", 1)[1])["data"] == {}
