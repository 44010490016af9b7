"""A Redis Sentinel group on loopback: one master, one replica, three sentinels (tests and benchmarks).

The same redis-server binary as the embedded Redis runs every member; sentinels run it with
`--sentinel`. `url()` is the REDIS_URL of the group; `kill_master()` SIGKILLs whichever member is
the master now, and `wait_failover()` waits until the sentinels name another one.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from ops import embedded_redis
from ops.harness import free_port

SERVICE = "mymaster"


class SentinelGroup:
    """Master + replica + three sentinels, each a redis-server process in a folder of `directory`."""

    def __init__(self, directory: Path, *, service: str = SERVICE, down_after_ms: int = 1000):
        self.directory = directory.resolve()
        self.service = service
        self.down_after_ms = down_after_ms
        self.data_ports: list[int] = []
        self.sentinel_ports: list[int] = []
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self) -> SentinelGroup:
        """Start the master, its replica and the sentinels; wait until the replica is in sync."""
        master, replica = free_port(), free_port()
        self.data_ports = [master, replica]
        self._run(master, embedded_redis.write_config(self.directory / f"redis-{master}", port=master))
        self._run(replica, embedded_redis.write_config(self.directory / f"redis-{replica}", port=replica,
                                                       replica_of=master))
        self._wait_in_sync(replica)
        for _ in range(3):
            port = free_port()
            self.sentinel_ports.append(port)
            conf = embedded_redis.write_sentinel_config(
                self.directory / f"sentinel-{port}", port=port, master_port=master, service=self.service,
                down_after_ms=self.down_after_ms)
            self._run(port, conf, "--sentinel")
        self._wait_sentinels_know_replica()
        return self

    def url(self, db: int = 0) -> str:
        """The REDIS_URL of the group (the sentinel form)."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/{db}"

    def master_port(self) -> int:
        """The port of the master the sentinels name now."""
        return self._master_seen_by(self.sentinel_ports[0])

    def kill_master(self) -> int:
        """SIGKILL the current master (no shutdown, no last write to disk); returns its port."""
        port = self.master_port()
        self.processes[port].send_signal(signal.SIGKILL)
        self.processes[port].wait()
        return port

    def wait_failover(self, old_port: int, timeout: float = 30) -> int:
        """Block until every sentinel names a master other than `old_port`; returns the new port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = set()
            for sentinel in self.sentinel_ports:
                try:
                    ports.add(self._master_seen_by(sentinel))
                except redis.RedisError:
                    ports.add(old_port)
            if len(ports) == 1 and old_port not in ports:
                return ports.pop()
            time.sleep(0.1)
        raise TimeoutError(f"the sentinels did not fail over from port {old_port} within {timeout} s")

    def stop(self) -> None:
        """Stop every member (SIGTERM, then SIGKILL)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> SentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _master_seen_by(self, sentinel_port: int) -> int:
        client = redis.Redis(port=sentinel_port, socket_timeout=1)
        try:
            # INFO sentinel: master0:name=mymaster,status=ok,address=127.0.0.1:PORT,slaves=1,sentinels=3
            return int(str(client.info("sentinel")["master0"]["address"]).rpartition(":")[2])
        finally:
            client.close()

    def _run(self, port: int, conf: Path, *extra: str) -> None:
        log = open(conf.parent / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        command = [str(embedded_redis.redis_server_binary()), str(conf), *extra]
        self.processes[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._wait_ping(port)

    def _wait_ping(self, port: int, timeout: float = 20) -> None:
        client = redis.Redis(port=port, socket_timeout=1)
        where = f"127.0.0.1:{port} (logs in {self.directory})"
        embedded_redis.wait_until_answering(client, where, self.processes[port], timeout)

    def _wait_in_sync(self, replica: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=replica, socket_timeout=1)
        while time.monotonic() < deadline:
            if client.info("replication").get("master_link_status") == "up":
                return
            time.sleep(0.05)
        raise TimeoutError(f"the replica on port {replica} did not sync within {timeout} s")

    def _wait_sentinels_know_replica(self, timeout: float = 20) -> None:
        """Sentinels learn replicas from the master's INFO; a failover before that has no one to promote."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = [redis.Redis(port=port, socket_timeout=1).info("sentinel").get("master0", {})
                     for port in self.sentinel_ports]
            if all(view.get("slaves", 0) >= 1 and view.get("sentinels", 0) >= 3 for view in views):
                return
            time.sleep(0.1)
        raise TimeoutError("the sentinels did not discover the replica and each other in time")
