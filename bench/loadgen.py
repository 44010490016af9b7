"""A small HTTP/1.1 load generator: raw keep-alive sockets, threads, several processes.

Written for the bench so the generator costs little CPU next to the service on the same cores:
requests are pre-built bytes, responses are parsed by Content-Length only. Open loop (fixed
request rate, latency and lateness recorded per request) and closed loop (K clients back to back).
Every loop is bounded by a request count and a deadline. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from queue import Empty
from typing import Any

from bench.sample_data import data_for

HOST = "127.0.0.1"
SUBMIT_PATH = "/api/reports/generate-async"


@dataclass(frozen=True)
class Target:
    """Where and as whom to send: the service port, an API key and the submit body."""

    port: int
    api_key: str
    body: dict[str, Any]
    vary_data: bool = False  # each submit's data from bench.sample_data.data_for(code), as jobs differ

    def submit_request(self, code: str) -> bytes:
        """The raw bytes of one submit with this `code`."""
        body = self.body | {"code": code}
        if self.vary_data:
            body["data"] = data_for(code)
        payload = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {SUBMIT_PATH} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Authorization: Bearer {self.api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    def status_request(self, job_id: str) -> bytes:
        """The raw bytes of GET /api/jobs/<job_id>."""
        return (
            f"GET /api/jobs/{job_id} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Authorization: Bearer {self.api_key}\r\n\r\n"
        ).encode()


class Connection:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def request(self, data: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
        """Send one request and return (status, body); status 0 on a connection error."""
        for attempt in (0, 1):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection((HOST, self.port), timeout=timeout)
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.buffer = b""
                self.sock.sendall(data)
                return self._read_response()
            except OSError:
                self.close()
                if attempt:
                    return 0, b""
        return 0, b""

    def _read_response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value)
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
        while len(rest) < length:
            rest += self._recv()
        body, self.buffer = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body

    def _fill(self) -> None:
        self.buffer += self._recv()

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk

    def close(self) -> None:
        """Close the socket (a later request reconnects)."""
        if self.sock is not None:
            self.sock.close()
        self.sock = None


@dataclass
class LoadResult:
    """What one load run saw: per-request latency (s), lateness behind schedule (s), statuses."""

    latencies: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    bodies: list[bytes] = field(default_factory=list)
    started: float = 0.0
    ended: float = 0.0
    wall_started: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def duration(self) -> float:
        """Seconds from the first send to the last answer."""
        return max(self.ended - self.started, 1e-9)

    def merge(self, other: LoadResult) -> None:
        """Add another process's results to this one."""
        self.latencies += other.latencies
        self.lateness += other.lateness
        self.statuses.update(other.statuses)
        self.bodies += other.bodies
        self.started = min(self.started or other.started, other.started)
        self.ended = max(self.ended, other.ended)
        self.wall_started = min(self.wall_started or other.wall_started, other.wall_started)
        self.cpu_seconds += other.cpu_seconds

    def count(self, *statuses: int) -> int:
        """How many answers had one of these statuses."""
        return sum(self.statuses[s] for s in statuses)


@dataclass(frozen=True)
class Plan:
    """One process's share: `threads` clients; open loop at `rate`/s or closed loop when rate is 0."""

    target: Target
    tag: str
    threads: int
    max_requests: int
    duration: float
    rate: float = 0.0
    start_at: float = 0.0
    keep_bodies: bool = False


def run_plan(plan: Plan) -> LoadResult:
    """Run one process's share of the load (threads share one schedule) and return its results."""
    lock = threading.Lock()
    counter = iter(range(plan.max_requests))
    result = LoadResult()
    cpu0 = time.process_time()
    while time.time() < plan.start_at:
        time.sleep(min(0.01, max(0.0, plan.start_at - time.time())))
    begin = time.perf_counter()
    wall_begin = time.time()
    deadline = begin + plan.duration

    def client(thread_no: int) -> None:
        connection = Connection(plan.target.port)
        local = LoadResult()
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            intended = begin + index / plan.rate if plan.rate else time.perf_counter()
            if intended >= deadline:
                break
            delay = intended - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            data = plan.target.submit_request(f"{plan.tag}-{index}")
            sent = time.perf_counter()
            status, body = connection.request(data)
            done = time.perf_counter()
            local.latencies.append(done - sent)
            local.lateness.append(max(0.0, sent - intended))
            local.statuses[status] += 1
            if plan.keep_bodies:
                local.bodies.append(body)
        connection.close()
        with lock:
            result.merge(local)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(plan.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.started, result.ended, result.wall_started = begin, time.perf_counter(), wall_begin
    result.cpu_seconds = time.process_time() - cpu0
    return result


def _child(plan: Plan, queue: Any) -> None:
    queue.put(run_plan(plan))
    queue.close()
    queue.join_thread()  # the result is in the pipe
    # Skip the interpreter's teardown: the spawned child imported the parent's main module (the whole
    # bench, SQLAlchemy and reportlab with it), and unwinding that took ~0.27 s of a core, inside the
    # e2e run it had just submitted and on the cores the service is measured on (perf record -a).
    os._exit(0)


def run_load(
    target: Target, *, tag: str, processes: int, threads: int, max_requests: int, duration: float,
    rate: float = 0.0, keep_bodies: bool = False,
) -> LoadResult:
    """Open loop (rate > 0, requests/s in total) or closed loop, split over `processes` processes."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 1.0 + 0.2 * processes  # every process connects and waits for this instant
    children = []
    for number in range(processes):
        share = max_requests // processes + (1 if number < max_requests % processes else 0)
        plan = Plan(target, f"{tag}-p{number}", threads, share, duration, rate / processes, start_at, keep_bodies)
        child = context.Process(target=_child, args=(plan, queue), daemon=True)
        child.start()
        children.append(child)
    total = LoadResult()
    try:
        for _ in children:
            # perf_counter is per boot (CLOCK_MONOTONIC), so the processes' clocks agree.
            total.merge(_next_part(queue, children, deadline=time.monotonic() + duration + 60))
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
    return total


def _next_part(queue: Any, children: list[Any], deadline: float) -> LoadResult:
    """The next child's result; raises when a child died without one or the deadline passed."""
    while time.monotonic() < deadline:
        try:
            return queue.get(timeout=0.5)
        except Empty:
            dead = [child.exitcode for child in children if child.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a load generator process failed (exit codes {dead})") from None
    raise TimeoutError("load generator processes did not report in time")


def serial_requests(port: int, requests: list[bytes]) -> LoadResult:
    """Send requests one after another on one connection, in this process."""
    connection = Connection(port)
    result = LoadResult()
    cpu0 = time.process_time()
    result.started = time.perf_counter()
    for data in requests:
        sent = time.perf_counter()
        status, body = connection.request(data)
        result.latencies.append(time.perf_counter() - sent)
        result.statuses[status] += 1
        result.bodies.append(body)
    result.ended = time.perf_counter()
    result.cpu_seconds = time.process_time() - cpu0
    connection.close()
    return result
