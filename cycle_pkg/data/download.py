"""Fetching a file by URL: http(s) with resume and retries, file:// URLs and local paths.

A source is written as pip writes pinned archives, ``URL#sha256=<hex>`` (or ``#md5=<hex>``). Bytes
go to ``<dest>.part``; an interrupted transfer continues from there with an HTTP Range request,
and the file is renamed to ``dest`` only once it is complete and matches its checksum. A file
that is already at ``dest`` is never fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import ConfigError, DatasetError

log = logging.getLogger(__name__)
CHUNK = 1 << 20
DIGEST_LENGTHS = {"sha256": 64, "md5": 32}
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "cycle-contrast-data/1"


@dataclass(frozen=True)
class Source:
    url: str
    checksum: str | None = None  # "sha256:<hex>" or "md5:<hex>"

    @property
    def filename(self) -> str:
        name = Path(urllib.parse.unquote(urllib.parse.urlsplit(self.url).path)).name
        if not name:
            raise ConfigError(f"{self.url}: the URL names no file")
        return name


def parse_source(text: str, setting: str = "URL") -> Source:
    """``https://host/a.tar#sha256=<hex>`` -> Source; ``setting`` names the config key in errors."""
    url, _, fragment = text.partition("#")
    if not url:
        raise ConfigError(f"{setting}: empty URL")
    if not fragment:
        return Source(url)
    algorithm, _, digest = fragment.partition("=")
    if DIGEST_LENGTHS.get(algorithm) != len(digest) or not re.fullmatch(r"[0-9a-fA-F]+", digest):
        raise ConfigError(f"{setting}: {text!r}: expected URL#sha256=<64 hex digits> or URL#md5=<32 hex digits>")
    return Source(url, f"{algorithm}:{digest.lower()}")


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class TransientError(Exception):
    """A failure worth another attempt (connection reset, timeout, HTTP 5xx, short transfer)."""


def download(
    source: Source | str,
    dest: str | Path,
    *,
    setting: str = "the URL",
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress: bool = True,
    warn_unpinned: bool = True,
) -> Path:
    """Fetch ``source`` to ``dest`` unless it is there already; returns ``dest``.

    ``setting`` names where the URL and checksum come from, for the error messages; a download
    without a checksum logs its sha256, as a warning unless ``warn_unpinned`` is false (for sources
    that publish none).
    """
    source = parse_source(source, setting) if isinstance(source, str) else source
    dest = Path(dest)
    if dest.is_file():
        if source.checksum:
            _verify(dest, source, setting, remove=False)
        log.info("%s is present; not downloading it again", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    scheme = urllib.parse.urlsplit(source.url).scheme
    if scheme in ("http", "https"):
        _fetch_http(source.url, part, setting, retries, timeout, backoff, progress)
    elif scheme in ("file", ""):
        _copy_local(source.url, part, setting, progress)
    else:
        raise ConfigError(f"{setting}: {source.url}: unsupported URL scheme {scheme!r} (use http, https or file)")
    if source.checksum:
        _verify(part, source, setting, remove=True, shown_as=dest)
    else:
        log.log(
            logging.WARNING if warn_unpinned else logging.INFO,
            "%s: no checksum configured; its sha256 is %s (append #sha256=<that> to %s to pin it)",
            source.url,
            file_digest(part),
            setting,
        )
    os.replace(part, dest)
    return dest


def _verify(path: Path, source: Source, setting: str, remove: bool, shown_as: Path | None = None) -> None:
    algorithm, expected = source.checksum.split(":", 1)
    actual = file_digest(path, algorithm)
    if actual == expected:
        return
    shown = shown_as or path
    if remove:
        path.unlink()
        action = (
            "The download was deleted: run the command again to fetch it anew, or, if the file changed at its "
            f"source, update the checksum in {setting}"
        )
    else:
        action = f"Delete it to download it again, or fix the checksum in {setting} if this file is the right one"
    raise DatasetError(
        f"{shown}: {algorithm} checksum mismatch for {source.url}: expected {expected}, got {actual}. {action}"
    )


def _local_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    return Path(urllib.request.url2pathname(parts.path)) if parts.scheme == "file" else Path(url)


def _copy_local(url: str, part: Path, setting: str, progress: bool) -> None:
    path = _local_path(url)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found (from {setting}); check the path")
    with open(path, "rb") as src, open(part, "wb") as dst:
        with tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, disable=not progress) as bar:
            while block := src.read(CHUNK):
                dst.write(block)
                bar.update(len(block))


def _fetch_http(url: str, part: Path, setting: str, retries: int, timeout: float, backoff: float, progress: bool):
    last_error: Exception | None = None
    for attempt in range(retries):
        try:
            _http_attempt(url, part, setting, timeout, progress)
            return
        except TransientError as err:
            last_error = err
            if attempt + 1 < retries:
                delay = min(backoff * 2**attempt, 60.0)
                log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", url, err, delay, attempt + 2, retries)
                time.sleep(delay)
    raise DatasetError(
        f"could not download {url} after {retries} attempts (last: {last_error}). Check the network and "
        f"{setting}, or put the file at {part.with_suffix('')} by hand; what was received is kept in {part} "
        "and a rerun resumes from it"
    )


def _http_attempt(url: str, part: Path, setting: str, timeout: float, progress: bool) -> None:
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT, **({"Range": f"bytes={offset}-"} if offset else {})}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            total = _content_range_total(err.headers.get("Content-Range"))
            if total == offset:  # the previous attempt had received everything
                return
            part.unlink()
            raise TransientError(f"HTTP 416 for a resume at byte {offset}; starting over") from err
        if err.code in TRANSIENT_HTTP:
            raise TransientError(f"HTTP {err.code} {err.reason}") from err
        raise DatasetError(f"{url}: HTTP {err.code} {err.reason}. Check {setting}") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise TransientError(str(getattr(err, "reason", err))) from err

    with contextlib.closing(response):
        if response.status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise TransientError(f"the server resumed at byte {start}, not {offset}; starting over")
            mode = "ab"
        else:  # 200: the whole file, also when the server ignores Range
            offset, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        name = part.name.removesuffix(".part")
        with (
            open(part, mode) as handle,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=name, disable=not progress) as bar,
        ):
            try:
                while block := response.read(CHUNK):
                    handle.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as err:  # a socket timeout is an OSError
                raise TransientError(f"transfer interrupted at byte {received} ({err})") from err
    if total is not None and received < total:
        raise TransientError(f"transfer ended at byte {received} of {total}")
    if total is not None and received > total:
        part.unlink()
        raise TransientError(f"received {received} bytes, more than the announced {total}; starting over")


def _content_range_start(header: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-", header or "")
    return int(match.group(1)) if match else None


def _content_range_total(header: str | None) -> int | None:
    match = re.search(r"/(\d+)$", header or "")
    return int(match.group(1)) if match else None
