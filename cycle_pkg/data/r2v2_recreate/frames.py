"""The listed frames of a downloaded video, taken as the R2V2 authors' script took them.

Their frame numbers are 0-based positions in the decoded video as OpenCV counts them
(``CAP_PROP_POS_FRAMES``): a frame's number is its presentation time after the stream's start,
times the frame rate, rounded. For each listed number we seek to the key frame at or before it,
decode forward and number every decoded frame from its pts in the same way, so that a frame is
found without decoding the video from its start and a key frame the seek lands on is never taken
for the frame asked for.

Then, as the authors did, the black border that all of a video's frames share is cut away (a row or
column is border when every channel of every pixel is below 10 in every frame), and each frame is
resized to at most 480 px on its long side and written as a JPEG.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

BLACK = 10  # the authors' threshold: a border pixel is below it in every channel of every frame
MAX_SIDE = 480  # R2V2's frames are at most 480 px on their long side
JPEG_QUALITY = 95  # OpenCV's default, with which the published frames were written


class VideoError(Exception):
    """The downloaded file cannot be opened or decoded (a broken or truncated download)."""


@dataclass(frozen=True)
class Decoded:
    frames: dict[int, np.ndarray]  # listed number -> H x W x 3 RGB
    missing: tuple[int, ...]  # listed numbers past the video's end
    decoded: int  # frames decoded in all, to tell seeking from decoding the whole video


def read_frames(path: str | Path, numbers: tuple[int, ...] | list[int]) -> Decoded:
    """Decode exactly the frames ``numbers`` of the video at ``path``."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as err:
        raise VideoError(f"cannot open the video: {err}") from err
    with container:
        if not container.streams.video:
            raise VideoError("the file holds no video stream")
        stream = container.streams.video[0]
        rate = stream.guessed_rate or stream.average_rate
        if not rate:
            raise VideoError("the video stream has no frame rate")
        start = stream.start_time or 0
        ticks_per_frame = 1 / (Fraction(rate) * stream.time_base)  # pts units between frames
        frames: dict[int, np.ndarray] = {}
        decoded = 0
        try:
            for target in sorted(set(numbers)):
                found, count = _decode_to(container, stream, target, start, ticks_per_frame)
                decoded += count
                if found is None:
                    break  # past the end: so are the later numbers
                frames[target] = found
        except av.FFmpegError as err:
            raise VideoError(f"cannot decode the video: {err}") from err
    return Decoded(frames, tuple(n for n in numbers if n not in frames), decoded)


def _number(frame: av.VideoFrame, start: int, ticks_per_frame: Fraction) -> int:
    if frame.pts is None:
        raise VideoError("the video's frames carry no timestamps")
    return round((frame.pts - start) / ticks_per_frame)


def _decode_to(container, stream, target: int, start: int, ticks_per_frame: Fraction) -> tuple[np.ndarray | None, int]:
    """The first frame numbered ``target`` or more (OpenCV's rule where a variable frame rate skips
    a number), decoding forward from the key frame before it; None past the end."""
    decoded = 0
    for seek_to in (start + int(target * ticks_per_frame), start):  # from the start if the seek overshot
        container.seek(seek_to, stream=stream, backward=True, any_frame=False)
        first = True
        for frame in container.decode(stream):
            decoded += 1
            number = _number(frame, start, ticks_per_frame)
            if number > target and first and seek_to != start:
                break  # landed after the target: the key frame index points too far
            first = False
            if number >= target:
                return frame.to_ndarray(format="rgb24"), decoded
        else:
            return None, decoded
    raise AssertionError("unreachable: the second pass starts at the stream's start")


def content_box(frames: list[np.ndarray]) -> tuple[slice, slice]:
    """The rows and columns inside the black border the frames share (all of them when a frame is
    black everywhere, or when the frames differ in size)."""
    if len({f.shape for f in frames}) != 1:
        return slice(None), slice(None)
    black = np.all(np.stack(frames) < BLACK, axis=(0, 3))  # H x W: black in every channel of every frame
    return _inside(black.all(axis=1)), _inside(black.all(axis=0))


def _inside(border: np.ndarray) -> slice:
    """From the first to the last line that is not border: the border runs at both ends go (the
    authors' script also drops the last line when there is no run at the far end; we keep it)."""
    kept = np.flatnonzero(~border)
    return slice(int(kept[0]), int(kept[-1]) + 1) if kept.size else slice(None)


def fit(image: np.ndarray, max_side: int = MAX_SIDE) -> Image.Image:
    """The frame resized so that its long side is at most ``max_side`` (never enlarged)."""
    picture = Image.fromarray(image)
    scale = max_side / max(picture.size)
    if scale >= 1:
        return picture
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    return picture.resize(size, Image.Resampling.BICUBIC)


def frame_jpegs(decoded: Decoded, max_side: int = MAX_SIDE) -> dict[int, bytes]:
    """The decoded frames with their shared border cut away, resized and JPEG-encoded."""
    if not decoded.frames:
        return {}
    rows, columns = content_box(list(decoded.frames.values()))
    jpegs = {}
    for number, image in decoded.frames.items():
        out = io.BytesIO()
        fit(np.ascontiguousarray(image[rows, columns]), max_side).save(out, format="JPEG", quality=JPEG_QUALITY)
        jpegs[number] = out.getvalue()
    return jpegs
