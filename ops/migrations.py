"""Create a new Alembic revision from the models: `python -m ops.migrations "message"`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from store.db import MIGRATIONS_DIR


def make_revision(message: str) -> None:
    """Autogenerate a revision against a scratch SQLite database at the current head."""
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'scratch.db'}"
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("sqlalchemy.url", url)
        command.upgrade(config, "head")
        command.revision(config, message=message, autogenerate=True)


if __name__ == "__main__":
    make_revision(" ".join(sys.argv[1:]) or "schema change")
