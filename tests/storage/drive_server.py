"""A small fake of the Google Drive v3 API and the OAuth token endpoint, on 127.0.0.1.

It implements exactly what GoogleDriveStorage calls: multipart upload, files.list by appProperties,
files.get, files.delete, permissions.create and the service-account JWT grant. Tests can script
answers per route (`server.fail("upload", 500, 500)`) and inspect `server.requests` and `server.files`.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections import defaultdict, deque
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.storage.loopback_http import FakeServer, serve_fake

ACCESS_TOKEN = "fake-access-token-1"


@dataclass
class Recorded:
    """One request the server received."""

    route: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any = None
    media: bytes | None = None


@dataclass
class FakeDrive:
    """State of the fake: stored files, received requests, scripted failures."""

    folder_id: str = "folder-1"
    public_key: rsa.RSAPublicKey | None = None  # when set, JWT assertions must verify against it
    require_token: bool = False  # when set, API calls need "Authorization: Bearer <ACCESS_TOKEN>"
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    permissions: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    requests: list[Recorded] = field(default_factory=list)
    scripted: dict[str, deque[tuple[int, dict[str, Any], bool]]] = field(default_factory=lambda: defaultdict(deque))
    base_url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, route: str, *statuses: int, reason: str = "backendError", store: bool = False) -> None:
        """Answer the next requests to `route` with these statuses (after storing the upload if `store`)."""
        for status in statuses:
            self.scripted[route].append((status, {"reason": reason}, store))

    def calls(self, route: str) -> list[Recorded]:
        """The requests received on one route (upload, list, get, delete, permission, token)."""
        return [request for request in self.requests if request.route == route]


ROUTES = [
    ("POST", re.compile(r"/token"), "token"),
    ("POST", re.compile(r"/upload/drive/v3/files"), "upload"),
    ("GET", re.compile(r"/drive/v3/files"), "list"),
    ("GET", re.compile(r"/drive/v3/files/(?P<id>[^/]+)"), "get"),
    ("DELETE", re.compile(r"/drive/v3/files/(?P<id>[^/]+)"), "delete"),
    ("POST", re.compile(r"/drive/v3/files/(?P<id>[^/]+)/permissions"), "permission"),
]


class DriveHandler(BaseHTTPRequestHandler):
    """Dispatches to the FakeDrive held by the server."""

    server: FakeServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _dispatch(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        found = _route(self.command, parts.path)
        if found is None:
            return self._send(404, _error(404, "notFound", f"no route {self.command} {parts.path}"))
        route, params = found
        headers = _lower_keys(self.headers.items())
        request = Recorded(route, self.command, parts.path, parse_qs(parts.query), headers, body)
        with fake._lock:
            fake.requests.append(request)
            status, answer = self._answer(fake, route, request, params)
        self._send(status, answer)

    def _answer(self, fake: FakeDrive, route: str, request: Recorded, params: dict[str, str]) -> tuple[int, Any]:
        if route == "token":
            return _token(fake, request)
        if fake.require_token and request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, _error(401, "authError", "Request had invalid authentication credentials.")
        if route == "upload":
            _parse_multipart(request)
        if fake.scripted[route]:
            status, details, store = fake.scripted[route].popleft()
            if store and route == "upload":
                _store(fake, request)
            return status, _error(status, details["reason"], f"scripted {status}")
        handler = {"upload": _upload, "list": _list, "get": _get, "delete": _delete, "permission": _permission}
        return handler[route](fake, request, params.get("id", ""))

    def _send(self, status: int, answer: Any) -> None:
        payload = b"" if status == 204 else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _route(command: str, path: str) -> tuple[str, dict[str, str]] | None:
    for method, pattern, route in ROUTES:
        match = pattern.fullmatch(path)
        if method == command and match:
            return route, match.groupdict()
    return None


def _error(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}


def _parse_multipart(request: Recorded) -> None:
    """Split a multipart/related upload into its JSON metadata and its media bytes."""
    boundary = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
    assert boundary, "upload without a multipart boundary"
    metadata, media = request.body.split(b"--" + boundary[1].encode())[1:3]
    request.json = json.loads(_part_payload(metadata))
    request.media = _part_payload(media)


def _part_payload(part: bytes) -> bytes:
    """The bytes after a part's headers, without the line break that belongs to the next boundary."""
    separator = b"\r\n\r\n" if part.startswith(b"\r\n") else b"\n\n"
    payload = part.split(separator, 1)[1]
    return payload[:-2] if payload.endswith(b"\r\n") else payload[:-1]


