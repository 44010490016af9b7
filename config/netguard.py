"""Loopback-only network guard, switched on by LOOPBACK_ONLY for test runs.

Tests must never reach a non-loopback address, even when a refusal under test is broken, so the
test suite and every process it starts wrap `socket.socket.connect` to refuse other addresses.
"""

from __future__ import annotations

import ipaddress
import socket

_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


class NonLoopbackConnectionError(ConnectionRefusedError):
    """A connection to a non-loopback address was attempted while LOOPBACK_ONLY is on."""


def _is_allowed(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_allowed(address):
        raise NonLoopbackConnectionError(f"LOOPBACK_ONLY: refused connection to {address!r}")
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_allowed(address):
        raise NonLoopbackConnectionError(f"LOOPBACK_ONLY: refused connection to {address!r}")
    return _original_connect_ex(self, address)


def install_loopback_guard() -> None:
    """Refuse every socket connection that is not to a loopback address or a Unix socket."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def remove_loopback_guard() -> None:
    """Restore the original socket methods."""
    socket.socket.connect = _original_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _original_connect_ex  # type: ignore[method-assign]
