"""A small fake of the Dropbox API v2 and its OAuth token endpoint, on 127.0.0.1.

It speaks what DropboxStorage calls through the official SDK: the refresh-token grant, files/upload
(checking the content_hash the SDK sends), files/get_metadata, files/delete_v2,
sharing/create_shared_link_with_settings and sharing/list_shared_links, with Dropbox's JSON shapes
(the SDK validates them) and Bearer tokens it issued. Tests script failures per route
(`fake.fail("upload", 500)`, `fake.fail("upload", 429, retry_after=3)`), expire the access tokens,
set a quota, and inspect `fake.requests`, `fake.files` and `fake.links`. Shared links point at the fake
itself (`<base_url>/scl/fi/...`), which serves the file with `dl=1` and a preview page otherwise.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import defaultdict, deque
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.storage.loopback_http import FakeServer, serve_fake

BLOCK = 4 * 1024 * 1024  # content_hash: SHA-256 over the SHA-256 of each 4 MiB block
ROUTES = {
    "/oauth2/token": "token",
    "/2/files/upload": "upload",
    "/2/files/get_metadata": "get_metadata",
    "/2/files/delete_v2": "delete",
    "/2/sharing/create_shared_link_with_settings": "share",
    "/2/sharing/list_shared_links": "list_links",
}
LINK_PERMISSIONS = {
    "resolved_visibility": {".tag": "public"}, "can_revoke": True, "visibility_policies": [],
    "can_set_expiry": False, "can_remove_expiry": False, "allow_download": True, "can_allow_download": True,
    "can_disallow_download": False, "allow_comments": True, "team_restricts_comments": False,
}


@dataclass
class Recorded:
    """One request the server received: the route, headers (lower-case names), the JSON argument and body."""

    route: str
    headers: dict[str, str]
    arg: Any
    body: bytes


@dataclass
class Answer:
    """A scripted answer: a status, and the Dropbox error (409/401) or retry_after (429) it carries."""

    status: int
    error: dict[str, Any] | None = None
    retry_after: int | None = None
    store: bool = False  # upload only: store the file, then answer the failure


@dataclass
class FakeDropbox:
    """State of the fake: the app's credentials, files by lower-cased path, shared links, requests."""

    app_key: str = "app-key-1"
    app_secret: str = "app-secret-1"
    refresh_token: str = "refresh-token-1"
    quota: int | None = None  # bytes the account may hold; an upload past it is path/insufficient_space
    link_in_conflict: bool = True  # whether shared_link_already_exists carries the existing link
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, bool] = field(default_factory=dict)  # issued access token -> still valid
    requests: list[Recorded] = field(default_factory=list)
    scripted: dict[str, deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    base_url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, route: str, *statuses: int, error: dict[str, Any] | None = None, retry_after: int | None = None,
             store: bool = False) -> None:
        """Answer the next requests to `route` with these statuses."""
        for status in statuses:
            self.scripted[route].append(Answer(status, error, retry_after, store))

    def calls(self, route: str) -> list[Recorded]:
        """The requests received on one route (token, upload, get_metadata, delete, share, list_links)."""
        return [request for request in self.requests if request.route == route]

    def expire_tokens(self) -> None:
        """Every access token issued so far is answered expired_access_token from now on."""
        self.tokens = dict.fromkeys(self.tokens, False)

    def file(self, path: str) -> dict[str, Any]:
        """The stored file at `path` (any case)."""
        return self.files[path.lower()]


def content_hash(data: bytes) -> str:
    """Dropbox's content hash of `data`."""
    blocks = (hashlib.sha256(data[start:start + BLOCK]).digest() for start in range(0, len(data) or 1, BLOCK))
    return hashlib.sha256(b"".join(blocks)).hexdigest()


