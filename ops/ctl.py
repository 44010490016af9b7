"""`python -m ops.ctl ARGS` (`make ctl cmd="status"`): supervisorctl for the running service.

It uses DATA_DIR/supervisord.conf when DATA_DIR is set, else the configuration of the last
`make run` (supervisor/supervisord.conf), so it works from any shell after any `make run`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from config import Settings
from ops.supervise import CURRENT_CONF, config_path, supervisorctl


def main(argv: list[str], settings: Settings | None = None) -> int:
    """Pass the arguments to supervisorctl with the right configuration file."""
    conf = chosen_config(settings or Settings.from_env())
    if not conf.exists():
        sys.stderr.write(f"no supervisord configuration at {conf}: start the service with `make run` first\n")
        return 2
    result = supervisorctl(conf, *(argv or ["status"]))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def chosen_config(settings: Settings) -> Path:
    """DATA_DIR's configuration when DATA_DIR names another folder than the default, else the last run's."""
    own = config_path(settings)
    if settings.data_dir != Settings().data_dir or not CURRENT_CONF.exists():
        return own
    return CURRENT_CONF


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
