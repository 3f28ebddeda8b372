"""`sftriggerd run` with one endpoint's URL set past the configuration's checks, for tests of
what the running daemon does with a URL the file would be refused for: the configuration
refuses what it can foresee, and the sender must still survive what slips through.

    python unchecked_url_daemon.py ENDPOINT URL run --config PATH

Everything else is the real command: the file is read and checked as written (with the
endpoint's own, valid URL), then that one URL is swapped in.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sftriggerd import cli
from sftriggerd.config import Settings


def command(endpoint: str, url: str) -> tuple[str, ...]:
    """The command line that starts such a daemon, before `run --config PATH`."""
    return (sys.executable, str(Path(__file__).resolve()), endpoint, url)


def main() -> int:
    endpoint, url, *argv = sys.argv[1:]
    checked = cli.load_settings

    def unchecked(path: Path, **options: Any) -> Settings:
        settings = checked(path, **options)
        endpoints = [
            found.model_copy(update={"url": url}) if found.name == endpoint else found
            for found in settings.endpoints
        ]
        return settings.model_copy(update={"endpoints": endpoints})

    cli.load_settings = unchecked
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
