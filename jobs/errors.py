"""Which job errors are permanent (fail at once) and which are transient (retry)."""

from __future__ import annotations


class PermanentJobError(Exception):
    """An error that no retry can fix: bad data, unknown template, missing source document."""


def _permanent_types() -> tuple[type[BaseException], ...]:
    # Imported lazily: each lives in its own package and this module must stay import-light.
    from render import RenderError

    types: list[type[BaseException]] = [PermanentJobError, RenderError]
    try:
        from storage import StoragePermanentError

        types.append(StoragePermanentError)
    except ImportError:
        pass
    try:
        from store.mongo import MongoDocumentMissingError

        types.append(MongoDocumentMissingError)
    except ImportError:
        pass
    return tuple(types)


def is_permanent(exc: BaseException) -> bool:
    """True when retrying `exc` cannot help."""
    return isinstance(exc, _permanent_types())
