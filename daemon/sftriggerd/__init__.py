"""sftriggerd: watches a Salesforce org and calls signed webhooks when records change."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sftriggerd")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
