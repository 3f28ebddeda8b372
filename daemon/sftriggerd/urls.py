"""URLs in text that leaves the process (logs, `last_error`, the admin API): never with the
user-info part, which is where proxy and database URLs carry a password."""

from __future__ import annotations

import re

# scheme://user[:password]@host -> scheme://host. User-info is taken as anything up to the
# last "@" before a "/" or a line end: passwords carry every kind of punctuation (and, not
# percent-encoded, even spaces), so this errs towards removing too much, never too little.
# The scheme is matched from the start of its run of scheme characters only, and without
# backtracking into it: tried from every letter, a long run with no "://" after it (a 4 KiB
# answer of letters) cost quadratic time on the event loop. Digits before the first letter
# are kept with the scheme; the user-info removed is the same.
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.\-])(?P<scheme>[A-Za-z0-9+.\-]*+://)[^/\n]*@")


def strip_userinfo(text: str) -> str:
    """`text` with `user:password@` removed from every URL in it."""
    return _USERINFO.sub(r"\g<scheme>", text)


def store_url_shown(url: str) -> str:
    """A store URL fit to print: a PostgreSQL URL as `postgresql://host:port/db` only (its
    query may carry `password=`), any other with its user info removed."""
    if url.startswith(("postgresql:", "postgres:")):
        from .store.postgres.engine import describe  # psycopg only when the URL needs it

        return f"postgresql://{describe(url)}"
    return strip_userinfo(url)
