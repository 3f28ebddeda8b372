"""Reading the files a configuration names (itself, and `${file:...}` secrets) safely: only a
regular file, only up to a size, only UTF-8. A FIFO, a device such as /dev/zero or /dev/stdin,
a directory or a huge file is refused instead of blocking startup or exhausting memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 1 << 20


def read_small_text(path: Path | str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The file's text; ValueError with the reason, fit for the operator, otherwise."""
    if not str(path):
        raise ValueError("names no file")
    try:
        # Non-blocking, so opening a FIFO without a writer returns at once; checked below.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(exc.strerror or type(exc).__name__) from exc
    except ValueError as exc:  # a NUL byte in the path
        raise ValueError("the path is not valid") from exc
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"larger than {max_bytes // 1024} KiB")
        data = os.read(descriptor, max_bytes + 1)
    except OSError as exc:
        raise ValueError(exc.strerror or type(exc).__name__) from exc
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:  # grew since it was looked at
        raise ValueError(f"larger than {max_bytes // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from exc
