"""Batched log output: INFO lines come out within the flush interval, WARNING at once, all at exit, none twice."""

from __future__ import annotations

import select
import subprocess
import sys
import textwrap
import time

from tests.conftest import PROJECT_DIR


def _program(body: str, flush_every: float) -> subprocess.Popen[bytes]:
    """A Python process that sets up the service's logging and runs `body` (its stderr is piped)."""
    code = textwrap.dedent(f"""
        import logging, os, sys, time
        import config.logging as service_logging
        service_logging.FLUSH_EVERY = {flush_every}
        service_logging.setup_logging("INFO", process="test")
        log = logging.getLogger("t")
    """) + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_DIR, stderr=subprocess.PIPE)


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float = 20) -> bytes:
    """What the process wrote to stderr until `marker` appeared (or the timeout passed)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 0.1)
        if ready:
            chunk = process.stderr.read1(65536)  # type: ignore[union-attr]
            if not chunk:
                break
            seen += chunk
    return seen


def test_an_info_line_is_written_by_the_flush_thread_while_the_process_goes_on() -> None:
    process = _program("log.info('event=first'); time.sleep(60)", flush_every=0.05)
    try:
        seen = _read_until(process, b"event=first")
        assert process.poll() is None  # still sleeping: the line was not written by the exit
    finally:
        process.kill()
        process.wait()
    assert b"level=INFO process=test logger=t event=first" in seen


def test_a_warning_is_written_at_once_with_the_info_lines_before_it() -> None:
    process = _program(
        "log.info('event=before'); log.warning('event=alarm'); log.info('event=after'); time.sleep(60)",
        flush_every=3600,
    )
    try:
        seen = _read_until(process, b"event=alarm")
        seen += _read_until(process, b"event=after", timeout=1)
    finally:
        process.kill()
        process.wait()
    assert seen.index(b"event=before") < seen.index(b"event=alarm")
    assert b"event=after" not in seen  # waits for the (hour-long) interval, or the exit


def test_buffered_lines_are_written_at_exit() -> None:
    process = _program("for n in range(100): log.info('event=line n=%s', n)", flush_every=3600)
    output = process.communicate(timeout=30)[1]
    assert process.returncode == 0
    assert [line.rsplit(b"n=", 1)[1] for line in output.splitlines()] == [str(n).encode() for n in range(100)]


def test_a_forked_child_does_not_write_the_parents_buffered_lines_again() -> None:
    process = _program(
        """
        log.info("event=before_fork")
        pid = os.fork()
        if pid == 0:
            log.info("event=in_child")
            sys.exit(0)
        os.waitpid(pid, 0)
        log.info("event=in_parent")
        """,
        flush_every=3600,
    )
    output = process.communicate(timeout=30)[1]
    assert output.count(b"event=before_fork") == 1
    assert output.count(b"event=in_child") == 1 and output.count(b"event=in_parent") == 1


def test_records_skip_the_thread_and_process_lookups_our_lines_never_show() -> None:
    process = _program("""
        class Keep(logging.Handler):
            def emit(self, record):
                print(record.thread, record.process, record.processName, record.funcName, file=sys.stderr,
                      flush=True)
        log.addHandler(Keep())
        log.info("x")
        print("DONE", file=sys.stderr, flush=True)
    """, flush_every=0.05)
    seen = _read_until(process, b"DONE")
    process.wait(timeout=20)
    # logging's public switches only: the caller lookup stays logging's own
    assert b"None None None <module>" in seen, seen
