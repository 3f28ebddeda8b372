"""The one root error and the small tree under it, shaped by what the caller does.

The CLI maps each class to an exit code: 2 for what the operator must fix in the file or the
command line, 1 for what went wrong while running.
"""

from __future__ import annotations


class SftriggerdError(Exception):
    """Root of every error sftriggerd raises on purpose."""

    exit_code = 1


class ConfigError(SftriggerdError):
    """The configuration file is wrong; `problems` lists every finding, one line each."""

    exit_code = 2

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{count} configuration {noun}")


class UsageError(SftriggerdError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


class NotAvailableError(SftriggerdError):
    """The command names a subsystem this version does not have yet."""

    exit_code = 1


class StoreError(SftriggerdError):
    """The store cannot be reached or refused an operation."""


class SalesforceError(SftriggerdError):
    """Salesforce refused a call or answered something we cannot use."""


class AuthenticationError(SalesforceError):
    """Salesforce rejected our credentials; retrying the same ones will not help."""


class PartFailedError(SftriggerdError):
    """A running part of the daemon died; the process stops."""
