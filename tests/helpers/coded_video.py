"""Videos whose every frame shows its own frame number, for the re-creation tests.

The number is written as a 12-bit code of grey cells (3 rows of 4, bright for 1, dark for 0) that
fill the picture inside an optional black border: decoded frames, JPEG-compressed and resized, still
read back to the number exactly. Dark cells stay well above the border threshold, so only the
border is black.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

ROWS, COLUMNS = 3, 4
BRIGHT, DARK = 225, 40


def coded_frame(number: int, width: int, height: int) -> np.ndarray:
    image = np.empty((height, width, 3), np.uint8)
    for bit in range(ROWS * COLUMNS):
        row, column = divmod(bit, COLUMNS)
        cell = (slice(row * height // ROWS, (row + 1) * height // ROWS),
                slice(column * width // COLUMNS, (column + 1) * width // COLUMNS))  # fmt: skip
        image[cell] = BRIGHT if number >> bit & 1 else DARK
    return image


def read_code(image: np.ndarray) -> int:
    """The number a (decoded, possibly resized) frame shows: each cell's middle half, thresholded."""
    height, width = image.shape[:2]
    number = 0
    for bit in range(ROWS * COLUMNS):
        row, column = divmod(bit, COLUMNS)
        y0, y1 = row * height // ROWS, (row + 1) * height // ROWS
        x0, x1 = column * width // COLUMNS, (column + 1) * width // COLUMNS
        middle = image[y0 + (y1 - y0) // 4 : y1 - (y1 - y0) // 4, x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4]
        number |= int(middle.mean() > (BRIGHT + DARK) / 2) << bit
    return number


def write_coded_video(
    path: str | Path,
    frames: int,
    size: tuple[int, int] = (96, 64),
    border: tuple[int, int] = (0, 0),
    gop: int = 50,
    fps: int = 30,
) -> Path:
    """An H.264 .mp4 of ``frames`` frames showing 0, 1, 2, ... in a ``size`` (width, height) picture
    inside a black border of (vertical, horizontal) px on each side; a key frame every ``gop``
    frames only (no scene-cut key frames), and B-frames, so that decoding order differs from
    display order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    (width, height), (top, side) = size, border
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width + 2 * side, height + 2 * top, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "2", "crf": "20"}
        for number in range(frames):
            picture = np.zeros((height + 2 * top, width + 2 * side, 3), np.uint8)
            picture[top : top + height, side : side + width] = coded_frame(number, width, height)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return path
