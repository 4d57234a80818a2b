"""ImageNet (ILSVRC2012) and its ImageNet-100 subset, read as ImageFolder copies:
``<root>/<split>/<wnid>/<image>``.

The validation images are published as one flat folder (``ILSVRC2012_val_00000001.JPEG``, ...) with
their labels kept elsewhere: in the devkit (``data/ILSVRC2012_validation_ground_truth.txt`` holds the
ILSVRC2012 id of image n on line n, and ``data/meta.mat`` maps ids to WordNet ids), in Kaggle's
``LOC_val_solution.csv``, or in a plain list (``<file> <wnid>`` per line, or the wnid of image n on
line n). ``convert_flat_val`` sorts such a folder into class folders.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from ..errors import DatasetError
from ..jobs.atomic import atomic_dir
from .archives import extract_archive

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
GROUND_TRUTH = "ILSVRC2012_validation_ground_truth.txt"


def imagenet100_wnids() -> list[str]:
    """The 100 WordNet ids of ImageNet-100 (CMC's list), in that list's order."""
    text = resources.files("cycle_pkg.data").joinpath("imagenet100.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def imagefolder_samples(
    root: str | Path, split: str, wnids: list[str] | None = None, *, strict: bool = False
) -> tuple[list[tuple[Path, int]], list[str]]:
    """(samples, classes) of ``<root>/<split>``: (image path, label) pairs and the sorted class names
    the labels index. ``wnids`` keeps those classes only (e.g. ``imagenet100_wnids()``); requested
    classes that are absent are an error with ``strict``, else a warning (a synthetic world holds
    some of ImageNet-100's classes only)."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: not found. Set data.imagenet_root to an ImageNet copy with train/ and val/ class "
            "folders, or run `cycle world` for the synthetic one"
        )
    present = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not present:
        if _images(folder):
            raise DatasetError(
                f"{folder}: images lie here without class folders (the flat ILSVRC2012 val layout). Sort them "
                f"with `cycle data imagenet-val --flat {folder} --labels <devkit or labels file>`"
            )
        raise DatasetError(f"{folder}: no class folders here; expected {folder}/<wnid>/<image>.JPEG")
    classes = present
    if wnids is not None:
        wanted = list(dict.fromkeys(wnids))
        missing = sorted(set(wanted) - set(present))
        if missing and (strict or len(missing) == len(wanted)):
            raise DatasetError(
                f"{folder}: {len(missing)} of the {len(wanted)} requested classes have no folder (e.g. "
                f"{', '.join(missing[:3])}); the copy is incomplete or is not ImageNet"
            )
        if missing:
            log.warning(
                "%s: %d of the %d requested classes are absent; using the rest", folder, len(missing), len(wanted)
            )
        classes = sorted(set(wanted) & set(present))
    samples = []
    for label, wnid in enumerate(classes):
        images = _images(folder / wnid)
        if not images:
            raise DatasetError(f"{folder / wnid}: a class folder without images")
        samples.extend((path, label) for path in images)
    return samples, classes


def _image_number(name: str) -> int:
    match = re.search(r"(\d+)\.\w+$", name)
    if not match:
        raise DatasetError(f"{name}: expected a validation image named like ILSVRC2012_val_00000001.JPEG")
    return int(match.group(1))


def _by_number(wnid_of_number: list[str], names: list[str], source: Path) -> dict[str, str]:
    """Labels given in image order: line n is image n."""
    labels = {}
    for name in names:
        number = _image_number(name)
        if not 1 <= number <= len(wnid_of_number):
            raise DatasetError(f"{source}: has {len(wnid_of_number)} labels, none for {name}")
        labels[name] = wnid_of_number[number - 1]
    return labels


def _devkit_labels(devkit: Path, names: list[str]) -> dict[str, str]:
    found = list(devkit.rglob(GROUND_TRUTH))
    if len(found) != 1:
        raise DatasetError(f"{devkit}: expected one data/{GROUND_TRUTH} in the ILSVRC2012 devkit, found {len(found)}")
    meta = found[0].with_name("meta.mat")
    if not meta.is_file():
        raise DatasetError(f"{meta}: missing; the devkit's data/ folder holds it beside {GROUND_TRUTH}")
    from scipy.io import loadmat  # only the devkit needs it

    synsets = loadmat(meta, squeeze_me=True)["synsets"]
    wnid_of_id = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    ids = [int(line) for line in found[0].read_text().split()]
    try:
        return _by_number([wnid_of_id[i] for i in ids], names, found[0])
    except KeyError as err:
        raise DatasetError(f"{found[0]}: ILSVRC2012 id {err} is not in {meta}") from err


def read_val_labels(source: str | Path, names: list[str]) -> dict[str, str]:
    """file name -> wnid for the flat validation images ``names``, from the devkit (folder or
    archive), ``LOC_val_solution.csv`` or a plain labels list."""
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: labels not found")
    if source.is_dir():
        return _devkit_labels(source, names)
    if source.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tempfile.TemporaryDirectory() as tmp:
            extract_archive(source, tmp, progress=False)
            return _devkit_labels(Path(tmp), names)
    if source.suffix == ".csv":
        with open(source, newline="") as handle:
            rows = {row["ImageId"]: row["PredictionString"].split()[0] for row in csv.DictReader(handle)}
        return {name: rows[Path(name).stem] for name in names if Path(name).stem in rows}
    lines = [line.split() for line in source.read_text().splitlines() if line.strip()]
    if all(len(tokens) == 1 for tokens in lines):
        return _by_number([tokens[0] for tokens in lines], names, source)
    if all(len(tokens) == 2 for tokens in lines):
        labels = {Path(file).name: wnid for file, wnid in lines}
        return {name: labels[name] for name in names if name in labels}
    raise DatasetError(f"{source}: expected lines '<file> <wnid>' or one wnid per line")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def convert_flat_val(flat: str | Path, labels: str | Path, out: str | Path) -> dict[str, int]:
    """Sort the flat validation folder ``flat`` into ``out/<wnid>/`` (hard links where possible);
    ``out`` may be ``flat`` itself. Returns the number of images per class."""
    flat, out = Path(flat), Path(out)
    if not flat.is_dir() or not (images := _images(flat)):
        raise DatasetError(f"{flat}: no images here to sort")
    wnid_of = read_val_labels(labels, [p.name for p in images])
    unlabelled = [p.name for p in images if p.name not in wnid_of]
    if unlabelled:
        raise DatasetError(f"{labels}: no label for {len(unlabelled)} images of {flat} (e.g. {unlabelled[0]})")
    with atomic_dir(out) as staging:
        for image in tqdm(images, unit=" images", desc=f"sorting {flat}"):
            target = staging / wnid_of[image.name] / image.name
            target.parent.mkdir(exist_ok=True)
            _link_or_copy(image, target)
    counts = Counter(wnid_of.values())
    log.info("%s: %d images in %d class folders", out, len(images), len(counts))
    return dict(sorted(counts.items()))


def imagenet_summary(root: str | Path) -> dict[str, dict[str, int]]:
    """Images and classes per split, and how many of ImageNet-100's classes each split holds."""
    summary = {}
    in100 = imagenet100_wnids()
    for split in ("train", "val"):
        samples, classes = imagefolder_samples(root, split)
        summary[split] = {
            "images": len(samples),
            "classes": len(classes),
            "imagenet100_classes": len(set(in100) & set(classes)),
        }
    if summary["train"]["classes"] != summary["val"]["classes"]:
        log.warning("%s: train has %d classes, val %d", root, summary["train"]["classes"], summary["val"]["classes"])
    return summary
