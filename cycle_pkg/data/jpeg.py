"""Frames handed over as JPEG bytes, for the device data path: loader workers read the bytes and the
size in the header (what the crop draw needs), the training process decodes a whole batch at once.

A worker cannot decode to find out whether a frame is readable, so it checks what is cheap to check:
a JPEG header with a size, and the end-of-image marker near the end of the data (a truncated file
has none). A frame that passes and still fails to decode is rare; it is decoded as a grey frame,
counted and logged with its name (``decode_frames``). What is not rare is no frame's fault: a batch
none of whose frames decodes (a decoder without nvJPEG, a broken device), CUDA running out of memory,
or more unreadable frames than ``UnreadableWindow`` allows: those stop the run.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg

from ..errors import DatasetError

log = logging.getLogger(__name__)
END_OF_IMAGE = b"\xff\xd9"
TAIL = 4096  # bytes searched for the end marker: encoders may pad the file after it
# More than this share of the last WINDOW decoded frames unreadable is damaged data, not an odd frame
UNREADABLE_SHARE, WINDOW = 0.05, 2048


@dataclass(frozen=True)
class EncodedFrame:
    data: Tensor  # the JPEG file, uint8, 1-D
    height: int
    width: int
    name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """(3, height, width): the shape of the decoded RGB frame, so that draws read frames of both kinds alike."""
        return 3, self.height, self.width


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's header; None when the data is not a complete JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return None
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return (height, width) if END_OF_IMAGE in data[-TAIL:] else None


def encoded_frame(data: bytes, name: str) -> EncodedFrame | None:
    """The frame undecoded; None (and a warning) if its bytes are not a complete JPEG."""
    size = jpeg_size(data)
    if size is None:
        log.warning("skipping unreadable frame %s (not a complete JPEG)", name)
        return None
    return EncodedFrame(torch.frombuffer(bytearray(data), dtype=torch.uint8), *size, name)


def read_jpeg(path: str | Path) -> EncodedFrame | None:
    """A JPEG file, undecoded; None (and a warning) if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        log.warning("skipping unreadable frame %s (%s)", path, str(err).splitlines()[0][:120])
        return None
    return encoded_frame(data, str(path))


def decode_frames(
    data: list[Tensor], sizes: Tensor, names: list[str], device: torch.device
) -> tuple[list[Tensor], int]:
    """Decode JPEG bytes to uint8 (3, H, W) on ``device`` in one call (batched nvJPEG on CUDA); returns
    the frames and how many of them were unreadable (grey instead, each logged). A batch none of
    whose frames decodes raises DatasetError with the decoder's message; running out of memory raises."""
    if device.type == "cuda":
        # nvJPEG decodes on a stream of its own without waiting for this one: memory that this
        # stream's queued kernels still read could be handed to the decoder and overwritten
        torch.cuda.current_stream(device).synchronize()
    try:
        frames = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError as err:  # one bad frame fails the whole call: find it
        frames = [decode_one(frame, device) for frame in data]
        if all(frame is None for frame in frames):
            raise DatasetError(
                f"none of the {len(data)} frames of a batch decodes on {device} ({names[0]}, ...: "
                f"{str(err).splitlines()[0][:200]}): check the decoder (torchvision built with nvJPEG on CUDA) "
                "and the frames' files"
            ) from err
    unreadable = 0
    for k, (frame, (height, width)) in enumerate(zip(frames, sizes.tolist(), strict=True)):
        if frame is None:
            log.warning("skipping unreadable frame %s (it does not decode): a grey frame instead", names[k])
            frames[k] = torch.full((3, height, width), 128, dtype=torch.uint8, device=device)
            unreadable += 1
        elif tuple(frame.shape[-2:]) != (height, width):
            raise RuntimeError(f"{names[k]}: decoded to {tuple(frame.shape[-2:])}, its header says {(height, width)}")
    return frames, unreadable


def decode_one(data: Tensor, device: torch.device) -> Tensor | None:
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except torch.cuda.OutOfMemoryError:
        raise
    except RuntimeError:
        return None


class UnreadableWindow:
    """The unreadable frames among the last ``window`` decoded: more than ``share`` of them is
    damaged data (or a failing decoder) that grey frames would only hide."""

    def __init__(self, share: float = UNREADABLE_SHARE, window: int = WINDOW) -> None:
        self.limit, self.window = share * window, window
        self.batches: list[tuple[int, int]] = []  # (frames, unreadable) of the latest batches

    def add(self, frames: int, unreadable: int) -> None:
        """Count a batch's frames; raise DatasetError once the window holds too many unreadable ones."""
        self.batches.append((frames, unreadable))
        while sum(n for n, _ in self.batches[1:]) >= self.window:
            self.batches.pop(0)
        bad = sum(u for _, u in self.batches)
        if bad > self.limit:
            seen = sum(n for n, _ in self.batches)
            raise DatasetError(
                f"{bad} of the last {seen} frames do not decode (more than {self.limit:.0f} of {self.window}; "
                "the log's warnings name them): check those files, or rebuild the shards they come from"
            )