def _store(fake: FakeDrive, request: Recorded) -> dict[str, Any]:
    file_id = f"file{next(fake._ids)}"
    stored = {
        "id": file_id,
        "webViewLink": f"https://drive.google.com/file/d/{file_id}/view?usp=drivesdk",
        "size": str(len(request.media or b"")),
        "metadata": request.json,
        "media": request.media,
        "trashed": False,
    }
    fake.files[file_id] = stored
    return stored


def _upload(fake: FakeDrive, request: Recorded, _: str) -> tuple[int, Any]:
    parents = request.json.get("parents") or []
    if parents and parents != [fake.folder_id]:
        return 404, _error(404, "notFound", f"File not found: {parents[0]}.")
    stored = _store(fake, request)
    return 200, {key: stored[key] for key in ("id", "webViewLink", "size")}


def _list(fake: FakeDrive, request: Recorded, _: str) -> tuple[int, Any]:
    query = request.query.get("q", [""])[0]
    wanted = re.search(r"key='(?P<key>[^']*)' and value='(?P<value>[^']*)'", query)
    found = [
        {key: stored[key] for key in ("id", "webViewLink", "size")}
        for stored in fake.files.values()
        if wanted
        and stored["metadata"].get("appProperties", {}).get(wanted["key"]) == wanted["value"]
        and (f"'{fake.folder_id}' in parents" not in query or stored["metadata"].get("parents") == [fake.folder_id])
    ]
    return 200, {"files": found[:1]}


def _get(fake: FakeDrive, request: Recorded, file_id: str) -> tuple[int, Any]:
    if file_id not in fake.files:
        return 404, _error(404, "notFound", f"File not found: {file_id}.")
    return 200, {"id": file_id, "trashed": fake.files[file_id]["trashed"]}


def _delete(fake: FakeDrive, request: Recorded, file_id: str) -> tuple[int, Any]:
    if fake.files.pop(file_id, None) is None:
        return 404, _error(404, "notFound", f"File not found: {file_id}.")
    return 204, None


def _permission(fake: FakeDrive, request: Recorded, file_id: str) -> tuple[int, Any]:
    if file_id not in fake.files:
        return 404, _error(404, "notFound", f"File not found: {file_id}.")
    request.json = json.loads(request.body)
    fake.permissions[file_id].append(request.json)
    return 200, {"id": f"perm{len(fake.permissions[file_id])}"}


def _token(fake: FakeDrive, request: Recorded) -> tuple[int, Any]:
    form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
    request.json = form
    if fake.scripted["token"]:
        status, details, _ = fake.scripted["token"].popleft()
        return status, {"error": details["reason"], "error_description": "scripted"}
    if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return 400, {"error": "unsupported_grant_type"}
    header, claims, signature = (_b64decode(part) for part in form["assertion"].split("."))
    request.json = {"form": form, "claims": json.loads(claims)}
    if fake.public_key is not None:
        signed = form["assertion"].rsplit(".", 1)[0].encode()
        try:
            fake.public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    return 200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _lower_keys(items: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in items}


def serve_fake_drive() -> AbstractContextManager[FakeDrive]:
    """A FakeDrive served on 127.0.0.1 for the duration of the block."""
    return serve_fake(DriveHandler, FakeDrive())
