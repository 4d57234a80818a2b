"""The tracking benchmarks, read with the got10k toolkit: OTB-2015 (testing) and GOT-10k (training).

OTB-2015: ``<root>/<Sequence>/img/0001.jpg ...`` and ``groundtruth_rect.txt`` (x, y, w, h per line;
commas, tabs or spaces). The toolkit handles the dataset's known quirks: David is annotated on its
frames 300-770 only; Football1, Freeman3, Freeman4 and Diving have more frames than boxes; Jogging and
Skating2 have two targets, named ``.1`` and ``.2``; Human4's first box file is empty. This module adds
what the toolkit leaves out: a missing sequence is an error here (the toolkit prints a warning and
goes on, or downloads it), and ``download_otb`` fetches only the missing sequences, from the URLs the
toolkit uses (``data.otb_url``).

GOT-10k: ``<root>/<subset>/list.txt`` and, per sequence, ``00000001.jpg ...``, ``groundtruth.txt``,
``meta_info.ini``, ``absence.label``, ``cover.label``, ``cut_by_image.label`` (test sequences have
the first box only). It is distributed after registration, so it is never downloaded.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from got10k.datasets import OTB, GOT10k
from tqdm import tqdm

from ..errors import DatasetError
from .archives import extract_archive
from .download import download

log = logging.getLogger(__name__)
Sequence = tuple[str, list[Path], np.ndarray]  # name, frame files, boxes (N, 4) as x, y, w, h
OTB_TARGETS = 100
GOT10K_SUBSETS = ("train", "val", "test")
GOT10K_LABELS = ("absence.label", "cover.label", "cut_by_image.label")
GOT10K_SITE = "http://got-10k.aitestunion.com/"


def otb_folders() -> list[str]:
    """The 98 sequence folders of OTB-2015, as the got10k toolkit lists them (a private attribute:
    the toolkit keeps its only copy of the list there)."""
    return list(OTB._OTB__version_dict[2015])


def missing_otb(root: str | Path) -> list[str]:
    return [name for name in otb_folders() if not (Path(root) / name).is_dir()]


@contextlib.contextmanager
def _toolkit_prints_to_log() -> Any:
    """The toolkit reports problems with print(); route them to the log."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        yield
    for line in printed.getvalue().splitlines():
        if line.strip():
            log.info("got10k: %s", line.strip())


def _check_boxes(name: str, files: list[str], boxes: np.ndarray, source: str) -> Sequence:
    if not files:
        raise DatasetError(f"{source}: sequence {name} has no frames")
    boxes = np.atleast_2d(np.asarray(boxes, dtype=np.float64))
    if boxes.shape[1] != 4:
        raise DatasetError(f"{source}: expected 4 numbers (x, y, w, h) per line, got {boxes.shape[1]}")
    return name, [Path(f) for f in files], boxes


def otb_sequences(root: str | Path) -> list[Sequence]:
    """The 100 targets of OTB-2015 (two-target sequences as ``<name>.1`` / ``<name>.2``)."""
    root = Path(root)
    missing = missing_otb(root)
    if missing:
        raise DatasetError(
            f"{root}: {len(missing)} of the {len(otb_folders())} OTB-2015 sequence folders are missing (e.g. "
            f"{', '.join(missing[:3])}). Run `cycle data otb` to download them, or copy them there"
        )
    with _toolkit_prints_to_log():
        dataset = OTB(str(root), version=2015, download=False)
    if len(dataset) != OTB_TARGETS:
        without = sorted(set(otb_folders()) - {Path(d).name for d in dataset.seq_dirs})
        raise DatasetError(
            f"{root}: {len(dataset)} OTB-2015 targets instead of {OTB_TARGETS}; these folders have no "
            f"non-empty groundtruth*.txt: {', '.join(without) or '-'}"
        )
    sequences = []
    for number, name in enumerate(dataset.seq_names):
        source = dataset.anno_files[number]
        try:
            files, boxes = dataset[number]
        except (AssertionError, ValueError, IndexError) as err:
            raise DatasetError(
                f"{source}: the boxes do not fit the frames of {name} ({err or 'the counts differ'}); the sequence "
                "is incomplete or altered: delete its folder and run `cycle data otb` again"
            ) from err
        sequences.append(_check_boxes(name, files, boxes, source))
    return sequences


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


def _got10k_list(root: Path, subset: str) -> list[str]:
    if subset not in GOT10K_SUBSETS:
        raise DatasetError(f"GOT-10k subset {subset!r}: expected one of {', '.join(GOT10K_SUBSETS)}")
    list_file = root / subset / "list.txt"
    if not list_file.is_file():
        raise DatasetError(
            f"{list_file} not found: no GOT-10k {subset} set at {root}. GOT-10k is distributed after "
            f"registration at {GOT10K_SITE}; download it there and set data.got10k_root to the folder "
            "holding train/, val/ and test/"
        )
    names = list_file.read_text().split()
    missing = [n for n in names if not (root / subset / n).is_dir()]
    if missing:
        raise DatasetError(
            f"{root / subset}: {len(missing)} of the {len(names)} sequences in list.txt have no folder "
            f"(e.g. {missing[0]})"
        )
    return names


def got10k_sequences(root: str | Path, subset: str) -> list[Sequence]:
    """The sequences of a GOT-10k subset; a test sequence has its first box only."""
    root = Path(root)
    _got10k_list(root, subset)
    with _toolkit_prints_to_log():
        dataset = GOT10k(str(root), subset=subset)
    sequences = []
    for number, name in enumerate(dataset.seq_names):
        source = dataset.anno_files[number]
        try:
            files, boxes = dataset[number]
        except (AssertionError, ValueError, OSError) as err:
            raise DatasetError(f"{source}: unreadable, or its boxes do not fit the frames of {name} ({err})") from err
        sequences.append(_check_boxes(name, files, boxes, source))
    return sequences


def got10k_meta(root: str | Path, subset: str) -> dict[str, dict[str, Any]]:
    """Per sequence of a train or val subset: meta_info.ini's fields and the per-frame labels
    ``absence``, ``cover`` (visible part, 0-8) and ``cut_by_image`` as arrays."""
    root = Path(root)
    names = _got10k_list(root, subset)
    for name in names:
        for required in ("meta_info.ini", *GOT10K_LABELS):
            if not (root / subset / name / required).is_file():
                raise DatasetError(f"{root / subset / name / required}: missing from this GOT-10k sequence")
    dataset = GOT10k(str(root), subset=subset, return_meta=True)
    return {name: dataset[number][2] for number, name in enumerate(dataset.seq_names)}


def got10k_summary(root: str | Path, subsets: tuple[str, ...] = GOT10K_SUBSETS) -> dict[str, dict[str, int]]:
    """Sequences and frames per subset, after checking each sequence reads."""
    summary = {}
    for subset in subsets:
        sequences = got10k_sequences(root, subset)
        if subset != "test":
            got10k_meta(root, subset)
        summary[subset] = {"sequences": len(sequences), "frames": sum(len(files) for _, files, _ in sequences)}
    return summary
