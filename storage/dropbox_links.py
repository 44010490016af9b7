"""Dropbox shared links, without importing the SDK (the API only rewrites a recorded link)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def download_url(shared_link: str) -> str:
    """The shared link with `dl=1`: Dropbox then sends the file itself instead of its preview page."""
    parts = urlsplit(shared_link)
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != "dl"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("dl", "1")])))
