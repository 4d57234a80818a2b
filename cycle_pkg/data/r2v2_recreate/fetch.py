"""One source video, fetched with yt-dlp's Python API, and what its failures mean.

yt-dlp reports why a video cannot be had only in its message text (its extractors pass YouTube's
own reasons through). We sort them into four kinds, because each asks for something else:

- ``gone``: the video is not there any more, or not for us (removed, private, the account
  terminated, blocked in this country, members only, HTTP 404/410): recorded once, never retried;
- ``throttled``: the source refuses this session (HTTP 429, a bot check, "try again later"): worth
  another attempt after a pause, and a run that sees nothing else stops (see ``recreate``);
- ``refused``: the video needs what the run lacks (a signed-in session for age-restricted videos,
  i.e. a cookies file, or another format choice): recorded as failed, tried again by the next run,
  not within this one;
- ``transient``: anything else (a connection reset, a cut transfer, HTTP 5xx): retried with backoff.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal

from ...errors import ConfigError

log = logging.getLogger(__name__)
Kind = Literal["gone", "throttled", "refused", "transient"]

# (kind, cause, pattern), first match wins: throttling first, since YouTube's rate-limit message
# also calls the video unavailable.
CAUSES: tuple[tuple[Kind, str, str], ...] = (
    ("throttled", "too many requests", r"HTTP Error 429|Too Many Requests"),
    ("throttled", "bot check", r"not a bot|captcha"),
    ("throttled", "rate limited", r"try again later|rate-limited"),
    ("gone", "not found", r"HTTP Error 404|HTTP Error 410"),
    ("gone", "private", r"private video|video is private"),
    ("gone", "account terminated", r"account associated with this video has been terminated"),
    ("gone", "geo-blocked", r"not made this video available in your country|blocked it in your country|geo.?restrict"),
    ("gone", "copyright", r"copyright"),
    ("gone", "members only", r"members-only|join this channel"),
    ("refused", "no matching format", r"requested format is not available"),
    ("gone", "removed", r"has been removed|no longer available|video unavailable|video is (?:not |un)available"),
    ("refused", "age-restricted", r"confirm your age|age-restricted|inappropriate for some users"),
)


class FetchError(Exception):
    def __init__(self, kind: Kind, cause: str, reason: str):
        super().__init__(reason)
        self.kind, self.cause, self.reason = kind, cause, reason


def classify(message: str) -> FetchError:
    """The kind and short cause of a yt-dlp error message."""
    reason = re.sub(r"^ERROR:\s*", "", message.strip())
    for kind, cause, pattern in CAUSES:
        if re.search(pattern, reason, re.IGNORECASE):
            return FetchError(kind, cause, reason)
    return FetchError("transient", "download", reason)


class _Log:
    """yt-dlp's messages, at debug level: what matters reaches us as its exception."""

    def debug(self, message: str) -> None:
        log.debug("yt-dlp: %s", message)

    info = warning = error = debug


def _js_runtimes() -> dict[str, dict[str, str]]:
    """YouTube's player needs a JavaScript runtime: the Deno that the `deno` package installs, found
    by its path since the environment's bin folder need not be on PATH."""
    try:
        from deno import find_deno_bin

        return {"deno": {"path": find_deno_bin()}}
    except (ImportError, FileNotFoundError):
        return {"deno": {}}  # yt-dlp's default: a deno on PATH


JS_RUNTIMES = _js_runtimes()  # at import: find_deno_bin reads sysconfig, whose first use is not thread-safe


def fetch_video(
    url: str,
    folder: Path,
    name: str,
    *,
    video_format: str,
    cookies: str | None = None,
    timeout: float = 60.0,
    retries: int = 5,
) -> Path:
    """Download the video at ``url`` into ``folder`` as ``<name>.<ext>``; returns its path.
    Raises FetchError."""
    import yt_dlp

    options = {
        "format": video_format,
        "outtmpl": {"default": str(folder / f"{name}.%(ext)s")},
        "paths": {"temp": str(folder)},
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Log(),
        "socket_timeout": timeout,
        "retries": retries,  # yt-dlp's own, within one transfer (it resumes a cut one where it can)
        "fragment_retries": retries,
        "cachedir": False,
        "js_runtimes": {name: dict(where) for name, where in JS_RUNTIMES.items()},
    }
    if cookies:
        options["cookiefile"] = cookies
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            info = ydl.extract_info(url, download=True)
    except yt_dlp.utils.DownloadError as err:
        message = str(err)
        if "ffmpeg" in message.lower() and "not installed" in message.lower():
            raise ConfigError(
                f"data.r2v2_video_format {video_format!r} asks yt-dlp to merge formats, which needs ffmpeg: "
                "choose single formats (the frames need no audio), or install ffmpeg"
            ) from err
        raise classify(message) from err
    downloads = (info or {}).get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if path is None or not path.is_file():
        raise FetchError("transient", "download", f"yt-dlp reported no downloaded file for {url}")
    return path