class DropboxHandler(BaseHTTPRequestHandler):
    """Dispatches to the FakeDropbox held by the server."""

    server: FakeServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        route = ROUTES.get(self.path.split("?")[0])
        if route is None:
            return self._send(404, f"no route {self.path}")
        headers = {key.lower(): value for key, value in self.headers.items()}
        with fake._lock:
            request = Recorded(route, headers, _argument(route, headers, body), body)
            fake.requests.append(request)
            status, answer, extra = _answer(fake, request)
        self._send(status, answer, extra_headers=extra)

    def do_GET(self) -> None:  # noqa: N802
        """A shared link: the file itself with dl=1 (as an attachment), else a preview page."""
        parts = urlsplit(self.path)
        fake = self.server.fake
        with fake._lock:
            path = next((path for path, url in fake.links.items() if urlsplit(url).path == parts.path), None)
            stored = fake.files.get(path or "")
        if stored is None:
            return self._send(404, "no such shared link")
        if parse_qs(parts.query).get("dl") != ["1"]:
            return self._send(200, f"<html><body>Preview of {stored['name']}</body></html>",
                              content_type="text/html; charset=utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Disposition", f'attachment; filename="{stored["name"]}"')
        self.send_header("Content-Length", str(len(stored["data"])))
        self.end_headers()
        self.wfile.write(stored["data"])

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, answer: Any, *, content_type: str | None = None,
              extra_headers: dict[str, str] | None = None) -> None:
        """JSON answers as "application/json" exactly (the SDK checks), text as text/plain unless told."""
        if isinstance(answer, str):
            payload, content_type = answer.encode(), content_type or "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(answer).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _argument(route: str, headers: dict[str, str], body: bytes) -> Any:
    if route == "token":
        return {key: values[0] for key, values in parse_qs(body.decode()).items()}
    if route == "upload":
        return json.loads(headers.get("dropbox-api-arg", "null"))
    return json.loads(body or b"null")


Result = tuple[int, Any, dict[str, str]]


def _answer(fake: FakeDropbox, request: Recorded) -> Result:
    if request.route == "token":
        return _token(fake, request.arg)
    refused = _check_token(fake, request.headers.get("authorization", ""))
    if refused is not None:
        return refused
    if fake.scripted[request.route]:
        return _scripted(fake, request, fake.scripted[request.route].popleft())
    handler = {"upload": _upload, "get_metadata": _get_metadata, "delete": _delete, "share": _share,
               "list_links": _list_links}[request.route]
    return handler(fake, request)


def _token(fake: FakeDropbox, form: dict[str, str]) -> Result:
    if fake.scripted["token"]:
        answer = fake.scripted["token"].popleft()
        return answer.status, "scripted failure" if answer.status >= 500 else answer.error, {}
    if form.get("grant_type") != "refresh_token":
        return 400, {"error": "unsupported_grant_type"}, {}
    if form.get("client_id") != fake.app_key or form.get("client_secret") != fake.app_secret:
        return 400, {"error": "invalid_client", "error_description": "Invalid client_id or client_secret"}, {}
    if form.get("refresh_token") != fake.refresh_token:
        return 400, {"error": "invalid_grant", "error_description": "refresh token is invalid or revoked"}, {}
    token = f"access-token-{next(fake._ids)}"
    fake.tokens[token] = True
    return 200, {"access_token": token, "token_type": "bearer", "expires_in": 14400}, {}


def _check_token(fake: FakeDropbox, authorization: str) -> Result | None:
    valid = fake.tokens.get(authorization.removeprefix("Bearer "))
    if valid:
        return None
    tag = "expired_access_token" if valid is False else "invalid_access_token"
    return 401, {"error_summary": f"{tag}/", "error": {".tag": tag}}, {}


def _scripted(fake: FakeDropbox, request: Recorded, answer: Answer) -> Result:
    if answer.store and request.route == "upload":
        _store(fake, request)
    if answer.status == 429:
        error = {"reason": {".tag": "too_many_requests"}, "retry_after": answer.retry_after or 1}
        return 429, {"error_summary": "too_many_requests/", "error": error}, {"Retry-After": str(error["retry_after"])}
    if answer.status >= 500:
        return answer.status, "scripted failure", {}
    return answer.status, {"error_summary": "scripted/", "error": answer.error or {".tag": "other"}}, {}


