"""Writing a file atomically: readers see the old content or the new, never half of it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

NEW_FILE_MODE = 0o644
"""Permissions of a file that did not exist before."""


def replace_file(path: Path, write: Callable[[Path], None]) -> None:
    """Lets `write` fill a temporary file beside `path`, fsyncs it, then swaps it in.

    The new file keeps the old one's permissions (0644 for a new file); on any failure the
    temporary file is removed and the old file is untouched.
    """
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else NEW_FILE_MODE
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def replace_text(path: Path, text: str) -> None:
    """Replaces `path` with `text` (UTF-8, newlines as given), atomically."""

    def write(temporary: Path) -> None:
        temporary.write_text(text, "utf-8", newline="")

    replace_file(path, write)
