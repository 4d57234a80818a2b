"""OTB-2015, the tracking test set, read with the got10k toolkit and downloaded from its sources.

``<root>/<Sequence>/img/0001.jpg ...`` and ``groundtruth_rect.txt`` (x, y, w, h per line; commas,
tabs or spaces). The toolkit handles the dataset's known quirks: David is annotated on its frames
300-770 only; Football1, Freeman3, Freeman4 and Diving have more frames than boxes; Jogging and
Skating2 have two targets, named ``.1`` and ``.2``; Human4's first box file is empty. This module adds
what the toolkit leaves out: a missing sequence is an error here (the toolkit prints a warning and
goes on, or downloads it), and ``download_otb`` fetches only the missing sequences, from the URLs the
toolkit uses (``data.otb_url``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from got10k.datasets import OTB
from tqdm import tqdm

from ..errors import DatasetError
from .archives import extract_archive
from .download import download
from .toolkit import TrackingSequence, toolkit_prints_to_log, toolkit_sequences

log = logging.getLogger(__name__)
OTB_TARGETS = 100


def otb_folders() -> list[str]:
    """The 98 sequence folders of OTB-2015, as the got10k toolkit lists them (a private attribute:
    the toolkit keeps its only copy of the list there)."""
    return list(OTB._OTB__version_dict[2015])


def missing_otb(root: str | Path) -> list[str]:
    return [name for name in otb_folders() if not (Path(root) / name).is_dir()]


def otb_sequences(root: str | Path) -> list[TrackingSequence]:
    """The 100 targets of OTB-2015 (two-target sequences as ``<name>.1`` / ``<name>.2``)."""
    root = Path(root)
    missing = missing_otb(root)
    if missing:
        raise DatasetError(
            f"{root}: {len(missing)} of the {len(otb_folders())} OTB-2015 sequence folders are missing (e.g. "
            f"{', '.join(missing[:3])}). Run `cycle data otb` to download them, or copy them there"
        )
    with toolkit_prints_to_log():
        dataset = OTB(str(root), version=2015, download=False)
    if len(dataset) != OTB_TARGETS:
        without = sorted(set(otb_folders()) - {Path(d).name for d in dataset.seq_dirs})
        raise DatasetError(
            f"{root}: {len(dataset)} OTB-2015 targets instead of {OTB_TARGETS}; these folders have no "
            f"non-empty groundtruth*.txt: {', '.join(without) or '-'}"
        )
    return toolkit_sequences(
        dataset,
        (AssertionError, ValueError, IndexError),
        lambda source, name, err: (
            f"{source}: the boxes do not fit the frames of {name} ({err or 'the counts differ'}); the sequence "
            "is incomplete or altered: delete its folder and run `cycle data otb` again"
        ),
    )


def _sequence_folder(extracted: Path) -> Path:
    """Where an OTB zip's sequence landed: the folder holding img/ (the zips hold <name>/img/...)."""
    candidates = [extracted, *sorted(p for p in extracted.iterdir() if p.is_dir())]
    for folder in candidates:
        if (folder / "img").is_dir():
            return folder
    raise DatasetError(f"{extracted}: the archive holds no <sequence>/img/ folder")


def download_otb(
    root: str | Path, url: str, downloads: str | Path, *, retries: int = 5, timeout: float = 60.0
) -> list[str]:
    """Download and unpack the OTB-2015 sequences missing under ``root`` (``url`` holds ``{name}``);
    present ones are never fetched. Returns the names downloaded."""
    root, downloads = Path(root), Path(downloads)
    missing = missing_otb(root)
    if not missing:
        log.info("%s: all %d OTB-2015 sequences are present; nothing to download", root, len(otb_folders()))
        return []
    log.info(
        "%s: downloading %d missing OTB-2015 sequences (no checksums are published for them; the zip "
        "files' own CRCs are checked as they unpack)",
        root,
        len(missing),
    )
    root.mkdir(parents=True, exist_ok=True)
    for name in tqdm(missing, unit=" sequences", desc="OTB-2015"):
        archive = download(
            url.format(name=name),
            downloads / f"{name}.zip",
            setting="data.otb_url",
            retries=retries,
            timeout=timeout,
            warn_unpinned=False,
        )
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".tmp"))
        try:
            extract_archive(archive, staging, progress=False)
            _sequence_folder(staging).rename(root / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        archive.unlink()
    return missing