def _conflict(outer: str, inner: str) -> Result:
    """A 409 route error nested as Dropbox nests a lookup failure: {".tag": "path", "path": {".tag": "not_found"}}."""
    return 409, {"error_summary": f"{outer}/{inner}/", "error": {".tag": outer, outer: {".tag": inner}}}, {}


def _upload(fake: FakeDropbox, request: Recorded) -> Result:
    arg = request.arg
    if arg.get("content_hash") not in (None, content_hash(request.body)):
        return 409, {"error_summary": "content_hash_mismatch/", "error": {".tag": "content_hash_mismatch"}}, {}
    mode = arg.get("mode", "add")
    mode = mode.get(".tag") if isinstance(mode, dict) else mode
    existing = fake.files.get(arg["path"].lower())
    if existing is not None and mode != "overwrite":
        return 409, _write_failed("conflict"), {}
    used = sum(len(stored["data"]) for stored in fake.files.values()) - len(existing["data"] if existing else b"")
    if fake.quota is not None and used + len(request.body) > fake.quota:
        return 409, _write_failed("insufficient_space"), {}
    return 200, _public(_store(fake, request)), {}


def _write_failed(reason: str) -> dict[str, Any]:
    error = {".tag": "path", "reason": {".tag": reason}, "upload_session_id": ""}
    return {"error_summary": f"path/{reason}/", "error": error}


def _store(fake: FakeDropbox, request: Recorded) -> dict[str, Any]:
    path = request.arg["path"]
    number = next(fake._ids)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    previous = fake.files.get(path.lower())
    stored = {
        ".tag": "file", "name": path.rsplit("/", 1)[-1], "id": previous["id"] if previous else f"id:fake{number}",
        "client_modified": now, "server_modified": now, "rev": f"{number:012x}", "size": len(request.body),
        "path_lower": path.lower(), "path_display": path, "content_hash": content_hash(request.body),
        "is_downloadable": True, "data": request.body,
    }
    fake.files[path.lower()] = stored
    return stored


def _public(stored: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in stored.items() if key not in (".tag", "data")}


def _get_metadata(fake: FakeDropbox, request: Recorded) -> Result:
    stored = fake.files.get(request.arg["path"].lower())
    if stored is None:
        return _conflict("path", "not_found")
    return 200, {".tag": "file", **_public(stored)}, {}


def _delete(fake: FakeDropbox, request: Recorded) -> Result:
    path = request.arg["path"].lower()
    stored = fake.files.pop(path, None)
    if stored is None:
        return _conflict("path_lookup", "not_found")
    fake.links.pop(path, None)  # a deleted file's links stop working
    return 200, {"metadata": {".tag": "file", **_public(stored)}}, {}


def _link(fake: FakeDropbox, path: str) -> dict[str, Any]:
    stored = fake.files[path]
    return {".tag": "file", "url": fake.links[path], "name": stored["name"], "id": stored["id"],
            "path_lower": path, "link_permissions": LINK_PERMISSIONS,
            **{key: stored[key] for key in ("client_modified", "server_modified", "rev", "size")}}


def _share(fake: FakeDropbox, request: Recorded) -> Result:
    path = request.arg["path"].lower()
    if path not in fake.files:
        return _conflict("path", "not_found")
    if path in fake.links:
        exists: dict[str, Any] = {".tag": "shared_link_already_exists"}
        if fake.link_in_conflict:
            exists["shared_link_already_exists"] = {".tag": "metadata", "metadata": _link(fake, path)}
        return 409, {"error_summary": "shared_link_already_exists/", "error": exists}, {}
    number = next(fake._ids)
    fake.links[path] = f"{fake.base_url}/scl/fi/fake{number}/{fake.files[path]['name']}?rlkey=k{number}&dl=0"
    return 200, _link(fake, path), {}


def _list_links(fake: FakeDropbox, request: Recorded) -> Result:
    path = str(request.arg.get("path", "")).lower()
    links = [_link(fake, path)] if path in fake.links else []
    return 200, {"links": links, "has_more": False}, {}


def serve_fake_dropbox() -> AbstractContextManager[FakeDropbox]:
    """A FakeDropbox served on 127.0.0.1 for the duration of the block."""
    return serve_fake(DropboxHandler, FakeDropbox())
