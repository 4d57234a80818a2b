"""R2V2 (Random Related Video Views) in its published layout.

``<root>/<split>/<id[:2]>/<id>_<frame:06d>.jpg`` with 11-character YouTube ids, and one id list per
split, ``<root>/r2v2_ids_<split>.txt``, a line per video: ``id,f1,f2,f3,f4``.

R2V2-S, the subset the paper trains its ResNet-18 ablations on (109k videos, 438k frames), is not
published as a list. Ours is defined by the video ids alone: rank the videos of the train list by
``sha256("r2v2-s:" + id)`` and keep the first ``count`` (109,500 at paper scale, i.e. 438,000 frames
of 4-frame videos). The choice does not depend on the order of the id list, a larger subset contains
every smaller one, and any copy of R2V2 yields the same subset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError


@dataclass(frozen=True)
class Video:
    video_id: str
    frames: tuple[int, ...]


def frame_relpath(split: str, video_id: str, frame: int) -> str:
    return f"{split}/{video_id[:2]}/{video_id}_{frame:06d}.jpg"


def id_list_path(root: str | Path, split: str) -> Path:
    return Path(root) / f"r2v2_ids_{split}.txt"


def read_id_list(path: str | Path) -> list[Video]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"{path}: R2V2 id list not found. Point data.r2v2_root at a copy of R2V2 (or run "
            "`cycle world` for the synthetic one)"
        )
    videos = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        video_id, *frames = (f.strip() for f in line.split(","))
        if not video_id or not frames or not all(f.isdigit() for f in frames):
            raise DatasetError(f"{path}:{number}: expected 'id,frame,frame,...', got {line!r}")
        videos.append(Video(video_id, tuple(int(f) for f in frames)))
    if not videos:
        raise DatasetError(f"{path}: the id list is empty; it should hold one line per video")
    return videos


def subset_rank(video_id: str) -> str:
    return hashlib.sha256(f"r2v2-s:{video_id}".encode()).hexdigest()


def select_subset(videos: list[Video], count: int, source: str | Path = "the id list") -> list[Video]:
    """R2V2-S: the ``count`` videos of lowest rank (see the module's docstring), in rank order."""
    if count > len(videos):
        raise DatasetError(
            f"data.r2v2_subset_videos ({count}) exceeds the {len(videos)} videos of {source}; lower it or "
            "set data.r2v2_subset=false"
        )
    return sorted(videos, key=lambda v: subset_rank(v.video_id))[:count]


def read_videos(root: str | Path, split: str, subset_videos: int | None = None) -> list[Video]:
    """The videos of a split's id list, or of its R2V2-S subset of ``subset_videos`` videos."""
    path = id_list_path(root, split)
    videos = read_id_list(path)
    return videos if subset_videos is None else select_subset(videos, subset_videos, path)


def load_videos(root: str | Path, split: str, subset_videos: int | None = None) -> list[list[Path]]:
    """The frame paths of every video of a split or of its subset (existence is checked lazily, per
    frame read)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: R2V2 folder not found. Set data.r2v2_root in params.yaml, or run `cycle world` "
            "to write the synthetic world"
        )
    if not (root / split).is_dir() or not any((root / split).iterdir()):
        raise DatasetError(f"{root / split}: no frames here; expected <prefix>/<id>_<frame>.jpg folders")
    videos = read_videos(root, split, subset_videos)
    return [[root / frame_relpath(split, v.video_id, f) for f in v.frames] for v in videos]


def latent_classes_path(root: str | Path, split: str) -> Path:
    """The synthetic world's ``video,class`` list of a split; the real R2V2 has none."""
    return Path(root) / f"latent_classes_{split}.csv"


def read_latent_classes(root: str | Path, split: str) -> dict[str, int] | None:
    """Video id -> latent class, where the synthetic world wrote them (never read by training)."""
    path = latent_classes_path(root, split)
    if not path.is_file():
        return None
    lines = path.read_text().splitlines()[1:]
    try:
        return {video: int(label) for video, label in (line.split(",") for line in lines if line.strip())}
    except ValueError as err:
        raise DatasetError(f"{path}: expected 'video,class' lines ({err}); rewrite it with `cycle world`") from None
