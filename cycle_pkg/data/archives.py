"""Unpacking the archives datasets are published in: tar (any compression), zip and rar.

tar and zip use the standard library; rar (UCF101's format) uses libarchive through the
``libarchive-c`` binding, which needs the system library (Debian/Ubuntu: libarchive13). The format
is recognised by the file's first bytes, not its name. Members that would land outside the target
folder (absolute paths, ``..``) and links are refused; a truncated or corrupt archive is an error
that names the file.
"""

from __future__ import annotations

import logging
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..errors import DatasetError

log = logging.getLogger(__name__)
RAR_MAGIC = b"Rar!\x1a\x07"


def archive_format(path: str | Path) -> str:
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(RAR_MAGIC):
        return "rar"
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError):
        pass
    raise DatasetError(f"{path}: not a tar, zip or rar archive (or truncated); delete it and download it again")


def extract_archive(path: str | Path, dest: str | Path, progress: bool = True) -> int:
    """Unpack ``path`` into the folder ``dest``; returns the number of files written."""
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    kind = archive_format(path)
    log.info("extracting %s (%s) into %s", path, kind, dest)
    try:
        if kind == "tar":
            return _extract_tar(path, dest, progress)
        if kind == "zip":
            return _extract_zip(path, dest, progress)
        return _extract_rar(path, dest, progress)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise DatasetError(
            f"{path}: truncated or corrupt {kind} archive ({err}); delete it and download it again"
        ) from err


def _safe_target(dest: Path, name: str, archive: Path) -> Path:
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        raise DatasetError(f"{archive}: member {name!r} would be written outside {dest}; refusing this archive")
    return dest.joinpath(*relative.parts)


def _extract_tar(path: Path, dest: Path, progress: bool) -> int:
    files = 0
    with tarfile.open(path) as archive, tqdm(unit=" files", desc=path.name, disable=not progress) as bar:
        for member in archive:
            if member.issym() or member.islnk():
                raise DatasetError(f"{path}: member {member.name!r} is a link; refusing this archive")
            archive.extract(member, dest, filter="data")
            files += member.isfile()
            bar.update(member.isfile())
    return files


def _extract_zip(path: Path, dest: Path, progress: bool) -> int:
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        for member in tqdm(members, unit=" files", desc=path.name, disable=not progress):
            _safe_target(dest, member.filename, path)
            archive.extract(member, dest)  # reads the whole member, so a bad CRC raises here
    return sum(not m.is_dir() for m in members)


def _extract_rar(path: Path, dest: Path, progress: bool) -> int:
    try:
        import libarchive
    except (ImportError, OSError) as err:  # OSError: the binding is there, the system library is not
        raise DatasetError(
            f"{path}: reading rar archives needs libarchive: pip install libarchive-c, and the system "
            f"library (Debian/Ubuntu: apt-get install libarchive13) ({err})"
        ) from err
    files = 0
    try:
        with libarchive.file_reader(str(path)) as archive:
            for entry in tqdm(archive, unit=" files", desc=path.name, disable=not progress):
                target = _safe_target(dest, entry.pathname, path)
                if entry.isdir:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not entry.isfile:
                    raise DatasetError(f"{path}: member {entry.pathname!r} is not a regular file; refusing it")
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as handle:
                    for block in entry.get_blocks():
                        handle.write(block)
                files += 1
    except libarchive.ArchiveError as err:
        raise DatasetError(
            f"{path}: truncated or corrupt rar archive ({err}); delete it and download it again"
        ) from err
    return files
