"""Reading a user's file: a regular file of bounded size, never a FIFO or a device.

Every file amirun reads on a user's word (an execution JSON, a schedule file,
the template it names) goes through `read_regular_file`: it opens without
blocking (a FIFO with no writer would hang `open` forever), refuses anything
that is not a regular file (`/dev/zero` never ends, a FIFO may never end) and
reads at most `limit + 1` bytes, so no file can fill the memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnreadableFile(Exception):
    """The file cannot be read; the message says why in one line, without the path."""


class FileTooLarge(UnreadableFile):
    """The file holds more than the caller's limit; the caller words the message."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit:,} bytes")
        self.limit = limit


def read_regular_file(path: Path | str, limit: int, what: str = "a file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes; UnreadableFile otherwise.

    `what` names what the file should have been ("a schedule file"), for messages.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFile("no such file") from None
    except IsADirectoryError:
        raise UnreadableFile(f"is a directory, not {what}") from None
    except PermissionError:
        raise UnreadableFile("cannot read it: permission denied") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UnreadableFile(f"cannot read it: {reason}") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        if stat.S_ISDIR(mode):
            raise UnreadableFile(f"is a directory, not {what}")
        raise UnreadableFile(f"not a regular file (a FIFO, a device or a socket), so not {what}")
    with os.fdopen(descriptor, "rb") as file:
        try:
            data = file.read(limit + 1)
        except OSError as exc:
            raise UnreadableFile(f"cannot read it: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data
