"""`python -m ops.ctl ARGS`: supervisorctl for the running service (`make ctl cmd="status"`)."""

from __future__ import annotations

import sys

from config import Settings
from ops.supervise import supervisor_env, supervisorctl


def main(argv: list[str]) -> int:
    """Pass the arguments to supervisorctl with the service's environment."""
    result = supervisorctl(supervisor_env(Settings.from_env()), *(argv or ["status"]))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
