"""R2V2 (Random Related Video Views) in its published layout.

``<root>/<split>/<id[:2]>/<id>_<frame:06d>.jpg`` with 11-character YouTube ids, and one id list per
split, ``<root>/r2v2_ids_<split>.txt``, a line per video: ``id,f1,f2,f3,f4``.
"""

from __future__ import annotations

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


def load_videos(root: str | Path, split: str) -> list[list[Path]]:
    """The frame paths of every video of a split (existence is checked lazily, per frame read)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: R2V2 folder not found. Set data.r2v2_root in params.yaml, or run `cycle world` "
            "to write the synthetic world"
        )
    if not (root / split).is_dir() or not any((root / split).iterdir()):
        raise DatasetError(f"{root / split}: no frames here; expected <prefix>/<id>_<frame>.jpg folders")
    return [
        [root / frame_relpath(split, v.video_id, f) for f in v.frames] for v in read_id_list(id_list_path(root, split))
    ]
