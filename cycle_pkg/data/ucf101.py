"""UCF101: the videos, the official split files, decoding with PyAV, and how the evaluations sample
frames and clips.

Layout, as the official archives unpack: ``<root>/UCF-101/<Class>/v_<Class>_g<gg>_c<cc>.avi`` (from
UCF101.rar) and ``<root>/ucfTrainTestlist/`` (from the splits zip) with ``classInd.txt`` (``1
ApplyEyeMakeup``), ``trainlist0<k>.txt`` (``<Class>/<file>.avi <label>``, 1-based) and
``testlist0<k>.txt`` (``<Class>/<file>.avi``: the label is the class folder's). Labels here are
0-based.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import av
import numpy as np
import torch

from ..errors import DatasetError
from ..jobs.atomic import atomic_dir
from .archives import extract_archive
from .download import download, parse_source

log = logging.getLogger(__name__)
VIDEOS = "UCF-101"
SPLITS = "ucfTrainTestlist"


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(
            f"{path} not found: UCF101's split files are missing. Run `cycle data ucf101`, or point "
            "data.ucf101_root at a folder holding UCF-101/ and ucfTrainTestlist/"
        )
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_classes(root: str | Path) -> list[str]:
    """The class names of classInd.txt, in label order."""
    path = Path(root) / SPLITS / "classInd.txt"
    classes = []
    for number, line in enumerate(_lines(path), start=1):
        index, _, name = line.partition(" ")
        if index != str(number) or not name:
            raise DatasetError(f"{path}:{number}: expected '{number} <ClassName>', got {line!r}")
        classes.append(name.strip())
    return classes


def read_split(root: str | Path, split: int = 1) -> tuple[list[str], list[tuple[Path, int]], list[tuple[Path, int]]]:
    """(classes, train, test) of one of the three official splits; (video path, 0-based label) pairs.
    Every listed video must exist."""
    if split not in (1, 2, 3):
        raise DatasetError(f"UCF101 split {split}: the official splits are 1, 2 and 3")
    root = Path(root)
    classes = read_classes(root)
    label_of = {name.lower(): label for label, name in enumerate(classes)}
    videos = root / VIDEOS
    train, test = [], []
    for kind, samples in (("train", train), ("test", test)):
        path = root / SPLITS / f"{kind}list0{split}.txt"
        for number, line in enumerate(_lines(path), start=1):
            relpath, _, label_text = line.partition(" ")
            folder = relpath.split("/")[0].lower()
            if folder not in label_of:
                raise DatasetError(f"{path}:{number}: class folder of {relpath!r} is not in classInd.txt")
            label = label_of[folder]
            if label_text and int(label_text) - 1 != label:
                raise DatasetError(f"{path}:{number}: label {label_text} contradicts the class folder of {relpath!r}")
            samples.append((videos / relpath, label))
    missing = [str(p) for p, _ in train + test if not p.is_file()]
    if missing:
        raise DatasetError(
            f"{videos}: {len(missing)} of the {len(train) + len(test)} videos of split {split} are missing "
            f"(e.g. {missing[0]}). Run `cycle data ucf101` to download and unpack them"
        )
    return classes, train, test


def read_video(path: str | Path) -> tuple[torch.Tensor, float]:
    """All frames of a video as uint8 (T, H, W, 3), and its frame rate."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except (av.FFmpegError, IndexError, OSError) as err:
        raise DatasetError(f"{path}: cannot decode this video ({err}); run `cycle data ucf101` again") from err
    if not frames:
        raise DatasetError(f"{path}: no frames decoded; the file is truncated or corrupt")
    return torch.from_numpy(np.stack(frames)), fps


def linspace_frames(num_frames: int, count: int) -> np.ndarray:
    """``count`` frame indices at linspace(0, num_frames - 1, count), rounded (frame retrieval)."""
    return np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64)


def centred_clips(num_frames: int, frames_per_clip: int, clips: int) -> np.ndarray:
    """(clips, frames_per_clip) indices of consecutive frames, the clips centred at
    linspace(frames_per_clip / 2, num_frames - frames_per_clip / 2, clips) (clip retrieval); indices
    past either end repeat the end frame."""
    half = frames_per_clip / 2
    centres = np.linspace(half, max(half, num_frames - half), clips)
    starts = np.round(centres - half).astype(np.int64)
    return np.clip(starts[:, None] + np.arange(frames_per_clip), 0, num_frames - 1)


def clip_frames(
    num_frames: int,
    video_fps: float,
    frames_per_clip: int,
    clip_fps: float,
    clips: int,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """(clips, frames_per_clip) indices of clips resampled to ``clip_fps`` (e.g. 8 frames at 16 fps
    from 25 fps video). Starts are spread evenly over the video (testing), or uniformly random when a
    ``generator`` is given (training). A clip longer than the video starts at its first frame and
    loops over the frames it has, as AVID-CMA pads a short clip."""
    step = video_fps / clip_fps
    offsets = np.arange(frames_per_clip) * step
    room = max(0.0, num_frames - offsets[-1] - 1)
    if generator is None:
        starts = np.linspace(0, room, clips)
    else:
        starts = torch.rand(clips, generator=generator, dtype=torch.float64).numpy() * room
    indices = np.floor(starts[:, None] + offsets).astype(np.int64)
    within = int((np.floor(offsets) < num_frames).sum())
    if within < frames_per_clip:
        indices = indices[:, np.arange(frames_per_clip) % within]
    return np.minimum(indices, num_frames - 1)  # against float rounding at the last frame


def ucf101_present(root: str | Path) -> bool:
    root = Path(root)
    return (root / SPLITS / "classInd.txt").is_file() and (root / VIDEOS).is_dir()


def prepare_ucf101(
    root: str | Path,
    videos_url: str,
    splits_url: str,
    downloads: str | Path,
    *,
    retries: int = 5,
    timeout: float = 60.0,
    keep_archives: bool = False,
) -> Path:
    """Download UCF101's two archives (videos: .rar; split files: .zip), unpack them into ``root``
    and check split 1; nothing is fetched when ``root`` already holds the dataset."""
    root, downloads = Path(root), Path(downloads)
    if ucf101_present(root):
        log.info("%s: UCF101 is present; nothing to download", root)
        read_split(root, 1)
        return root
    archives = []
    for text, setting in ((videos_url, "data.ucf101_url"), (splits_url, "data.ucf101_splits_url")):
        source = parse_source(text, setting)
        archives.append(
            download(source, downloads / source.filename, setting=setting, retries=retries, timeout=timeout)
        )
    with atomic_dir(root) as staging:
        for archive in archives:
            extract_archive(archive, staging)
        if not ucf101_present(staging):
            found = ", ".join(sorted(p.name for p in staging.iterdir())) or "nothing"
            raise DatasetError(f"the UCF101 archives unpacked to {found}, not {VIDEOS}/ and {SPLITS}/")
        classes, train, test = read_split(staging, 1)
    log.info(
        "%s: UCF101 with %d classes, split 1: %d train / %d test videos", root, len(classes), len(train), len(test)
    )
    if not keep_archives:
        for archive in archives:
            archive.unlink()
        with contextlib.suppress(OSError):  # the folder goes only if nothing else is in it
            downloads.rmdir()
    return root
