"""Writing files so that a reader never sees a half-written one: temporary name, then rename."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

UMASK = os.umask(0o022)
os.umask(UMASK)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


@contextlib.contextmanager
def atomic_file(path: str | Path, before_replace: Callable[[Path], None] | None = None) -> Iterator[BinaryIO]:
    """Yield a binary handle on a temporary sibling of ``path``; on success it becomes ``path``.
    ``before_replace`` sees the complete temporary file first (to verify it, say); if it raises,
    ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~UMASK)  # mkstemp's 0600 would hide shared data from others
            os.fsync(handle.fileno())
        if before_replace is not None:
            before_replace(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def stale_temporaries(path: str | Path) -> list[Path]:
    """The temporaries of ``path`` that writers killed mid-write (SIGKILL, power loss) left behind."""
    path = Path(path)
    return sorted(path.parent.glob(f"{glob.escape(_temporary_prefix(path))}*.tmp"))


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_file(path) as handle:
        handle.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it replaces ``path`` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        tmp.chmod(0o777 & ~UMASK)  # mkdtemp's 0700 would hide shared data from others
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
