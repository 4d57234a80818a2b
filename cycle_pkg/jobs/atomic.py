"""Writing files so that a reader never sees a half-written one: temporary name, then rename."""

from __future__ import annotations

import contextlib
import glob
import json
import math
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
    ``path`` is left as it was. A failed write (a full disk) names ``path``."""
    path = Path(path)
    with named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path), suffix=".tmp")
    try:
        with named(path), os.fdopen(fd, "wb") as handle:
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


@contextlib.contextmanager
def named(path: Path) -> Iterator[None]:
    """An OSError raised without a file name (a write to a full disk) gets ``path`` as its own."""
    try:
        yield
    except OSError as err:
        if err.filename is not None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err


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
    """``data`` as strict JSON: a number that is not finite (a diverged probe's loss) is written as null,
    which every parser reads (a bare NaN is Python's extension; the metrics flag the divergence)."""
    write_text_atomic(path, json.dumps(finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def finite(data: Any) -> Any:
    """``data`` with every float that is not finite replaced by None."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(value) for value in data]
    return data


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
