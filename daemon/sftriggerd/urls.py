"""URLs in text that leaves the process (logs, `last_error`, the admin API): never with the
user-info part, which is where proxy and database URLs carry a password."""

from __future__ import annotations

import re

# scheme://user[:password]@host -> scheme://host. User-info is taken as anything up to the
# last "@" before a "/" or a line end: passwords carry every kind of punctuation (and, not
# percent-encoded, even spaces), so this errs towards removing too much, never too little.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/\n]*@")


def strip_userinfo(text: str) -> str:
    """`text` with `user:password@` removed from every URL in it."""
    return _USERINFO.sub(r"\g<scheme>", text)
