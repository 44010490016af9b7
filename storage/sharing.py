"""Who gets access to uploaded files: GOOGLE_DRIVE_SHARE_WITH and GOOGLE_DRIVE_SHARE_ANYONE.

GOOGLE_DRIVE_SHARE_WITH is a comma list of `type:value`, each given reader access:
`user:someone@example.com`, `group:team@example.com`, `domain:example.com`. Appending
`:writer` or `:commenter` gives that role instead (`user:editor@example.com:writer`).
GOOGLE_DRIVE_SHARE_ANYONE=true adds "anyone with the link can view".
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.base import StoragePermanentError

TYPES = ("user", "group", "domain")
ROLES = ("reader", "commenter", "writer")


@dataclass(frozen=True)
class ShareTarget:
    """One Drive permission to create on every upload."""

    type: str  # user | group | domain | anyone
    value: str | None = None  # email address or domain; None for anyone
    role: str = "reader"

    def permission(self) -> dict[str, str]:
        """The permissions.create request body."""
        body = {"type": self.type, "role": self.role}
        if self.type in ("user", "group"):
            body["emailAddress"] = str(self.value)
        elif self.type == "domain":
            body["domain"] = str(self.value)
        return body

    def __str__(self) -> str:
        return f"{self.type}:{self.value}" if self.value else self.type


def parse_sharing(share_with: str | None, *, anyone: bool = False) -> tuple[ShareTarget, ...]:
    """Parse GOOGLE_DRIVE_SHARE_WITH (+ SHARE_ANYONE) into targets; a malformed entry is a permanent error."""
    targets = [_parse_entry(entry.strip()) for entry in (share_with or "").split(",") if entry.strip()]
    if anyone:
        targets.append(ShareTarget("anyone"))
    return tuple(targets)


def _parse_entry(entry: str) -> ShareTarget:
    kind, _, rest = entry.partition(":")
    value, _, role = rest.partition(":")
    role = role or "reader"
    if kind == "anyone" and not rest:
        return ShareTarget("anyone")
    valid_value = "@" in value if kind in ("user", "group") else "." in value and "@" not in value
    if kind not in TYPES or not valid_value or role not in ROLES:
        raise StoragePermanentError(
            f"GOOGLE_DRIVE_SHARE_WITH entry {entry!r} is not valid: use user:EMAIL, group:EMAIL or "
            "domain:DOMAIN, optionally followed by :reader, :commenter or :writer, comma-separated"
        )
    return ShareTarget(kind, value, role)
