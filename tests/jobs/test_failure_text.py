"""Failure messages for clients carry no server paths or exception reprs; the log keeps the detail."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from jobs.failure_text import client_text, scrub
from render import RenderError
from storage import StorageError
from storage.local import LocalDiskStorage
from store.mongo import MongoUnavailableError
from tests.callbacks.receiver import Receiver
from tests.conftest import auth, run_jobs, sample_request
from tests.workers.webhook_support import drive

SUBMIT = "/api/reports/generate-async"


def test_a_job_failing_on_an_os_error_naming_a_path_shows_no_path_to_the_client(
        client, runtime, receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    not_a_dir = tmp_path / "secret-volume" / "pdfs"
    not_a_dir.parent.mkdir()
    not_a_dir.write_text("a file where the PDF directory should be")  # writing under it: NotADirectoryError
    runtime.storage = LocalDiskStorage(not_a_dir)
    runtime.settings = runtime.settings.with_changes(job_retry_delays=())
    body = sample_request() | {"failureCallback": receiver.url("/failed")}
    job_id = client.post(SUBMIT, json=body, headers=auth()).json["job_id"]

    with caplog.at_level(logging.WARNING, logger="workers.pdf_job"):
        run_jobs(runtime)
    status = client.get(f"/api/jobs/{job_id}", headers=auth()).json
    assert drive(runtime, job_id).status == "delivered"
    webhook = json.loads(receiver.requests[0].body)

    assert status["status"] == "failed" and webhook["status"] == "failed"
    for text in (status["error"], webhook["error"], json.dumps(status), receiver.requests[0].body.decode()):
        assert str(tmp_path) not in text and "secret-volume" not in text and "Errno" not in text
    assert status["error"] == webhook["error"] == (
        "saving to local disk failed: cannot write (server path): Not a directory")
    logged = [r.getMessage() for r in caplog.records if f"job={job_id} event=failed" in r.getMessage()]
    assert len(logged) == 1 and str(not_a_dir) in logged[0]  # the operator still sees where


def test_an_os_error_is_described_by_its_reason_only(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        (tmp_path / "missing" / "data.json").open()
    text = client_text(info.value)
    assert text.startswith("a disk or network operation on the server failed (No such file or directory)")
    assert str(tmp_path) not in text and "FileNotFoundError" not in text and "log" in text


def test_an_unexpected_error_says_what_to_do_without_its_repr() -> None:
    text = client_text(KeyError("<object at 0x7f3a>"))
    assert "unexpected error" in text and "retry the job later" in text and "KeyError" not in text


def test_mongodb_down_is_not_shown_with_its_address() -> None:
    text = client_text(MongoUnavailableError("MongoDB x: ServerSelectionTimeoutError: 10.1.2.3:27017: refused"))
    assert "10.1.2.3" not in text and "MongoDB could not be reached" in text


@pytest.mark.parametrize(("exc", "expected"), [
    (RenderError("'data.scales[0].score' must be at most 100"), "'data.scales[0].score' must be at most 100"),
    (RenderError("/srv/forms/x.json: cannot load form template: [Errno 2] No such file: '/srv/forms/x.pdf'"),
     "(server path): cannot load form template: No such file: '(server path)'"),
    (StorageError("S3 upload of pdfs/pdf_1.pdf failed: cannot reach http://10.0.0.5:9000/b/pdfs/pdf_1.pdf"),
     "S3 upload of pdfs/pdf_1.pdf failed: cannot reach (url)"),
])
def test_messages_written_for_clients_are_kept_without_paths_or_urls(exc: Exception, expected: str) -> None:
    assert client_text(exc) == expected


@pytest.mark.parametrize("text", [
    "saving to local disk failed: will retry in 20 s / 3 attempts", "2026/12/07/pdf_1.pdf and/or pdfs/x.pdf",
])
def test_scrub_leaves_relative_names_and_slashes_in_words(text: str) -> None:
    assert scrub(text) == text
